"""Per-experiment results (summaries, charts, changed records) kept between page views
until new data arrives.

A summary takes a few reads and its charts a few more, a comparison reads every record of
both experiments, and the
detail, compare and auto-refreshing pages ask for them again and again. Spans and metrics
are insert-only, so an experiment whose newest span (``max(seq)``, one index probe), metric
count (from ``metric_totals``, kept at ingest) and row (``seq``, ``updated_at``) are unchanged gives the same
results: those four values are its freshness key. Every replica keeps its own cache and checks the keys against
the database on every request, so none serves stale numbers.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

import sqlalchemy as sa

from ..schema import metric_totals, spans
from ..store import Store

T = TypeVar("T")

#: Results kept in memory (least recently used ones go first).
MAX_ENTRIES = 64


class ResultCache:
    def __init__(self, store: Store, size: int = MAX_ENTRIES) -> None:
        self.store = store
        self.size = size
        self._entries: OrderedDict[tuple[str, ...], tuple[tuple[Any, ...], Any]] = OrderedDict()
        self._lock = threading.Lock()
        # One worker: slow results are computed one at a time, off the request threads.
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="otel-experiments-ui")
        self._pending: dict[tuple[Any, ...], Future[Any]] = {}

    def freshness(self, row: dict[str, Any]) -> tuple[Any, ...]:
        exp = row["id"]
        with self.store._read() as conn:
            last_span, n_metrics = conn.execute(sa.select(
                sa.select(sa.func.max(spans.c.seq))
                .where(spans.c.experiment_id == exp).scalar_subquery(),
                # (the metric count kept at ingest, in the same transaction as the rows)
                sa.select(sa.func.sum(metric_totals.c.metric_count))
                .where(metric_totals.c.experiment_id == exp).scalar_subquery(),
            )).one()
        return (row["seq"], row["updated_at"], last_span, int(n_metrics or 0))

    def _lookup(self, what: str, rows: Sequence[dict[str, Any]],
                keys: dict[str, tuple[Any, ...]] | None) -> tuple[tuple[str, ...],
                                                                  tuple[Any, ...], Any]:
        known = keys if keys is not None else {}
        fresh = []
        for row in rows:
            if row["id"] not in known:
                known[row["id"]] = self.freshness(row)
            fresh.append(known[row["id"]])
        name = (what, *(r["id"] for r in rows))
        key = tuple(fresh)
        with self._lock:
            entry = self._entries.get(name)
            if entry is not None and entry[0] == key:
                self._entries.move_to_end(name)
                return name, key, entry
        return name, key, None

    def _store(self, name: tuple[str, ...], key: tuple[Any, ...], value: Any) -> None:
        with self._lock:
            self._entries[name] = (key, value)
            self._entries.move_to_end(name)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def get(self, what: str, rows: Sequence[dict[str, Any]],
            compute: Callable[[], T], keys: dict[str, tuple[Any, ...]] | None = None) -> T:
        """``compute()``'s result for experiments ``rows``, reused while none of them
        changed. ``keys`` (experiment id -> freshness) saves recounting within a request."""
        name, key, entry = self._lookup(what, rows, keys)
        if entry is not None:
            cached: T = entry[1]
            return cached
        value = compute()
        self._store(name, key, value)
        return value

    def get_soon(self, what: str, rows: Sequence[dict[str, Any]], compute: Callable[[], T],
                 wait: float, keys: dict[str, tuple[Any, ...]] | None = None) -> T | None:
        """As :meth:`get`, but a result not ready within ``wait`` seconds is finished in
        the background and ``None`` returned meanwhile (the page says so and reloads)."""
        name, key, entry = self._lookup(what, rows, keys)
        if entry is not None:
            cached: T = entry[1]
            return cached
        with self._lock:
            future = self._pending.get((name, key))
            if future is None:
                future = self._pool.submit(self._finish, name, key, compute)
                self._pending[(name, key)] = future
        try:
            value: T = future.result(timeout=wait)
        except FutureTimeout:
            return None
        return value

    def _finish(self, name: tuple[str, ...], key: tuple[Any, ...], compute: Callable[[], T]) -> T:
        try:
            value = compute()
            self._store(name, key, value)
            return value
        finally:
            with self._lock:
                self._pending.pop((name, key), None)
