"""Keeping scopes exact across generators, tasks and threads.

:class:`ActiveStack` remembers what a context manager attached per execution context, so
one instance entered concurrently by several tasks or threads exits each correctly.

A generator shares its consumer's context: attaching a Context inside the generator
body and yielding would leak it into the consumer's code between two items. These
wrappers attach the Context only around each step (``send`` / ``throw`` / ``close``,
and their async twins), so the body always sees it and the consumer never does.

``enter`` is called at the first step (a generator never iterated costs nothing and
starts no span); ``on_finish(error, return_value)`` is called exactly once at the end,
with ``GeneratorExit`` as the error when the consumer closed the generator early.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Generator
from contextvars import ContextVar
from typing import Any, Generic, TypeVar

from opentelemetry import context as otel_context
from opentelemetry.context import Context

T = TypeVar("T")
OnItem = Callable[[Any], None]


class ActiveStack(Generic[T]):
    """A per-execution-context stack of ``(owner, value)`` pairs."""

    def __init__(self, name: str) -> None:
        self._var: ContextVar[tuple[tuple[object, T], ...]] = ContextVar(name, default=())

    def push(self, owner: object, value: T) -> None:
        self._var.set((*self._var.get(), (owner, value)))

    def pop(self, owner: object) -> T | None:
        """The value ``owner`` pushed last in this context, or ``None`` if there is none."""
        stack = self._var.get()
        for i in range(len(stack) - 1, -1, -1):
            if stack[i][0] is owner:
                self._var.set(stack[:i] + stack[i + 1 :])
                return stack[i][1]
        return None
OnFinish = Callable[[BaseException | None, Any], None]


def _noop_item(_item: Any) -> None:
    pass


def _noop_finish(_error: BaseException | None, _value: Any) -> None:
    pass


def run_generator_in(
    enter: Callable[[], Context],
    gen: Generator[Any, Any, Any],
    on_item: OnItem = _noop_item,
    on_finish: OnFinish = _noop_finish,
) -> Generator[Any, Any, Any]:
    """A generator that delegates to ``gen``, each step under the Context ``enter()`` gave."""
    ctx = enter()
    error: BaseException | None = None
    result: Any = None
    to_send: Any = None
    to_throw: BaseException | None = None
    try:
        while True:
            token = otel_context.attach(ctx)
            try:
                item = gen.throw(to_throw) if to_throw is not None else gen.send(to_send)
            except StopIteration as stop:
                result = stop.value
                return result
            finally:
                otel_context.detach(token)
            to_throw = None
            on_item(item)
            try:
                to_send = yield item
            except GeneratorExit:
                token = otel_context.attach(ctx)
                try:
                    gen.close()
                finally:
                    otel_context.detach(token)
                raise
            except BaseException as exc:
                to_throw = exc
    except BaseException as exc:
        error = exc
        raise
    finally:
        on_finish(error, result)


async def run_async_generator_in(
    enter: Callable[[], Context],
    agen: AsyncGenerator[Any, Any],
    on_item: OnItem = _noop_item,
    on_finish: OnFinish = _noop_finish,
) -> AsyncGenerator[Any, Any]:
    """The async twin of :func:`run_generator_in`."""
    ctx = enter()
    error: BaseException | None = None
    to_send: Any = None
    to_throw: BaseException | None = None
    try:
        while True:
            token = otel_context.attach(ctx)
            try:
                if to_throw is not None:
                    item = await agen.athrow(to_throw)
                else:
                    item = await agen.asend(to_send)
            except StopAsyncIteration:
                return
            finally:
                otel_context.detach(token)
            to_throw = None
            on_item(item)
            try:
                to_send = yield item
            except GeneratorExit:
                token = otel_context.attach(ctx)
                try:
                    await agen.aclose()
                finally:
                    otel_context.detach(token)
                raise
            except BaseException as exc:
                to_throw = exc
    except BaseException as exc:
        error = exc
        raise
    finally:
        on_finish(error, None)
