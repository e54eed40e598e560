"""The compiled part of ``events`` (``_speedups``, from ``_speedups_src/``): loaded here
once, with the one rule for whether it is used."""

from __future__ import annotations

from types import ModuleType
from typing import Final

from ..settings import native_encoder

__all__ = ["NATIVE", "speedups"]

speedups: ModuleType | None
try:
    from . import _speedups as speedups
except ImportError:  # pragma: no cover - built without a C compiler
    speedups = None

#: Whether the C encoder is in use: built, and not turned off with
#: ``OTEL_EXPERIMENTS_NATIVE_ENCODER=false`` (read at import).
NATIVE: Final = speedups is not None and native_encoder()
