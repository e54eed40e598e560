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

import gzip
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any, Final
from urllib.parse import quote

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from .. import settings as _settings
from .._runtime.env import redact_url
from .._runtime.forksafe import reinit_after_fork
from .._runtime.logs import WarnOnce
from ..events.bodies import Item, encode_bodies
from ..events.convert import iter_span_events
from ..models import validate_id
from ..settings import ExporterSettings
from .delivery import HttpDelivery
from .rules import Verdict
from .spool import Spool, SpooledBody

__all__ = ["EVENTS_PATH", "ExperimentEventsExporter"]

logger = logging.getLogger("otel_experiments")

#: Path template of the events endpoint, relative to the configured endpoint.
EVENTS_PATH: Final = "/api/v2/llm-obs/v1/experiments/{experiment_id}/events"

#: After a failed export, spooled bodies are retried at most this often.
REPLAY_INTERVAL_S: Final = 5.0


class ExperimentEventsExporter(SpanExporter):
    """Export spans carrying ``experiment.id`` as experiment events over HTTP (httpx).

    Pass ``settings=`` (an :class:`~otel_experiments.settings.ExporterSettings`), or any
    of its fields as keyword arguments; what is left out comes from the environment
    (argument > variable > default, ``docs/configuration.md``), so it can be built with
    no arguments. ``timeout`` (seconds) bounds one whole :meth:`export` call, retries
    included; ``spool_max_bytes=0`` turns the spool off (undelivered bodies are dropped).
    ``backoff_initial`` / ``backoff_max`` (seconds) shape the retry backoff.
    """

    def __init__(
        self,
        *,
        settings: ExporterSettings | None = None,
        endpoint: str | None = None,
        api_key: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        compression: str | None = None,
        max_body_bytes: int | None = None,
        max_spans_per_request: int | None = None,
        spool_dir: str | None = None,
        spool_max_bytes: int | None = None,
        backoff_initial: float = 0.5,
        backoff_max: float = 8.0,
    ) -> None:
        if settings is None:
            settings = ExporterSettings.resolve(
                endpoint=endpoint, api_key=api_key, headers=headers, timeout=timeout,
                compression=compression, max_body_bytes=max_body_bytes,
                max_spans_per_request=max_spans_per_request, spool_dir=spool_dir,
                spool_max_bytes=spool_max_bytes,
            )
        elif not isinstance(settings, ExporterSettings):
            raise TypeError(f"settings must be ExporterSettings, got {type(settings).__name__}")
        #: what this exporter delivers with (read once, when it was built)
        self.settings = settings
        # OTEL_SDK_DISABLED / OTEL_EXPERIMENTS_ENABLED=false: accept spans, send nothing.
        self._enabled = _settings.enabled()
        self._shutdown = False
        self._warn_once = WarnOnce()
        self._delivery = HttpDelivery(
            api_key=settings.api_key,
            headers=settings.headers,
            timeout=settings.timeout,
            compression=settings.compression,
            backoff_initial=backoff_initial,
            backoff_max=backoff_max,
            warn_once=self._warn_once,
        )
        # Nothing touches the disk until a body must be kept.
        self._spool = (
            Spool(settings.spool_dir, settings.endpoint, settings.spool_max_bytes,
                  credentials=settings.credentials, warn_once=self._warn_once)
            if settings.spool_max_bytes > 0 and settings.endpoint
            else None
        )
        self._replay_lock = threading.Lock()
        self._last_replay = float("-inf")
        self._last_ok = True
        reinit_after_fork(self)

    def _after_fork_in_child(self) -> None:
        self._replay_lock = threading.Lock()

    # ------------------------------------------------------------------ public API

    def events_url(self, experiment_id: str) -> str:
        """The URL spans of ``experiment_id`` are posted to (the id is URL-quoted)."""
        return self.settings.endpoint + _events_path(experiment_id)

    def __repr__(self) -> str:
        # ExporterSettings leaves the api key and header values out of its repr.
        return f"{type(self).__name__}({self.settings!r})"

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Send the spans carrying ``experiment.id``; never raises."""
        if self._shutdown:
            self._warn_once(
                "shutdown",
                "otel-experiments: export called after shutdown; %d span(s) dropped",
                len(spans),
            )
            return SpanExportResult.FAILURE
        try:
            return self._export(spans)
        except Exception:  # never into the SDK or the application
            self._warn_once(
                "unexpected", "otel-experiments: unexpected error exporting spans", exc_info=True
            )
            return SpanExportResult.FAILURE

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Send the spooled bodies (within ``timeout_millis`` and the export timeout).

        ``True`` when nothing is left to send; :meth:`export` itself keeps no buffer.
        """
        if self._shutdown or not self._enabled or self._spool is None:
            return True
        timeout = min(self.settings.timeout, max(0.0, timeout_millis / 1000.0))
        try:
            if not self._replay_lock.acquire(timeout=timeout):
                return False
            try:
                self._last_replay = time.monotonic()
                return self._replay(time.monotonic() + timeout)
            finally:
                self._replay_lock.release()
        except Exception:
            self._warn_once(
                "unexpected-replay", "otel-experiments: unexpected error replaying the spool",
                exc_info=True,
            )
            return False

    def shutdown(self) -> None:
        """Stop retrying, close the HTTP client; never waits for a replay. Idempotent.

        A body interrupted mid-retry stays (or goes) in the spool for the next process.
        """
        self._shutdown = True
        self._delivery.close()

    # ------------------------------------------------------------------ internals

    def _export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if not self._enabled:
            return SpanExportResult.SUCCESS
        if not self.settings.endpoint:  # refused at configuration (already logged)
            self._warn_once(
                "no-endpoint",
                "otel-experiments: %d span(s) dropped: no usable endpoint is configured "
                "(see the earlier warning about %s)",
                len(spans), _settings.OTEL_EXPERIMENTS_ENDPOINT,
            )
            return SpanExportResult.FAILURE
        start = time.monotonic()
        deadline = start + self.settings.timeout
        replayed = True
        if self._spool is not None:
            # replay takes at most half the export time, so fresh spans get their turn too
            try:
                replayed = self._maybe_replay(start, start + self.settings.timeout / 2)
            except Exception:  # the fresh spans still go out (or into the spool)
                replayed = False
                self._warn_once(
                    "unexpected-replay", "otel-experiments: unexpected error replaying the spool",
                    exc_info=True,
                )
        groups: dict[str, list[tuple[dict[str, Any], list[dict[str, Any]]]]] = {}
        for experiment_id, event, metrics in iter_span_events(spans):
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
                self._warn_once(
                    "bad-experiment-id",
                    "otel-experiments: %d span(s) dropped: invalid experiment.id (%s)",
                    len(items),
                    str(exc)[:200],
                )
                continue
            try:
                group_ok, group_spooled = self._export_group(experiment_id, items, deadline)
            except Exception:  # this experiment only: the others still go out
                group_ok, group_spooled = False, 0
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
        self._last_ok = ok and replayed
        return SpanExportResult.SUCCESS if ok else SpanExportResult.FAILURE

    def _export_group(
        self, experiment_id: str, items: list[Item], deadline: float
    ) -> tuple[bool, int]:
        """Encode and send one experiment's spans; ``(all delivered, spans spooled)``.

        A body the server rejects for its content (400/413/422) is split in halves and
        each half sent on its own, so one span the server refuses costs only itself,
        not the batch it travelled in.
        """
        ok = True
        spooled = 0
        refused = 0
        bodies, dropped = self._encode(items)
        path = _events_path(experiment_id)
        url = self.settings.endpoint + path
        pending = list(reversed(bodies))  # a stack: halves go next, in order
        while pending:
            body, held = pending.pop()
            content = self._delivery.encode(body)
            try:
                verdict = self._delivery.send_encoded(url, content, len(held), deadline)
            except Exception:
                self._warn_once(
                    "unexpected-send",
                    "otel-experiments: unexpected error sending %d span(s) of experiment %r; "
                    "kept for later",
                    len(held),
                    experiment_id[:80],
                    exc_info=True,
                )
                # keep this body and the ones not tried yet
                spooled += self._keep(path, content, len(held))
                for rest_body, rest in reversed(pending):
                    spooled += self._keep(path, self._delivery.encode(rest_body), len(rest))
                return False, spooled
            if verdict is Verdict.DELIVERED:
                continue
            ok = False
            if verdict is Verdict.KEEP:
                spooled += self._keep(path, content, len(held))
            elif verdict is Verdict.SPLIT and len(held) > 1:
                half = len(held) // 2
                for part in (held[half:], held[:half]):
                    parts, lost = self._encode(part)
                    dropped += lost
                    pending.extend(reversed(parts))
            else:
                refused += len(held)
        if dropped:
            self._warn_once(
                "encode", "otel-experiments: %d span(s) could not be JSON-encoded", dropped
            )
        if refused and refused < len(items):
            self._warn_once(
                "refused",
                "otel-experiments: the server refused %d span(s) of a batch of %d; the "
                "others were sent on their own",
                refused,
                len(items),
            )
        return ok and not dropped, spooled

    def _encode(self, items: list[Item]) -> tuple[list[tuple[bytes, list[Item]]], int]:
        return encode_bodies(
            items, self.settings.max_body_bytes, self.settings.max_spans_per_request, self._warn_oversize
        )

    def _keep(self, path: str, content: bytes, count: int) -> int:
        """Spool one undelivered body; the number of spans kept (0: dropped, logged)."""
        if self._spool is None:
            self._warn_once(
                "dropped",
                "otel-experiments: %d span(s) dropped (spooling is off: %s=0)",
                count,
                _settings.OTEL_EXPERIMENTS_SPOOL_MAX_BYTES,
            )
            return 0
        return count if self._spool.put(path, content, count, self._delivery.content_encoding) else 0

    def _maybe_replay(self, now: float, deadline: float) -> bool:
        """Replay the spool unless the last attempt failed less than REPLAY_INTERVAL_S ago.

        ``False`` when a replay stopped on a retryable failure.
        """
        if not self._last_ok and now - self._last_replay < REPLAY_INTERVAL_S:
            return True
        if not self._replay_lock.acquire(blocking=False):
            return True  # force_flush is replaying right now
        try:
            self._last_replay = now
            return self._replay(deadline)
        finally:
            self._replay_lock.release()

    def _replay(self, deadline: float) -> bool:
        """Send spooled bodies oldest first; stop at the first retryable failure.

        ``True`` when the spool was emptied (as far as this process can see).
        """
        assert self._spool is not None
        delivered = 0
        done = True
        for name in self._spool.pending():
            if self._shutdown or time.monotonic() >= deadline:
                done = False
                break
            entry = self._spool.claim(name)
            if entry is None:
                continue
            try:
                content = self._wire_content(entry)
            except (OSError, ValueError, EOFError) as exc:
                self._spool.quarantine(entry.name, entry.claimed, f"bad gzip data: {exc}")
                continue
            verdict = self._delivery.send_encoded(
                self.settings.endpoint + entry.path, content, entry.spans, deadline
            )
            if verdict is Verdict.KEEP:
                self._spool.release(entry)
                done = False
                break
            self._spool.remove(entry)  # delivered, or rejected for good (already logged)
            if verdict is Verdict.DELIVERED:
                delivered += entry.spans
        if delivered:
            logger.info(
                "otel-experiments: delivered %d spooled span(s) to %s",
                delivered,
                redact_url(self.settings.endpoint),
            )
        return done

    def _warn_oversize(self, size: int) -> None:
        self._warn_once(
            "oversize",
            "otel-experiments: one span is %d bytes, over max_body_bytes=%d; sending it alone",
            size,
            self.settings.max_body_bytes,
        )

    def _wire_content(self, entry: SpooledBody) -> bytes:
        """The spooled body in the encoding the client sends now (compression may differ)."""
        if entry.encoding == self._delivery.content_encoding:
            return entry.content
        if entry.encoding == "gzip":
            return gzip.decompress(entry.content)
        return self._delivery.encode(entry.content)

def _events_path(experiment_id: str) -> str:
    return EVENTS_PATH.format(experiment_id=quote(experiment_id, safe=""))
