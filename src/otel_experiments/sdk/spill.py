"""``OverflowSpill``: the batch processor's overflow, on its way to the spool.

When the batch queue is full (spans come faster than the backend takes them, or the
backend is down), ``span.end()`` hands the span to this spill instead of dropping it.
Two threads, so the CPU work and the disk's wait overlap:

* the **encoder** takes every span waiting (after at most ``GATHER_S``, so bodies are
  full), converts them to compact bodies (events, JSON, gzip: what replay will POST)
  and frees the spans;
* the **writer** takes every body waiting and writes them as one spool file with one
  ``fsync`` (a group commit): an fsync costs the same for one body or a hundred, and
  one fsync per body was what bounded the old single spill thread (~1,500 spans/s).

Bounds: at most ``max_spans`` spans wait for the encoder (the processor's queue size)
and at most ``max_bytes`` of encoded bodies (``OTEL_EXPERIMENTS_OVERFLOW_MAX_BYTES``)
wait for, or are in, a write. When the writer is that far behind, the encoder waits;
spans then pile up to ``max_spans`` and the next ``span.end()`` counts its span as
dropped (``queue_full``, with a rate-limited warning). ``span.end()`` never waits.

All state is guarded by the processor's lock (its own conditions on it), so the
processor's ``force_flush`` sees one consistent picture of what is still in flight.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Final

from opentelemetry.sdk.trace import ReadableSpan

from ..export.exporter import ExperimentEventsExporter
from ..export.spool import Part

__all__ = ["GATHER_S", "OverflowSpill"]

#: The encoder waits this long for a full batch of overflow before encoding what it has.
GATHER_S: Final = 0.05


class OverflowSpill:
    """Encodes and writes a batch processor's overflow to its exporter's spool."""

    def __init__(self, exporter: ExperimentEventsExporter, lock: threading.Lock,
                 idle: threading.Condition, max_spans: int, max_bytes: int, batch: int) -> None:
        self._exporter = exporter
        self._idle = idle  # the processor's condition (on ``lock``): told when work is done
        self._has_spans = threading.Condition(lock)
        self._has_parts = threading.Condition(lock)
        self._has_room = threading.Condition(lock)
        self.max_spans = max_spans
        self.max_bytes = max_bytes
        self._batch = max(1, batch)
        self.spans: list[ReadableSpan] = []  # waiting for the encoder
        self._parts: list[Part] = []  # encoded, waiting for the writer
        self._bytes = 0  # encoded bytes waiting or being written
        self._busy = 0  # batches being encoded or written right now
        self._closing = False
        self._encoder_done = False
        self.flushing: Callable[[], bool] = lambda: False
        self._encoder = _start(self._encode_loop, "otel-experiments-spill")
        self._writer = _start(self._write_loop, "otel-experiments-spool-writer")

    # ------------------------------------------------------------------ under the lock

    def offer(self, span: ReadableSpan) -> bool:
        """Take ``span`` (the caller holds the lock); ``False`` when the spill is full."""
        if self._closing or len(self.spans) >= self.max_spans:
            return False
        self.spans.append(span)
        if len(self.spans) in (1, self._batch):  # the encoder waits for the first, or a batch
            self._has_spans.notify()
        return True

    def idle(self) -> bool:
        """Nothing waiting or in flight (the caller holds the lock)."""
        return not (self.spans or self._parts or self._busy)

    def wake(self) -> None:
        """A flush waits: encode what is there now (the caller holds the lock)."""
        self._has_spans.notify()

    def close(self) -> None:
        """No more spans; the threads finish what they have (the caller holds the lock)."""
        self._closing = True
        self._has_spans.notify_all()
        self._has_parts.notify_all()
        self._has_room.notify_all()

    def take_left(self) -> int:
        """Spans not encoded or written (threads stuck: a bug), forgotten; their number."""
        left = len(self.spans) + sum(part.spans for part in self._parts)
        self.spans, self._parts = [], []
        return left

    def join(self, deadline: float) -> None:
        for thread in (self._encoder, self._writer):
            thread.join(max(0.0, deadline - time.monotonic()))

    # ------------------------------------------------------------------ threads

    def _encode_loop(self) -> None:
        lock = self._has_spans
        while True:
            with lock:
                while not self.spans and not self._closing:
                    self._has_spans.wait()
                gather_until = time.monotonic() + GATHER_S
                while len(self.spans) < self._batch and not self._closing and not self.flushing():
                    left = gather_until - time.monotonic()
                    if left <= 0:
                        break
                    self._has_spans.wait(left)
                # the writer is max_bytes behind: wait (span.end() drops past max_spans)
                while self._bytes >= self.max_bytes and not self._closing:
                    self._has_room.wait()
                if not self.spans:
                    self._encoder_done = True
                    self._has_parts.notify_all()
                    return  # closing, nothing left
                batch, self.spans = self.spans, []
                self._busy += 1
            parts = self._exporter.encode_for_spool(batch)  # never raises; drops counted
            del batch  # the spans are freed here, before the disk is waited for
            with lock:
                self._busy -= 1
                if parts:
                    self._parts += parts
                    self._bytes += sum(len(part.content) for part in parts)
                    self._has_parts.notify()
                self._idle.notify_all()

    def _write_loop(self) -> None:
        lock = self._has_parts
        while True:
            with lock:
                while not self._parts and not self._encoder_done:
                    self._has_parts.wait()
                if not self._parts:
                    return  # the encoder finished and everything is written
                parts, self._parts = self._parts, []
                self._busy += 1
            try:
                self._exporter.spool_parts(parts)  # never raises; failures counted
            finally:
                with lock:
                    self._busy -= 1
                    self._bytes -= sum(len(part.content) for part in parts)
                    self._has_room.notify_all()
                    self._idle.notify_all()


def _start(target: Callable[[], None], name: str) -> threading.Thread:
    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    return thread
