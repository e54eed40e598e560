"""Storing ddtrace's experiment events and span intake through our own ingest.

Both are translated to our ``experiment_events`` body (:mod:`otel_experiments.events.dialects`)
and then validated and stored exactly as a body our exporter sent: same schema, same
deduplication by (experiment id, span id), so a span is one record whichever dialect
carried it, and a retried request stores nothing twice.
"""

from __future__ import annotations

from typing import Any

from ...events.dialects import from_ddtrace_events, from_ddtrace_intake
from ..ingest import parse_events
from ..jsonapi import ApiError
from ..store import Store
from ..store.ddtrace import merge_experiment, stored_record_ids
from ..validation import id_value

#: Span and trace id that stand in for "no span" while a summary metric is validated
#: like any other metric (it is stored on the experiment, never as a metric row).
_NO_SPAN = {"span_id": "0" * 16, "trace_id": "0" * 32}


def _body(spans: list[Any], metrics: list[Any]) -> dict[str, Any]:
    return {"data": {"type": "experiment_events",
                     "attributes": {"spans": spans, "metrics": metrics}}}


def _name_stored_records(store: Store, spans: list[Any]) -> None:
    """Point each span's ``dataset_record_id`` at the stored record it ran (in place)."""
    by_dataset: dict[str, dict[str, tuple[Any, Any]]] = {}
    for s in spans:
        if isinstance(s, dict) and isinstance(s.get("dataset_record_id"), str):
            dataset_id = next((t[len("dataset_id:"):] for t in s["tags"]
                               if t.startswith("dataset_id:")), None)
            if dataset_id:
                meta = s["meta"]
                by_dataset.setdefault(dataset_id, {})[s["dataset_record_id"]] = (
                    meta.get("input"), meta.get("expected_output"))
    for dataset_id, records in by_dataset.items():
        found = stored_record_ids(store, dataset_id, records)
        for s in spans:
            if isinstance(s, dict) and s.get("dataset_record_id") in found and any(
                    t == f"dataset_id:{dataset_id}" for t in s["tags"]):
                s["dataset_record_id"] = found[s["dataset_record_id"]]


def ingest_ddtrace_events(store: Store, experiment_id: str, body: Any,
                          max_items: int) -> dict[str, Any]:
    """ddtrace's ``experiments`` events body: spans and metrics stored as ours, summary
    metrics on the experiment. Returns the counts (our events answer's, plus
    ``summary_metrics``)."""
    events = from_ddtrace_events(body)
    attrs = events.body["data"]["attributes"]
    summary = events.summary_metrics
    if summary:
        try:  # validated as metrics (label, value, timestamp), with a stand-in span
            parse_events(_body([], [{**_NO_SPAN, **m} for m in summary]), max_items)
        except ApiError as exc:
            raise ApiError(exc.status, f"summary metric: {exc.detail}", exc.pointer) from None
    if isinstance(attrs["spans"], list):
        _name_stored_records(store, attrs["spans"])
    span_rows, metric_rows = parse_events(events.body, max_items)
    # (stored even with no span or metric: that auto-creates the experiment, as ours does)
    result = store.ingest(experiment_id, span_rows, metric_rows)
    if summary:
        merge_experiment(store, experiment_id, summary_metrics=summary)
    return {
        "accepted_spans": result.accepted_spans, "duplicate_spans": result.duplicate_spans,
        "accepted_metrics": result.accepted_metrics,
        "duplicate_metrics": result.duplicate_metrics,
        "experiment_created": result.experiment_created,
        "summary_metrics": len(summary),
        "spans_sent": len(attrs["spans"]) if isinstance(attrs["spans"], list) else 0,
    }


def ingest_intake(store: Store, payload: Any, max_items: int) -> dict[str, Any]:
    """The span intake (``POST /api/v2/llmobs``): spans grouped by their ``experiment_id``
    tag and stored per experiment; spans of no experiment are counted, not stored (this
    server keeps experiments, not LLM Observability traces)."""
    if not isinstance(payload, (list, dict)):
        raise ApiError(400, "must be an array of span envelopes", "")
    by_experiment, ignored = from_ddtrace_intake(payload)
    for spans in by_experiment.values():
        _name_stored_records(store, spans)
    checked = [(id_value(experiment_id, "/spans/tags/experiment_id"), spans)
               for experiment_id, spans in by_experiment.items()]
    parsed = [(experiment_id, parse_events(_body(spans, []), max_items))
              for experiment_id, spans in checked]  # all checked before any is stored
    accepted = duplicate = 0
    for experiment_id, (span_rows, metric_rows) in parsed:
        result = store.ingest(experiment_id, span_rows, metric_rows)
        accepted += result.accepted_spans
        duplicate += result.duplicate_spans
    return {"accepted_spans": accepted, "duplicate_spans": duplicate, "ignored_spans": ignored,
            "experiments": len(parsed)}


__all__ = ["ingest_ddtrace_events", "ingest_intake"]
