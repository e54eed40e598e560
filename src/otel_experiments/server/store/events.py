"""Experiment events: idempotent ingest, read-back and the SQL-aggregated summary."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg_dialect

from ... import attributes as attr
from ..jsonapi import dumps_str, loads
from ..schema import experiments, metrics, spans
from ..validation import id_value, name_value, valid_or
from .base import Page, StoreBase, now_iso

_ROOT_PARENTS = frozenset({"", "0", "undefined", "0000000000000000"})
SPAN_KEY = ("experiment_id", "span_id")
METRIC_KEY = ("experiment_id", "span_id", "metric_type", "label")


@dataclass(frozen=True)
class SpanRow:
    values: dict[str, Any]
    tags: Mapping[str, str]


@dataclass(frozen=True)
class IngestResult:
    experiment_id: str
    experiment_created: bool
    accepted_spans: int
    duplicate_spans: int
    accepted_metrics: int
    duplicate_metrics: int


def is_root_parent(parent_id: str | None) -> bool:
    return parent_id is None or parent_id in _ROOT_PARENTS


class EventQueries(StoreBase):
    # -- events -----------------------------------------------------------------------------

    def ingest(self, experiment_id: str, span_rows: list[SpanRow],
               metric_rows: list[dict[str, Any]]) -> IngestResult:
        result: IngestResult = self._retrying(self._ingest, experiment_id, span_rows, metric_rows)
        return result

    def _ingest(self, experiment_id: str, span_rows: list[SpanRow],
                metric_rows: list[dict[str, Any]]) -> IngestResult:
        # Sorted, deduplicated rows: concurrent writers lock unique keys in the same order.
        unique_spans = {s.values["span_id"]: s for s in reversed(span_rows)}
        ordered_spans = [unique_spans[k] for k in sorted(unique_spans)]
        unique_metrics = {
            (m["span_id"], m["metric_type"], m["label"]): m for m in reversed(metric_rows)
        }
        ordered_metrics = [unique_metrics[k] for k in sorted(unique_metrics)]
        name, slug = experiment_id, None
        for s in ordered_spans:
            if name == experiment_id:
                name = valid_or(name_value, s.tags.get(attr.EXPERIMENT_NAME)
                                 or s.tags.get("experiment_name"), name)
            if slug is None:
                slug = valid_or(id_value, s.tags.get(attr.EXPERIMENT_FEATURE_SLUG), None)
            if name != experiment_id and slug is not None:
                break
        now = now_iso()
        with self._write() as conn:
            created = conn.execute(
                self._insert(experiments)
                .values(id=experiment_id, name=name, description="", feature_slug=slug,
                        status="RUNNING", config="{}", metadata="{}", created_at=now,
                        updated_at=now)
                .on_conflict_do_nothing(index_elements=["id"])
                .returning(experiments.c.seq)
            ).first() is not None
            accepted_spans = 0
            if ordered_spans:
                rows = [{**s.values, "experiment_id": experiment_id, "received_at": now}
                        for s in ordered_spans]
                accepted_spans = self._insert_new(conn, spans, rows, SPAN_KEY)
            accepted_metrics = 0
            if ordered_metrics:
                rows = [{**m, "experiment_id": experiment_id} for m in ordered_metrics]
                accepted_metrics = self._insert_new(conn, metrics, rows, METRIC_KEY)
        return IngestResult(
            experiment_id, created, accepted_spans, len(span_rows) - accepted_spans,
            accepted_metrics, len(metric_rows) - accepted_metrics,
        )

    def _insert_new(self, conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]],
                    key: Sequence[str]) -> int:
        """``INSERT ... SELECT`` the rows from one JSON array parameter, skipping rows whose
        ``key`` exists (``ON CONFLICT DO NOTHING``); returns how many were inserted.

        One bound JSON document instead of thousands of bound values keeps the statement
        text constant and small (cached by the driver, cheap to parse) on both databases.
        """
        names = tuple(rows[0])
        stmt = self._bulk_statements.get((table.name, names))
        if stmt is None:
            stmt = self._bulk_statements[(table.name, names)] = self._bulk_insert(
                table, names, key)
        payload = dumps_str([[r[n] for n in names] for r in rows])
        return len(conn.execute(stmt, {"rows": payload}).all())

    def _bulk_insert(self, table: sa.Table, names: Sequence[str],
                     key: Sequence[str]) -> sa.Executable:
        payload = sa.bindparam("rows", type_=sa.Text)
        values: list[sa.ColumnElement[Any]]
        if self.sqlite:
            source = sa.func.json_each(payload).table_valued("value").alias("r")
            values = [sa.func.json_extract(source.c.value, f"$[{i}]") for i in range(len(names))]
        else:
            source = (sa.func.json_array_elements(sa.cast(payload, pg_dialect.JSON))
                      .table_valued("value").alias("r"))
            values = [sa.cast(source.c.value.op("->>")(i), table.c[n].type)
                      for i, n in enumerate(names)]
        # (SQLite needs the WHERE to tell the upsert clause from a join constraint.)
        select = sa.select(*values).select_from(source).where(sa.true())
        return (self._insert(table).from_select(list(names), select)
                .on_conflict_do_nothing(index_elements=list(key)).returning(table.c.seq))

    def list_events(self, experiment_id: str, filters: dict[str, str], size: int,
                    cursor: int) -> Page:
        s = spans.c
        query = (sa.select(s.seq, s.span_id, s.doc)
                 .where(s.experiment_id == experiment_id, s.seq > cursor))
        for key, value in filters.items():
            query = query.where(s[key] == value)
        with self._read() as conn:
            self._require(conn, experiments, experiment_id, "experiment")
            rows = conn.execute(query.order_by(s.seq).limit(size + 1)).all()
            page = self._page(rows, size)
            by_span: dict[str, list[Any]] = {}
            ids = [r["span_id"] for r in page.rows]
            if ids:
                for span_id, doc in conn.execute(
                    sa.select(metrics.c.span_id, metrics.c.doc)
                    .where(metrics.c.experiment_id == experiment_id, metrics.c.span_id.in_(ids))
                    .order_by(metrics.c.seq)
                ):
                    by_span.setdefault(span_id, []).append(loads(doc))
        out = []
        for r in page.rows:
            doc = loads(r["doc"])
            doc["metrics"] = by_span.get(r["span_id"], [])
            out.append({"seq": r["seq"], "span_id": r["span_id"], "doc": doc})
        return Page(out, page.next_cursor)

    # -- summary ----------------------------------------------------------------------------

    @staticmethod
    def _percentiles(conn: sa.Connection, column: sa.ColumnElement[Any],
                     where: Sequence[sa.ColumnElement[bool]], n: int,
                     ps: Sequence[float]) -> dict[str, float | None]:
        """Linear-interpolated percentiles (as ``percentile_cont``) read off an index."""
        out: dict[str, float | None] = {}
        for p in ps:
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

    def _span_stats(self, conn: sa.Connection,
                    where: list[sa.ColumnElement[bool]]) -> dict[str, Any]:
        s = spans.c
        row = conn.execute(
            sa.select(
                sa.func.count(),
                sa.func.coalesce(sa.func.sum(sa.case((s.status == "error", 1), else_=0)), 0),
                sa.func.avg(s.duration), sa.func.min(s.duration), sa.func.max(s.duration),
            ).where(*where)
        ).one()
        count, errors = int(row[0]), int(row[1])
        latency: dict[str, Any] = {
            "mean": None if row[2] is None else float(row[2]),
            "min": row[3], "max": row[4],
        }
        latency.update(self._percentiles(conn, s.duration, where, count, (0.5, 0.95)))
        return {
            "span_count": count,
            "error_count": errors,
            "error_rate": errors / count if count else None,
            "latency_ns": latency,
        }

    def summary(self, experiment_id: str) -> dict[str, Any]:
        s, m = spans.c, metrics.c
        with self._read() as conn:
            self._require(conn, experiments, experiment_id, "experiment")
            out = self._span_stats(conn, [s.experiment_id == experiment_id])
            out["root_spans"] = self._span_stats(
                conn, [s.experiment_id == experiment_id, s.is_root.is_(True)])
            summaries: dict[tuple[str, str], dict[str, Any]] = {}
            for label, mtype, count, n_scores, mean, lo, hi in conn.execute(
                sa.select(m.label, m.metric_type, sa.func.count(), sa.func.count(m.score_value),
                          sa.func.avg(m.score_value), sa.func.min(m.score_value),
                          sa.func.max(m.score_value))
                .where(m.experiment_id == experiment_id)
                .group_by(m.label, m.metric_type).order_by(m.label, m.metric_type)
            ):
                item: dict[str, Any] = {"label": label, "metric_type": mtype, "count": count}
                if mtype == attr.METRIC_TYPE_SCORE:
                    item.update(mean=None if mean is None else float(mean),
                                min=lo, max=hi)
                    item.update(self._percentiles(
                        conn, m.score_value,
                        [m.experiment_id == experiment_id, m.label == label,
                         m.metric_type == mtype],
                        int(n_scores), (0.5, 0.95)))
                else:
                    item["value_counts"] = {}
                summaries[(label, mtype)] = item
            for (label, mtype), item in summaries.items():
                if mtype == attr.METRIC_TYPE_SCORE:
                    continue
                column = (m.boolean_value if mtype == attr.METRIC_TYPE_BOOLEAN
                          else m.categorical_value)
                counts = item["value_counts"]
                for value, count in conn.execute(
                    sa.select(column, sa.func.count())
                    .where(m.experiment_id == experiment_id, m.label == label,
                           m.metric_type == mtype)
                    .group_by(column).order_by(sa.func.count().desc())
                ):
                    if isinstance(value, bool) or mtype == attr.METRIC_TYPE_BOOLEAN:
                        key = "null" if value is None else ("true" if value else "false")
                    else:
                        key = "null" if value is None else str(value)
                    counts[key] = counts.get(key, 0) + int(count)
            out["metrics"] = list(summaries.values())
        return out
