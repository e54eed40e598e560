"""``ExperimentEventsExporter``: ships finished spans to the experiment events API.

For every span carrying ``experiment.id`` it POSTs
``{endpoint}/api/v2/llm-obs/v1/experiments/{experiment_id}/events`` with the body
:func:`otel_experiments.events.spans_to_event_bodies` describes, one experiment per
request, split by size and span count. Registered as the ``opentelemetry_traces_exporter``
entry point ``experiments``, so ``OTEL_TRACES_EXPORTER=experiments`` works with
``opentelemetry-instrument``.

The exporter never raises into the SDK: :meth:`export` returns a ``SpanExportResult``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final
from urllib.parse import quote

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from . import config
from .config import ExporterSettings
from .delivery import HttpDelivery, WarnOnce, parse_retry_after, redact_url
from .events import dumps
from .events.convert import iter_span_events, make_body

__all__ = ["EVENTS_PATH", "ExperimentEventsExporter", "parse_retry_after", "redact_url"]

logger = logging.getLogger("otel_experiments")

#: Path template of the events endpoint, relative to the configured endpoint.
EVENTS_PATH: Final = "/api/v2/llm-obs/v1/experiments/{experiment_id}/events"

# The envelope around the span and metric fragments; identical to
# ``dumps(make_body(spans, metrics))`` (the tests check it byte for byte).
_PREFIX: Final = b'{"data":{"type":"experiment_events","attributes":{"spans":['
_MIDDLE: Final = b'],"metrics":['
_SUFFIX: Final = b"]}}}"
_ENVELOPE_BYTES: Final = len(_PREFIX) + len(_MIDDLE) + len(_SUFFIX)


class _Fragment:
    """One span's encoded JSON and its metrics' encoded JSON: they always travel together."""

    __slots__ = ("metrics", "size", "span")

    def __init__(self, span: bytes, metrics: list[bytes]) -> None:
        self.span = span
        self.metrics = metrics
        # the fragment's bytes plus one separating comma per element
        self.size = len(span) + 1 + sum(len(m) + 1 for m in metrics)


class ExperimentEventsExporter(SpanExporter):
    """Export spans carrying ``experiment.id`` as experiment events over HTTP (httpx).

    Every argument left ``None`` comes from :meth:`ExporterSettings.from_env`
    (``OTEL_EXPERIMENTS_ENDPOINT``, ``OTEL_EXPERIMENTS_API_KEY``,
    ``OTEL_EXPERIMENTS_HEADERS``, ``OTEL_EXPERIMENTS_TIMEOUT``,
    ``OTEL_EXPERIMENTS_COMPRESSION``, ``OTEL_EXPERIMENTS_MAX_BODY_BYTES``,
    ``OTEL_EXPERIMENTS_MAX_SPANS_PER_REQUEST``), so it can be built with no arguments.

    ``timeout`` (seconds) bounds one whole :meth:`export` call, retries included.
    ``backoff_initial``/``backoff_max`` (seconds) shape the exponential backoff with
    jitter used for connection errors, 408, 429 and 5xx; ``Retry-After`` wins when sent.
    """

    def __init__(
        self,
        *,
        endpoint: str | None = None,
        api_key: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        compression: str | None = None,
        max_body_bytes: int | None = None,
        max_spans_per_request: int | None = None,
        backoff_initial: float = 0.5,
        backoff_max: float = 8.0,
    ) -> None:
        if compression is not None:  # also accept opentelemetry's ``Compression`` enum
            compression = str(getattr(compression, "value", compression)).strip().lower()
        settings = ExporterSettings.resolve(
            endpoint=endpoint,
            api_key=api_key,
            headers=headers,
            timeout=timeout,
            compression=compression,
            max_body_bytes=max_body_bytes,
            max_spans_per_request=max_spans_per_request,
        )
        self._settings = settings
        self._endpoint = settings.endpoint
        self._max_body_bytes = settings.max_body_bytes
        self._max_spans = settings.max_spans_per_request
        # OTEL_SDK_DISABLED / OTEL_EXPERIMENTS_ENABLED=false: accept spans, send nothing.
        self._enabled = config.enabled()
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

    # ------------------------------------------------------------------ public API

    @property
    def endpoint(self) -> str:
        return self._endpoint

    @property
    def timeout(self) -> float:
        return self._settings.timeout

    @property
    def compression(self) -> str:
        return self._settings.compression

    @property
    def max_body_bytes(self) -> int:
        return self._max_body_bytes

    @property
    def max_spans_per_request(self) -> int:
        return self._max_spans

    def events_url(self, experiment_id: str) -> str:
        """The URL spans of ``experiment_id`` are posted to (the id is URL-quoted)."""
        return self._endpoint + EVENTS_PATH.format(experiment_id=quote(experiment_id, safe=""))

    def __repr__(self) -> str:
        # Secrets (api key, header values) are never shown.
        return (
            f"{type(self).__name__}(endpoint={redact_url(self._endpoint)!r}, "
            f"api_key={'<redacted>' if self._settings.api_key else None}, "
            f"headers={sorted(self._settings.headers)!r}, timeout={self.timeout!r}, "
            f"compression={self.compression!r}, max_body_bytes={self._max_body_bytes!r}, "
            f"max_spans_per_request={self._max_spans!r})"
        )

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
        """Nothing is buffered here: every :meth:`export` call sends before returning."""
        return True

    def shutdown(self) -> None:
        """Stop retrying, close the HTTP client. Idempotent."""
        self._shutdown = True
        self._delivery.close()

    # ------------------------------------------------------------------ internals

    def _export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if not self._enabled:
            return SpanExportResult.SUCCESS
        deadline = time.monotonic() + self.timeout
        groups: dict[str, list[tuple[dict[str, Any], list[dict[str, Any]]]]] = {}
        for experiment_id, event, metrics in iter_span_events(spans):
            group = groups.get(experiment_id)
            if group is None:
                group = groups[experiment_id] = []
            group.append((event, metrics))
        ok = True
        for experiment_id, items in groups.items():
            bodies, dropped = self._encode(items)
            if dropped:
                ok = False
                self._warn_once(
                    "encode", "otel-experiments: %d span(s) could not be JSON-encoded", dropped
                )
            url = self.events_url(experiment_id)
            for body, count in bodies:
                if not self._delivery.send(url, body, count, deadline):
                    ok = False
        return SpanExportResult.SUCCESS if ok else SpanExportResult.FAILURE

    def _encode(
        self, items: list[tuple[dict[str, Any], list[dict[str, Any]]]]
    ) -> tuple[list[tuple[bytes, int]], int]:
        """Encode one experiment's spans into bodies; returns ``(bodies, dropped spans)``.

        Common case: everything fits in one request, encoded in one call. Otherwise each
        span (with its metrics) is encoded on its own and the fragments are packed.
        """
        if len(items) <= self._max_spans:
            try:
                body: bytes | None = dumps(
                    make_body([e for e, _ in items], [m for _, ms in items for m in ms])
                )
            except Exception:
                body = None  # find the culprit span below
            if body is not None and len(body) <= self._max_body_bytes:
                return [(body, len(items))], 0
        fragments: list[_Fragment] = []
        dropped = 0
        for event, metrics in items:
            try:
                fragments.append(_Fragment(dumps(event), [dumps(m) for m in metrics]))
            except Exception:
                dropped += 1
        return list(self._bodies(fragments)), dropped

    def _bodies(self, fragments: list[_Fragment]) -> Iterator[tuple[bytes, int]]:
        """Pack fragments into bodies within the size and span-count limits."""
        limit, max_spans = self._max_body_bytes, self._max_spans
        batch: list[_Fragment] = []
        size = _ENVELOPE_BYTES
        for fragment in fragments:
            if batch and (len(batch) >= max_spans or size + fragment.size > limit):
                yield _assemble(batch), len(batch)
                batch, size = [], _ENVELOPE_BYTES
            if not batch and size + fragment.size > limit:
                self._warn_once(
                    "oversize",
                    "otel-experiments: one span is %d bytes, over max_body_bytes=%d; "
                    "sending it alone",
                    fragment.size,
                    limit,
                )
            batch.append(fragment)
            size += fragment.size
        if batch:
            yield _assemble(batch), len(batch)

def _assemble(batch: list[_Fragment]) -> bytes:
    metrics = [m for fragment in batch for m in fragment.metrics]
    return b"".join(
        (
            _PREFIX,
            b",".join([fragment.span for fragment in batch]),
            _MIDDLE,
            b",".join(metrics),
            _SUFFIX,
        )
    )
