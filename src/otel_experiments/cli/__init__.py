"""``otel-experiments`` command line: ``serve``, ``migrate``, ``run``, ``gate``, ``compare``,
``dataset-from-traces`` and ``demo``. Each subcommand is a small function over the library; every error is one
line on stderr and a non-zero exit status, never a traceback (``--traceback`` shows it).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from ._common import PROG, CliError


def build_parser() -> argparse.ArgumentParser:
    import otel_experiments  # the package's version: the public API, not a layer

    from . import evaluate, server
    from .demo import add_parsers as add_demo
    from .from_traces import add_parsers as add_from_traces

    parser = _Parser(
        prog=PROG, description="Experiments for OpenTelemetry-instrumented Python code.",
        epilog="run 'otel-experiments COMMAND --help' for a command's options and examples")
    parser.add_argument("--version", action="version", version=f"%(prog)s {otel_experiments.__version__}")
    parser.add_argument("--traceback", action="store_true",
                        help="show the full traceback of an unexpected error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    server.add_parsers(sub)
    evaluate.add_parsers(sub)
    add_from_traces(sub)
    add_demo(sub)
    return parser


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Examples keep their lines; every option with a default shows it (once)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        shown = (action.default not in (None, False, True, argparse.SUPPRESS, [])
                 and action.nargs != 0)  # flags say what they do, not "(default: True)"
        if shown and "default" not in text and action.option_strings:
            text += " (default: %(default)s)"
        return text


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["formatter_class"] = _Formatter
        super().__init__(*args, **kwargs)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:  # bare ``otel-experiments``: what can I do?
        parser.print_help()
        return 0
    try:
        result: int = args.func(args)
    except CliError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.traceback:
            raise
        from ..client import ExperimentsError

        if isinstance(exc, ExperimentsError):
            print(f"{PROG}: error: {exc}", file=sys.stderr)
        else:
            print(f"{PROG}: error: unexpected {type(exc).__name__}: {exc} (run with "
                  "--traceback for details)", file=sys.stderr)
        return 1
    return result


__all__ = ["build_parser", "main"]
