"""``ExperimentsHandle``: what :func:`~otel_experiments.configure` set up, and its end.

Its :meth:`~ExperimentsHandle.shutdown` is bounded by ``shutdown_timeout`` whatever the
backend does (the exporters stop sending before it and spool the rest) and never shuts
the application's ``TracerProvider`` down; :meth:`~ExperimentsHandle.delivery_report`
sums the reports of its experiments exporters. The registries of configured providers
live here so that a handle can take itself out of them.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from typing import TYPE_CHECKING

from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter

from .. import settings as settings_module
from ..export.exporter import ExperimentEventsExporter
from ..export.report import DeliveryReport
from .batch import ExperimentBatchSpanProcessor
from .processor import ExperimentSpanProcessor

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["ExperimentsHandle"]

logger = logging.getLogger("otel_experiments")


_lock = threading.RLock()
#: The live handle of each provider ``configure()`` was called on.
_handles: weakref.WeakKeyDictionary[TracerProvider, ExperimentsHandle] = (
    weakref.WeakKeyDictionary()
)
#: Export processors a handle has shut down: they stay in the provider's list (the SDK
#: cannot remove a processor) but no longer export, so they do not count as "present".
_retired: weakref.WeakSet[SpanProcessor] = weakref.WeakSet()


def _exporter_of(proc: SpanProcessor) -> object:
    # BatchSpanProcessor and SimpleSpanProcessor both expose ``span_exporter``.
    return getattr(proc, "span_exporter", None)


# --------------------------------------------------------------------------- the handle


class ExperimentsHandle:
    """What :func:`configure` set up; :meth:`shutdown` flushes and stops it.

    Attributes:
        enabled: false when configuration was skipped (``OTEL_SDK_DISABLED=true``,
            ``OTEL_EXPERIMENTS_ENABLED=false`` or no usable provider).
        tracer_provider: the SDK provider configured, or ``None``.
        processor: the :class:`ExperimentSpanProcessor` stamping spans (added by this
            call or found on the provider), or ``None``.
        exporter: the exporter this handle added, or ``None`` (not exporting, or the
            provider already exported experiment events).
        span_processors: the processors this handle added and owns.
    """

    def __init__(
        self,
        tracer_provider: TracerProvider | None = None,
        processor: ExperimentSpanProcessor | None = None,
        exporter: SpanExporter | None = None,
        span_processors: tuple[SpanProcessor, ...] = (),
        *,
        shutdown_timeout: float = settings_module.DEFAULT_SHUTDOWN_TIMEOUT_S,
        reporting: tuple[SpanExporter, ...] = (),
    ) -> None:
        self.tracer_provider = tracer_provider
        self.processor = processor
        self.exporter = exporter
        self.span_processors = span_processors
        #: seconds :meth:`shutdown` (and the exit flush) may take, whatever the backend does
        self.shutdown_timeout = shutdown_timeout
        # the exporters whose counts delivery_report() sums: ours, or the experiments
        # exporter the provider already had (OTEL_TRACES_EXPORTER=experiments)
        self._reporting = tuple(
            dict.fromkeys(e for e in (exporter, *reporting) if e is not None)
        )
        #: the explicit arguments of the configure() call that made this handle
        self.requested: dict[str, object] = {}
        self._lock = threading.Lock()
        self._shut_down = False

    @property
    def enabled(self) -> bool:
        return self.tracer_provider is not None

    @property
    def is_shut_down(self) -> bool:
        return self._shut_down

    def delivery_report(self) -> DeliveryReport:
        """What became of the spans, summed over this handle's experiments exporters."""
        return DeliveryReport.combine(
            e.delivery_report() for e in self._reporting if isinstance(e, ExperimentEventsExporter)
        )

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Export what our processors hold, and the spool, within ``timeout_millis``.

        ``True`` only when everything was delivered. Never touches the user's other
        processors.
        """
        deadline = time.monotonic() + max(0.0, timeout_millis / 1000.0)
        ok = True
        for proc in self.span_processors:
            try:
                ok = proc.force_flush(_millis_left(deadline)) and ok
            except Exception:
                ok = False
                logger.warning("otel-experiments: force_flush failed", exc_info=True)
        flushed = {id(proc.span_exporter) for proc in self.span_processors
                   if isinstance(proc, ExperimentBatchSpanProcessor)}
        for exporter in self._reporting:  # replay the spool (our batch processor did)
            if isinstance(exporter, ExperimentEventsExporter) and id(exporter) not in flushed:
                ok = exporter.force_flush(_millis_left(deadline)) and ok
        return ok

    def shutdown(self, timeout_millis: int | None = None) -> bool:
        """Flush, then shut down the processors :func:`configure` added, within
        ``timeout_millis`` (default: ``shutdown_timeout``) whatever the backend does:
        what is not delivered by then is spooled (or counted as dropped). Idempotent.

        The ``TracerProvider`` is never shut down: the application's tracing and its
        other exporters keep working, and :func:`configure` may be called again.
        """
        with self._lock:
            if self._shut_down:
                return True
            self._shut_down = True
        budget = self.shutdown_timeout if timeout_millis is None else timeout_millis / 1000.0
        deadline = time.monotonic() + max(0.0, budget)
        owned = [_exporter_of(proc) for proc in self.span_processors]
        for exporter in owned:
            if isinstance(exporter, ExperimentEventsExporter):
                exporter.begin_shutdown(deadline)  # no request outlives the budget
        ok = self.force_flush(_millis_left(deadline))
        for proc in self.span_processors:
            _retired.add(proc)
            if isinstance(proc, ExperimentSpanProcessor):
                continue  # keeps stamping: harmless, and a later configure() reuses it
            try:
                proc.shutdown()
            except Exception:
                ok = False
                logger.warning("otel-experiments: shutdown failed", exc_info=True)
        with _lock:
            if self.tracer_provider is not None and _handles.get(self.tracer_provider) is self:
                del _handles[self.tracer_provider]
        atexit.unregister(self.shutdown)
        return ok

    def __enter__(self) -> ExperimentsHandle:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.shutdown()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(enabled={self.enabled}, exporter={self.exporter!r}, "
            f"span_processors={len(self.span_processors)}, shut_down={self._shut_down})"
        )


def _millis_left(deadline: float) -> int:
    return max(0, int((deadline - time.monotonic()) * 1000))
