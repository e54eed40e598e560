"""Request-body builders shared by the server tests."""

from __future__ import annotations

import uuid
from typing import Any

API = "/api/v2/llm-obs/v1"


def uid(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def span(i: int, *, trace: int = 1, status: str = "ok", duration: int | None = None,
         parent: int | None = None, tags: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "trace_id": f"{trace:032x}",
        "span_id": f"{i:016x}",
        "name": f"task-{i}",
        "start_ns": 1_700_000_000_000_000_000 + i,
        "duration": 1000 * i if duration is None else duration,
        "status": status,
        "meta": {"input": {"i": i}, "output": str(i)},
        "tags": tags if tags is not None else [],
    }
    if status == "error":
        doc["meta"]["error"] = {"type": "ValueError", "message": "boom", "stack": None}
    if parent is not None:
        doc["parent_id"] = f"{parent:016x}"
    doc.update(extra)
    return doc


def metric(i: int, label: str, value: Any, *, trace: int = 1) -> dict[str, Any]:
    if isinstance(value, bool):
        mtype, key = "boolean", "boolean_value"
    elif isinstance(value, (int, float)):
        mtype, key = "score", "score_value"
    else:
        mtype, key = "categorical", "categorical_value"
    return {"trace_id": f"{trace:032x}", "span_id": f"{i:016x}", "metric_type": mtype,
            "label": label, key: value, "timestamp_ms": 1_700_000_000_000}


def events_body(spans: list[dict[str, Any]], metrics: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"data": {"type": "experiment_events",
                     "attributes": {"spans": spans, "metrics": metrics or []}}}
