"""Logging without flooding: the one place warnings are throttled.

:class:`WarnOnce` keys messages (the first per key is a warning, repeats are debug);
:class:`RateLimitedWarning` lets one warning through per interval and counts the rest.
Both are what keeps a hostile input or a dead backend from filling the host's logs.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from .forksafe import reinit_after_fork

__all__ = ["RateLimitedWarning", "WarnOnce"]

logger = logging.getLogger("otel_experiments")


class WarnOnce:
    """The first message per key is a warning, repeats are debug: logs stay readable."""

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        reinit_after_fork(self)

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()

    def clear(self) -> None:
        """Forget what was said (tests)."""
        with self._lock:
            self._seen.clear()

    def __call__(self, key: str, msg: str, *args: Any, exc_info: bool = False) -> None:
        with self._lock:
            first = key not in self._seen
            self._seen.add(key)
        logger.log(logging.WARNING if first else logging.DEBUG, msg, *args, exc_info=exc_info)


class RateLimitedWarning:
    """At most one warning per interval, with a count of what was suppressed."""

    def __init__(self, interval_s: float = 60.0) -> None:
        self._interval = interval_s
        self._next = 0.0
        self._suppressed = 0
        self._lock = threading.Lock()
        reinit_after_fork(self)

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()

    def __call__(self, message: str, *args: object) -> None:
        now = time.monotonic()
        with self._lock:
            if now < self._next:
                self._suppressed += 1
                return
            suppressed, self._suppressed = self._suppressed, 0
            self._next = now + self._interval
        if suppressed:
            message += " (%d similar warnings suppressed)"
            args = (*args, suppressed)
        logger.warning(message, *args)
