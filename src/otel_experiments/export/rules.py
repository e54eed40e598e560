"""The delivery rules: what becomes of a body, given the backend's answer. Stated once, here.

==========================================  =========  ===============================
answer                                      verdict    what the exporter does
==========================================  =========  ===============================
2xx                                         DELIVERED  done
408, 429, 5xx; timeout, connection error    RETRY      retry with backoff and jitter
                                                       (``Retry-After`` as a floor) within
                                                       the export timeout; then KEEP
3 refused connections in a row              KEEP       nothing is listening: stop early
3xx (redirects are never followed)          KEEP       misconfigured endpoint: the body
                                                       and credentials would go elsewhere
401, 403                                    KEEP       wrong or rotated credentials
400, 413, 422                               SPLIT      something in the body: halve it
                                                       until only the refused spans are
                                                       left, and DROP those
any other 4xx, an unexpected client error   DROP       it would fail again
==========================================  =========  ===============================

KEEP means: written to the on-disk spool (when it is on; else dropped and counted) and
replayed later, oldest first. Every DROP and KEEP is logged once per cause, with the
server's message. Delivery is at least once: a body whose answer was lost is sent
again, and the server drops the duplicate spans (experiment id + span id).
"""

from __future__ import annotations

import email.utils
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Final

__all__ = ["MAX_REFUSED_CONNECTIONS", "Decision", "Verdict", "classify", "parse_retry_after"]

#: Connection attempts refused in a row before a body is kept for later instead of
#: retried: a server restart is over in a second or two, a stopped server is not.
MAX_REFUSED_CONNECTIONS: Final = 3


class Verdict(enum.Enum):
    """What to do with a body after one answer."""

    DELIVERED = "delivered"
    RETRY = "retry"
    KEEP = "keep"
    SPLIT = "split"
    DROP = "drop"


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    #: why, for the log line (``HTTP 503``, ``credentials refused``, ...)
    reason: str
    #: the server's ``Retry-After`` in seconds, when it gave one
    retry_after: float | None = None


_RETRY_STATUS: Final = frozenset({408, 429})
_KEEP_STATUS: Final = frozenset({401, 403})
_SPLIT_STATUS: Final = frozenset({400, 413, 422})


def classify(status: int, headers: Mapping[str, str] | None = None) -> Decision:
    """The verdict on one HTTP answer (``headers`` lower-case; only ``retry-after`` is read)."""
    if 200 <= status < 300:
        return Decision(Verdict.DELIVERED, f"HTTP {status}")
    if status in _RETRY_STATUS or 500 <= status < 600:
        retry_after = parse_retry_after((headers or {}).get("retry-after"))
        return Decision(Verdict.RETRY, f"HTTP {status}", retry_after)
    if 300 <= status < 400:
        return Decision(Verdict.KEEP, f"HTTP {status} (redirect, not followed)")
    if status in _KEEP_STATUS:
        return Decision(Verdict.KEEP, f"HTTP {status} (credentials refused)")
    if status in _SPLIT_STATUS:
        return Decision(Verdict.SPLIT, f"HTTP {status}")
    return Decision(Verdict.DROP, f"HTTP {status}")


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
