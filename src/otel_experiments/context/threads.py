"""Carrying the experiment context into threads and executors.

asyncio tasks copy the current context when created, so nothing is needed there.
Threads start with an empty context: wrap the callable with :func:`bind_context`, or
wrap the executor once with :class:`ContextExecutor` so every ``submit`` / ``map``
runs under the submitter's context (experiment, identity, active span and baggage).
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future
from typing import Any, ParamSpec, TypeVar

__all__ = ["ContextExecutor", "bind_context"]

P = ParamSpec("P")
R = TypeVar("R")


def bind_context(fn: Callable[P, R]) -> Callable[P, R]:
    """Return ``fn`` bound to a copy of the current context, to run in another thread."""
    return bind_to(contextvars.copy_context(), fn)


def bind_to(ctx: contextvars.Context, fn: Callable[P, R]) -> Callable[P, R]:
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        return ctx.run(fn, *args, **kwargs)

    return run


class ContextExecutor(Executor):
    """An ``Executor`` wrapper whose tasks run under the submitting thread's context."""

    def __init__(self, executor: Executor) -> None:
        self._executor = executor

    def submit(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Future[R]:
        ctx = contextvars.copy_context()  # one copy per task: tasks must not share one
        return self._executor.submit(bind_to(ctx, fn), *args, **kwargs)

    def map(
        self,
        fn: Callable[..., R],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int = 1,
    ) -> Iterator[R]:
        ctx = contextvars.copy_context()

        def run(*args: Any) -> R:
            return ctx.copy().run(fn, *args)

        return self._executor.map(run, *iterables, timeout=timeout, chunksize=chunksize)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._executor.shutdown(wait=wait, cancel_futures=cancel_futures)
