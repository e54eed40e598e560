"""Per-record results of an experiment: record span + its metrics + the dataset record.

A *record* is one root span of the experiment (the span ``start_observe`` opens for a unit
of work; the runner opens one per dataset record, in a trace of its own). Each row joins:

* the span's own columns and its ``meta`` (input, output, expected output, error, metadata);
* every metric recorded on that span;
* the dataset record it ran (``dataset_record_id``), as it was in the dataset version the
  experiment ran against (the current version when the experiment names none).

Three indexed queries per page (spans, then metrics and records of that page only), so a
page costs the same on an experiment with a hundred or a hundred thousand spans. Written
as functions over any :class:`~.base.StoreBase` so the API route and the web UI share them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from .. import schema
from ..jsonapi import ApiError, loads
from ..usage import usage_document
from . import aggregates
from .base import Page, StoreBase
from .events import metric_docs

#: The filters :func:`experiment_records` accepts (span column -> value).
RECORD_FILTERS = ("status", "dataset_record_id", "user_id", "organization_id")


@dataclass(frozen=True)
class RecordFilters:
    """Optional equality filters on the record span (``None``: no filter)."""

    status: str | None = None
    dataset_record_id: str | None = None
    user_id: str | None = None
    organization_id: str | None = None

    def items(self) -> list[tuple[str, str]]:
        return [(k, v) for k in RECORD_FILTERS if (v := getattr(self, k)) is not None]


def _metric_value(doc: Mapping[str, Any]) -> Any:
    for key in ("score_value", "boolean_value", "categorical_value"):
        if key in doc:
            return doc[key]
    return None


def _live_record(dataset_id: str, version: int | None) -> sa.ColumnElement[bool]:
    r = schema.dataset_records.c
    if version is None:
        return sa.and_(r.dataset_id == dataset_id, r.version_removed.is_(None))
    return sa.and_(r.dataset_id == dataset_id, r.version_added <= version,
                   sa.or_(r.version_removed.is_(None), r.version_removed > version))


def _record_doc(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["record_id"],
        "input": loads(row["input"]),
        "expected_output": loads(row["expected_output"]),
        "metadata": loads(row["metadata"]),
        "tags": loads(row["tags"]),
        "version": row["version_added"],
    }


def _row(span: Mapping[str, Any], metrics: list[dict[str, Any]],
         record: dict[str, Any] | None, usage: dict[str, Any] | None) -> dict[str, Any]:
    doc = loads(span["doc"])
    meta = doc.get("meta")
    if not isinstance(meta, dict):
        meta = {}
    return {
        "seq": span["seq"],
        "span_id": span["span_id"],
        "trace_id": span["trace_id"],
        "name": span["name"],
        "status": span["status"],
        "start_ns": span["start_ns"],
        "duration": span["duration"],
        "dataset_record_id": span["dataset_record_id"],
        "user_id": span["user_id"],
        "organization_id": span["organization_id"],
        "input": meta.get("input"),
        "output": meta.get("output"),
        "expected_output": meta.get("expected_output"),
        "error": meta.get("error"),
        "metadata": meta.get("metadata"),
        "tags": doc.get("tags", []),
        "metrics": metrics,
        "record": record,
        "usage": usage,
    }


def _usage_by_trace(conn: sa.Connection, experiment_id: str,
                    trace_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Each trace's GenAI usage (``server.usage``), summed over every span of the trace
    (``ix_spans_experiment_trace`` finds them)."""
    s = schema.spans.c
    rows: dict[str, list[tuple[Any, ...]]] = {}
    if trace_ids:
        for trace_id, *row in conn.execute(
            sa.select(s.trace_id, s.model, sa.func.sum(s.input_tokens),
                      sa.func.sum(s.output_tokens), sa.func.count())
            .where(s.experiment_id == experiment_id, s.trace_id.in_(trace_ids),
                   sa.or_(s.input_tokens.is_not(None), s.output_tokens.is_not(None)))
            .group_by(s.trace_id, s.model)
        ):
            rows.setdefault(trace_id, []).append(tuple(row))
    return {t: usage_document(rows.get(t, []), with_spans=False) for t in trace_ids}


