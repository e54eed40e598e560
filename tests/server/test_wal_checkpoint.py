"""SQLite: the WAL is checkpointed by the store's background thread, never by the writer that
happens to commit; it is truncated when passive checkpoints fall behind; the thread stops
with the store."""

from __future__ import annotations

import gc
import sqlite3
import threading
import time
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path

import pytest
import sqlalchemy as sa
from server_helpers import events_body, metric, span

from otel_experiments.server import ingest
from otel_experiments.server.db import create_engine, migrate
from otel_experiments.server.store import Store, checkpoint


def _store(url: str) -> Store:
    engine = create_engine(url)
    migrate(engine)
    return Store(engine)


def _ingest(store: Store, first: int, n: int) -> None:
    spans = [span(i, meta={"input": "x" * 2000}) for i in range(first, first + n)]
    metrics = [metric(i, "acc", 0.5) for i in range(first, first + n)]
    store.ingest("exp", *ingest.parse_events(events_body(spans, metrics), 10_000))


def _wait(predicate: Callable[[], bool], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_the_writer_leaves_checkpoints_to_the_thread(fresh_database_url: Callable[[str], str]) -> None:
    url = fresh_database_url("sqlite")
    path = Path(sa.make_url(url).database or "")
    store = _store(url)
    try:
        with store._writer.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
            # statement journals in memory, not in a temporary file per statement
            assert conn.exec_driver_sql("PRAGMA temp_store").scalar() == 2
        assert store._checkpointer is not None
        db_before = path.stat().st_size
        _ingest(store, 1, 600)  # ~1.5 MB: only in the WAL until a checkpoint copies it
        # the database file grows only by a checkpoint, and only the thread runs one
        assert _wait(lambda: path.stat().st_size > db_before + 1_000_000)
        with store._read() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM spans").scalar() == 600
    finally:
        store.close()


def test_a_wal_past_the_limit_is_truncated(fresh_database_url: Callable[[str], str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checkpoint, "TRUNCATE_FRAMES", 64)  # 256 KiB
    url = fresh_database_url("sqlite")
    wal = Path((sa.make_url(url).database or "") + "-wal")
    store = _store(url)
    try:
        _ingest(store, 1, 400)
        assert _wait(lambda: not wal.exists() or wal.stat().st_size == 0)
        _ingest(store, 401, 10)  # and the store goes on writing after it
        with store._read() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM spans").scalar() == 410
    finally:
        store.close()


def test_the_wal_stays_bounded_under_a_continuous_load(
        fresh_database_url: Callable[[str], str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer that never pauses: passive checkpoints never catch up with it, so past the
    limit the thread holds the writers back, copies the rest and truncates."""
    monkeypatch.setattr(checkpoint, "TRUNCATE_FRAMES", 64)
    url = fresh_database_url("sqlite")
    wal = Path((sa.make_url(url).database or "") + "-wal")
    store = _store(url)
    done = threading.Event()

    def write() -> None:
        first = 1
        while not done.is_set():
            _ingest(store, first, 20)
            first += 20

    writer = threading.Thread(target=write)
    writer.start()
    sizes = []
    try:
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            sizes.append(wal.stat().st_size if wal.exists() else 0)
            time.sleep(0.005)
    finally:
        done.set()
        writer.join()
        store.close()
    shrunk = sum(1 for a, b in pairwise(sizes) if b < a)
    assert shrunk >= 2, sizes[-20:]  # truncated again and again while the writer went on
    # (past the limit it holds about a quarter second of writes: tens of MB at this rate)
    assert max(sizes) < 256 << 20


def test_a_reader_holding_a_snapshot_never_holds_writers_back(
        fresh_database_url: Callable[[str], str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A long read keeps any checkpoint from finishing: the WAL then waits for it, the
    writers do not (no truncation is tried while the passive one is behind)."""
    monkeypatch.setattr(checkpoint, "TRUNCATE_FRAMES", 64)
    url = fresh_database_url("sqlite")
    wal = Path((sa.make_url(url).database or "") + "-wal")
    store = _store(url)
    reader = sqlite3.connect(sa.make_url(url).database or "", isolation_level=None)
    try:
        _ingest(store, 1, 10)
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM spans").fetchone()  # a snapshot, held
        for first in range(11, 611, 100):
            started = time.monotonic()
            _ingest(store, first, 100)
            assert time.monotonic() - started < 2.0
            time.sleep(0.3)  # (a checkpoint round between writes)
        reader.execute("COMMIT")
        assert _wait(lambda: not wal.exists() or wal.stat().st_size == 0)
    finally:
        reader.close()
        store.close()


def test_the_thread_stops_with_the_store(fresh_database_url: Callable[[str], str]) -> None:
    closed = _store(fresh_database_url("sqlite"))
    assert closed._checkpointer is not None
    thread = closed._checkpointer._thread
    closed.close()
    assert not thread.is_alive()

    dropped = _store(fresh_database_url("sqlite"))
    assert dropped._checkpointer is not None
    thread = dropped._checkpointer._thread
    del dropped
    gc.collect()
    assert _wait(lambda: not thread.is_alive(), 5)


def test_no_thread_for_an_in_memory_database() -> None:
    assert Store(sa.create_engine("sqlite://"))._checkpointer is None
