"""What every subcommand shares: parsers with examples, one-line errors, loading code,
results and a client."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..client import ExperimentsClient
    from ..runner.results import ExperimentResult

PROG = "otel-experiments"


class CliError(Exception):
    """A problem the user can fix: printed as one line, exit status ``code``."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def command(sub: Any, name: str, summary: str, examples: Sequence[str],
            details: str = "") -> argparse.ArgumentParser:
    """A subcommand parser in the house style: summary, details, then examples."""
    epilog = "examples:\n" + "\n".join(f"  {e}" for e in examples)
    description = summary + (f"\n\n{textwrap.dedent(details).strip()}" if details else "")
    parser: argparse.ArgumentParser = sub.add_parser(
        name, help=summary, description=description, epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    return parser


def add_client_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--endpoint", metavar="URL",
                        help="experiments API base URL (default: $OTEL_EXPERIMENTS_ENDPOINT, "
                        "else http://127.0.0.1:8642)")
    parser.add_argument("--api-key", metavar="KEY",
                        help="API key (default: $OTEL_EXPERIMENTS_API_KEY)")


def make_client(args: argparse.Namespace) -> ExperimentsClient:
    from ..client import ExperimentsClient

    try:
        return ExperimentsClient(endpoint=args.endpoint, api_key=args.api_key)
    except ValueError as exc:
        raise CliError(str(exc), 2) from None


def load_object(spec: str, what: str) -> Any:
    """``module:attr`` or ``path/to/file.py:attr`` -> the object (``CliError`` otherwise)."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise CliError(f"{what} {spec!r}: expected MODULE:NAME (e.g. mypkg.tasks:answer)", 2)
    if os.getcwd() not in sys.path:  # as `python -m` would: the user's own modules
        sys.path.insert(0, os.getcwd())
    try:
        if module_name.endswith(".py"):
            path = Path(module_name)
            if not path.is_file():
                raise CliError(f"{what} {spec!r}: no such file {module_name}")
            loader = importlib.util.spec_from_file_location(path.stem, path)
            if loader is None or loader.loader is None:
                raise CliError(f"{what} {spec!r}: cannot load {module_name}")
            module = importlib.util.module_from_spec(loader)
            sys.modules[path.stem] = module
            loader.loader.exec_module(module)
        else:
            module = importlib.import_module(module_name)
    except CliError:
        raise
    except ImportError as exc:
        raise CliError(f"{what} {spec!r}: cannot import {module_name}: {exc}") from None
    except Exception as exc:
        raise CliError(f"{what} {spec!r}: importing {module_name} raised "
                       f"{type(exc).__name__}: {exc}") from None
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise CliError(f"{what} {spec!r}: {module_name} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj


def looks_like_file(source: str) -> bool:
    return os.path.exists(source) or source.endswith(".json") or os.sep in source


def load_result(source: str, args: argparse.Namespace,
                client: Callable[[], ExperimentsClient]) -> ExperimentResult:
    """A results file, an experiment on the server (by id), or ``where:PATH=VALUE,...``:
    the latest experiment whose run metadata matches (``where:config.model=gpt-4o``)."""
    from ..runner.results import ExperimentResult

    if source.startswith(WHERE_PREFIX):
        source = latest_matching(client(), source)
    elif looks_like_file(source):
        try:
            return ExperimentResult.from_json(source)
        except (OSError, ValueError, TypeError) as exc:
            raise CliError(str(exc)) from None
    return ExperimentResult.from_server(client(), source)


#: An experiment chosen by its run metadata rather than its id (``compare``, ``gate``).
WHERE_PREFIX = "where:"


def latest_matching(client: ExperimentsClient, spec: str) -> str:
    """``where:config.model=gpt-4o,git.dirty=false`` -> id of the newest match."""
    conditions = [c for c in spec.removeprefix(WHERE_PREFIX).split(",") if c]
    if not conditions or any("=" not in c for c in conditions):
        raise CliError(f"{spec!r}: expected where:PATH=VALUE[,PATH=VALUE...] "
                       "(e.g. where:config.model=gpt-4o)", 2)
    found = client.experiments.list(where=conditions, page_size=1000).data
    if not found:
        raise CliError(f"no experiment matches {spec!r}")
    return found[-1].id  # oldest first: the last one is the newest


def write_text(dest: str, text: str) -> None:
    if dest == "-":
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return
    try:
        Path(dest).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot write {dest}: {exc.strerror or exc}") from None


__all__ = ["PROG", "WHERE_PREFIX", "CliError", "add_client_args", "command",
           "latest_matching", "load_object", "load_result", "make_client", "write_text"]
