"""Sending spooled bodies again: on demand and in the background, one sender per spool.

:meth:`SpoolReplayer.replay` sends the bodies of a :class:`~.spool.Spool` oldest first
until the spool is empty, a deadline passes or the backend fails again (the rules of
:mod:`.rules`; a body refused for good is dropped and counted). It runs

* at the start of ``export()`` (throttled to every ``REPLAY_INTERVAL_S`` while failing),
* in ``force_flush()`` and the batch processor's ``shutdown()`` (within their budget),
* in a background daemon thread, started when something is spooled (or an exporter
  starts over a spool with bodies in it), so spooled spans are delivered as soon as
  the backend answers again even if the application never exports another span. It
  backs off from ``BACKOFF_INITIAL_S`` to ``BACKOFF_MAX_S`` while the backend fails (a
  pass that ran out of time while delivering a backlog goes on at once) and ends when
  the spool is empty.

One replay per spool at a time, across processes: a pass holds an exclusive ``flock``
on ``{root}/.{spool}.replay-lock`` (released by the kernel if the process dies); a
background pass that cannot take it leaves the spool to the process that has it, a
flush waits for it (within its deadline). Files are claimed by
rename as well (:mod:`.spool`), so even without ``flock`` (Windows) no body is sent
twice at once. Fork: a child starts with no thread, no lock file and fresh locks; the
parent's replay goes on in the parent.
"""

from __future__ import annotations

import contextlib
import gzip
import logging
import os
import random
import threading
import time
from typing import Final

from .._runtime.env import redact_url
from .._runtime.forksafe import reinit_after_fork
from .delivery import HttpDelivery
from .report import DeliveryStats
from .rules import Verdict
from .spool import Spool, SpooledBody

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: claims alone prevent double sends
    fcntl = None  # type: ignore[assignment]

__all__ = ["BACKOFF_INITIAL_S", "BACKOFF_MAX_S", "REPLAY_INTERVAL_S", "SpoolReplayer"]

logger = logging.getLogger("otel_experiments")

#: After a failed export, ``export()`` replays the spool at most this often.
REPLAY_INTERVAL_S: Final = 5.0
#: The background replay's first wait after a failure, and its longest.
BACKOFF_INITIAL_S: Final = 0.5
BACKOFF_MAX_S: Final = 5.0
_LOCK_SUFFIX: Final = ".replay-lock"


