"""Scheduling records: threads (default), asyncio (async tasks) or a given Executor.

All three stop the same way on Ctrl-C: no new record starts, records still running are
dropped (see :class:`~._record.RecordRunner`), and the caller learns the run was
interrupted. A rate limit spaces record starts evenly across every worker.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from typing import Any

from ._record import RecordRunner
from .datasets import Record
from .results import RecordOutcome

OnDone = Callable[[RecordOutcome], None]


class RateLimiter:
    """At most ``per_second`` record starts per second, shared by every worker."""

    def __init__(self, per_second: float) -> None:
        if not per_second > 0:
            raise ValueError(f"rate_limit must be > 0 records per second, got {per_second!r}")
        self.interval = 1.0 / per_second
        self._next = 0.0
        self._lock = threading.Lock()

    def delay(self) -> float:
        """Reserve the next start slot; seconds to wait for it."""
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self.interval
            return slot - now


class Interrupted(Exception):
    """The run was interrupted; ``outcomes`` holds the records that finished."""

    def __init__(self, outcomes: dict[int, RecordOutcome]) -> None:
        super().__init__("interrupted")
        self.outcomes = outcomes


def _interrupted(runner: RecordRunner, records: Sequence[Record]) -> Interrupted:
    runner.abort()
    return Interrupted({i: runner.committed[r.key] for i, r in enumerate(records)
                        if r.key in runner.committed})


def run_in_threads(runner: RecordRunner, records: Sequence[Record], workers: int,
                   limiter: RateLimiter | None, on_done: OnDone) -> dict[int, RecordOutcome]:
    """Records on a thread pool (also the driver side of a remote executor)."""

    def one(record: Record) -> RecordOutcome | None:
        if limiter is not None and not runner.aborted.is_set():
            time.sleep(limiter.delay())
        return runner.run(record)

    outcomes: dict[int, RecordOutcome] = {}
    if workers == 1 and limiter is None:  # no pool: least overhead, same semantics
        try:
            for i, record in enumerate(records):
                outcome = runner.run(record)
                if outcome is not None:
                    outcomes[i] = outcome
                    on_done(outcome)
        except KeyboardInterrupt:
            raise _interrupted(runner, records) from None
        return outcomes

    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="otel-experiments-run")
    futures: dict[Future[RecordOutcome | None], int] = {}
    try:
        futures = {pool.submit(one, record): i for i, record in enumerate(records)}
        for future in as_completed(futures):
            outcome = future.result()  # a KeyboardInterrupt in a task comes back here
            if outcome is not None:
                outcomes[futures[future]] = outcome
                on_done(outcome)
    except KeyboardInterrupt:
        stop = _interrupted(runner, records)
        pool.shutdown(wait=False, cancel_futures=True)
        raise stop from None
    pool.shutdown(wait=True)
    return outcomes


def run_in_asyncio(runner: RecordRunner, records: Sequence[Record], concurrency: int,
                   limiter: RateLimiter | None, on_done: OnDone) -> dict[int, RecordOutcome]:
    """Records of an async task on an event loop (a new one in a helper thread when this
    thread already runs a loop)."""
    outcomes: dict[int, RecordOutcome] = {}

    async def main() -> bool:
        semaphore = asyncio.Semaphore(concurrency)

        async def one(i: int, record: Record) -> tuple[int, RecordOutcome | None]:
            async with semaphore:
                if limiter is not None:
                    await asyncio.sleep(limiter.delay())
                return i, await runner.arun(record)

        tasks = [asyncio.ensure_future(one(i, r)) for i, r in enumerate(records)]
        try:
            for next_done in asyncio.as_completed(tasks):
                i, outcome = await next_done
                if outcome is not None:
                    outcomes[i] = outcome
                    on_done(outcome)
        except asyncio.CancelledError:  # Ctrl-C (Python >= 3.11 cancels the main task)
            runner.abort()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            return False
        return True

    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    try:
        completed = asyncio.run(main()) if running is None else _run_in_thread(main)
    except KeyboardInterrupt:
        raise _interrupted(runner, records) from None
    if not completed:
        raise _interrupted(runner, records)
    return outcomes


def _run_in_thread(main: Callable[[], Any]) -> Any:
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(main())
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, name="otel-experiments-loop")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


__all__ = ["Interrupted", "RateLimiter", "run_in_asyncio", "run_in_threads"]
