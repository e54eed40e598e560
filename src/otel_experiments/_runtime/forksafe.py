"""Fork safety: objects that hold locks recreate them in a forked child.

A lock held by another thread of the parent at ``fork()`` time stays held forever in
the child. Objects that own locks, events or HTTP clients register here (weakly) and
recreate them in the child through ``_after_fork_in_child``.
"""

from __future__ import annotations

import contextlib
import os
import weakref
from typing import Protocol

__all__ = ["reinit_after_fork"]


class _ForkAware(Protocol):
    def _after_fork_in_child(self) -> None: ...


_FORK_AWARE: weakref.WeakSet[_ForkAware] = weakref.WeakSet()


def reinit_after_fork(obj: _ForkAware) -> None:
    """Call ``obj._after_fork_in_child()`` in a forked child (weakly referenced)."""
    _FORK_AWARE.add(obj)


def _after_fork_in_child() -> None:
    # A lock held by another thread of the parent at fork time stays held forever in
    # the child: every registered object recreates its locks and events.
    for obj in list(_FORK_AWARE):
        with contextlib.suppress(Exception):  # must never break the child
            obj._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
