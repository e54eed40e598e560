"""SQLite: the WAL is checkpointed by a background thread, not by whichever request commits.

By default SQLite checkpoints inside the commit that takes the WAL past 1,000 pages: that
request copies ~4 MB into the database file and waits for two fsyncs, on the event loop
thread for a small body (measured: the server sat idle 10-15 % of a batch-100 load, and
stored 1.19x the spans per second with no checkpoints at all). Here the writer connection
never checkpoints (``wal_autocheckpoint=0``); this thread runs a ``PASSIVE`` checkpoint
every quarter second (it never blocks a writer or a reader, and the sqlite3 module
releases the interpreter while it copies and syncs). When the WAL has grown past
:data:`TRUNCATE_FRAMES` (a continuous load: passive checkpoints never catch up with the
writer), the thread takes the store's write lock, copies the rest and truncates the WAL,
waiting at most :data:`TRUNCATE_WAIT_MS` for readers (a reader holding an old snapshot
keeps any checkpoint from finishing: then it lets the writers go and tries again later).
The WAL so holds at most about a quarter second of writes past the limit (measured: tens of
MB under a writer that never pauses, against SQLite's ~4 MB when every commit may
checkpoint).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import weakref
from typing import Any

logger = logging.getLogger(__name__)

#: Seconds between two background checkpoints.
CHECKPOINT_INTERVAL_S = 0.25
#: WAL frames (pages) past which the checkpoint truncates the WAL (under the write lock).
TRUNCATE_FRAMES = 16384  # 64 MiB at 4 KiB pages
#: The longest the truncation waits for readers while it holds the write lock.
TRUNCATE_WAIT_MS = 100
#: Bytes the WAL file keeps after a reset (``journal_size_limit`` of the writer).
WAL_KEEP_BYTES = 16 << 20


def writer_pragmas(dbapi_conn: Any) -> None:
    """On the writer connection: leave checkpoints to :class:`WalCheckpointer`."""
    dbapi_conn.execute("PRAGMA wal_autocheckpoint=0")
    dbapi_conn.execute(f"PRAGMA journal_size_limit={WAL_KEEP_BYTES}")


class WalCheckpointer:
    """The checkpoint thread of one SQLite database file; it stops with :meth:`stop`, or
    when ``owner`` (the store) is garbage-collected."""

    def __init__(self, path: str, write_lock: threading.Lock, owner: object) -> None:
        self.path = path
        self._write_lock = write_lock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sqlite-wal-checkpoint",
                                        daemon=True)
        weakref.finalize(owner, self._stop.set)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(5)

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        failed = False
        try:
            while not self._stop.wait(CHECKPOINT_INTERVAL_S):
                try:
                    if conn is None:
                        conn = sqlite3.connect(self.path, timeout=TRUNCATE_WAIT_MS / 1000,
                                               isolation_level=None, check_same_thread=False)
                    self.checkpoint(conn)
                    failed = False
                except sqlite3.Error as exc:
                    if not failed:  # once per run of failures, not every quarter second
                        logger.warning("otel-experiments: WAL checkpoint of %s failed: %s",
                                       self.path, exc)
                    failed = True
        finally:
            if conn is not None:
                conn.close()

    def checkpoint(self, conn: sqlite3.Connection) -> tuple[int, int, int]:
        """One round: ``(busy, WAL frames, frames checkpointed)`` of the passive checkpoint
        (``PASSIVE`` never waits: the connection's busy timeout bounds only the truncation)."""
        busy, frames, done = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if frames >= TRUNCATE_FRAMES:
            # Under a continuous load a passive checkpoint never catches up with the writer:
            # this process's writers wait here (not in SQLite) while it copies the rest.
            with self._write_lock:
                busy, frames, done = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                if done == frames:  # (else a reader's snapshot holds it: try again later)
                    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        return busy, frames, done
