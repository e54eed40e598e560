"""The one implementation of "a scope as ``with``, ``async with`` and decorator".

:class:`Scoped` gives a scope (``experiment_context``, ``start_observe``) all four
decorator forms (function, coroutine function, generator function, async generator
function) and both context-manager forms, around a :class:`Run`: one execution that
holds the Context to attach and is told what happened (arguments, result, items,
error). Subclasses only say how a run starts.

Keeping scopes exact across generators, tasks and threads:

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

import inspect
import logging
from collections.abc import AsyncGenerator, Callable, Generator
from contextvars import ContextVar, Token
from typing import Any, Generic, TypeVar, cast

import wrapt
from opentelemetry import context as otel_context
from opentelemetry.context import Context

__all__ = ["ActiveStack", "Run", "Scoped", "run_async_generator_in", "run_generator_in"]

logger = logging.getLogger("otel_experiments")

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])
R = TypeVar("R", bound="Run")
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


class Run:
    """One execution of a scope: the Context it runs under, and its lifecycle hooks.

    The decorator forms call :meth:`called` with the call's arguments, then
    :meth:`returned` with the result (for generators: :meth:`yielded` per item and
    :meth:`generator_returned` at the end), and :meth:`finish` exactly once
    with the error that ended the run (``None`` on success) after the Context was detached.
    """

    __slots__ = ("ctx",)

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def called(self, prepared: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """The decorated function's arguments (before it runs); ``prepared`` is what
        :meth:`Scoped._prepare` returned for that function."""

    def returned(self, value: Any) -> None:
        """The decorated function's result (before :meth:`finish`)."""

    def yielded(self, item: Any) -> None:
        """One item of a decorated generator."""

    def generator_returned(self, value: Any) -> None:
        """A decorated generator's end (its return value; ``None`` for async generators)."""
        self.returned(value)

    def finish(self, error: BaseException | None) -> None:
        """The run is over (``GeneratorExit`` when a generator was closed early)."""


_ACTIVE: ActiveStack[tuple[Run, Token[Context]]] = ActiveStack("otel_experiments_active_scopes")


class Scoped(Generic[R]):
    """A scope usable as ``with`` / ``async with`` and as a decorator of any function kind.

    One instance may be shared: each thread or task entering it exits its own run (the
    runs live in a ContextVar stack, not on the instance).
    """

    def _start(self, base: Context | None = None) -> R:
        """A new run under ``base`` (default: the current Context)."""
        raise NotImplementedError

    def _entered(self, run: R) -> Any:
        """What ``with ... as x`` gives."""
        return None

    def _prepare(self, func: Callable[..., Any]) -> Any:
        """Work done once per decorated function (given to each run's :meth:`Run.called`)."""
        return None

    # -- context manager ---------------------------------------------------------------
    def __enter__(self) -> Any:
        run = self._start()
        _ACTIVE.push(self, (run, otel_context.attach(run.ctx)))
        return self._entered(run)

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        entry = _ACTIVE.pop(self)
        if entry is None:
            logger.warning(
                "otel-experiments: %s exited in another context than entered", type(self).__name__
            )
            return
        run, token = entry
        otel_context.detach(token)
        run.finish(exc)

    async def __aenter__(self) -> Any:
        return self.__enter__()

    async def __aexit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        self.__exit__(exc_type, exc, tb)

    # -- decorator ---------------------------------------------------------------------
    def _begin(self, prepared: Any, args: tuple[Any, ...],
               kwargs: dict[str, Any]) -> tuple[R, Token[Context]]:
        run = self._start()
        run.called(prepared, args, kwargs)
        return run, otel_context.attach(run.ctx)

    def __call__(self, func: F) -> F:
        scope = self
        prepared = self._prepare(func)

        if inspect.isasyncgenfunction(func):
            @wrapt.decorator
            def agen_wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
                steps = _Steps(scope, prepared, args, kwargs)
                return run_async_generator_in(
                    steps.enter, wrapped(*args, **kwargs), steps.on_item, steps.on_finish
                )
            return cast(F, agen_wrapper(func))

        if inspect.isgeneratorfunction(func):
            @wrapt.decorator
            def gen_wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
                steps = _Steps(scope, prepared, args, kwargs)
                return run_generator_in(
                    steps.enter, wrapped(*args, **kwargs), steps.on_item, steps.on_finish
                )
            return cast(F, gen_wrapper(func))

        if inspect.iscoroutinefunction(func):
            @wrapt.decorator
            async def async_wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
                run, token = scope._begin(prepared, args, kwargs)
                try:
                    result = await wrapped(*args, **kwargs)
                    run.returned(result)
                except BaseException as exc:
                    _end(run, token, exc)
                    raise
                _end(run, token, None)
                return result
            return cast(F, async_wrapper(func))

        @wrapt.decorator
        def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
            run, token = scope._begin(prepared, args, kwargs)
            try:
                result = wrapped(*args, **kwargs)
                run.returned(result)
            except BaseException as exc:
                _end(run, token, exc)
                raise
            _end(run, token, None)
            return result
        return cast(F, wrapper(func))


def _end(run: Run, token: Token[Context], error: BaseException | None) -> None:
    otel_context.detach(token)
    run.finish(error)


class _Steps:
    """A generator's run, started at its first step under the Context it was created in."""

    __slots__ = ("args", "base", "kwargs", "prepared", "run", "scope")

    def __init__(self, scope: Scoped[Any], prepared: Any, args: tuple[Any, ...],
                 kwargs: dict[str, Any]) -> None:
        self.scope, self.prepared = scope, prepared
        self.base = otel_context.get_current()
        self.args, self.kwargs = args, kwargs
        self.run: Run | None = None

    def enter(self) -> Context:
        run: Run = self.scope._start(self.base)
        self.run = run
        run.called(self.prepared, self.args, self.kwargs)
        return run.ctx

    def on_item(self, item: Any) -> None:
        if self.run is not None:
            self.run.yielded(item)

    def on_finish(self, error: BaseException | None, value: Any) -> None:
        if self.run is None:
            return
        if error is None:
            self.run.generator_returned(value)
        self.run.finish(error)
