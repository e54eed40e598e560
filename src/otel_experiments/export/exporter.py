"""``ExperimentEventsExporter``: ships finished spans to the experiment events API.

For every span carrying ``experiment.id`` it POSTs
``{endpoint}/api/v2/llm-obs/v1/experiments/{experiment_id}/events`` with the body
:func:`otel_experiments.events.spans_to_event_bodies` describes, one experiment per
request, split by size and span count. Registered as the ``opentelemetry_traces_exporter``
entry point ``experiments``, so ``OTEL_TRACES_EXPORTER=experiments`` works with
``opentelemetry-instrument``. What happens to a body the backend does not accept is
:mod:`otel_experiments.export.rules`.

Experiments are independent: a span whose ``experiment.id`` is not a valid id is
dropped (one warning), and a failure while encoding or sending one experiment's spans
never affects the others. The exporter never raises into the SDK: :meth:`export`
returns a ``SpanExportResult``.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import replace
from functools import partial
from typing import Any, Final
from urllib.parse import quote, urlsplit

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from .. import settings as _settings
from .._runtime.env import redact_url
from .._runtime.logs import WarnOnce
from ..events.convert import KeptAttributes, iter_span_events
from ..events.dialects import DDTRACE
from ..events.redact import RedactHook, Redactor
from ..models import validate_id
from ..settings import ExporterSettings
from .delivery import HttpDelivery
from .replay import REPLAY_INTERVAL_S, SpoolReplayer
from .report import DeliveryReport, DeliveryStats
from .sending import GroupSender
from .spool import Spool

__all__ = ["EVENTS_PATH", "REPLAY_INTERVAL_S", "ExperimentEventsExporter"]

logger = logging.getLogger("otel_experiments")

#: Path template of the events endpoint, relative to the configured endpoint.
EVENTS_PATH: Final = "/api/v2/llm-obs/v1/experiments/{experiment_id}/events"
#: Where ddtrace posts an experiment's events (``dialect="ddtrace"``).
DDTRACE_EVENTS_PATH: Final = "/api/unstable/llm-obs/v1/experiments/{experiment_id}/events"


class ExperimentEventsExporter(SpanExporter):
    """Export spans carrying ``experiment.id`` as experiment events over HTTP (httpx).

    Pass ``settings=`` (an :class:`~otel_experiments.settings.ExporterSettings`), or any
    of its fields as keyword arguments; what is left out comes from the environment
    (argument > variable > default, ``docs/configuration.md``), so it can be built with
    no arguments. ``timeout`` (seconds) bounds one whole :meth:`export` call, retries
    included; ``shutdown_timeout`` bounds shutting down (and the interpreter's exit);
    ``spool_max_bytes=0`` turns the spool off (undelivered bodies are dropped, counted).
    ``backoff_initial`` / ``backoff_max`` (seconds) shape the retry backoff;
    ``meter_provider`` receives the exporter's counters (default: the global one);
    ``background_replay=False`` leaves spooled bodies to ``export()`` / ``force_flush()``;
    ``redact`` is a hook over each event about to be sent (:mod:`otel_experiments.events.redact`);
    ``dialect="ddtrace"`` speaks Datadog's SDK's dialect (``events/dialects.py``), to
    Datadog itself.
    """

    def __init__(
        self,
        *,
        settings: ExporterSettings | None = None,
        endpoint: str | None = None,
        api_key: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        shutdown_timeout: float | None = None,
        compression: str | None = None,
        max_body_bytes: int | None = None,
        max_spans_per_request: int | None = None,
        dialect: str | None = None,
        spool_dir: str | None = None,
        spool_max_bytes: int | None = None,
        backoff_initial: float = 0.5,
        backoff_max: float = 8.0,
        meter_provider: Any = None,
        background_replay: bool = True,
        redact: RedactHook | None = None,
        span_attributes: Sequence[str] | None = None,
    ) -> None:
        if settings is None:
            settings = ExporterSettings.resolve(
                endpoint=endpoint, api_key=api_key, headers=headers, timeout=timeout,
                shutdown_timeout=shutdown_timeout, compression=compression,
                max_body_bytes=max_body_bytes, max_spans_per_request=max_spans_per_request,
                spool_dir=spool_dir, spool_max_bytes=spool_max_bytes,
                span_attributes=span_attributes,
            )
        elif not isinstance(settings, ExporterSettings):
            raise TypeError(f"settings must be ExporterSettings, got {type(settings).__name__}")
        if dialect is not None:  # the argument wins over OTEL_EXPERIMENTS_DIALECT
            settings = replace(settings, dialect=_settings.dialect_arg(dialect))
        #: what this exporter delivers with (read once, when it was built)
        self.settings = settings
        # OTEL_SDK_DISABLED / OTEL_EXPERIMENTS_ENABLED=false: accept spans, send nothing.
        self._enabled = _settings.enabled()
        self._shutdown = False
        self._warn_once = WarnOnce()
        # masking happens before encoding: nothing unmasked reaches the wire or the spool
        self._redactor = Redactor(settings.redact, hash_key=settings.hash_user_ids_key,
                                  hook=redact)
        self._kept = KeptAttributes(settings.span_attributes)
        for rule in self._redactor.invalid:
            self._warn_once(f"redact:{rule}", "otel-experiments: %s: %r is not a JSON path "
                            "this package understands; ignored", _settings.OTEL_EXPERIMENTS_REDACT,
                            rule[:100])
        self._stats = DeliveryStats(
            meter_provider=meter_provider, server=urlsplit(settings.endpoint).hostname or ""
        )
        self._delivery = HttpDelivery(
            api_key=settings.api_key,
            headers=settings.headers,
            timeout=settings.timeout,
            compression=settings.compression,
            backoff_initial=backoff_initial,
            backoff_max=backoff_max,
            warn_once=self._warn_once,
            stats=self._stats,
        )
        # Nothing touches the disk until a body must be kept.
        self._spool = (
            Spool(settings.spool_dir, settings.endpoint, settings.spool_max_bytes,
                  credentials=settings.credentials, warn_once=self._warn_once,
                  on_loss=self._stats.dropped)
            if settings.spool_max_bytes > 0 and settings.endpoint
            else None
        )
        self._sender = GroupSender(settings, self._delivery, self._spool, self._stats,
                                   self._warn_once, partial(_events_path, dialect=settings.dialect))
        self._replayer = (
            SpoolReplayer(self._spool, self._delivery, settings.endpoint, self._stats,
                          timeout=settings.timeout, background=background_replay and self._enabled)
            if self._spool is not None
            else None
        )
        # Shutting down: no request starts or is waited for past this (monotonic) time.
        self._send_until = float("inf")
        self._abort_timer: threading.Timer | None = None
        self._flushed_drops = 0
        self._summary_logged = False
        # Bound the interpreter's exit even when the SDK's BatchSpanProcessor (which
        # waits for its worker without a limit) shuts us down: registered after the
        # provider's own exit hook, so it runs first (atexit is LIFO).
        ref = weakref.ref(self)

        def at_exit() -> None:
            exporter = ref()
            if exporter is not None:
                exporter.begin_shutdown(time.monotonic() + exporter.settings.shutdown_timeout)

        self._at_exit = at_exit
        atexit.register(at_exit)
        if self._replayer is not None and self._enabled and self._spool is not None \
                and self._spool.pending():
            # bodies an earlier process left: deliver them without waiting for traffic
            self._replayer.kick()

    # ------------------------------------------------------------------ public API

    def events_url(self, experiment_id: str) -> str:
        """The URL spans of ``experiment_id`` are posted to (the id is URL-quoted)."""
        return self.settings.endpoint + _events_path(experiment_id, self.settings.dialect)

    def __repr__(self) -> str:
        # ExporterSettings leaves the api key and header values out of its repr.
        return f"{type(self).__name__}({self.settings!r})"

    def delivery_report(self) -> DeliveryReport:
        """Spans delivered, retried, spooled, replayed and dropped (by reason) so far."""
        return self._stats.report()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Send the spans carrying ``experiment.id``; never raises."""
        if self._shutdown:
            self._stats.dropped(len(spans), "shutdown", "export() after shutdown()")
            return SpanExportResult.FAILURE
        try:
            return self._export(spans)
        except Exception:  # never into the SDK or the application
            self._stats.dropped(len(spans), "unexpected")
            self._warn_once(
                "unexpected", "otel-experiments: unexpected error exporting spans", exc_info=True
            )
            return SpanExportResult.FAILURE

    def record_dropped(self, count: int, reason: str) -> None:
        """Count spans lost before they reached :meth:`export` (a full queue, a shutdown)."""
        self._stats.dropped(count, reason)

    def spool_spans(self, spans: Sequence[ReadableSpan], reason: str = "queue_full") -> None:
        """Keep spans for later without touching the network (the batch processor's
        overflow); counted as dropped for ``reason`` when the spool is off. Never raises."""
        try:
            if self._spool is None or not self._enabled:
                if self._enabled:
                    self._stats.dropped(len(spans), reason)
                return
            self._export(spans, send=False)
        except Exception:
            self._stats.dropped(len(spans), "unexpected")
            self._warn_once("unexpected-spool", "otel-experiments: unexpected error spooling "
                            "spans", exc_info=True)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Send the spooled bodies (within ``timeout_millis`` and the export timeout).

        ``True`` only when everything was delivered: nothing is left in the spool and no
        span was dropped since the previous flush. :meth:`export` keeps no buffer.
        """
        ok = True
        try:
            if not self._shutdown and self._enabled and self._replayer is not None:
                budget = max(0.0, timeout_millis / 1000.0)
                now = time.monotonic()
                deadline = min(now + min(self.settings.timeout, budget), self._send_until)
                ok = self._replay_now(now, deadline)
        except Exception:
            ok = False
            self._warn_once(
                "unexpected-replay", "otel-experiments: unexpected error replaying the spool",
                exc_info=True,
            )
        dropped = self._stats.report().dropped
        ok = ok and dropped == self._flushed_drops
        self._flushed_drops = dropped
        return ok

    def begin_shutdown(self, deadline: float) -> None:
        """Shutting down by ``deadline`` (monotonic): stop sending a little before it, so
        what is not delivered by then is spooled (or counted) in time. Idempotent; the
        earliest deadline wins. Nothing is closed yet: :meth:`shutdown` does that."""
        budget = deadline - time.monotonic()
        # keep a fifth of the budget (at most 1 s) for writing the rest to the spool
        send_until = deadline - min(1.0, max(0.0, budget) / 5)
        if send_until >= self._send_until:
            return
        self._send_until = send_until
        timer = threading.Timer(max(0.0, send_until - time.monotonic()), self._stop_sending)
        timer.daemon = True
        previous, self._abort_timer = self._abort_timer, timer
        if previous is not None:
            previous.cancel()
        try:
            timer.start()
        except RuntimeError:  # interpreter finalizing: no thread; deadlines still apply
            self._abort_timer = None

    def flush_spool(self, deadline: float) -> bool:
        """Replay the spool until ``deadline`` (and the shutdown cut-off); ``True`` if empty."""
        if self._replayer is None or not self._enabled or self._shutdown:
            return True
        try:
            return self._replay_now(time.monotonic(), min(deadline, self._send_until))
        except Exception:
            self._warn_once("unexpected-replay", "otel-experiments: unexpected error "
                            "replaying the spool", exc_info=True)
            return False

    def shutdown(self) -> None:
        """Stop sending, close the HTTP client, log the delivery report. Idempotent; returns
        at once: what is in the spool stays there for a later process."""
        self._shutdown = True
        self._stop_sending()
        if self._replayer is not None:
            self._replayer.stop(join_timeout=1.0)  # woken by the closed client: quick
        if self._abort_timer is not None:
            self._abort_timer.cancel()
        atexit.unregister(self._at_exit)
        if not self._summary_logged:
            self._summary_logged = True
            self._stats.log_summary(redact_url(self.settings.endpoint))

    # ------------------------------------------------------------------ internals

    def _replay_now(self, now: float, deadline: float) -> bool:
        assert self._replayer is not None
        if self._send_until != float("inf"):
            # shutting down: a backend that just failed gets no second wait of the budget
            return self._replayer.maybe_replay(now, deadline, flush=True)
        return self._replayer.replay(deadline, wait=True)

    def _redact(self, redactor: Redactor, event: dict[str, Any],
                metrics: list[dict[str, Any]]) -> dict[str, Any] | None:
        """The masked event, or ``None`` (counted): dropped by the hook, or the hook failed
        (fail closed: a broken redaction never sends the unmasked span)."""
        try:
            masked = redactor(event, metrics)
        except Exception:
            self._warn_once("redact-hook", "otel-experiments: the redaction hook failed; "
                            "the span is dropped, not sent unmasked", exc_info=True)
            masked = None
        if masked is None:
            self._stats.dropped(1, "redacted")
        return masked

    def _stop_sending(self) -> None:
        """Wake every request being waited for (its body goes to the spool), send no more."""
        if self._replayer is not None:
            self._replayer.stop()
        self._delivery.close()

    def _export(self, spans: Sequence[ReadableSpan], send: bool = True) -> SpanExportResult:
        if not self._enabled:
            return SpanExportResult.SUCCESS
        if not self.settings.endpoint:  # refused at configuration (already logged)
            self._stats.dropped(len(spans), "no_endpoint")
            self._warn_once(
                "no-endpoint",
                "otel-experiments: %d span(s) dropped: no usable endpoint is configured "
                "(see the earlier warning about %s)",
                len(spans), _settings.OTEL_EXPERIMENTS_ENDPOINT,
            )
            return SpanExportResult.FAILURE
        start = time.monotonic()
        deadline = min(start + self.settings.timeout, self._send_until) if send else start
        replayed = True
        if self._replayer is not None and send:
            # replay takes at most half the export time, so fresh spans get their turn too
            try:
                replayed = self._replayer.maybe_replay(
                    start, min(deadline, start + self.settings.timeout / 2)
                )
            except Exception:  # the fresh spans still go out (or into the spool)
                replayed = False
                self._warn_once(
                    "unexpected-replay", "otel-experiments: unexpected error replaying the spool",
                    exc_info=True,
                )
        groups: dict[str, list[tuple[dict[str, Any], list[dict[str, Any]]]]] = {}
        redactor = self._redactor if self._redactor else None
        for experiment_id, event, metrics in iter_span_events(spans, self._kept):
            if redactor is not None:
                masked = self._redact(redactor, event, metrics)
                if masked is None:
                    continue
                event = masked
            group = groups.get(experiment_id)
            if group is None:
                group = groups[experiment_id] = []
            group.append((event, metrics))
        ok = True
        spooled = 0
        for experiment_id, items in groups.items():
            try:
                validate_id(experiment_id, "experiment.id")
            except (TypeError, ValueError) as exc:
                ok = False
                self._stats.dropped(len(items), "invalid_experiment_id")
                self._warn_once(
                    "bad-experiment-id",
                    "otel-experiments: %d span(s) dropped: invalid experiment.id (%s)",
                    len(items),
                    str(exc)[:200],
                )
                continue
            try:
                group_ok, group_spooled = self._sender.send_group(
                    experiment_id, items, deadline, send
                )
            except Exception:  # this experiment only: the others still go out
                group_ok, group_spooled = False, 0
                self._stats.dropped(len(items), "unexpected")
                self._warn_once(
                    "unexpected-group",
                    "otel-experiments: unexpected error exporting %d span(s) of experiment %r",
                    len(items),
                    experiment_id[:80],
                    exc_info=True,
                )
            ok = ok and group_ok
            spooled += group_spooled
        if spooled:
            self._warn_once(
                "spooled",
                "otel-experiments: spooled %d span(s) for later delivery to %s",
                spooled,
                redact_url(self.settings.endpoint),
            )
            if self._replayer is not None:
                self._replayer.kick()
        elif ok and groups and self._replayer is not None:
            self._replayer.wake()  # the backend answers: a waiting replay may go now
        if self._replayer is not None and send:
            self._replayer.note_export(start, ok and replayed)
        return SpanExportResult.SUCCESS if ok and replayed else SpanExportResult.FAILURE


def _events_path(experiment_id: str, dialect: str = "otel") -> str:
    template = DDTRACE_EVENTS_PATH if dialect == DDTRACE else EVENTS_PATH
    return template.format(experiment_id=quote(experiment_id, safe=""))
