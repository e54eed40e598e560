"""``ExperimentBatchSpanProcessor``: batching with the bounds the SDK's processor lacks.

``configure()`` puts this in front of an :class:`~otel_experiments.ExperimentEventsExporter`
instead of the SDK's ``BatchSpanProcessor``, which (opentelemetry-sdk 1.4x) drops spans
silently when its queue is full, ignores ``force_flush``'s timeout and waits up to 30 s
for its worker at shutdown. Same batching (``OTEL_BSP_MAX_QUEUE_SIZE``,
``OTEL_BSP_SCHEDULE_DELAY``, ``OTEL_BSP_MAX_EXPORT_BATCH_SIZE``), plus:

* ``on_end`` (``span.end()``) only takes a lock: never the network, never the disk.
  When the queue is full the span goes to the overflow spill (:mod:`.spill`: encoded
  to compact bodies, written to the exporter's spool with one fsync per batch); when
  that is full too, or the spool is off, the span is counted as dropped
  (``queue_full``). Memory stays within the queue, the spill's ``OTEL_BSP_MAX_QUEUE_SIZE``
  spans and its ``OTEL_EXPERIMENTS_OVERFLOW_MAX_BYTES`` of encoded bodies.
* ``force_flush(timeout_millis)`` waits at most that long, then replays the spool in
  what is left; ``True`` only when everything was delivered.
* ``shutdown()`` returns within the exporter's ``shutdown_timeout``: sending stops a
  little before it, the rest is spooled (or counted), the spool is replayed if time is
  left.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable

from opentelemetry import context as otel_context
from opentelemetry.context import Context
from opentelemetry.sdk.environment_variables import (
    OTEL_BSP_MAX_EXPORT_BATCH_SIZE,
    OTEL_BSP_MAX_QUEUE_SIZE,
    OTEL_BSP_SCHEDULE_DELAY,
)
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from .. import settings as _settings
from .._compat import SUPPRESS_INSTRUMENTATION_KEY
from .._runtime.env import env_int
from .._runtime.forksafe import reinit_after_fork
from ..export.exporter import ExperimentEventsExporter
from .spill import OverflowSpill

__all__ = ["ExperimentBatchSpanProcessor"]

logger = logging.getLogger("otel_experiments")



class ExperimentBatchSpanProcessor(SpanProcessor):
    """Batch finished spans to an :class:`ExperimentEventsExporter`, bounded everywhere."""

    def __init__(
        self,
        span_exporter: ExperimentEventsExporter,
        max_queue_size: int | None = None,
        schedule_delay_millis: float | None = None,
        max_export_batch_size: int | None = None,
        overflow_max_bytes: int | None = None,
    ) -> None:
        #: the exporter (the attribute name the SDK's processors use)
        self.span_exporter = span_exporter
        self._max_queue = max_queue_size or env_int(OTEL_BSP_MAX_QUEUE_SIZE, 2048)
        self._delay = (schedule_delay_millis or env_int(OTEL_BSP_SCHEDULE_DELAY, 5000)) / 1000.0
        self._batch = min(self._max_queue,
                          max_export_batch_size or env_int(OTEL_BSP_MAX_EXPORT_BATCH_SIZE, 512))
        self._overflow_bytes = overflow_max_bytes if overflow_max_bytes is not None else env_int(
            _settings.OTEL_EXPERIMENTS_OVERFLOW_MAX_BYTES, _settings.DEFAULT_OVERFLOW_MAX_BYTES,
            minimum=0)
        self._shutdown = False
        self._init_state()
        reinit_after_fork(self)

    def _init_state(self) -> None:
        lock = threading.Lock()
        self._cond = threading.Condition(lock)
        self._queue: deque[ReadableSpan] = deque()
        self._busy = 0  # batches being exported right now
        self._flushing = 0  # force_flush calls waiting: the worker exports at once
        self._worker = self._start(self._work, "otel-experiments-batch")
        # overflow_max_bytes=0: no spill, a full queue drops (counted)
        self._spill = OverflowSpill(self.span_exporter, lock, self._cond, self._max_queue,
                                    self._overflow_bytes, self._batch) \
            if self._overflow_bytes > 0 else None
        if self._spill is not None:
            self._spill.flushing = lambda: self._flushing > 0

    def _after_fork_in_child(self) -> None:
        # The parent's queued spans are the parent's to export; the child gets fresh
        # locks and threads (threads do not survive fork()).
        if not self._shutdown:
            self._init_state()

    @staticmethod
    def _start(target: Callable[[], None], name: str) -> threading.Thread:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        return thread

    # ------------------------------------------------------------------ span path

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        if not (span.context and span.context.trace_flags.sampled):
            return
        lost = None
        with self._cond:
            if self._shutdown:
                lost = "shutdown"
            elif len(self._queue) < self._max_queue:
                self._queue.append(span)
                if len(self._queue) >= self._batch:
                    self._cond.notify_all()
                return
            elif self._spill is not None and self._spill.offer(span):
                return  # encoded and written to the spool by the spill's threads
            else:
                lost = "queue_full"
        self.span_exporter.record_dropped(1, lost)  # counts and warns (rate-limited)

    # ------------------------------------------------------------------ threads

    def _work(self) -> None:
        while True:
            with self._cond:
                deadline = time.monotonic() + self._delay
                # a batch is full, or the delay passed, or a flush waits for what is queued
                while not self._shutdown and len(self._queue) < self._batch \
                        and not (self._flushing and self._queue):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                if not self._queue:
                    if self._shutdown:
                        return
                    continue
                # shutting down: everything left in one export (its bodies are sent, or
                # spooled, a request's worth each), not a batch at a time against the budget
                size = len(self._queue) if self._shutdown else min(self._batch, len(self._queue))
                batch = [self._queue.popleft() for _ in range(size)]
                self._busy += 1
            try:
                _suppressed(self.span_exporter.export, batch)
            finally:
                with self._cond:
                    self._busy -= 1
                    self._cond.notify_all()

    # ------------------------------------------------------------------ flush, shutdown

    def _wait_idle(self, deadline: float) -> bool:
        """Wait until both queues are empty and no batch is in flight, or ``deadline``."""
        with self._cond:
            self._flushing += 1
            self._cond.notify_all()
            if self._spill is not None:
                self._spill.wake()
            try:
                while self._queue or self._busy or not (self._spill is None or self._spill.idle()):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False
                    self._cond.wait(left)
                return True
            finally:
                self._flushing -= 1

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Export what is queued and replay the spool, within ``timeout_millis``.

        ``True`` only when everything was delivered (SDK contract).
        """
        deadline = time.monotonic() + max(0.0, timeout_millis / 1000.0)
        if self._shutdown:
            return False
        idle = self._wait_idle(deadline)
        left = max(0, int((deadline - time.monotonic()) * 1000))
        return self.span_exporter.force_flush(left) and idle

    def shutdown(self) -> None:
        """Deliver, spool or count everything within the exporter's ``shutdown_timeout``."""
        with self._cond:
            if self._shutdown:
                return
            self._shutdown = True
            self._cond.notify_all()
            if self._spill is not None:
                self._spill.close()
        exporter = self.span_exporter
        deadline = time.monotonic() + exporter.settings.shutdown_timeout
        exporter.begin_shutdown(deadline)  # sending stops before the deadline
        self._worker.join(max(0.0, deadline - time.monotonic()))
        if self._spill is not None:
            self._spill.join(deadline)
        with self._cond:  # the worker is still stuck in an export (a hung backend)
            queued = list(self._queue)
            self._queue.clear()
            left = self._spill.take_left() if self._spill else 0
        if queued:  # the worker can no longer take them: spooled here, never sent twice
            exporter.spool_parts(exporter.encode_for_spool(queued, "shutdown"))
        if left:  # only if a spill thread is stuck (a bug): never lose them silently
            exporter.record_dropped(left, "shutdown")
        exporter.flush_spool(deadline)
        exporter.shutdown()


def _suppressed(export: Callable[[list[ReadableSpan]], object], batch: list[ReadableSpan]) -> None:
    """Export with instrumentation suppressed (our own HTTP calls are never traced)."""
    token = None
    if SUPPRESS_INSTRUMENTATION_KEY is not None:
        token = otel_context.attach(otel_context.set_value(SUPPRESS_INSTRUMENTATION_KEY, True))
    try:
        export(batch)
    except Exception:  # the exporter never raises; a subclass might
        logger.warning("otel-experiments: exporting a batch failed", exc_info=True)
    finally:
        if token is not None:
            with contextlib.suppress(Exception):
                otel_context.detach(token)
