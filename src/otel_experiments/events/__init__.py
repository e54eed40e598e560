"""Experiment events: the wire format spans are shipped in, and its converter.

Public API::

    from otel_experiments.events import (
        spans_to_event_bodies, EVENTS_SCHEMA_PATH, load_events_schema, dumps,
    )

* :func:`spans_to_event_bodies` -- finished spans in, ``{experiment_id: body}`` out;
  spans without ``experiment.id`` are skipped. Pure (no I/O).
* :data:`EVENTS_SCHEMA_PATH` -- the JSON Schema (draft 2020-12) of one body;
  :func:`load_events_schema` returns it parsed.
* :func:`dumps` -- compact JSON bytes (orjson when installed, stdlib ``json`` otherwise).

The format is documented in ``docs/events-format.md``.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

from ._json import BACKEND as JSON_BACKEND
from ._json import dumps, loads
from .convert import EVENTS_TYPE, spans_to_event_bodies
from .metrics import check_metric

__all__ = [
    "EVENTS_SCHEMA_PATH",
    "EVENTS_TYPE",
    "JSON_BACKEND",
    "check_metric",
    "dumps",
    "load_events_schema",
    "loads",
    "spans_to_event_bodies",
]

#: The JSON Schema (draft 2020-12) every body produced by the converter validates against.
EVENTS_SCHEMA_PATH: Final[Path] = Path(__file__).with_name("experiment_events.schema.json")


@lru_cache(maxsize=1)
def _schema_text() -> str:
    return EVENTS_SCHEMA_PATH.read_text(encoding="utf-8")


def load_events_schema() -> dict[str, Any]:
    """Return the events JSON Schema as a fresh dict (safe to mutate)."""
    schema: dict[str, Any] = json.loads(_schema_text())
    return schema