class SpoolReplayer:
    """Replays one spool for one exporter. Thread-safe; fork-aware."""

    def __init__(self, spool: Spool, delivery: HttpDelivery, endpoint: str,
                 stats: DeliveryStats, *, timeout: float, background: bool = True) -> None:
        self.spool = spool
        self._delivery = delivery
        self._endpoint = endpoint
        self._stats = stats
        self._timeout = timeout
        self._background = background
        self.lock = threading.Lock()  # one replay pass at a time in this process
        self.last_attempt = float("-inf")
        self.last_ok = True
        self.last_delivered = 0  # spans the last pass delivered: it ended with progress
        self._stopped = False
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock_fd: int | None = None
        reinit_after_fork(self)

    def _after_fork_in_child(self) -> None:
        self.lock = threading.Lock()
        self._wake = threading.Event()
        self._thread = None  # threads do not survive fork(); the parent's goes on there
        # A pass was running in the parent: its lock file descriptor was copied into the
        # child, and the flock would live as long as the child does. Close our copy.
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    # ------------------------------------------------------------------ passes

    def replay(self, deadline: float, *, wait: bool = False) -> bool:
        """One pass, unless another runs (then ``True`` at once, or wait for it first).

        ``True`` when the spool is empty as far as this process can see.
        """
        if wait:
            if not self.lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
                return False
        elif not self.lock.acquire(blocking=False):
            return True
        try:
            if not self.spool.pending():  # nothing to do: no lock file, no disk touched
                self.last_ok = True
                return True
            self.last_attempt = time.monotonic()
            while not self._lock_spool():  # another process is replaying this spool
                if not wait or time.monotonic() >= deadline:
                    return not self.spool.pending()
                time.sleep(0.05)  # a flush waits for it (bounded), then sends what is left
            try:
                done = self._pass(deadline)
            finally:
                self._unlock_spool()
            self.last_ok = done
            return done
        finally:
            self.lock.release()

    def _lock_spool(self) -> bool:
        """An exclusive, non-blocking ``flock`` on the spool's lock file."""
        if fcntl is None:
            return True
        try:
            # next to the directory, not in it: the directory holds only bodies
            lock_path = self.spool.directory.with_name(f".{self.spool.directory.name}{_LOCK_SUFFIX}")
            fd = os.open(lock_path,
                         os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
        except OSError:
            return True  # no directory yet (nothing spooled) or not writable: claims suffice
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._lock_fd = fd
        return True

    def _unlock_spool(self) -> None:
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)  # closing our descriptor releases the flock

    def note_export(self, started: float, ok: bool) -> None:
        """An export failed (or not): ``export()`` replays again only ``REPLAY_INTERVAL_S``
        after a failure, so a dead backend does not cost every export a replay attempt."""
        self.last_ok = ok
        if not ok:
            self.last_attempt = started

    def maybe_replay(self, now: float, deadline: float, *, flush: bool = False) -> bool:
        """:meth:`replay`, unless the last pass failed less than ``REPLAY_INTERVAL_S`` ago.

        Skipped, it is ``True`` for ``export()`` (its own spans decide its result) and,
        for a ``flush``, whether the spool is empty.
        """
        if not self.last_ok and now - self.last_attempt < REPLAY_INTERVAL_S:
            return not self.spool.pending() if flush else True
        return self.replay(deadline, wait=flush)

    def _pass(self, deadline: float) -> bool:
        delivered = 0
        done = True
        for name in self.spool.pending():
            if self._stopped or self._delivery.closed or time.monotonic() >= deadline:
                done = False
                break
            entry = self.spool.claim(name)
            if entry is None:
                continue
            sent, delivered_here, kept = self._send_parts(entry, deadline)
            delivered += delivered_here
            if kept:
                self.spool.requeue(entry, sent)
                done = False
                break
            self.spool.remove(entry)  # delivered, or rejected for good (already logged)
        self.last_delivered = delivered
        if delivered:
            logger.info("otel-experiments: delivered %d spooled span(s) to %s",
                        delivered, redact_url(self._endpoint))
        return done

    def _send_parts(self, entry: SpooledBody, deadline: float) -> tuple[int, int, bool]:
        """Send a claimed file's bodies in order: ``(parts done, spans delivered, kept)``;
        ``kept``: the backend failed, the parts from ``parts done`` on stay spooled."""
        delivered = 0
        for index, part in enumerate(entry.parts):
            if index and (self._stopped or self._delivery.closed
                          or time.monotonic() >= deadline):
                return index, delivered, True
            try:
                content = self._wire_content(part.content, entry.encoding)
            except (OSError, ValueError, EOFError) as exc:
                if len(entry.parts) == 1:
                    self.spool.quarantine(entry.name, entry.claimed, f"bad gzip data: {exc}")
                    return 0, 0, False
                self.spool.lose_part(part.spans, f"bad gzip data: {exc}")
                continue
            verdict = self._delivery.send_encoded(
                self._endpoint + part.path, content, part.spans, deadline
            )
            if verdict is Verdict.KEEP:
                return index, delivered, True
            if verdict is Verdict.DELIVERED:
                delivered += part.spans
                self._stats.replayed(part.spans)
            else:
                self._stats.dropped(part.spans, "rejected", "a spooled body")
        return len(entry.parts), delivered, False

    def _wire_content(self, content: bytes, encoding: str) -> bytes:
        """A spooled body in the encoding the client sends now (compression may differ)."""
        if encoding == self._delivery.content_encoding:
            return content
        if encoding == "gzip":
            return gzip.decompress(content)
        return self._delivery.encode(content)

    # ------------------------------------------------------------------ background

    def kick(self) -> None:
        """Something was spooled (or may be): make sure a background replay will run."""
        if not self._background or self._stopped:
            return
        thread = self._thread
        if thread is not None and thread.is_alive():
            return
        thread = threading.Thread(target=self._run, name="otel-experiments-replay", daemon=True)
        self._thread = thread
        with contextlib.suppress(RuntimeError):  # interpreter shutting down: no new thread
            thread.start()

    def wake(self) -> None:
        """The backend answered: try now rather than at the end of the backoff."""
        self._wake.set()

    def stop(self, join_timeout: float = 0.0) -> None:
        """No more passes; wait up to ``join_timeout`` for a running one to put back the
        file it claimed (at exit, a daemon thread killed mid-send would leave a claim that
        only a later process's stale-claim check gives back)."""
        self._stopped = True
        self._wake.set()
        thread = self._thread
        if join_timeout > 0 and thread is not None and thread is not threading.current_thread():
            thread.join(join_timeout)

    def _run(self) -> None:
        delay = BACKOFF_INITIAL_S
        try:
            while not self._stopped:
                self._wake.wait(delay * random.uniform(0.8, 1.0))  # jitter: processes spread
                self._wake.clear()
                if self._stopped:
                    return
                self.last_delivered = 0
                if self.replay(time.monotonic() + self._timeout):
                    if not self.spool.pending():
                        return  # empty: the next spooled body starts a new thread
                    delay = BACKOFF_INITIAL_S  # another process holds the spool
                elif self.last_delivered:
                    # the pass ran out of time while delivering (a backlog, not a failed
                    # backend): go on at once, no backoff
                    delay = 0.0
                else:
                    delay = min(BACKOFF_MAX_S, delay * 2)
        except Exception:  # never into the application; the next kick starts a new one
            logger.debug("otel-experiments: background replay stopped", exc_info=True)
