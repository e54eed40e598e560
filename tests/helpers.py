"""Small helpers shared by the test modules (import as ``from helpers import ...``)."""

from __future__ import annotations

import logging

import pytest

from server_process import free_port

__all__ = ["free_port", "warnings_of"]


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The messages of every WARNING-or-worse record caplog caught."""
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
