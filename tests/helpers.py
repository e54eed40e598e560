"""Small helpers shared by the test modules (import as ``from helpers import ...``)."""

from __future__ import annotations

import logging

import pytest

from server_process import free_port

__all__ = ["cause_warnings", "free_port", "warnings_of"]

#: The delivery report's rate-limited tally of dropped spans (``... dropped in all``).
TALLY = "dropped in all"


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The messages of every WARNING-or-worse record caplog caught."""
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def cause_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    """:func:`warnings_of` without the tally of dropped spans that follows each cause."""
    return [m for m in warnings_of(caplog) if TALLY not in m]
