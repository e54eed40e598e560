"""What became of the spans an exporter was given: one set of counts, three views.

:class:`DeliveryStats` is the single source: the exporter, its delivery, spool, replay
and batch processor report into it, and it feeds

* :meth:`DeliveryStats.report` — a frozen :class:`DeliveryReport` (``exporter.delivery_report()``,
  ``handle.delivery_report()``, printed by the runner at the end of a run);
* OpenTelemetry metrics through the global (or given) meter provider, named after the
  SDK's own exporter conventions where one exists (``otel.sdk.exporter.span.exported``
  with ``error.type`` on failure); no-ops until the application configures metrics;
* logs: a debug line per count, a rate-limited warning whenever spans are dropped
  (never silence: the suppressed ones are counted in the next warning and in the
  one-line summary at shutdown, a warning when anything was dropped).

Counts are of *spans*. ``delivered`` includes the spans delivered from the spool
(``replayed``); ``retried`` counts a span once per retry of the body it travelled in;
``spooled`` counts spans written to the spool (they are later ``replayed`` or, if the
spool overflows or a file is corrupt, ``dropped``).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

from .._runtime.forksafe import reinit_after_fork
from .._runtime.logs import RateLimitedWarning

__all__ = ["DROP_REASONS", "DeliveryReport", "DeliveryStats"]

logger = logging.getLogger("otel_experiments")

#: Why spans are dropped (the keys of ``dropped_by_reason`` and ``error.type`` values).
DROP_REASONS: Final = (
    "rejected",               # the backend refused them for good (4xx)
    "encoding",               # could not be JSON-encoded
    "invalid_experiment_id",  # experiment.id is not a valid id
    "spool_off",              # not delivered and spooling is off
    "spool_full",             # the spool reached its bound (oldest bodies deleted)
    "spool_error",            # the spool directory could not be written
    "spool_corrupt",          # a spool file was unreadable
    "queue_full",             # the batch processor's queue was full and no spool
    "shutdown",               # handed over after shutdown, or left when its budget ran out
    "redacted",               # the redaction hook returned None, or failed (fail closed)
    "no_endpoint",            # no usable endpoint was configured
    "unexpected",             # a bug: logged with its traceback
)

# Metric names: the SDK exporter conventions (semantic-conventions ``otel.sdk.*``) where
# one exists; ours under ``otel_experiments.*`` for what the conventions do not cover.
METRIC_EXPORTED: Final = "otel.sdk.exporter.span.exported"
METRIC_RETRIED: Final = "otel_experiments.exporter.span.retried"
METRIC_SPOOLED: Final = "otel_experiments.exporter.span.spooled"
METRIC_REPLAYED: Final = "otel_experiments.exporter.span.replayed"
COMPONENT_TYPE: Final = "otel_experiments_span_exporter"
_component_ids = itertools.count()


@dataclass(frozen=True)
class DeliveryReport:
    """Counts of spans since the exporter was built (see the module docstring)."""

    delivered: int = 0
    retried: int = 0
    spooled: int = 0
    replayed: int = 0
    dropped: int = 0
    dropped_by_reason: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    #: the last failure (``HTTP 503``, ``ConnectError``, ``export timeout``...), never a secret
    last_error: str | None = None
    #: when it happened (``time.time()``)
    last_error_at: float | None = None

    @classmethod
    def combine(cls, reports: Iterable[DeliveryReport]) -> DeliveryReport:
        """The sum of several reports (the last error is the most recent one)."""
        total: dict[str, int] = {}
        counts = [0, 0, 0, 0, 0]
        last: tuple[float, str] | None = None
        for r in reports:
            for i, value in enumerate((r.delivered, r.retried, r.spooled, r.replayed, r.dropped)):
                counts[i] += value
            for reason, value in r.dropped_by_reason.items():
                total[reason] = total.get(reason, 0) + value
            if r.last_error is not None and r.last_error_at is not None \
                    and (last is None or r.last_error_at > last[0]):
                last = (r.last_error_at, r.last_error)
        return cls(counts[0], counts[1], counts[2], counts[3], counts[4], MappingProxyType(total),
                   last[1] if last else None, last[0] if last else None)

    def summary(self) -> str:
        """One line: ``delivered=.. retried=.. spooled=.. replayed=.. dropped=.. (reason=n)``."""
        text = (f"delivered={self.delivered} retried={self.retried} spooled={self.spooled} "
                f"replayed={self.replayed} dropped={self.dropped}")
        if self.dropped_by_reason:
            text += " (" + ", ".join(f"{k}={v}" for k, v in sorted(self.dropped_by_reason.items())) + ")"
        if self.last_error is not None:
            text += f"; last error: {self.last_error}"
        return text


class DeliveryStats:
    """Thread-safe counters of one exporter, mirrored to OpenTelemetry metrics."""

    def __init__(self, *, meter_provider: Any = None, server: str = "") -> None:
        self._lock = threading.Lock()
        self._counts = {"delivered": 0, "retried": 0, "spooled": 0, "replayed": 0}
        self._dropped: dict[str, int] = {}
        self._last_error: tuple[str, float] | None = None
        self._warn_drop = RateLimitedWarning(60.0)
        self._attrs = {"otel.component.type": COMPONENT_TYPE,
                       "otel.component.name": f"{COMPONENT_TYPE}/{next(_component_ids)}"}
        if server:
            self._attrs["server.address"] = server
        self._instruments = _instruments(meter_provider)
        reinit_after_fork(self)

    def _after_fork_in_child(self) -> None:
        # The child counts its own spans: the parent's counts are the parent's report.
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(self._counts, 0)
        self._dropped = {}
        self._last_error = None

    # ---------------------------------------------------------------- recording

    def _add(self, name: str, count: int, metric: str, attrs: Mapping[str, str] | None = None) -> None:
        if count <= 0:
            return
        with self._lock:
            self._counts[name] += count
        logger.debug("otel-experiments: %d span(s) %s", count, name)
        instrument = self._instruments.get(metric)
        if instrument is not None:
            try:
                instrument.add(count, attrs or self._attrs)
            except Exception:  # a broken metrics SDK must not break delivery
                logger.debug("otel-experiments: recording %s failed", metric, exc_info=True)

    def delivered(self, count: int) -> None:
        self._add("delivered", count, METRIC_EXPORTED)

    def replayed(self, count: int) -> None:
        """Spans delivered from the spool: counted as delivered and as replayed."""
        self._add("delivered", count, METRIC_EXPORTED)
        self._add("replayed", count, METRIC_REPLAYED)

    def retried(self, count: int, reason: str) -> None:
        self.error(reason)
        self._add("retried", count, METRIC_RETRIED)

    def spooled(self, count: int) -> None:
        self._add("spooled", count, METRIC_SPOOLED)

    def dropped(self, count: int, reason: str, detail: str = "") -> None:
        """Count lost spans; a rate-limited warning says how many and why."""
        if count <= 0:
            return
        with self._lock:
            self._dropped[reason] = self._dropped.get(reason, 0) + count
            total = sum(self._dropped.values())
        self.error(f"{count} span(s) dropped: {reason}" + (f" ({detail})" if detail else ""))
        self._warn_drop("otel-experiments: %d span(s) dropped (%s%s); %d dropped in all",
                        count, reason, f": {detail}" if detail else "", total)
        instrument = self._instruments.get(METRIC_EXPORTED)
        if instrument is not None:
            try:
                instrument.add(count, {**self._attrs, "error.type": reason})
            except Exception:
                logger.debug("otel-experiments: recording a drop failed", exc_info=True)

    def error(self, reason: str) -> None:
        """Remember the last failure (a reason, never a body or a secret)."""
        with self._lock:
            self._last_error = (reason[:300], time.time())

    # ---------------------------------------------------------------- reading

    def report(self) -> DeliveryReport:
        with self._lock:
            counts = dict(self._counts)
            dropped = dict(self._dropped)
            last = self._last_error
        return DeliveryReport(
            counts["delivered"], counts["retried"], counts["spooled"], counts["replayed"],
            sum(dropped.values()), MappingProxyType(dropped),
            last[0] if last else None, last[1] if last else None,
        )

    def log_summary(self, where: str) -> None:
        """The one line logged at shutdown (a warning when anything was dropped)."""
        report = self.report()
        level = logging.WARNING if report.dropped else logging.INFO
        logger.log(level, "otel-experiments: delivery report for %s: %s", where, report.summary())


def _instruments(meter_provider: Any) -> dict[str, Any]:
    """Counters on the given or global meter provider (the API's proxy until one is set)."""
    try:
        from opentelemetry import metrics

        meter = (meter_provider or metrics.get_meter_provider()).get_meter("otel_experiments")
        return {
            METRIC_EXPORTED: meter.create_counter(
                METRIC_EXPORTED, unit="{span}",
                description="Spans the exporter finished with (error.type set when lost)"),
            METRIC_RETRIED: meter.create_counter(
                METRIC_RETRIED, unit="{span}", description="Spans sent again after a failure"),
            METRIC_SPOOLED: meter.create_counter(
                METRIC_SPOOLED, unit="{span}", description="Spans kept on disk for later"),
            METRIC_REPLAYED: meter.create_counter(
                METRIC_REPLAYED, unit="{span}", description="Spans delivered from the spool"),
        }
    except Exception:  # no metrics API, or a broken provider: counts still work
        logger.debug("otel-experiments: no metrics instruments", exc_info=True)
        return {}
