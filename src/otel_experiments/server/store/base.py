"""Storage plumbing shared by every query: transactions, pagination, ids.

All SQL is built with SQLAlchemy Core expressions and bound parameters. Writes that must be
idempotent (spans, metrics, auto-created experiments, projects by name) use
``INSERT ... ON CONFLICT DO NOTHING`` against unique constraints, so deduplication holds
across any number of server processes sharing one database.
"""

from __future__ import annotations

import base64
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect

from ..db import WRITE, create_engine, is_sqlite
from ..jsonapi import ApiError
from .checkpoint import WalCheckpointer, writer_pragmas
from .pg_arrays import UnnestColumns

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
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


#: Page cache of the SQLite writer connection (negative: KiB). The random-order summary
#: indexes of a big experiment outgrow SQLite's default 2 MB, and every insert would
#: then read a page back from the OS; readers keep the default.
SQLITE_WRITER_CACHE_KIB = 65536


def _sqlite_writer(engine: sa.Engine) -> sa.Engine:
    """One connection for all SQLite writes (there is one writer at a time anyway), so one
    big page cache stays warm with the pages inserts touch."""
    writer = create_engine(engine.url.render_as_string(hide_password=False))

    @sa.event.listens_for(writer, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.execute(f"PRAGMA cache_size=-{SQLITE_WRITER_CACHE_KIB}")
        # A multi-row INSERT or upsert that may fail halfway keeps a statement journal (the
        # pages it changes, as they were); past 64 KiB SQLite spills it to a temporary
        # file (created and deleted once per transaction, written by every statement): at
        # batch 100 that doubled the writes an ingest made (strace). In memory it is
        # bounded by one statement's pages (at most 256 rows: events, aggregates).
        dbapi_conn.execute("PRAGMA temp_store=MEMORY")
        writer_pragmas(dbapi_conn)  # (checkpoints: a background thread's)

    return writer


class StoreBase:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.sqlite = is_sqlite(engine)
        self._writer = engine
        # SQLite has one writer at a time: queue writers in-process rather than busy-wait.
        self._sqlite_lock = threading.Lock() if self.sqlite else None
        self._checkpointer: WalCheckpointer | None = None
        database = engine.url.database or ""
        if self.sqlite and database and database != ":memory:" and not database.startswith("file:"):
            self._writer = _sqlite_writer(engine)  # (its pool opens one connection: one writer)
            assert self._sqlite_lock is not None
            self._checkpointer = WalCheckpointer(database, self._sqlite_lock, self)
        self._write_lock: AbstractContextManager[Any] = self._sqlite_lock or nullcontext()
        self._insert = sqlite_dialect.insert if self.sqlite else pg_dialect.insert
        self._sql: dict[tuple[str, int], str] = {}  # bulk INSERT text per (table, rows)
        self._pg_inserts: dict[str, tuple[str, UnnestColumns]] = {}  # (INSERT text, arrays)
        # Ingest requests waiting for the SQLite write lock (see EventQueries.ingest).
        self._queue: list[Any] = []
        self._queue_lock = threading.Lock()

    def close(self) -> None:
        """Stop the background work (SQLite's WAL checkpoints) and close the connections."""
        if self._checkpointer is not None:
            self._checkpointer.stop()
        if self._writer is not self.engine:
            self._writer.dispose()
        self.engine.dispose()

    # -- plumbing -------------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        with self._write_lock, self._transaction() as conn:
            yield conn

    @contextmanager
    def _transaction(self) -> Iterator[sa.Connection]:
        """A write transaction; callers on SQLite hold ``_write_lock`` already."""
        with self._writer.connect().execution_options(**WRITE) as conn, conn.begin():
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
            except Exception as exc:
                # (the ingest's statements go through the driver's cursor: its errors come
                # unwrapped; SQLAlchemy's wrap the driver's as ``orig``)
                driver_error = exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc
                state = getattr(driver_error, "sqlstate", None)
                if state not in _RETRYABLE_SQLSTATES or attempt == 4:
                    raise
                time.sleep(0.01 * 2**attempt)
        raise AssertionError("unreachable")

    def ping(self) -> None:
        with self._read() as conn:
            conn.execute(sa.select(1))

    @staticmethod
    def _page(rows: Sequence[Any], size: int) -> Page:
        out = [dict(r._mapping) for r in rows[:size]]
        next_cursor = encode_cursor(out[-1]["seq"]) if len(rows) > size and out else None
        return Page(out, next_cursor)

    def _require(self, conn: sa.Connection, table: sa.Table, id_: str, what: str,
                 ptr: str | None = None) -> dict[str, Any]:
        row = conn.execute(sa.select(table).where(table.c.id == id_)).first()
        if row is None:
            raise ApiError(404, f"{what} {id_!r} not found", ptr)
        return dict(row._mapping)
