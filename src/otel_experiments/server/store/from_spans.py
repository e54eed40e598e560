"""Datasets from traces: stored spans -> dataset records, deduplicated, linked to their source.

A production or experiment trace whose answer was good (or bad) becomes a test case: the
span's ``meta.input`` is the record's input and its ``meta.output`` (or ``expected_output``)
the expected output. Which spans: those of one experiment or of every experiment of a
feature slug, optionally only record (root) spans, one span name, one status, a start-time
range, and a metric recorded in the span's trace (a metric on any span of a request belongs
to that request, as in the summaries).

Deduplication is by input: an input already live in the dataset (however it got there) or
met earlier in the same request is not added again. The record id is derived from the
input (``trace-`` + SHA-256 of its canonical JSON), so the same input always lands under
the same id. Each record's ``metadata.source`` names the experiment, trace and span it came
from.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Final

import sqlalchemy as sa

from ..jsonapi import dumps_str, loads
from ..schema import dataset_records, datasets, experiments, metrics, spans
from .base import now_iso
from .resources import ResourceQueries

#: Where a record's expected output comes from.
EXPECTED_SOURCES: Final = ("output", "expected_output", "none")
#: Tag on every record made from a span.
FROM_TRACE_TAG: Final = "from-trace"


@dataclass(frozen=True)
class MetricCondition:
    """A metric of the span's trace: ``label`` present, and ``equals`` / within ``min``..``max``
    (inclusive, scores only) when given."""

    label: str
    equals: bool | float | str | None = None
    minimum: float | None = None
    maximum: float | None = None

    def clause(self, scope: list[sa.ColumnElement[bool]]) -> sa.ColumnElement[bool]:
        """Spans whose (experiment, trace) has such a metric. One uncorrelated subquery over
        the experiments in ``scope`` (conditions on ``metrics.experiment_id``), evaluated
        once, rather than a lookup per span: metrics are indexed by experiment, not trace."""
        m = metrics.c
        conds: list[sa.ColumnElement[bool]] = [*scope, m.label == self.label]
        if isinstance(self.equals, bool):
            conds.append(m.boolean_value == self.equals)
        elif isinstance(self.equals, (int, float)):
            conds.append(m.score_value == self.equals)
        elif isinstance(self.equals, str):
            conds.append(m.categorical_value == self.equals)
        if self.minimum is not None:
            conds.append(m.score_value >= self.minimum)
        if self.maximum is not None:
            conds.append(m.score_value <= self.maximum)
        traces = sa.select(m.experiment_id, m.trace_id).where(*conds)
        return sa.tuple_(spans.c.experiment_id, spans.c.trace_id).in_(traces)


@dataclass(frozen=True)
class SpanSelection:
    """Which stored spans become records (``None``: no filter), and how."""

    experiment_id: str | None = None
    feature_slug: str | None = None
    roots_only: bool = True
    span_name: str | None = None
    status: str | None = None
    start_after_ns: int | None = None
    start_before_ns: int | None = None
    metric: MetricCondition | None = None
    expected_output: str = "output"
    limit: int = 1000

    def _scope(self, column: sa.ColumnElement[str]) -> list[sa.ColumnElement[bool]]:
        """The experiments the spans may come from, as conditions on ``column``."""
        out: list[sa.ColumnElement[bool]] = []
        if self.experiment_id is not None:
            out.append(column == self.experiment_id)
        if self.feature_slug is not None:
            out.append(column.in_(sa.select(experiments.c.id).where(
                experiments.c.feature_slug == self.feature_slug)))
        return out

    def query(self) -> sa.Select[Any]:
        s = spans.c
        query = sa.select(s.seq, s.experiment_id, s.trace_id, s.span_id, s.name, s.doc)
        query = query.where(*self._scope(s.experiment_id))
        if self.roots_only:
            query = query.where(s.is_root.is_(True))
        if self.span_name is not None:
            query = query.where(s.name == self.span_name)
        if self.status is not None:
            query = query.where(s.status == self.status)
        if self.start_after_ns is not None:
            query = query.where(s.start_ns >= self.start_after_ns)
        if self.start_before_ns is not None:
            query = query.where(s.start_ns < self.start_before_ns)
        if self.metric is not None:
            query = query.where(self.metric.clause(self._scope(metrics.c.experiment_id)))
        return query.order_by(s.seq).limit(self.limit)


@dataclass(frozen=True)
class FromSpansResult:
    version: int
    rows: list[dict[str, Any]]
    matched: int
    duplicates: int
    without_input: int


def canonical(value: Any) -> str:
    """One text per JSON value whatever its key order or spacing: the dedup key."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def record_id_for(key: str) -> str:
    return "trace-" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _candidate(row: Any, expected_from: str) -> dict[str, Any] | None:
    doc = loads(row.doc)
    meta = doc.get("meta") if isinstance(doc, dict) else None
    if not isinstance(meta, dict) or "input" not in meta:
        return None
    expected = None if expected_from == "none" else meta.get(expected_from)
    source = {"experiment_id": row.experiment_id, "trace_id": row.trace_id,
              "span_id": row.span_id, "span_name": row.name}
    return {"input": meta["input"], "expected_output": expected,
            "metadata": {"source": source}, "tags": [FROM_TRACE_TAG]}


class FromSpansQueries(ResourceQueries):
    def records_from_spans(self, dataset_id: str, selection: SpanSelection) -> FromSpansResult:
        """Add the selected spans' inputs to the dataset (one new version, unless none is new)."""
        with self._read() as conn:
            self._require(conn, datasets, dataset_id,
                          "dataset")
            found = conn.execute(selection.query()).all()
        candidates: list[dict[str, Any]] = []
        without_input = 0
        for row in found:
            record = _candidate(row, selection.expected_output)
            if record is None:
                without_input += 1
            else:
                candidates.append(record)
        with self._write() as conn:
            # Read the live inputs inside the write transaction: a concurrent request that
            # added the same input first makes this one skip it.
            live = {canonical(loads(text)) for text in conn.execute(
                sa.select(dataset_records.c.input).where(self._live(dataset_id))).scalars()}
            fresh: list[dict[str, Any]] = []
            for record in candidates:
                key = canonical(record["input"])
                if key not in live:
                    live.add(key)
                    fresh.append({**record, "record_id": record_id_for(key)})
            if not fresh:
                version = int(self._require(conn, datasets, dataset_id,
                                        "dataset")["current_version"])
                return FromSpansResult(version, [], len(found), len(candidates),
                                       without_input)
            version = self._bump_version(conn, dataset_id)
            now = now_iso()
            rows = [{"dataset_id": dataset_id, "record_id": r["record_id"],
                     "version_added": version, "version_removed": None,
                     "input": dumps_str(r["input"]),
                     "expected_output": dumps_str(r["expected_output"]),
                     "metadata": dumps_str(r["metadata"]), "tags": dumps_str(r["tags"]),
                     "created_at": now} for r in fresh]
            conn.execute(dataset_records.insert(), rows)
        return FromSpansResult(version, rows, len(found), len(candidates) - len(fresh),
                               without_input)


__all__ = ["EXPECTED_SOURCES", "FROM_TRACE_TAG", "FromSpansQueries", "FromSpansResult",
           "MetricCondition", "SpanSelection", "canonical", "record_id_for"]
