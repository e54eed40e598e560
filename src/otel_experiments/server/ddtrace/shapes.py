"""Request parsing and response shapes for ddtrace's experiments client.

Only the members ddtrace's code reads are promised (``ddtrace/llmobs/_writer.py``,
``_experiment.py`` of ddtrace 4.x); each resource also carries ours, so one response
serves both readers.
"""

from __future__ import annotations

from typing import Any

from ...events.dialects import metric_value, span_id_to_ddtrace
from ..jsonapi import ApiError, loads, resource
from ..render import experiment_resource
from ..store.ddtrace import DD_KEY
from ..validation import id_value, object_value, string_list

# -- datasets ----------------------------------------------------------------------------


def record_doc(row: dict[str, Any]) -> dict[str, Any]:
    """A stored record as ddtrace pulls it (``canonical_id``: the record's stable id)."""
    doc = resource("dataset_records", row["record_id"], {
        "dataset_id": row["dataset_id"], "input": loads(row["input"]),
        "expected_output": loads(row["expected_output"]), "metadata": loads(row["metadata"]),
        "tags": loads(row["tags"]), "version": row["version_added"],
        "canonical_id": row["record_id"], "created_at": row["created_at"],
    })
    return doc


def _record(item: object, ptr: str, *, update: bool) -> dict[str, Any]:
    rec = object_value(item, ptr)
    out: dict[str, Any] = {"id": id_value(rec.get("id"), f"{ptr}/id")}
    if update:
        # ddtrace sends null for "unchanged", "" / {} to clear a value
        for key in ("input", "expected_output", "metadata"):
            if rec.get(key) is not None:
                out[key] = rec[key]
        if "metadata" in out:
            object_value(out["metadata"], f"{ptr}/metadata")
        if isinstance(rec.get("tag_operations"), dict):
            out["tag_operations"] = rec["tag_operations"]
        return out
    if rec.get("input") is None:
        raise ApiError(400, "is required", f"{ptr}/input")
    out["input"] = rec["input"]
    out["expected_output"] = rec.get("expected_output")
    metadata = rec.get("metadata")
    out["metadata"] = {} if metadata is None else object_value(metadata, f"{ptr}/metadata")
    tags = rec.get("tags")
    out["tags"] = [] if tags is None else string_list(tags, f"{ptr}/tags")
    return out


def batch_request(attrs: dict[str, Any], max_items: int) -> dict[str, Any]:
    """The ``batch_update`` attributes, checked (400 naming the field)."""
    base = "/data/attributes"
    lists: dict[str, list[Any]] = {}
    for key in ("insert_records", "update_records", "delete_records"):
        value = attrs.get(key) or []
        if not isinstance(value, list):
            raise ApiError(400, "must be an array", f"{base}/{key}")
        if len(value) > max_items:
            raise ApiError(413, f"{len(value)} records; the limit is {max_items}",
                           f"{base}/{key}")
        lists[key] = value
    return {
        "inserts": [_record(r, f"{base}/insert_records/{i}", update=False)
                    for i, r in enumerate(lists["insert_records"])],
        "updates": [_record(r, f"{base}/update_records/{i}", update=True)
                    for i, r in enumerate(lists["update_records"])],
        "deletes": [id_value(r, f"{base}/delete_records/{i}")
                    for i, r in enumerate(lists["delete_records"])],
        "deduplicate": attrs.get("deduplicate") is not False,
        "new_version": attrs.get("create_new_version") is not False,
    }


# -- experiments -------------------------------------------------------------------------


def _dd(row: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    metadata = loads(row["metadata"])
    metadata = metadata if isinstance(metadata, dict) else {}
    extras = metadata.get(DD_KEY)
    return metadata, extras if isinstance(extras, dict) else {}


def experiment_doc(row: dict[str, Any]) -> dict[str, Any]:
    """Ours, plus what ddtrace's ``experiment_get`` / ``experiment_list`` read: the logical
    name (``experiment``), ``run_count``, a lower-case ``status``, ``error``."""
    doc = experiment_resource(row)
    _, extras = _dd(row)
    doc["attributes"].update(
        experiment=row["name"], run_count=extras.get("run_count") or 1,
        parent_experiment_id=extras.get("parent_experiment_id"),
        status=str(row["status"]).lower(), error=extras.get("error"), aggregate_data=None,
        dataset_version=row["dataset_version"] or 0)
    return doc


def _dd_metric(metric: dict[str, Any]) -> dict[str, Any]:
    """A stored metric as ddtrace wrote it (its type, value and extras restored)."""
    metadata = metric.get("metadata")
    extras = metadata.get(DD_KEY) if isinstance(metadata, dict) else None
    extras = dict(extras) if isinstance(extras, dict) else {}
    mtype = extras.pop("metric_type", None) or metric.get("metric_type")
    out: dict[str, Any] = {"label": metric.get("label"), "metric_type": mtype,
                           f"{mtype}_value": metric_value(metric),
                           "timestamp_ms": metric.get("timestamp_ms")}
    out.update({k: v for k, v in extras.items() if not k.endswith("_value")})
    out.setdefault("error", None)
    user_metadata = {k: v for k, v in (metadata or {}).items() if k != DD_KEY}
    if user_metadata:
        out["metadata"] = user_metadata
    if "span_id" in metric:
        out["span_id"] = span_id_to_ddtrace(metric["span_id"])
        out["trace_id"] = metric.get("trace_id")
    return out


def record_span(row: dict[str, Any]) -> dict[str, Any]:
    """One record of :func:`~..store.records.experiment_records` as ddtrace pulls it."""
    error = row.get("error") if isinstance(row.get("error"), dict) else {}
    return {
        "span_id": span_id_to_ddtrace(row["span_id"]), "trace_id": row["trace_id"],
        "name": row["name"], "start_ns": row["start_ns"], "duration": row["duration"],
        "status": row["status"], "tags": row.get("tags") or [],
        "meta": {"input": row.get("input"), "output": row.get("output"),
                 "expected_output": row.get("expected_output"),
                 "metadata": row.get("metadata") or {}, "error": error},
        "eval_metrics": [_dd_metric(m) for m in row.get("metrics") or []],
    }


def experiment_events(row: dict[str, Any], records: list[dict[str, Any]]) -> dict[str, Any]:
    _, extras = _dd(row)
    summary = [_dd_metric(m) for m in extras.get("summary_metrics") or []
               if isinstance(m, dict)]
    return {"data": resource("experiment_events", row["id"], {
        "spans": [record_span(r) for r in records], "summary_metrics": summary})}


__all__ = ["batch_request", "experiment_doc",
           "experiment_events", "record_doc", "record_span"]
