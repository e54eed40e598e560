"""One POST with a bounded response, run as a thread target.

:func:`post_in_context` sends a body and streams the answer: a 2xx body is drained
(up to 64 KiB, so the connection can be reused) or cut off, an error body is read up
to 64 KiB (decompressed with a bound) for the log message. The result lands in an
:class:`Attempt` the waiting caller reads once ``done`` is set. Instrumentation is
suppressed so our own POSTs are never traced.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
import time
import zlib
from typing import Final

import httpx
from opentelemetry import context as otel_context

from .._compat import SUPPRESS_INSTRUMENTATION_KEY

__all__ = ["MAX_MESSAGE_CHARS", "MAX_RESPONSE_BYTES", "Attempt", "post", "post_in_context"]

#: At most this much of a response body is read (an error body, for the log message).
MAX_RESPONSE_BYTES: Final = 64 * 1024
#: A server message is logged up to this many characters.
MAX_MESSAGE_CHARS: Final = 500


class Attempt:
    """One POST running in its own thread; the waiter reads the fields once ``finished``."""

    __slots__ = ("done", "error", "finished", "location", "message", "retry_after", "status")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.finished = False
        self.status = 0
        self.retry_after: str | None = None
        self.location: str | None = None
        self.message = ""
        self.error: BaseException | None = None




def post_in_context(
    ctx: contextvars.Context,
    client: httpx.Client,
    url: str,
    content: bytes,
    deadline: float,
    attempt: Attempt,
) -> None:
    """:func:`post` in the caller's context, instrumentation suppressed (thread target)."""
    ctx.run(post, client, url, content, deadline, attempt)


def post(client: httpx.Client, url: str, content: bytes, deadline: float, attempt: Attempt) -> None:
    """POST and stream the response: a 2xx body is discarded, an error body read bounded."""
    token = None
    try:
        if SUPPRESS_INSTRUMENTATION_KEY is not None:
            token = otel_context.attach(
                otel_context.set_value(SUPPRESS_INSTRUMENTATION_KEY, True)
            )
        timeout = max(0.001, deadline - time.monotonic())
        with client.stream("POST", url, content=content, timeout=timeout) as response:
            status = response.status_code
            attempt.retry_after = response.headers.get("retry-after")
            attempt.location = response.headers.get("location")
            success = 200 <= status < 300
            chunks: list[bytes] = []
            read = 0
            # A small 2xx body is drained so the connection can be reused; anything
            # larger (or still arriving at the deadline) is cut off: the connection closes.
            for chunk in response.iter_raw():
                read += len(chunk)
                if not success:
                    chunks.append(chunk)
                if read >= MAX_RESPONSE_BYTES or time.monotonic() >= deadline:
                    break
            if not success:
                attempt.message = _decode_message(response, b"".join(chunks)[:MAX_RESPONSE_BYTES])
            attempt.status = status
    except BaseException as exc:  # reported to the waiting caller
        attempt.error = exc
    finally:
        if token is not None:
            with contextlib.suppress(Exception):
                otel_context.detach(token)
        attempt.finished = True
        attempt.done.set()


def _decode_message(response: httpx.Response, raw: bytes) -> str:
    try:
        encoding = response.headers.get("content-encoding", "").strip().lower()
        if encoding in ("gzip", "deflate"):
            raw = zlib.decompressobj(47 if encoding == "gzip" else zlib.MAX_WBITS).decompress(
                raw, MAX_RESPONSE_BYTES
            )
        text = raw.decode(response.charset_encoding or "utf-8", errors="replace")
    except Exception:
        return "<unreadable response body>"
    text = " ".join(text.split())
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[:MAX_MESSAGE_CHARS] + "..."
    return text or "<empty response body>"
