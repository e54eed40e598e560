"""The command line explains itself: bare command, --version, help and defaults everywhere."""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys

from otel_experiments import __version__
from otel_experiments.cli import build_parser, main


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse has no public way to list subcommands
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def test_bare_command_prints_help_and_version_works(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "usage: otel-experiments" in out and "serve" in out and "demo" in out
    version = subprocess.run([sys.executable, "-m", "otel_experiments.cli", "--version"],
                             capture_output=True, text=True, check=True)
    assert version.stdout.strip() == f"otel-experiments {__version__}"


def test_every_option_of_every_command_has_help_and_shows_its_default() -> None:
    commands = _subparsers(build_parser())
    assert {"serve", "migrate", "run", "gate", "compare", "demo"} <= set(commands)
    for name, parser in commands.items():
        text = " ".join(parser.format_help().split())
        for action in parser._actions:
            if not action.option_strings or action.help == argparse.SUPPRESS:
                continue
            assert action.help, f"{name} {action.option_strings[0]} has no help"
            if action.default not in (None, False, True, [], argparse.SUPPRESS) and action.nargs != 0:
                assert f"default: {action.default}" in text or "default" in action.help, (
                    name, action.option_strings[0])


def test_serve_reports_a_busy_port_before_touching_the_database(tmp_path) -> None:  # type: ignore[no-untyped-def]
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    db = tmp_path / "never.db"
    try:
        result = subprocess.run(
            [sys.executable, "-m", "otel_experiments.cli", "serve", "--port", str(port),
             "--database-url", f"sqlite:///{db}"],
            capture_output=True, text=True, timeout=60, check=False)
    finally:
        busy.close()
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr
    assert not db.exists()  # no migration ran
