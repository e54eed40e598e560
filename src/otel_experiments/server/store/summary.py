"""An experiment's summary: the whole experiment's from the aggregates kept at ingest
(``store.aggregates``); the helpers below compute a filtered one in SQL (``store.grouped``),
with exact percentiles stepping through the matching rows in order (``LIMIT 2 OFFSET k``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from ..schema import experiments
from . import aggregates
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
    """Span statistics from one aggregate row (``store.grouped`` builds them so)."""
    count, errors = int(count or 0), int(errors or 0)
    return {
        "span_count": count,
        "error_count": errors,
        "error_rate": errors / count if count else None,
        "latency_ns": {"mean": None if mean is None else float(mean), "min": lo, "max": hi},
    }


class SummaryQueries(StoreBase):
    def summary(self, experiment_id: str) -> dict[str, Any]:
        """The whole experiment's summary: read from the aggregates ingest keeps (a few
        small reads at any size; percentiles within 1 %, see ``server.sketch``)."""
        with self._read() as conn:
            self._require(conn, experiments, experiment_id, "experiment")
            return aggregates.read_summary(conn, experiment_id)
