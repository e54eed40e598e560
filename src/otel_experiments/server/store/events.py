"""Experiment events: idempotent ingest (group commit on SQLite) and read-back."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter
from typing import Any

import sqlalchemy as sa

from ..jsonapi import loads
from ..schema import experiments, metrics, spans
from ..validation import id_value, name_value, valid_or
from . import aggregates
from .base import Page, StoreBase, now_iso
from .columns import METRIC_COLUMNS, SPAN_COLUMNS, span_document
from .pg_arrays import UnnestColumns

_ROOT_PARENTS = frozenset({"", "0", "undefined", "0000000000000000"})

MetricRow = tuple[Any, ...]
_EXPERIMENT_COLUMNS = ("id", "name", "description", "feature_slug", "status", "config",
                       "metadata", "created_at", "updated_at")
#: Per table: the inserted columns (a full row's order) and the unique key deduplicating it.
_INSERTS = {
    "spans": (("experiment_id", "received_at", *SPAN_COLUMNS), ("experiment_id", "span_id")),
    "metrics": (("experiment_id", *METRIC_COLUMNS),
                ("experiment_id", "span_id", "metric_type", "label")),
}


@dataclass(slots=True)
class SpanRow:
    """A span's column values, plus the raw experiment name / feature slug tags it carries
    (validated only when the ingest auto-creates the experiment)."""

    values: tuple[Any, ...]
    experiment_name: str | None = None
    feature_slug: str | None = None


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


def _metric_from_columns(row: Any) -> dict[str, Any]:
    """A metric stored without ``doc`` (its columns hold it exactly: ``ingest._metric_doc``),
    rebuilt with the members in the order the exporter sends them."""
    value_key = f"{row.metric_type}_value"
    return {"span_id": row.span_id, "trace_id": row.trace_id, "metric_type": row.metric_type,
            "label": row.label, value_key: row._mapping[value_key],
            "timestamp_ms": row.timestamp_ms}


def metric_docs(conn: sa.Connection, experiment_id: str,
                span_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """The metric documents of ``span_ids`` (in the order stored), by span id."""
    by_span: dict[str, list[dict[str, Any]]] = {}
    if not span_ids:
        return by_span
    m = metrics.c
    for row in conn.execute(
        sa.select(m.doc, m.span_id, m.trace_id, m.metric_type, m.label, m.score_value,
                  m.categorical_value, m.boolean_value, m.timestamp_ms)
        .where(m.experiment_id == experiment_id, m.span_id.in_(span_ids))
        .order_by(m.seq)
    ):
        by_span.setdefault(row.span_id, []).append(
            _metric_from_columns(row) if row.doc is None else loads(row.doc))
    return by_span


def _new_rows(rows: list[tuple[Any, ...]], stored: set[Any] | None,
              key: Any) -> list[tuple[Any, ...]]:
    """The rows just stored: all (``stored`` is ``None``), else the first row of each key in
    ``stored`` (the first of a repeated key is the one an insert keeps)."""
    if stored is None:
        return rows
    out = []
    for row in rows:
        k = key(row)
        if k in stored:
            stored.discard(k)
            out.append(row)
    return out


def _experiment_hints(experiment_id: str, span_rows: list[SpanRow]) -> tuple[str, str | None]:
    """Name and feature slug for an auto-created experiment: the first valid ones sent."""
    name, slug = experiment_id, None
    for row in span_rows:
        if name == experiment_id and row.experiment_name is not None:
            name = valid_or(name_value, row.experiment_name, name)
        if slug is None and row.feature_slug is not None:
            slug = valid_or(id_value, row.feature_slug, None)
        if name != experiment_id and slug is not None:
            break
    return name, slug


#: Rows per SQLite INSERT statement (at 14 columns, 3584 parameters: below the 32766 that
#: SQLite allows by default since 3.32).
SQLITE_ROWS_PER_INSERT = 256
#: A group commit takes queued requests up to this many rows (at least one request).
GROUP_COMMIT_ROWS = 20_000


@dataclass(slots=True)
class _Job:
    """One ingest request waiting for (or done by) a group commit."""

    experiment_id: str
    span_rows: list[SpanRow]
    metric_rows: list[MetricRow]
    result: IngestResult | None = None
    error: BaseException | None = None


class EventQueries(StoreBase):
    # -- events -----------------------------------------------------------------------------

    def ingest(self, experiment_id: str, span_rows: list[SpanRow],
               metric_rows: list[MetricRow]) -> IngestResult:
        """Store the rows; a span already stored under (experiment, span id), or a metric
        under (experiment, span id, type, label), is a duplicate (the first one sent wins).

        PostgreSQL: one transaction per request (the database commits concurrent ones
        together). SQLite has one writer at a time, so requests that queue up while a
        transaction runs are stored together by the next writer, in one transaction
        (group commit): every page a commit writes to the WAL (index pages above all) is
        written once for all of them instead of once per request. Each request still gets
        its own counts, and answers only after the commit that holds its rows.
        """
        if not self.sqlite:
            result: IngestResult = self._retrying(self._ingest_alone, experiment_id,
                                                  span_rows, metric_rows)
            return result
        job = _Job(experiment_id, span_rows, metric_rows)
        with self._queue_lock:
            self._queue.append(job)
        with self._write_lock:
            while job.result is None and job.error is None:  # not stored by another writer
                self._group_commit(self._take_jobs())  # (FIFO: the oldest jobs first)
        if job.error is not None:
            raise job.error
        assert job.result is not None
        return job.result

    def ingest_now(self, experiment_id: str, span_rows: list[SpanRow],
                   metric_rows: list[MetricRow]) -> IngestResult | None:
        """SQLite: :meth:`ingest` at once in this thread if no other writer is busy, else
        ``None`` (then call :meth:`ingest` from a thread that may wait its turn). For small
        requests on the event loop thread, which must never wait for a lock."""
        lock = self._sqlite_lock
        if lock is None or not lock.acquire(blocking=False):
            return None
        try:
            return self._ingest_alone(experiment_id, span_rows, metric_rows)
        finally:
            lock.release()

    def _take_jobs(self) -> list[_Job]:
        with self._queue_lock:
            rows = 0
            for n, job in enumerate(self._queue):
                rows += len(job.span_rows) + len(job.metric_rows)
                if n and rows > GROUP_COMMIT_ROWS:
                    break
            else:
                n = len(self._queue)
            jobs, self._queue[:n] = self._queue[:n], []
        return jobs

    def _group_commit(self, jobs: list[_Job]) -> None:
        """Store ``jobs`` in one transaction; if it fails, each in its own, so that only a
        failing request fails."""
        try:
            with self._driver_transaction() as cursor:
                stored = [self._store_rows(cursor, j.experiment_id, j.span_rows, j.metric_rows)
                          for j in jobs]
                # The aggregates of every request of one experiment in one set of upserts:
                # they are additive, and each set costs several statements (at batch 1,
                # most of a request's SQL).
                new: dict[str, tuple[list[tuple[Any, ...]], list[MetricRow]]] = {}
                for job, (_, new_spans, new_metrics) in zip(jobs, stored, strict=True):
                    spans_of, metrics_of = new.setdefault(job.experiment_id, ([], []))
                    spans_of += new_spans
                    metrics_of += new_metrics
                for experiment_id, (new_spans, new_metrics) in new.items():
                    aggregates.add_rows(cursor, True, experiment_id, new_spans, new_metrics)
            results = [result for result, _, _ in stored]
        except Exception as exc:
            if len(jobs) == 1:
                jobs[0].error = exc
                return
            for job in jobs:
                try:
                    job.result = self._ingest_alone(job.experiment_id, job.span_rows,
                                                    job.metric_rows)
                except Exception as exc:
                    job.error = exc
            return
        for job, result in zip(jobs, results, strict=True):
            job.result = result

    def _ingest_alone(self, experiment_id: str, span_rows: list[SpanRow],
                      metric_rows: list[MetricRow]) -> IngestResult:
        with self._driver_transaction() as cursor:
            result, new_spans, new_metrics = self._store_rows(cursor, experiment_id, span_rows,
                                                              metric_rows)
            aggregates.add_rows(cursor, self.sqlite, experiment_id, new_spans, new_metrics)
            return result

    @contextmanager
    def _driver_transaction(self) -> Iterator[Any]:
        """An ingest's write transaction, as a cursor of the driver's own connection: the
        statements of an ingest go through it (SQLAlchemy's per-statement handling, result
        objects and events, cost more than the statements themselves at small batches).
        SQLite: ``BEGIN IMMEDIATE`` / ``COMMIT`` issued here on the writer's connection
        (callers hold the write lock), without SQLAlchemy's transaction and its events: at
        one span per request those took about a third of the ingest's time."""
        if not self.sqlite:
            with self._transaction() as conn:
                cursor = conn.connection.cursor()
                try:
                    yield cursor
                finally:
                    cursor.close()
            return
        pooled = self._writer.raw_connection()
        try:
            cursor = pooled.cursor()
            try:
                cursor.execute("BEGIN IMMEDIATE")
                try:
                    yield cursor
                except BaseException:
                    # (after some errors SQLite has rolled the transaction back itself)
                    if getattr(pooled.driver_connection, "in_transaction", True):
                        cursor.execute("ROLLBACK")
                    raise
                cursor.execute("COMMIT")
            finally:
                cursor.close()
        finally:
            pooled.close()  # (back to the pool)

    def _store_rows(self, cursor: Any, experiment_id: str, span_rows: list[SpanRow],
                    metric_rows: list[MetricRow]
                    ) -> tuple[IngestResult, list[tuple[Any, ...]], list[MetricRow]]:
        """Insert one request's rows: its counts, and the span and metric rows it newly
        stored (for the aggregates, which the caller adds in the same transaction)."""
        now = now_iso()
        mark = "?" if self.sqlite else "%s"
        # Most requests add to an experiment that exists: one lookup, not an insert.
        cursor.execute(f"SELECT 1 FROM experiments WHERE id = {mark}", (experiment_id,))
        created = False
        if cursor.fetchone() is None:
            name, slug = _experiment_hints(experiment_id, span_rows)
            cursor.execute(
                f"INSERT INTO experiments ({', '.join(_EXPERIMENT_COLUMNS)}) VALUES "
                f"({', '.join([mark] * len(_EXPERIMENT_COLUMNS))}) ON CONFLICT (id) DO NOTHING "
                "RETURNING seq",
                (experiment_id, name, "", slug, "RUNNING", "{}", "{}", now, now))
            created = cursor.fetchone() is not None  # (another writer may have just made it)
        accepted_spans = accepted_metrics = 0
        new_spans: list[tuple[Any, ...]] = []
        new_metrics: list[MetricRow] = []
        if span_rows:
            values = [r.values for r in span_rows]
            accepted_spans, stored = self._insert_new(cursor, spans, (experiment_id, now),
                                                      values)
            new_spans = _new_rows(values, stored, itemgetter(0))
        if metric_rows:
            accepted_metrics, stored = self._insert_new(cursor, metrics, (experiment_id,),
                                                        metric_rows)
            new_metrics = _new_rows(metric_rows, stored, itemgetter(0, 2, 3))
        return IngestResult(
            experiment_id, created, accepted_spans, len(span_rows) - accepted_spans,
            accepted_metrics, len(metric_rows) - accepted_metrics,
        ), new_spans, new_metrics

    def _insert_new(self, cursor: Any, table: sa.Table, head: tuple[Any, ...],
                    rows: list[tuple[Any, ...]]) -> tuple[int, set[Any] | None]:
        """Insert ``head + row`` for each of ``rows`` (:data:`_INSERTS` column order; ``head``
        holds the per-request columns) skipping any whose unique key is stored already or
        earlier in ``rows``. Returns how many were inserted and which: ``None`` when every
        row was (the common case, known from the count alone), else the set of the inserted
        rows' keys (the unique key after ``experiment_id``: a span id, or a metric's
        ``(span id, type, label)``), so that aggregates add new rows only.

        SQLite: multi-row ``INSERT ... VALUES (..), (..) ON CONFLICT DO NOTHING`` of up to
        ``SQLITE_ROWS_PER_INSERT`` rows each, ``head`` bound once as ``?1``, ``?2``. Not
        ``executemany``: the ``sqlite3`` module releases and retakes the GIL around every
        statement step, once per row there, and with the event loop thread busy parsing the
        next body every retake can wait for the interpreter's switch interval.
        PostgreSQL: one ``INSERT ... SELECT FROM unnest(<one array per column>) ... RETURNING
        <key>`` (each array one literal: ``pg_arrays``), so the server plans once and parses
        plain arrays, and rows are sorted by
        their unique key first so that concurrent writers lock keys in the same order (no
        deadlocks).
        """
        columns, key = _INSERTS[table.name]
        fixed = len(head)
        if self.sqlite:
            inserted = self._insert_values(cursor, table.name, columns, key, head, rows)
            if inserted == len(rows) or not inserted:
                return inserted, None if inserted else set()
            # The rows inserted took consecutive ``seq`` values ending at the last one
            # inserted (SQLite's next rowid is the largest plus one, and this transaction is
            # the only writer): read back only when some row was a duplicate.
            cursor.execute("SELECT last_insert_rowid()")
            last = cursor.fetchone()[0]
            cursor.execute(f"SELECT {', '.join(key[1:])} FROM {table.name} WHERE seq > ?",
                           (last - inserted,))
            return inserted, {r[0] if len(r) == 1 else tuple(r) for r in cursor.fetchall()}
        found = self._pg_inserts.get(table.name)
        if found is None:
            unnest = UnnestColumns(table, columns[fixed:], self.engine.dialect)
            found = self._pg_inserts[table.name] = (
                f"INSERT INTO {table.name} ({', '.join(columns)}) SELECT "
                f"{', '.join(['%s'] * fixed)}, u.* FROM unnest({unnest.sql}) AS u "
                f"ON CONFLICT ({', '.join(key)}) DO NOTHING RETURNING {', '.join(key[1:])}",
                unnest)
        sql, unnest = found
        rows = sorted(rows, key=itemgetter(*(columns.index(c) - fixed for c in key[1:])))
        params = (*head, *unnest.literals(rows))
        cursor.execute(sql, params)
        keys = [r[0] if len(r) == 1 else tuple(r) for r in cursor.fetchall()]
        return len(keys), (None if len(keys) == len(rows) else set(keys))

    def list_events(self, experiment_id: str, filters: dict[str, str], size: int,
                    cursor: int) -> Page:
        s = spans.c
        query = (sa.select(s.seq, s.span_id, s.doc, s.trace_id, s.parent_id, s.name, s.start_ns,
                           s.duration, s.status)
                 .where(s.experiment_id == experiment_id, s.seq > cursor))
        for key, value in filters.items():
            if key == "status":  # 'ok' or 'error' (checked by the route)
                # A literal, not a bound parameter: the planner can then prove
                # ``status = 'error'`` and page through the errors' partial index.
                query = query.where(s.status == sa.literal(value, literal_execute=True))
            elif key == "start_after":  # nanoseconds (checked by the route)
                query = query.where(s.start_ns >= int(value))
            elif key == "start_before":
                query = query.where(s.start_ns < int(value))
            else:
                query = query.where(s[key] == value)
        with self._read() as conn:
            self._require(conn, experiments, experiment_id, "experiment")
            rows = conn.execute(query.order_by(s.seq).limit(size + 1)).all()
            page = self._page(rows, size)
            by_span = metric_docs(conn, experiment_id, [r["span_id"] for r in page.rows])
        out = []
        for r in page.rows:
            doc = span_document(loads(r["doc"]), r["trace_id"], r["span_id"], r["parent_id"],
                                r["name"], r["start_ns"], r["duration"], r["status"])
            doc["metrics"] = by_span.get(r["span_id"], [])
            out.append({"seq": r["seq"], "span_id": r["span_id"], "doc": doc})
        return Page(out, page.next_cursor)

    def _insert_values(self, cursor: Any, table: str, columns: Sequence[str],
                       key: Sequence[str], head: tuple[Any, ...],
                       rows: list[tuple[Any, ...]]) -> int:
        """SQLite: ``rows`` in chunks of ``SQLITE_ROWS_PER_INSERT`` rows, then of descending
        powers of two, so that a few statement texts serve every batch size (the driver
        caches the prepared statements)."""
        inserted, i, n = 0, 0, len(rows)
        fixed, width = len(head), len(columns) - len(head)
        while i < n:
            size = min(SQLITE_ROWS_PER_INSERT, 1 << ((n - i).bit_length() - 1))
            sql = self._sql.get((table, size))
            if sql is None:
                shared = [f"?{k + 1}" for k in range(fixed)]
                values = ", ".join(
                    "(" + ", ".join(shared + [f"?{fixed + r * width + k + 1}"
                                              for k in range(width)]) + ")"
                    for r in range(size))
                sql = self._sql[(table, size)] = (
                    f"INSERT INTO {table} ({', '.join(columns)}) VALUES {values} "
                    f"ON CONFLICT ({', '.join(key)}) DO NOTHING")
            params = head + tuple(chain.from_iterable(rows[i:i + size]))
            cursor.execute(sql, params)
            inserted += cursor.rowcount
            i += size
        return inserted
