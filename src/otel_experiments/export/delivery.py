"""HTTP delivery of encoded bodies: one pooled httpx client, gzip, retries in a deadline.

What each answer means (retry, keep, split, drop) is :mod:`.rules`; this module applies
it: :meth:`HttpDelivery.send_encoded` retries within the caller's deadline and returns
the final :class:`~.rules.Verdict` (DELIVERED, KEEP, SPLIT or DROP) so the exporter can
spool or split what was not delivered. Secrets (the API key and configured header
values) are scrubbed from everything logged.

The deadline bounds a whole request, not each socket read (httpx's timeouts are per
read, so a backend trickling bytes would hold the caller): every POST runs in a
short-lived daemon thread the caller waits for until the deadline. A request still
running then is abandoned (its body is kept for later) and, while it lives, no other
request is started: the bodies go straight to the spool, so threads cannot pile up.
Response bodies are streamed: a 2xx body is discarded, at most 64 KiB of an error body
is read for the log message.

Fork safety: after ``fork()`` the child recreates the locks and events of every live
:class:`HttpDelivery` and drops the inherited client without closing the parent's
connections.
"""

from __future__ import annotations

import contextvars
import functools
import gzip
import logging
import os
import random
import threading
import time
from collections.abc import Mapping
from typing import Final

import httpx

# httpx imports these lazily when a client is built. A fork while another thread is in
# the middle of such a first import leaves the child waiting forever on that module's
# import lock: import them up front (the thread importing this module is not racing).
import certifi  # noqa: F401  # isort: skip
import httpcore  # noqa: F401  # isort: skip
import ssl  # noqa: F401  # isort: skip

from .._runtime.env import redact_url
from .._runtime.forksafe import reinit_after_fork
from .._runtime.logs import WarnOnce
from .posting import MAX_MESSAGE_CHARS, Attempt, post, post_in_context
from .report import DeliveryStats
from .rules import MAX_REFUSED_CONNECTIONS, Verdict, classify

__all__ = ["HttpDelivery"]

logger = logging.getLogger("otel_experiments")

_GZIP_LEVEL: Final = 6


def _tls_hint(url: str, exc: BaseException) -> str:
    """A hint when the error looks like TLS spoken to a plain-HTTP server (or the reverse)."""
    text = str(exc)
    if "SSL" in text or "WRONG_VERSION_NUMBER" in text or "record layer" in text:
        if url.startswith("https://"):
            return ": a TLS error; does the server speak plain http://?"
        return ": a TLS error"
    return ""