def experiment_records(store: StoreBase, experiment_id: str, *,
                       filters: RecordFilters | None = None, size: int = 100,
                       cursor: int = 0, usage: bool = True) -> Page:
    """One page of an experiment's records, oldest first (404 for an unknown experiment).

    Each row holds the record span's fields (``input``, ``output``, ``expected_output``,
    ``error``, ``metadata`` from its ``meta``), ``metrics`` (the metric documents as
    ingested, plus ``value``) and ``record`` (the dataset record, or ``None`` when the span
    names none or the experiment has no dataset), and ``usage`` (GenAI tokens of every span
    of the record's trace, in total and by model; ``None`` when ``usage`` is false: the
    compare page's outcomes need none).
    """
    s, r = schema.spans.c, schema.dataset_records.c
    query = (sa.select(s.seq, s.span_id, s.trace_id, s.name, s.status, s.start_ns, s.duration,
                       s.dataset_record_id, s.user_id, s.organization_id, s.doc)
             .where(s.experiment_id == experiment_id, s.is_root.is_(True), s.seq > cursor))
    for key, value in (filters or RecordFilters()).items():
        query = query.where(s[key] == value)
    with store._read() as conn:
        exp = conn.execute(
            sa.select(schema.experiments.c.dataset_id, schema.experiments.c.dataset_version)
            .where(schema.experiments.c.id == experiment_id)).first()
        if exp is None:
            raise ApiError(404, f"experiment {experiment_id!r} not found")
        rows: list[Any] = list(conn.execute(query.order_by(s.seq).limit(size + 1)).all())
        page = store._page(rows, size)
        span_ids = [row["span_id"] for row in page.rows]
        by_span = metric_docs(conn, experiment_id, span_ids)
        for metric in (m for ms in by_span.values() for m in ms):
            metric["value"] = _metric_value(metric)
        record_ids = sorted({row["dataset_record_id"] for row in page.rows
                             if row["dataset_record_id"] is not None})
        records: dict[str, dict[str, Any]] = {}
        if record_ids and exp.dataset_id is not None:
            for row in conn.execute(
                sa.select(schema.dataset_records)
                .where(_live_record(exp.dataset_id, exp.dataset_version),
                       r.record_id.in_(record_ids))
            ):
                records[row.record_id] = _record_doc(dict(row._mapping))
        by_trace = _usage_by_trace(conn, experiment_id, sorted(
            {row["trace_id"] for row in page.rows}) if usage else [])
    out = [_row(row, by_span.get(row["span_id"], []),
                records.get(row["dataset_record_id"] or ""), by_trace.get(row["trace_id"]))
           for row in page.rows]
    return Page(out, page.next_cursor)


def delete_experiment(store: StoreBase, experiment_id: str) -> int:
    """Delete an experiment with its spans and metrics; returns how many spans went.

    404 for an unknown experiment. Spans arriving later for the same id re-create it
    (ingest auto-creates experiments), as they would for any unknown id.
    """

    def work() -> int:
        with store._write() as conn:
            gone = conn.execute(schema.experiments.delete()
                                .where(schema.experiments.c.id == experiment_id)).rowcount
            if not gone:
                raise ApiError(404, f"experiment {experiment_id!r} not found")
            conn.execute(schema.metrics.delete()
                         .where(schema.metrics.c.experiment_id == experiment_id))
            aggregates.delete_experiment(conn, experiment_id)
            return int(conn.execute(schema.spans.delete()
                                    .where(schema.spans.c.experiment_id == experiment_id))
                       .rowcount)

    result: int = store._retrying(work)
    return result


__all__ = ["RECORD_FILTERS", "RecordFilters", "delete_experiment", "experiment_records"]
