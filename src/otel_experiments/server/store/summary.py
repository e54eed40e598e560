"""An experiment's summary, aggregated in SQL from covering indexes.

Every query below reads one index range of the experiment (``ix_spans_experiment_duration``,
``ix_metrics_summary``), never the table rows, and each range is read as few times as
possible: one pass gives the statistics of all spans and of root spans together, one pass
gives every metric label's counts (booleans' true/false counts included); percentiles step
through the index in order (``LIMIT 2 OFFSET k``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from ... import attributes as attr
from ..schema import experiments, metrics, spans
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


def _stats(count: Any, errors: Any, mean: Any, lo: Any, hi: Any) -> dict[str, Any]:
    count, errors = int(count or 0), int(errors or 0)
    return {
        "span_count": count,
        "error_count": errors,
        "error_rate": errors / count if count else None,
        "latency_ns": {"mean": None if mean is None else float(mean), "min": lo, "max": hi},
    }


class SummaryQueries(StoreBase):
    def _span_summary(self, conn: sa.Connection, experiment_id: str) -> dict[str, Any]:
        s = spans.c
        root = s.is_root.is_(True)
        error = s.status == "error"
        row = conn.execute(
            sa.select(
                sa.func.count(), sa.func.sum(sa.case((error, 1), else_=0)),
                sa.func.avg(s.duration), sa.func.min(s.duration), sa.func.max(s.duration),
                sa.func.sum(sa.case((root, 1), else_=0)),
                sa.func.sum(sa.case((sa.and_(root, error), 1), else_=0)),
                sa.func.avg(sa.case((root, s.duration))),
                sa.func.min(sa.case((root, s.duration))),
                sa.func.max(sa.case((root, s.duration))),
            ).where(s.experiment_id == experiment_id)
        ).one()
        out = _stats(*row[:5])
        out["latency_ns"].update(_percentiles(
            conn, s.duration, [s.experiment_id == experiment_id], out["span_count"]))
        out["root_spans"] = _stats(*row[5:])
        out["root_spans"]["latency_ns"].update(_percentiles(
            conn, s.duration, [s.experiment_id == experiment_id, root],
            out["root_spans"]["span_count"]))
        return out

    def _metric_summaries(self, conn: sa.Connection, experiment_id: str) -> list[dict[str, Any]]:
        m = metrics.c
        summaries = []
        for label, mtype, count, n_scores, mean, lo, hi, n_bools, n_true in conn.execute(
            sa.select(m.label, m.metric_type, sa.func.count(), sa.func.count(m.score_value),
                      sa.func.avg(m.score_value), sa.func.min(m.score_value),
                      sa.func.max(m.score_value), sa.func.count(m.boolean_value),
                      sa.func.sum(sa.case((m.boolean_value.is_(True), 1), else_=0)))
            .where(m.experiment_id == experiment_id)
            .group_by(m.label, m.metric_type).order_by(m.label, m.metric_type)
        ):
            item: dict[str, Any] = {"label": label, "metric_type": mtype, "count": count}
            where = [m.experiment_id == experiment_id, m.label == label, m.metric_type == mtype]
            if mtype == attr.METRIC_TYPE_SCORE:
                item.update(mean=None if mean is None else float(mean), min=lo, max=hi)
                item.update(_percentiles(conn, m.score_value, where, int(n_scores)))
            elif mtype == attr.METRIC_TYPE_BOOLEAN:
                counts = {"true": int(n_true or 0), "false": int(n_bools) - int(n_true or 0),
                          "null": int(count) - int(n_bools)}
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
        return out
