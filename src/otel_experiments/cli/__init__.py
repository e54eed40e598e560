"""``otel-experiments`` command line: ``serve``, ``migrate``, ``run``, ``gate``, ``compare``
and ``demo``. Each subcommand is a small function over the library; every error is one
line on stderr and a non-zero exit status, never a traceback (``--traceback`` shows it).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ._common import PROG, CliError


def build_parser() -> argparse.ArgumentParser:
    from . import evaluate, server
    from .demo import add_parsers as add_demo

    parser = argparse.ArgumentParser(
        prog=PROG, description="Experiments for OpenTelemetry-instrumented Python code.",
        epilog="run 'otel-experiments COMMAND --help' for a command's options and examples")
    parser.add_argument("--traceback", action="store_true",
                        help="show the full traceback of an unexpected error")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    server.add_parsers(sub)
    evaluate.add_parsers(sub)
    add_demo(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
