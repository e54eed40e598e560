"""Storage: every query the server runs, through SQLAlchemy Core (SQLite and PostgreSQL).

All SQL is built with Core expressions and bound parameters. Writes that must be
idempotent (spans, metrics, auto-created experiments, projects by name) use
``INSERT ... ON CONFLICT DO NOTHING`` against unique constraints, so deduplication holds
across any number of server processes sharing one database.
"""

from __future__ import annotations

import base64
import math
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect

from .. import attributes as attr
from .db import WRITE, is_sqlite
from .jsonapi import ApiError, dumps_str, loads
from .schema import dataset_records, datasets, experiments, metrics, projects, spans
from .validation import id_value, name_value, valid_or

EXPERIMENT_STATUSES = frozenset(
    {"PENDING", "RUNNING", "EVALUATING", "COMPLETED", "FAILED", "CANCELLED"}
)
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
_ROOT_PARENTS = frozenset({"", "0", "undefined", "0000000000000000"})
SPAN_KEY = ("experiment_id", "span_id")
METRIC_KEY = ("experiment_id", "span_id", "metric_type", "label")
_RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})  # serialization failure, deadlock


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(str(seq).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    if cursor is None or cursor == "":
        return 0
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        seq = int(raw)
        if not 0 <= seq < 2**63:
            raise ValueError
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "invalid page[cursor]", parameter="page[cursor]") from None
    return seq


@dataclass(frozen=True)
class Page:
    rows: list[dict[str, Any]]
    next_cursor: str | None


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


def tag_map(tags: object) -> dict[str, str]:
    """``["k:v", ...]`` -> ``{k: v}`` (first occurrence wins)."""
    out: dict[str, str] = {}
    if isinstance(tags, list):
        for tag in tags:
            if isinstance(tag, str):
                key, sep, value = tag.partition(":")
                if sep and key not in out:
                    out[key] = value
    return out


