"""An experiment's summary, aggregated in SQL from covering indexes.

Every query below reads an index range of the experiment (``ix_spans_experiment_duration``,
``ix_spans_experiment_errors``, ``ix_metrics_summary``), never the table rows. SQLite pays
per row for each aggregate a query computes, so each pass computes few (count and mean);
minimum and maximum are index seeks, error and boolean counts are counts of index ranges,
and percentiles step through the index in order (``LIMIT 2 OFFSET k``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from ... import attributes as attr
from ..schema import experiments, metrics, spans, usage_totals
from ..usage import usage_document
from .base import StoreBase

_PERCENTILES = (0.5, 0.95)


def _percentiles(conn: sa.Connection, column: sa.ColumnElement[Any],
                 where: Sequence[sa.ColumnElement[bool]], n: int) -> dict[str, float | None]:
    """Linear-interpolated percentiles (as ``percentile_cont``) read off an index."""
    out: dict[str, float | None] = {}
    for p in _PERCENTILES:
        key = f"p{round(p * 100)}"
        if n == 0:
            out[key] = None
            continue
        k = (n - 1) * p
        lo = math.floor(k)
        values = conn.execute(
            sa.select(column).where(*where, column.is_not(None))
            .order_by(column).limit(2).offset(lo)
        ).scalars().all()
        a = float(values[0])
        b = float(values[1]) if len(values) > 1 else a
        out[key] = a + (b - a) * (k - lo)
    return out


def _first(conn: sa.Connection, column: sa.ColumnElement[Any],
           where: Sequence[sa.ColumnElement[bool]], *, last: bool = False) -> Any:
    """The smallest (``last``: largest) value of an indexed column: one index seek, where
    ``min()`` / ``max()`` beside other aggregates would visit every row."""
    return conn.execute(sa.select(column).where(*where, column.is_not(None))
                        .order_by(column.desc() if last else column).limit(1)).scalar()


def _stats(count: Any, errors: Any, mean: Any, lo: Any, hi: Any) -> dict[str, Any]:
    """Span statistics from one aggregate row (``store.grouped`` builds them so)."""
    count, errors = int(count or 0), int(errors or 0)
    return {
        "span_count": count,
        "error_count": errors,
        "error_rate": errors / count if count else None,
        "latency_ns": {"mean": None if mean is None else float(mean), "min": lo, "max": hi},
    }


def _span_stats(conn: sa.Connection, where: list[sa.ColumnElement[bool]]) -> dict[str, Any]:
    s = spans.c
    # Each aggregate costs SQLite about as much per row as the scan itself: this pass keeps
    # two; errors are counted off the partial errors index, min / max are index seeks.
    count, mean = conn.execute(sa.select(sa.func.count(), sa.func.avg(s.duration))
                               .where(*where)).one()
    count = int(count)
    errors = int(conn.execute(sa.select(sa.func.count()).where(
        *where, s.status == sa.literal("error", literal_execute=True))).scalar_one())
    out = _stats(count, errors, mean, _first(conn, s.duration, where),
                 _first(conn, s.duration, where, last=True))
    out["latency_ns"].update(_percentiles(conn, s.duration, where, count))
    return out


class SummaryQueries(StoreBase):
    def _span_summary(self, conn: sa.Connection, experiment_id: str) -> dict[str, Any]:
        s = spans.c
        out = _span_stats(conn, [s.experiment_id == experiment_id])
        out["root_spans"] = _span_stats(conn, [s.experiment_id == experiment_id,
                                               s.is_root.is_(True)])
        return out

    def _metric_summaries(self, conn: sa.Connection, experiment_id: str) -> list[dict[str, Any]]:
        m = metrics.c
        summaries = []
        for label, mtype, count in conn.execute(
            sa.select(m.label, m.metric_type, sa.func.count())
            .where(m.experiment_id == experiment_id)
            .group_by(m.label, m.metric_type).order_by(m.label, m.metric_type)
        ):
            item: dict[str, Any] = {"label": label, "metric_type": mtype, "count": count}
            where = [m.experiment_id == experiment_id, m.label == label, m.metric_type == mtype]
            if mtype == attr.METRIC_TYPE_SCORE:
                n_scores, mean = conn.execute(
                    sa.select(sa.func.count(m.score_value), sa.func.avg(m.score_value))
                    .where(*where)).one()
                item.update(mean=None if mean is None else float(mean),
                            min=_first(conn, m.score_value, where),
                            max=_first(conn, m.score_value, where, last=True))
                item.update(_percentiles(conn, m.score_value, where, int(n_scores)))
            elif mtype == attr.METRIC_TYPE_BOOLEAN:
                # ``score_value IS NULL`` (always, for booleans) lets the boolean value take
                # part in the index seek: each count walks its own range only.
                n_true, n_null = (int(conn.execute(sa.select(sa.func.count()).where(
                    *where, m.score_value.is_(None), m.boolean_value.is_(flag))).scalar_one())
                    for flag in (True, None))
                counts = {"true": n_true, "false": int(count) - n_true - n_null, "null": n_null}
                item["value_counts"] = {k: n for k, n in sorted(
                    counts.items(), key=lambda kv: -kv[1]) if n}
            else:
                item["value_counts"] = {
                    "null" if value is None else str(value): int(n)
                    for value, n in conn.execute(
                        sa.select(m.categorical_value, sa.func.count()).where(*where)
                        .group_by(m.categorical_value).order_by(sa.func.count().desc()))
                }
            summaries.append(item)
        return summaries

    def summary(self, experiment_id: str) -> dict[str, Any]:
        with self._read() as conn:
            self._require(conn, experiments, experiment_id, "experiment")
            out = self._span_summary(conn, experiment_id)
            out["metrics"] = self._metric_summaries(conn, experiment_id)
            u = usage_totals.c
            out["usage"] = usage_document(conn.execute(
                sa.select(u.model, u.input_tokens, u.output_tokens, u.spans)
                .where(u.experiment_id == experiment_id)).all())
        return out