@functools.lru_cache(maxsize=1)
def _user_agent() -> str:
    try:
        from importlib.metadata import version

        return f"otel-experiments/{version('otel-experiments')}"
    except Exception:  # pragma: no cover - not installed as a distribution
        return "otel-experiments"


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
        stats: DeliveryStats | None = None,
    ) -> None:
        self._api_key = api_key
        # retries and the last error go into the exporter's delivery report
        self._stats = stats or DeliveryStats()
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
        # requests being waited for (close() wakes their waiters) and requests given up
        # on at the deadline that may still be running
        self._inflight: set[threading.Event] = set()
        self._abandoned: list[threading.Thread] = []
        _user_agent()  # reads package metadata: here, not under the lock in _get_client
        reinit_after_fork(self)

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()
        self._closed_event = threading.Event()
        if self._closed:
            self._closed_event.set()
        # The parent's pooled connections are not ours: drop the client unclosed (closing
        # it could disturb the parent's streams); _get_client builds a new one.
        self._client = None
        self._client_pid = 0
        self._inflight = set()
        self._abandoned = []

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Stop retrying, wake every request being waited for, close the client. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._closed_event.set()
            for event in self._inflight:
                event.set()
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

    def _hanging(self) -> bool:
        """Is a request abandoned at an earlier deadline still running?"""
        with self._lock:
            self._abandoned = [thread for thread in self._abandoned if thread.is_alive()]
            return bool(self._abandoned)

    def _attempt(
        self, client: httpx.Client, url: str, content: bytes, deadline: float
    ) -> Attempt | None:
        """One POST, waited for until ``deadline``; ``None`` if abandoned (or shut down)."""
        attempt = Attempt()
        thread = threading.Thread(
            target=post_in_context,
            args=(contextvars.copy_context(), client, url, content, deadline, attempt),
            name="otel-experiments-post",
            daemon=True,
        )
        with self._lock:
            if self._closed:
                return None
            self._inflight.add(attempt.done)
        try:
            try:
                thread.start()
            except RuntimeError:
                # No new thread (interpreter finalizing, thread limit): send from this
                # thread; the deadline then only bounds each read and the body's reading.
                post(client, url, content, deadline, attempt)
            else:
                attempt.done.wait(max(0.0, deadline - time.monotonic()))
        finally:
            with self._lock:
                self._inflight.discard(attempt.done)
        if attempt.finished:
            return attempt
        if not self._closed:
            with self._lock:
                self._abandoned.append(thread)
        return None

    def _deadline_reached(self, count: int) -> Verdict:
        self._stats.error("export timeout")
        self._warn_once(
            "deadline",
            "otel-experiments: export timeout (%ss) reached with %d span(s) in flight",
            self._timeout,
            count,
        )
        return Verdict.KEEP

    def send_encoded(self, url: str, content: bytes, count: int, deadline: float) -> Verdict:
        """POST already-encoded ``content`` with retries until ``deadline`` (monotonic).

        Returns DELIVERED, KEEP, SPLIT or DROP (:mod:`.rules`); never RETRY.
        """
        attempt = 0
        refused = 0
        while True:
            client = self._get_client()
            if client is None:
                return Verdict.KEEP  # shut down: not the body's fault
            if deadline - time.monotonic() <= 0:
                return self._deadline_reached(count)
            if self._hanging():
                self._warn_once(
                    "hanging",
                    "otel-experiments: a request the export timeout (%ss) gave up on is still "
                    "running; %d span(s) kept for later instead of sent",
                    self._timeout,
                    count,
                )
                return Verdict.KEEP
            result = self._attempt(client, url, content, deadline)
            if result is None:
                if self._closed:  # shutting down: the request was given up on
                    self._stats.error("request abandoned at shutdown")
                    return Verdict.KEEP
                return self._deadline_reached(count)
            retry_after: float | None = None
            exc = result.error
            if isinstance(exc, httpx.TransportError):
                reason = type(exc).__name__
                if isinstance(exc, httpx.ConnectError):
                    refused += 1
                    if refused >= MAX_REFUSED_CONNECTIONS:
                        self._stats.error(f"{reason} (nothing listening)")
                        self._warn_once(
                            "unreachable",
                            "otel-experiments: POST %s: unreachable (%s%s) after %d attempts",
                            redact_url(url),
                            reason,
                            _tls_hint(url, exc),
                            refused,
                        )
                        return Verdict.KEEP
            elif exc is not None:  # e.g. the client was closed, an invalid URL
                if self._closed:
                    return Verdict.KEEP
                if not isinstance(exc, Exception):  # KeyboardInterrupt & co. in a sync send
                    raise exc
                self._stats.error(type(exc).__name__)
                self._warn_once(
                    f"error:{type(exc).__name__}",
                    "otel-experiments: could not send %d span(s) to %s: %s",
                    count,
                    redact_url(url),
                    type(exc).__name__,
                )
                return Verdict.DROP
            else:
                decision = classify(result.status, {"retry-after": result.retry_after or ""})
                if decision.verdict is not Verdict.RETRY:
                    if decision.verdict is not Verdict.DELIVERED:
                        self._stats.error(decision.reason)
                        self._report(decision.verdict, result, url, count)
                    return decision.verdict
                reason = decision.reason
                retry_after = decision.retry_after
            attempt += 1
            # the backoff is a floor: ``Retry-After: 0`` must not become a hot loop
            delay = max(retry_after or 0.0, self._backoff(attempt))
            if time.monotonic() + delay >= deadline:
                self._stats.error(reason)
                self._warn_once(
                    f"giveup:{reason}",
                    "otel-experiments: giving up on %d span(s) after %d attempt(s) (%s): "
                    "the export timeout (%ss) would be exceeded",
                    count,
                    attempt,
                    reason,
                    self._timeout,
                )
                return Verdict.KEEP
            logger.debug(
                "otel-experiments: retrying in %.3fs after %s (attempt %d)", delay, reason, attempt
            )
            if self._closed_event.wait(delay):
                return Verdict.KEEP
            self._stats.retried(count, reason)

    def _report(self, verdict: Verdict, result: Attempt, url: str, count: int) -> None:
        """One warning per status for a body not delivered (never the secrets)."""
        status = result.status
        where = f"POST {redact_url(url)}"
        if 300 <= status < 400:
            self._warn_once(
                f"status:{status}",
                "otel-experiments: %s answered HTTP %d (redirect to %s, not followed); check "
                "OTEL_EXPERIMENTS_ENDPOINT. %d span(s) kept for later",
                where,
                status,
                self._scrub(redact_url(result.location or "<no Location>"))[:MAX_MESSAGE_CHARS],
                count,
            )
        elif verdict is Verdict.KEEP:
            self._warn_once(
                f"status:{status}",
                "otel-experiments: %s refused the credentials (HTTP %d): %s; check "
                "OTEL_EXPERIMENTS_API_KEY / OTEL_EXPERIMENTS_HEADERS. %d span(s) kept for later",
                where,
                status,
                self._scrub(result.message),
                count,
            )
        else:
            self._warn_once(
                f"status:{status}",
                "otel-experiments: %s rejected %d span(s) with HTTP %d (not retried): %s",
                where,
                count,
                status,
                self._scrub(result.message),
            )