class Store:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.sqlite = is_sqlite(engine)
        # SQLite has one writer at a time: queue writers in-process rather than busy-wait.
        self._write_lock: AbstractContextManager[Any] = (
            threading.Lock() if self.sqlite else nullcontext()
        )
        self._insert = sqlite_dialect.insert if self.sqlite else pg_dialect.insert
        self._bulk_statements: dict[tuple[str, tuple[str, ...]], sa.Executable] = {}

    # -- plumbing -------------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        with (
            self._write_lock,
            self.engine.connect().execution_options(**WRITE) as conn,
            conn.begin(),
        ):
            yield conn

    @contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    def _retrying(self, fn: Any, *args: Any) -> Any:
        """Run a write transaction, retrying PostgreSQL deadlocks / serialization failures."""
        for attempt in range(5):
            try:
                return fn(*args)
            except sa.exc.DBAPIError as exc:
                state = getattr(exc.orig, "sqlstate", None)
                if state not in _RETRYABLE_SQLSTATES or attempt == 4:
                    raise
                time.sleep(0.01 * 2**attempt)
        raise AssertionError("unreachable")

    def ping(self) -> None:
        with self._read() as conn:
            conn.execute(sa.select(1))

    @staticmethod
    def _page(rows: Sequence[sa.Row[Any, Any, Any]], size: int) -> Page:
        out = [dict(r._mapping) for r in rows[:size]]
        next_cursor = encode_cursor(out[-1]["seq"]) if len(rows) > size and out else None
        return Page(out, next_cursor)

    # -- projects ---------------------------------------------------------------------------

    def create_project(self, name: str, description: str) -> tuple[dict[str, Any], bool]:
        """Get-or-create by name (project names are unique); returns (row, created)."""
        now = now_iso()
        with self._write() as conn:
            inserted = conn.execute(
                self._insert(projects)
                .values(id=new_id("proj"), name=name, description=description,
                        created_at=now, updated_at=now)
                .on_conflict_do_nothing(index_elements=["name"])
                .returning(*projects.c)
            ).first()
            if inserted is not None:
                return dict(inserted._mapping), True
            row = conn.execute(sa.select(projects).where(projects.c.name == name)).one()
            return dict(row._mapping), False

    def list_projects(self, size: int, cursor: int) -> Page:
        with self._read() as conn:
            rows = conn.execute(
                sa.select(projects).where(projects.c.seq > cursor)
                .order_by(projects.c.seq).limit(size + 1)
            ).all()
        return self._page(rows, size)

    def get_project(self, project_id: str) -> dict[str, Any] | None:
        with self._read() as conn:
            row = conn.execute(sa.select(projects).where(projects.c.id == project_id)).first()
        return None if row is None else dict(row._mapping)

    def _require(self, conn: sa.Connection, table: sa.Table, id_: str, what: str,
                 ptr: str | None = None) -> dict[str, Any]:
        row = conn.execute(sa.select(table).where(table.c.id == id_)).first()
        if row is None:
            raise ApiError(404, f"{what} {id_!r} not found", ptr)
        return dict(row._mapping)

    # -- datasets ---------------------------------------------------------------------------

    def create_dataset(self, project_id: str | None, name: str, description: str,
                       metadata: dict[str, Any]) -> dict[str, Any]:
        now = now_iso()
        with self._write() as conn:
            if project_id is not None:
                self._require(conn, projects, project_id, "project", "/data/attributes/project_id")
            row = conn.execute(
                datasets.insert().values(
                    id=new_id("ds"), project_id=project_id, name=name, description=description,
                    metadata=dumps_str(metadata), current_version=0, created_at=now,
                    updated_at=now,
                ).returning(*datasets.c)
            ).one()
        return dict(row._mapping)

    def list_datasets(self, project_id: str | None, size: int, cursor: int) -> Page:
        query = sa.select(datasets).where(datasets.c.seq > cursor)
        if project_id is not None:
            query = query.where(datasets.c.project_id == project_id)
        with self._read() as conn:
            rows = conn.execute(query.order_by(datasets.c.seq).limit(size + 1)).all()
        return self._page(rows, size)

    def get_dataset(self, dataset_id: str) -> dict[str, Any] | None:
        with self._read() as conn:
            row = conn.execute(sa.select(datasets).where(datasets.c.id == dataset_id)).first()
            if row is None:
                return None
            out = dict(row._mapping)
            out["record_count"] = conn.execute(
                sa.select(sa.func.count()).select_from(dataset_records).where(
                    dataset_records.c.dataset_id == dataset_id,
                    dataset_records.c.version_removed.is_(None),
                )
            ).scalar_one()
        return out

    @staticmethod
    def _live(dataset_id: str, version: int | None = None) -> sa.ColumnElement[bool]:
        r = dataset_records.c
        if version is None:
            return sa.and_(r.dataset_id == dataset_id, r.version_removed.is_(None))
        return sa.and_(
            r.dataset_id == dataset_id,
            r.version_added <= version,
            sa.or_(r.version_removed.is_(None), r.version_removed > version),
        )

    def _bump_version(self, conn: sa.Connection, dataset_id: str) -> int:
        version = conn.execute(
            datasets.update().where(datasets.c.id == dataset_id)
            .values(current_version=datasets.c.current_version + 1, updated_at=now_iso())
            .returning(datasets.c.current_version)
        ).scalar()
        if version is None:
            raise ApiError(404, f"dataset {dataset_id!r} not found")
        return int(version)

    def add_records(self, dataset_id: str, records: list[dict[str, Any]]) -> tuple[int, list[dict[str, Any]]]:
        """Insert records as a new dataset version; ``records`` hold JSON-ready values."""
        now = now_iso()
        with self._write() as conn:
            version = self._bump_version(conn, dataset_id)
            ids = [r["record_id"] for r in records]
            existing = set(conn.execute(
                sa.select(dataset_records.c.record_id).where(
                    self._live(dataset_id), dataset_records.c.record_id.in_(ids)
                )
            ).scalars())
            for i, rid in enumerate(ids):
                if rid in existing or rid in ids[:i]:
                    raise ApiError(409, f"record {rid!r} already exists in the dataset",
                                   f"/data/{i}/id")
            rows = [
                {
                    "dataset_id": dataset_id, "record_id": r["record_id"], "version_added": version,
                    "version_removed": None, "input": dumps_str(r["input"]),
                    "expected_output": dumps_str(r["expected_output"]),
                    "metadata": dumps_str(r["metadata"]), "tags": dumps_str(r["tags"]),
                    "created_at": now,
                }
                for r in records
            ]
            conn.execute(dataset_records.insert(), rows)
        return version, rows

    def list_records(self, dataset_id: str, version: int | None, size: int,
                     cursor: int) -> tuple[int, Page]:
        with self._read() as conn:
            ds = self._require(conn, datasets, dataset_id, "dataset")
            current = int(ds["current_version"])
            if version is not None and version > current:
                raise ApiError(404, f"dataset {dataset_id!r} has no version {version}",
                               parameter="version")
            v = current if version is None else version
            rows = conn.execute(
                sa.select(dataset_records)
                .where(self._live(dataset_id, v), dataset_records.c.seq > cursor)
                .order_by(dataset_records.c.seq).limit(size + 1)
            ).all()
        return v, self._page(rows, size)

    def update_record(self, dataset_id: str, record_id: str,
                      changes: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._write() as conn:
            self._require(conn, datasets, dataset_id, "dataset")
            old = conn.execute(
                sa.select(dataset_records).where(
                    self._live(dataset_id), dataset_records.c.record_id == record_id)
            ).first()
            if old is None:
                raise ApiError(404, f"record {record_id!r} not found in dataset {dataset_id!r}")
            version = self._bump_version(conn, dataset_id)
            conn.execute(dataset_records.update()
                         .where(dataset_records.c.seq == old.seq).values(version_removed=version))
            row = {k: v for k, v in old._mapping.items() if k != "seq"}
            row.update({k: dumps_str(v) for k, v in changes.items()})
            row.update(version_added=version, version_removed=None, created_at=now_iso())
            conn.execute(dataset_records.insert().values(**row))
        return version, row

    def delete_record(self, dataset_id: str, record_id: str) -> int:
        with self._write() as conn:
            self._require(conn, datasets, dataset_id, "dataset")
            old = conn.execute(
                sa.select(dataset_records.c.seq).where(
                    self._live(dataset_id), dataset_records.c.record_id == record_id)
            ).first()
            if old is None:
                raise ApiError(404, f"record {record_id!r} not found in dataset {dataset_id!r}")
            version = self._bump_version(conn, dataset_id)
            conn.execute(dataset_records.update()
                         .where(dataset_records.c.seq == old.seq).values(version_removed=version))
        return version

    # -- experiments ------------------------------------------------------------------------

    def create_experiment(self, values: dict[str, Any]) -> dict[str, Any]:
        now = now_iso()
        with self._write() as conn:
            if values.get("project_id") is not None:
                self._require(conn, projects, values["project_id"], "project",
                              "/data/attributes/project_id")
            if values.get("dataset_id") is not None:
                ds = self._require(conn, datasets, values["dataset_id"], "dataset",
                                   "/data/attributes/dataset_id")
                if values.get("dataset_version") is None:
                    values["dataset_version"] = ds["current_version"]
            values = {**values, "config": dumps_str(values["config"]),
                      "metadata": dumps_str(values["metadata"])}
            row = conn.execute(
                self._insert(experiments)
                .values(**values, created_at=now, updated_at=now)
                .on_conflict_do_nothing(index_elements=["id"])
                .returning(*experiments.c)
            ).first()
            if row is None:
                raise ApiError(409, f"experiment {values['id']!r} already exists", "/data/id")
        return dict(row._mapping)

    def list_experiments(self, filters: dict[str, str], size: int, cursor: int) -> Page:
        e = experiments.c
        query = sa.select(experiments).where(e.seq > cursor)
        for key, value in filters.items():
            query = query.where(e[key] == value)
        with self._read() as conn:
            rows = conn.execute(query.order_by(e.seq).limit(size + 1)).all()
        return self._page(rows, size)

    def get_experiment(self, experiment_id: str) -> dict[str, Any] | None:
        with self._read() as conn:
            row = conn.execute(
                sa.select(experiments).where(experiments.c.id == experiment_id)).first()
        return None if row is None else dict(row._mapping)

    def update_experiment(self, experiment_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        values = {k: dumps_str(v) if k in ("config", "metadata") else v for k, v in changes.items()}
        with self._write() as conn:
            row = conn.execute(
                experiments.update().where(experiments.c.id == experiment_id)
                .values(**values, updated_at=now_iso()).returning(*experiments.c)
            ).first()
        if row is None:
            raise ApiError(404, f"experiment {experiment_id!r} not found")
        return dict(row._mapping)

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


def is_root_parent(parent_id: str | None) -> bool:
    return parent_id is None or parent_id in _ROOT_PARENTS
