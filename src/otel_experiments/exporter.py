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

import email.utils
import gzip
import logging
import os
import random
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, Final
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from .config import ExporterSettings, valid_http_url
from .events import dumps
from .events.convert import iter_span_events, make_body

__all__ = ["EVENTS_PATH", "ExperimentEventsExporter", "parse_retry_after", "redact_url"]

logger = logging.getLogger("otel_experiments")

#: Path template of the events endpoint, relative to the configured endpoint.
EVENTS_PATH: Final = "/api/v2/llm-obs/v1/experiments/{experiment_id}/events"

_COMPRESSIONS: Final = frozenset({"gzip", "none"})
_RETRYABLE_STATUS: Final = frozenset({408, 429})
_MAX_MESSAGE_CHARS: Final = 500
_GZIP_LEVEL: Final = 6

# The envelope around the span and metric fragments; identical to
# ``dumps(make_body(spans, metrics))`` (the tests check it byte for byte).
_PREFIX: Final = b'{"data":{"type":"experiment_events","attributes":{"spans":['
_MIDDLE: Final = b'],"metrics":['
_SUFFIX: Final = b"]}}}"
_ENVELOPE_BYTES: Final = len(_PREFIX) + len(_MIDDLE) + len(_SUFFIX)


def _user_agent() -> str:
    try:
        from importlib.metadata import version

        return f"otel-experiments/{version('otel-experiments')}"
    except Exception:  # pragma: no cover - not installed as a distribution
        return "otel-experiments"


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delay-seconds or HTTP-date), or ``None``."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        current = datetime.now(timezone.utc).timestamp() if now is None else now
        seconds = when.timestamp() - current
    if seconds != seconds or seconds == float("inf"):  # NaN / inf
        return None
    return max(0.0, seconds)


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
        settings = ExporterSettings.from_env()
        if endpoint is not None and not valid_http_url(endpoint):
            logger.warning(
                "otel-experiments: ignoring endpoint %r: expected an http:// or https:// URL; "
                "using %r",
                redact_url(str(endpoint)),
                redact_url(settings.endpoint),
            )
            endpoint = None
        self._endpoint: str = (endpoint if endpoint is not None else settings.endpoint).rstrip("/")
        self._api_key: str | None = api_key if api_key is not None else settings.api_key
        if self._api_key is not None and not _valid_header_value(self._api_key):
            logger.warning("otel-experiments: ignoring the API key: it contains control characters")
            self._api_key = None
        self._extra_headers: dict[str, str] = {}
        for key, value in (headers if headers is not None else settings.headers).items():
            name, text = str(key).strip().lower(), str(value)
            if not _valid_header_name(name) or not _valid_header_value(text):
                logger.warning(
                    "otel-experiments: ignoring header %r: invalid name or value (value not shown)",
                    name,
                )
                continue
            self._extra_headers[name] = text
        self._secrets = tuple(
            secret
            for secret in (self._api_key, *self._extra_headers.values())
            if secret and len(secret) >= 4
        )
        self._timeout: float = _positive(timeout, settings.timeout, "timeout")
        # also accepts opentelemetry's ``Compression`` enum (``Compression.Gzip``)
        raw_comp = compression if compression is not None else settings.compression
        comp = str(getattr(raw_comp, "value", raw_comp)).strip().lower()
        if comp not in _COMPRESSIONS:
            logger.warning(
                "otel-experiments: ignoring compression %r: expected gzip or none; using %r",
                compression,
                settings.compression,
            )
            comp = settings.compression
        self._compression: str = comp
        self._max_body_bytes: int = int(
            _positive(max_body_bytes, settings.max_body_bytes, "max_body_bytes")
        )
        self._max_spans: int = int(
            _positive(
                max_spans_per_request, settings.max_spans_per_request, "max_spans_per_request"
            )
        )
        self._backoff_initial = max(0.0, float(backoff_initial))
        self._backoff_max = max(self._backoff_initial, float(backoff_max))

        self._client: httpx.Client | None = None
        self._client_pid = 0
        self._lock = threading.Lock()
        self._shutdown = False
        self._shutdown_event = threading.Event()
        self._warned: set[str] = set()
        self._warned_lock = threading.Lock()

    # ------------------------------------------------------------------ public API

    @property
    def endpoint(self) -> str:
        return self._endpoint

    @property
    def timeout(self) -> float:
        return self._timeout

    @property
    def compression(self) -> str:
        return self._compression

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
            f"api_key={'<redacted>' if self._api_key else None}, "
            f"headers={sorted(self._extra_headers)!r}, timeout={self._timeout!r}, "
            f"compression={self._compression!r}, max_body_bytes={self._max_body_bytes!r}, "
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
        with self._lock:
            if self._shutdown:
                return
            self._shutdown = True
            self._shutdown_event.set()
            client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except Exception:  # pragma: no cover - closing must not raise
                logger.debug("otel-experiments: error closing the HTTP client", exc_info=True)

    # ------------------------------------------------------------------ internals

    def _warn_once(self, key: str, msg: str, *args: Any, exc_info: bool = False) -> None:
        with self._warned_lock:
            first = key not in self._warned
            self._warned.add(key)
        logger.log(logging.WARNING if first else logging.DEBUG, msg, *args, exc_info=exc_info)

    def _scrub(self, text: str) -> str:
        """Remove our own secrets from text we log (a server may echo request headers)."""
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, "<redacted>")
        return text

    def _get_client(self) -> httpx.Client | None:
        with self._lock:
            if self._shutdown:
                return None
            pid = os.getpid()
            if self._client is None or self._client_pid != pid:
                # a forked child must not share the parent's pooled connections
                headers = {
                    "Content-Type": "application/json",
                    "User-Agent": _user_agent(),
                    **self._extra_headers,
                }
                if self._api_key:
                    headers["Authorization"] = f"Bearer {self._api_key}"
                if self._compression == "gzip":
                    headers["Content-Encoding"] = "gzip"
                self._client = httpx.Client(
                    headers=headers,
                    timeout=self._timeout,
                    follow_redirects=False,
                    limits=httpx.Limits(max_keepalive_connections=4, keepalive_expiry=30.0),
                )
                self._client_pid = pid
            return self._client

    def _export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        deadline = time.monotonic() + self._timeout
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
                if not self._send(url, body, count, deadline):
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

    def _backoff(self, attempt: int) -> float:
        delay: float = min(self._backoff_max, self._backoff_initial * 2.0 ** (attempt - 1))
        return delay * random.uniform(0.5, 1.0)  # jitter

    def _send(self, url: str, body: bytes, count: int, deadline: float) -> bool:
        content = gzip.compress(body, _GZIP_LEVEL, mtime=0) if self._compression == "gzip" else body
        attempt = 0
        while True:
            client = self._get_client()
            if client is None:
                return False
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._warn_once(
                    "deadline",
                    "otel-experiments: export timeout (%ss) reached; %d span(s) dropped",
                    self._timeout,
                    count,
                )
                return False
            retry_after: float | None = None
            try:
                response = client.post(url, content=content, timeout=remaining)
            except httpx.TransportError as exc:
                reason = type(exc).__name__
            except (httpx.HTTPError, RuntimeError) as exc:  # e.g. the client was closed
                if self._shutdown:
                    return False
                self._warn_once(
                    f"error:{type(exc).__name__}",
                    "otel-experiments: could not send %d span(s): %s",
                    count,
                    type(exc).__name__,
                )
                return False
            else:
                status = response.status_code
                if 200 <= status < 300:
                    return True
                message = self._scrub(_server_message(response))
                if status not in _RETRYABLE_STATUS and status < 500:
                    self._warn_once(
                        f"status:{status}",
                        "otel-experiments: the experiments endpoint rejected %d span(s) with "
                        "HTTP %d (not retried): %s",
                        count,
                        status,
                        message,
                    )
                    return False
                reason = f"HTTP {status}"
                retry_after = parse_retry_after(response.headers.get("retry-after"))
            attempt += 1
            delay = retry_after if retry_after is not None else self._backoff(attempt)
            if time.monotonic() + delay >= deadline:
                self._warn_once(
                    f"giveup:{reason}",
                    "otel-experiments: giving up on %d span(s) after %d attempt(s) (%s): "
                    "the export timeout (%ss) would be exceeded",
                    count,
                    attempt,
                    reason,
                    self._timeout,
                )
                return False
            logger.debug(
                "otel-experiments: retrying in %.3fs after %s (attempt %d)", delay, reason, attempt
            )
            if self._shutdown_event.wait(delay):
                return False


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


def redact_url(url: str) -> str:
    """``url`` without a password in its userinfo (``https://user:<redacted>@host``)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:<redacted>@{netloc}"))


_TOKEN_CHARS: Final = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz")


def _valid_header_name(name: str) -> bool:
    return bool(name) and all(ch in _TOKEN_CHARS for ch in name)


def _valid_header_value(value: str) -> bool:
    return all(ch == "\t" or (ch >= " " and ch != "\x7f") for ch in value) and value.isascii()


def _server_message(response: httpx.Response) -> str:
    try:
        text = response.text
    except Exception:
        return "<unreadable response body>"
    text = " ".join(text.split())
    if len(text) > _MAX_MESSAGE_CHARS:
        text = text[:_MAX_MESSAGE_CHARS] + "..."
    return text or "<empty response body>"


def _positive(value: float | None, default: float, name: str) -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        logger.warning(
            "otel-experiments: ignoring %s=%r: expected a positive number; using %r",
            name,
            value,
            default,
        )
        return default
    if value == float("inf"):
        return default
    return float(value)
