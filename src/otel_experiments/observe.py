"""``start_observe``: one span per unit of work, with its experiment and identity.

Works as a context manager and as a decorator for sync functions, coroutines,
generators and async generators. For generators the scope is attached only while the
generator body runs (around each step), so the consumer's code between two items is
never stamped with the producer's experiment and the caller's context is restored
exactly even if the generator is abandoned.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncGenerator, Callable, Generator, Mapping
from contextvars import ContextVar
from typing import Any, TypeVar, cast

import wrapt
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind, Status, StatusCode

from . import attributes as attr
from . import config
from .context import SCOPE_KEY, context_with_scope
from .models import ExperimentLike, Identity, IdentityLike, TraceExperiment, validate_id
from .observed import OBSERVED_SPAN_KEY, ObservedSpan, current_observed_span, observe

logger = logging.getLogger("otel_experiments")

_MAX_RECORDED_ITEMS = 100
_tracer = trace.get_tracer("otel_experiments")

F = TypeVar("F", bound=Callable[..., Any])


class _Run:
    """One execution of a ``start_observe`` scope: its span, context and token."""

    __slots__ = ("_token", "ctx", "observed", "span")

    def __init__(self, spec: start_observe, base: Context | None = None) -> None:
        if base is None:
            base = otel_context.get_current()
        parent = base
        links = None
        if spec.new_trace:
            current = trace.get_current_span(base)
            if current.get_span_context().is_valid:
                links = [trace.Link(current.get_span_context())]
            parent = trace.set_span_in_context(trace.INVALID_SPAN, base)
        scoped = context_with_scope(spec.experiment, spec.identity, context=parent)
        self.span = spec.tracer.start_span(
            spec.name, context=scoped, kind=spec.kind, attributes=spec.span_attributes, links=links
        )
        if not self.span.is_recording():
            _warn_if_no_sdk_provider(spec)
        self.observed = ObservedSpan(self.span, spec.max_payload_chars)
        if spec.metadata:
            self.observed.set_metadata(spec.metadata)
        ctx = trace.set_span_in_context(self.span, scoped)
        self.ctx = otel_context.set_value(OBSERVED_SPAN_KEY, self.observed, ctx)

    def __enter__(self) -> _Run:
        self._token = otel_context.attach(self.ctx)
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        otel_context.detach(self._token)
        self.finish(exc)

    def finish(self, exc: BaseException | None) -> None:
        try:
            if exc is not None and not isinstance(exc, GeneratorExit):
                self.span.record_exception(exc)
                self.span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
            self.span.end()
        except Exception:
            logger.warning("otel-experiments: could not end span", exc_info=True)


_no_provider_warned = False


def _warn_if_no_sdk_provider(spec: start_observe) -> None:
    # A non-recording span is normal under sampling; under the API's default (proxy)
    # provider it means every start_observe span is silently lost: say so, once.
    global _no_provider_warned
    if _no_provider_warned or spec.tracer is not _tracer:
        return
    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        _no_provider_warned = True
        logger.warning(
            "otel-experiments: start_observe(%r) runs with no global SDK TracerProvider, so "
            "its spans are not recorded. Call opentelemetry.trace.set_tracer_provider(provider), "
            "otel_experiments.configure(), or pass start_observe(..., tracer_provider=provider).",
            spec.name,
        )


_ACTIVE_RUNS: ContextVar[tuple[tuple[start_observe, _Run], ...]] = ContextVar(
    "otel_experiments_active_runs", default=()
)


class start_observe:
    """Start a span for a unit of work and make ``experiment`` / ``identity`` current.

    ``with start_observe("checkout", "answer", experiment="exp-1") as span: ...`` or
    ``@start_observe("checkout", "answer", experiment=exp)`` on a sync or async function,
    generator or async generator. Every span started inside, by any instrumentation,
    is stamped by :class:`~otel_experiments.ExperimentSpanProcessor`.

    The span is a child of the active span when there is one (so HTTP server spans and
    distributed traces stay joined); at top level each call starts a new trace. Pass
    ``new_trace=True`` to always start a new trace (linked to the active span), and
    ``tracer_provider=`` to use a provider other than the global one.
    Invalid ``experiment`` / ``identity`` values raise ``ValueError`` / ``TypeError`` here.
    """

    def __init__(
        self,
        feature_slug: str,
        name: str,
        *,
        experiment: ExperimentLike | None = None,
        identity: IdentityLike | None = None,
        metadata: Mapping[str, Any] | None = None,
        record_input: bool = True,
        record_output: bool = True,
        new_trace: bool = False,
        kind: SpanKind = SpanKind.INTERNAL,
        max_payload_chars: int | None = None,
        tracer_provider: trace.TracerProvider | None = None,
    ) -> None:
        validate_id(feature_slug, "feature_slug")
        if not isinstance(name, str) or not name:
            raise ValueError("name must be a non-empty str")
        if metadata is not None and not isinstance(metadata, Mapping):
            raise TypeError(f"metadata must be a mapping, got {type(metadata).__name__}")
        for flag, value in (("record_input", record_input), ("record_output", record_output),
                            ("new_trace", new_trace)):
            if not isinstance(value, bool):
                raise TypeError(f"{flag} must be a bool, got {value!r}")
        if tracer_provider is not None and not hasattr(tracer_provider, "get_tracer"):
            raise TypeError(
                f"tracer_provider must be a TracerProvider, got {type(tracer_provider).__name__}"
            )
        exp = TraceExperiment.coerce(experiment) if experiment is not None else None
        if exp is not None and exp.feature_slug is None:
            exp = TraceExperiment(exp.id, exp.name, feature_slug)
        self.feature_slug = feature_slug
        self.name = name
        self.experiment = exp
        self.identity = Identity.coerce(identity) if identity is not None else None
        self.metadata = dict(metadata) if metadata else None
        self.record_input = record_input
        self.record_output = record_output
        self.new_trace = new_trace
        self.kind = kind
        self.span_attributes = {attr.OBSERVE_FEATURE_SLUG: feature_slug}
        self.max_payload_chars = max_payload_chars or config.max_payload_chars()
        self.tracer = (
            _tracer if tracer_provider is None else tracer_provider.get_tracer("otel_experiments")
        )

    # -- context manager ---------------------------------------------------------------
    # Active runs live in a ContextVar, not on the instance, so one instance entered by
    # concurrent tasks or threads exits each of their runs correctly.
    def __enter__(self) -> ObservedSpan:
        run = _Run(self).__enter__()
        _ACTIVE_RUNS.set((*_ACTIVE_RUNS.get(), (self, run)))
        return run.observed

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        stack = _ACTIVE_RUNS.get()
        for i in range(len(stack) - 1, -1, -1):
            if stack[i][0] is self:
                _ACTIVE_RUNS.set(stack[:i] + stack[i + 1 :])
                stack[i][1].__exit__(exc_type, exc, tb)
                return
        logger.warning("otel-experiments: start_observe exited in another context than entered")

    async def __aenter__(self) -> ObservedSpan:
        return self.__enter__()

    async def __aexit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        self.__exit__(exc_type, exc, tb)

    # -- decorator ---------------------------------------------------------------------
    def __call__(self, func: F) -> F:
        try:
            signature: inspect.Signature | None = inspect.signature(func)
        except (TypeError, ValueError):
            signature = None
        spec = self

        def record_args(run: _Run, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            if not spec.record_input:
                return
            try:
                if signature is not None:
                    bound = signature.bind_partial(*args, **kwargs)
                    params = dict(bound.arguments)
                    params.pop("self", None)
                    params.pop("cls", None)
                else:
                    params = {"args": list(args), "kwargs": kwargs}
            except TypeError:
                params = {"args": list(args), "kwargs": kwargs}
            run.observed.set_input(params)

        if inspect.isasyncgenfunction(func):
            @wrapt.decorator
            def agen_wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
                return _observe_async_gen(
                    spec, otel_context.get_current(), wrapped, args, kwargs, record_args
                )
            return cast(F, agen_wrapper(func))

        if inspect.isgeneratorfunction(func):
            @wrapt.decorator
            def gen_wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
                return _observe_gen(
                    spec, otel_context.get_current(), wrapped, args, kwargs, record_args
                )
            return cast(F, gen_wrapper(func))

        if inspect.iscoroutinefunction(func):
            @wrapt.decorator
            async def async_wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
                with _Run(spec) as run:
                    record_args(run, args, kwargs)
                    result = await wrapped(*args, **kwargs)
                    if spec.record_output:
                        run.observed.set_output(result)
                    return result
            return cast(F, async_wrapper(func))

        @wrapt.decorator
        def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
            with _Run(spec) as run:
                record_args(run, args, kwargs)
                result = wrapped(*args, **kwargs)
                if spec.record_output:
                    run.observed.set_output(result)
                return result
        return cast(F, wrapper(func))


Recorder = Callable[[_Run, tuple[Any, ...], dict[str, Any]], None]


def _observe_gen(spec: start_observe, base: Context, wrapped: Any, args: Any, kwargs: Any,
                 record_args: Recorder) -> Generator[Any, Any, Any]:
    # The span starts at the first step, under the context the generator was created in.
    run = _Run(spec, base)
    record_args(run, args, kwargs)
    items: list[Any] = []
    error: BaseException | None = None
    token = otel_context.attach(run.ctx)
    try:
        gen = wrapped(*args, **kwargs)
    except BaseException as exc:
        otel_context.detach(token)
        run.finish(exc)
        raise
    otel_context.detach(token)
    to_send: Any = None
    to_throw: BaseException | None = None
    try:
        while True:
            token = otel_context.attach(run.ctx)
            try:
                item = gen.throw(to_throw) if to_throw is not None else gen.send(to_send)
            except StopIteration as stop:
                if spec.record_output:
                    run.observed.set_output(items if stop.value is None else stop.value)
                return stop.value
            finally:
                otel_context.detach(token)
            to_throw = None
            if spec.record_output and len(items) < _MAX_RECORDED_ITEMS:
                items.append(item)
            try:
                to_send = yield item
            except GeneratorExit:
                gen.close()
                raise
            except BaseException as exc:
                to_throw = exc
    except BaseException as exc:
        error = exc
        raise
    finally:
        run.finish(error)


async def _observe_async_gen(spec: start_observe, base: Context, wrapped: Any, args: Any,
                             kwargs: Any, record_args: Recorder) -> AsyncGenerator[Any, Any]:
    run = _Run(spec, base)
    record_args(run, args, kwargs)
    items: list[Any] = []
    error: BaseException | None = None
    token = otel_context.attach(run.ctx)
    try:
        agen = wrapped(*args, **kwargs)
    finally:
        otel_context.detach(token)
    to_send: Any = None
    to_throw: BaseException | None = None
    try:
        while True:
            token = otel_context.attach(run.ctx)
            try:
                if to_throw is not None:
                    item = await agen.athrow(to_throw)
                else:
                    item = await agen.asend(to_send)
            except StopAsyncIteration:
                if spec.record_output:
                    run.observed.set_output(items)
                return
            finally:
                otel_context.detach(token)
            to_throw = None
            if spec.record_output and len(items) < _MAX_RECORDED_ITEMS:
                items.append(item)
            try:
                to_send = yield item
            except GeneratorExit:
                await agen.aclose()
                raise
            except BaseException as exc:
                to_throw = exc
    except BaseException as exc:
        error = exc
        raise
    finally:
        run.finish(error)


__all__ = [
    "OBSERVED_SPAN_KEY",
    "SCOPE_KEY",
    "ObservedSpan",
    "current_observed_span",
    "observe",
    "start_observe",
]
