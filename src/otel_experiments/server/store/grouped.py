"""Filtered and grouped summaries: one experiment's units split by span name, user or org.

The plain summary (:mod:`.summary`) reads covering indexes of the whole experiment. When a
request filters spans (user, organization, status, span name, time range) or groups the
units (``group_by=name`` for variants inside one experiment, ``user_id``,
``organization_id``), the same statistics are computed over the matching spans:

* span statistics over the matching spans, unit statistics over the matching units;
* metrics of the matching units' traces (a metric recorded on any span of a request
  belongs to that request's unit), so a group's metrics are those of its units.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import sqlalchemy as sa

from ... import attributes as attr
from ..schema import experiments, metrics, spans
from ..usage import usage_document
from .base import StoreBase
from .summary import _percentiles, _stats

#: What units can be grouped by: API name -> spans column.
GROUP_COLUMNS: Final = {"name": "name", "user_id": "user_id", "organization_id": "organization_id"}
#: At most this many groups are returned (largest first); the rest are counted.
MAX_GROUPS: Final = 100


@dataclass(frozen=True)
class SpanFilters:
    """Which spans a read covers; ``None`` fields do not filter."""

    user_id: str | None = None
    organization_id: str | None = None
    status: str | None = None
    name: str | None = None
    start_after_ns: int | None = None
    start_before_ns: int | None = None

    def clauses(self) -> list[sa.ColumnElement[bool]]:
        s = spans.c
        out: list[sa.ColumnElement[bool]] = []
        for column in ("user_id", "organization_id", "status", "name"):
            value = getattr(self, column)
            if value is not None:
                out.append(s[column] == value)
        if self.start_after_ns is not None:
            out.append(s.start_ns >= self.start_after_ns)
        if self.start_before_ns is not None:
            out.append(s.start_ns < self.start_before_ns)
        return out

    def __bool__(self) -> bool:
        return any(v is not None for v in vars(self).values())


class GroupedSummaryQueries(StoreBase):
    def summary_of(self, experiment_id: str, filters: SpanFilters,
                   group_by: str | None = None) -> dict[str, Any]:
        """The summary of the spans ``filters`` select, per group when ``group_by`` is set."""
        base = [spans.c.experiment_id == experiment_id, *filters.clauses()]
        with self._read() as conn:
            self._require(conn, experiments, experiment_id, "experiment")
            out = self._summary_where(conn, experiment_id, base)
            if group_by is not None:
                out["group_by"] = group_by
                out["groups"], out["groups_omitted"] = self._groups(
                    conn, experiment_id, base, GROUP_COLUMNS[group_by])
        return out

    def _groups(self, conn: sa.Connection, experiment_id: str,
                base: list[sa.ColumnElement[bool]], column: str
                ) -> tuple[list[dict[str, Any]], int]:
        s = spans.c
        key = s[column]
        rows = conn.execute(
            sa.select(key, sa.func.count()).where(*base, s.is_root.is_(True))
            .group_by(key).order_by(sa.func.count().desc(), key)
        ).all()
        groups = []
        for value, _count in rows[:MAX_GROUPS]:
            where = [*base, key.is_(None) if value is None else key == value]
            item = {"key": value}
            item.update(self._summary_where(conn, experiment_id, where))
            groups.append(item)
        return groups, max(0, len(rows) - MAX_GROUPS)

    def _summary_where(self, conn: sa.Connection, experiment_id: str,
                       where: list[sa.ColumnElement[bool]]) -> dict[str, Any]:
        s = spans.c
        root = s.is_root.is_(True)
        out = self._stats_where(conn, where)
        out["root_spans"] = self._stats_where(conn, [*where, root])
        unit_traces = sa.select(s.trace_id).where(*where, root)
        out["metrics"] = self._metrics_where(
            conn, [metrics.c.experiment_id == experiment_id, metrics.c.trace_id.in_(unit_traces)])
        out["usage"] = usage_document(conn.execute(
            sa.select(s.model, sa.func.sum(s.input_tokens), sa.func.sum(s.output_tokens),
                      sa.func.count())
            .where(*where, sa.or_(s.input_tokens.is_not(None), s.output_tokens.is_not(None)))
            .group_by(s.model)).all())
        return out

    def _stats_where(self, conn: sa.Connection,
                     where: list[sa.ColumnElement[bool]]) -> dict[str, Any]:
        s = spans.c
        row = conn.execute(sa.select(
            sa.func.count(), sa.func.sum(sa.case((s.status == "error", 1), else_=0)),
            sa.func.avg(s.duration), sa.func.min(s.duration), sa.func.max(s.duration),
        ).where(*where)).one()
        out = _stats(*row)
        out["latency_ns"].update(_percentiles(conn, s.duration, where, out["span_count"]))
        return out

    def _metrics_where(self, conn: sa.Connection,
                       where: list[sa.ColumnElement[bool]]) -> list[dict[str, Any]]:
        m = metrics.c
        out = []
        for label, mtype, count, n_scores, mean, lo, hi in conn.execute(
            sa.select(m.label, m.metric_type, sa.func.count(), sa.func.count(m.score_value),
                      sa.func.avg(m.score_value), sa.func.min(m.score_value),
                      sa.func.max(m.score_value))
            .where(*where).group_by(m.label, m.metric_type).order_by(m.label, m.metric_type)
        ):
            item: dict[str, Any] = {"label": label, "metric_type": mtype, "count": count}
            these = [*where, m.label == label, m.metric_type == mtype]
            if mtype == attr.METRIC_TYPE_SCORE:
                item.update(mean=None if mean is None else float(mean), min=lo, max=hi)
                item.update(_percentiles(conn, m.score_value, these, int(n_scores)))
            else:
                column = m.boolean_value if mtype == attr.METRIC_TYPE_BOOLEAN else m.categorical_value
                counts: dict[str, int] = {}
                for value, n in conn.execute(
                    sa.select(column, sa.func.count()).where(*these)
                    .group_by(column).order_by(sa.func.count().desc())
                ):
                    if mtype == attr.METRIC_TYPE_BOOLEAN:
                        name = "null" if value is None else ("true" if value else "false")
                    else:
                        name = "null" if value is None else str(value)
                    counts[name] = counts.get(name, 0) + int(n)
                item["value_counts"] = counts
            out.append(item)
        return out
