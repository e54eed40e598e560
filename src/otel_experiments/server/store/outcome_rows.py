"""Every record of an experiment, lean: what comparing two runs reads, and nothing else.

A comparison (the compare endpoint's paired tests, the web UI's changed records) judges
every record of both experiments by whether its task failed and by its metric values. The
records API (:func:`.records.experiment_records`) gives those too, but parses each span's
stored document (input, output, error) and joins the dataset record: on two 100,000-span
experiments that was most of the seconds a comparison took. Here each experiment costs two
queries over indexed columns (root spans without ``doc``, then the experiment's metrics);
documents are parsed only for the metrics whose columns do not hold them exactly. A test
holds these rows equal to the records API's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from ... import attributes as attr
from ..jsonapi import ApiError, loads
from ..schema import CATEGORY_INDEX_CHARS, experiments, metrics, spans
from .base import StoreBase
from .records import _metric_value as metric_value

__all__ = ["OutcomeRow", "outcome_rows"]


@dataclass(frozen=True, slots=True)
class OutcomeRow:
    """One record span: its dataset record id (``key``; the span id when it names none),
    whether its task failed, and its metric values by label (the last one of a label)."""

    key: str
    span_id: str
    trace_id: str
    failed: bool
    metrics: dict[str, Any]


def _label_value(label: str, mtype: str, score: Any, category: Any, boolean: Any,
                 doc: str | None) -> tuple[Any, Any]:
    """The label and value the records API shows (``metrics[].label``, ``.value``)."""
    if doc is not None and _columns_may_differ(label, mtype, score, category):
        sent = loads(doc)
        return sent.get("label"), metric_value(sent)
    if mtype == attr.METRIC_TYPE_SCORE:
        return label, score
    if mtype == attr.METRIC_TYPE_BOOLEAN:
        return label, None if boolean is None else bool(boolean)
    return label, category


def _columns_may_differ(label: str, mtype: str, score: Any, category: Any) -> bool:
    """Whether a metric's columns may not hold what was sent (then its ``doc`` is parsed).

    A ``doc`` is kept for any metric not sent exactly as the exporter sends it (other
    members' order, ``metadata``), yet the schema admits only the type's value member, so the
    columns differ from it only where ingest changes a value: NUL in text (stored as
    U+FFFD), a category cut to ``CATEGORY_INDEX_CHARS``, a whole or zero score (an int, or
    -0.0, comes back as a float)."""
    if "\ufffd" in label:
        return True
    if mtype == attr.METRIC_TYPE_SCORE:
        return score is None or float(score).is_integer()
    if mtype == attr.METRIC_TYPE_CATEGORICAL:
        return category is None or len(category) >= CATEGORY_INDEX_CHARS or "\ufffd" in category
    return False


def _fetch(conn: sa.Connection, query: sa.Select[Any]) -> list[Any]:
    """All rows of ``query`` as the driver returns them (tuples; booleans may be 0 / 1):
    SQLAlchemy's result rows cost as much again as the fetch on 100,000 rows."""
    compiled = query.compile(dialect=conn.dialect)
    params: Any = compiled.params
    if compiled.positional:
        params = [params[name] for name in compiled.positiontup or ()]
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(str(compiled), params)
        return list(cursor.fetchall())
    finally:
        cursor.close()


def outcome_rows(store: StoreBase, experiment_id: str) -> list[OutcomeRow]:
    """Every record span of the experiment, oldest first (404 for an unknown experiment)."""
    s, m = spans.c, metrics.c
    with store._read() as conn:  # one snapshot: metrics of exactly these spans
        if conn.execute(sa.select(experiments.c.seq)
                        .where(experiments.c.id == experiment_id)).first() is None:
            raise ApiError(404, f"experiment {experiment_id!r} not found")
        roots = _fetch(conn, sa.select(s.span_id, s.trace_id, s.status, s.dataset_record_id)
                       .where(s.experiment_id == experiment_id, s.is_root.is_(True))
                       .order_by(s.seq))
        # All the experiment's metrics in one read (the unique index's prefix); those on
        # child spans are skipped below, cheaper than probing the spans table per metric.
        found = _fetch(conn, sa.select(m.span_id, m.label, m.metric_type, m.score_value,
                                       m.categorical_value, m.boolean_value, m.doc)
                       .where(m.experiment_id == experiment_id).order_by(m.seq))
    by_span: dict[str, dict[str, Any]] = {row[0]: {} for row in roots}
    boolean_type = attr.METRIC_TYPE_BOOLEAN
    for span_id, label, mtype, score, category, boolean, doc in found:
        values = by_span.get(span_id)
        if values is None:
            continue
        # (inlined: this loop runs once per metric, 150,000 times for two 25,000-record runs)
        if doc is None:  # in stored order: the last value of a label wins
            values[label] = (bool(boolean) if boolean is not None else None) \
                if mtype == boolean_type else score if category is None else category
        else:
            label, value = _label_value(label, mtype, score, category, boolean, doc)
            if isinstance(label, str):
                values[label] = value
    return [OutcomeRow(record_id or span_id, span_id, trace_id, status == "error",
                       by_span[span_id])
            for span_id, trace_id, status, record_id in roots]
