"""HTTP delivery of encoded bodies: one pooled httpx client, gzip, retries.

Retries with exponential backoff and jitter on connection errors, 408, 429 and 5xx
(``Retry-After`` wins when sent), all within the caller's deadline; any other 4xx is
logged once with the server's message and not retried. :meth:`HttpDelivery.send`
returns an :class:`Outcome` so the caller can keep what failed for a retryable reason
(the exporter's spool). Secrets (the API key and configured header values) are
scrubbed from everything logged.
"""

from __future__ import annotations

import email.utils
import enum
import gzip
import logging
import os
import random
import threading
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

import httpx

__all__ = ["HttpDelivery", "Outcome", "WarnOnce", "parse_retry_after", "redact_url"]

logger = logging.getLogger("otel_experiments")

_RETRYABLE_STATUS: Final = frozenset({408, 429})
_MAX_MESSAGE_CHARS: Final = 500
_MAX_CONNECT_ATTEMPTS: Final = 3
_GZIP_LEVEL: Final = 6


class Outcome(enum.Enum):
    """What became of one body."""

    #: 2xx.
    DELIVERED = "delivered"
    #: Worth sending again later: connection error, timeout, 408, 429, 5xx, the export
    #: deadline reached, or the exporter shut down mid-retry.
    RETRYABLE = "retryable"
    #: Any other 4xx (or an unexpected client error): it would fail again.
    REJECTED = "rejected"


class WarnOnce:
    """The first message per key is a warning, repeats are debug: logs stay readable."""

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, key: str, msg: str, *args: Any, exc_info: bool = False) -> None:
        with self._lock:
            first = key not in self._seen
            self._seen.add(key)
        logger.log(logging.WARNING if first else logging.DEBUG, msg, *args, exc_info=exc_info)


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


class HttpDelivery:
    """POST bodies to URLs with retries inside a deadline. Thread-safe; fork-aware."""

    def __init__(
        self,
        *,
        api_key: str | None,
        headers: Mapping[str, str],
        timeout: float,
        compression: str,
        backoff_initial: float,
        backoff_max: float,
        warn_once: WarnOnce,
    ) -> None:
        self._api_key = api_key
        self._extra_headers = dict(headers)
        self._secrets = tuple(
            secret for secret in (api_key, *self._extra_headers.values()) if secret and len(secret) >= 4
        )
        self._timeout = timeout
        self._compression = compression
        self._backoff_initial = max(0.0, float(backoff_initial))
        self._backoff_max = max(self._backoff_initial, float(backoff_max))
        self._warn_once = warn_once
        self._client: httpx.Client | None = None
        self._client_pid = 0
        self._lock = threading.Lock()
        self._closed = False
        self._closed_event = threading.Event()

    def close(self) -> None:
        """Stop retrying and close the client. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._closed_event.set()
            client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except Exception:  # pragma: no cover - closing must not raise
                logger.debug("otel-experiments: error closing the HTTP client", exc_info=True)

    def _scrub(self, text: str) -> str:
        """Remove our own secrets from text we log (a server may echo request headers)."""
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, "<redacted>")
        return text

    def _get_client(self) -> httpx.Client | None:
        with self._lock:
            if self._closed:
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

    def _backoff(self, attempt: int) -> float:
        delay: float = min(self._backoff_max, self._backoff_initial * 2.0 ** (attempt - 1))
        return delay * random.uniform(0.5, 1.0)  # jitter

    @property
    def content_encoding(self) -> str:
        """``gzip`` or ``identity``: how :meth:`encode` leaves a body on the wire."""
        return "gzip" if self._compression == "gzip" else "identity"

    def encode(self, body: bytes) -> bytes:
        """``body`` as it goes on the wire (gzip'd when compression is on)."""
        return gzip.compress(body, _GZIP_LEVEL, mtime=0) if self._compression == "gzip" else body

    def send(self, url: str, body: bytes, count: int, deadline: float) -> Outcome:
        """Encode ``body`` and :meth:`send_encoded` it."""
        return self.send_encoded(url, self.encode(body), count, deadline)

    def send_encoded(self, url: str, content: bytes, count: int, deadline: float) -> Outcome:
        """POST already-encoded ``content`` with retries until ``deadline`` (monotonic)."""
        attempt = 0
        refused = 0
        while True:
            client = self._get_client()
            if client is None:
                return Outcome.RETRYABLE  # shut down: not the body's fault
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._warn_once(
                    "deadline",
                    "otel-experiments: export timeout (%ss) reached; %d span(s) not sent",
                    self._timeout,
                    count,
                )
                return Outcome.RETRYABLE
            retry_after: float | None = None
            try:
                response = client.post(url, content=content, timeout=remaining)
            except httpx.TransportError as exc:
                reason = type(exc).__name__
                # Nothing listening: a server restart is over in a second or two, a
                # stopped server is not. Give up early (the exporter spools the body)
                # rather than hold the export, and the application's exit, for the timeout.
                if isinstance(exc, httpx.ConnectError):
                    refused += 1
                    if refused >= _MAX_CONNECT_ATTEMPTS:
                        self._warn_once(
                            "unreachable",
                            "otel-experiments: the experiments endpoint is unreachable (%s) "
                            "after %d attempts; %d span(s) not sent",
                            reason,
                            refused,
                            count,
                        )
                        return Outcome.RETRYABLE
            except (httpx.HTTPError, RuntimeError) as exc:  # e.g. the client was closed
                if self._closed:
                    return Outcome.RETRYABLE
                self._warn_once(
                    f"error:{type(exc).__name__}",
                    "otel-experiments: could not send %d span(s): %s",
                    count,
                    type(exc).__name__,
                )
                return Outcome.REJECTED
            else:
                status = response.status_code
                if 200 <= status < 300:
                    return Outcome.DELIVERED
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
                    return Outcome.REJECTED
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
                return Outcome.RETRYABLE
            logger.debug(
                "otel-experiments: retrying in %.3fs after %s (attempt %d)", delay, reason, attempt
            )
            if self._closed_event.wait(delay):
                return Outcome.RETRYABLE


def _server_message(response: httpx.Response) -> str:
    try:
        text = response.text
    except Exception:
        return "<unreadable response body>"
    text = " ".join(text.split())
    if len(text) > _MAX_MESSAGE_CHARS:
        text = text[:_MAX_MESSAGE_CHARS] + "..."
    return text or "<empty response body>"


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


