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
from typing import Any, TypeVar, cast

import wrapt
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind, Status, StatusCode

from . import attributes as attr
from . import config
from .context import SCOPE_KEY, context_with_scope
from .logs import WarnOnce
from .models import ExperimentLike, Identity, IdentityLike, TraceExperiment, validate_id
from .observed import OBSERVED_SPAN_KEY, ObservedSpan, current_observed_span, observe
from .scoping import ActiveStack, run_async_generator_in, run_generator_in

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
        scoped = context_with_scope(spec.experiment, spec.identity, context=parent,
                                    propagate_identity_names=spec.propagate_identity_names)
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
                self.span.set_status(Status(StatusCode.ERROR, _describe(exc)))
                self.span.record_exception(exc)
        except Exception:  # a hostile exception object must not cost us the span
            logger.debug("otel-experiments: could not record an exception", exc_info=True)
        finally:
            try:
                self.span.end()
            except Exception:
                logger.warning("otel-experiments: could not end span", exc_info=True)


def _describe(exc: BaseException) -> str:
    try:
        return f"{type(exc).__name__}: {exc}"
    except Exception:
        return type(exc).__name__


_warn_once = WarnOnce()


def _warn_if_no_sdk_provider(spec: start_observe) -> None:
    # A non-recording span is normal under sampling; under the API's default (proxy)
    # provider it means every start_observe span is silently lost: say so, once.
    if spec.tracer is _tracer and isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        _warn_once(
            "no-provider",
            "otel-experiments: start_observe(%r) runs with no global SDK TracerProvider, so "
            "its spans are not recorded. Call opentelemetry.trace.set_tracer_provider(provider), "
            "otel_experiments.configure(), or pass start_observe(..., tracer_provider=provider).",
            spec.name,
        )


_ACTIVE_RUNS: ActiveStack[_Run] = ActiveStack("otel_experiments_active_runs")


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
        # Read the environment once per decorator / with-statement, not once per run.
        self.max_payload_chars = max_payload_chars or config.max_payload_chars()
        self.propagate_identity_names = config.propagate_identity_names()
        self.tracer = (
            _tracer if tracer_provider is None else tracer_provider.get_tracer("otel_experiments")
        )

    # -- context manager ---------------------------------------------------------------
    # Active runs live in a ContextVar, not on the instance, so one instance entered by
    # concurrent tasks or threads exits each of their runs correctly.
    def __enter__(self) -> ObservedSpan:
        run = _Run(self).__enter__()
        _ACTIVE_RUNS.push(self, run)
        return run.observed

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        run = _ACTIVE_RUNS.pop(self)
        if run is None:
            logger.warning("otel-experiments: start_observe exited in another context than entered")
            return
        run.__exit__(exc_type, exc, tb)

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
                return _observe_async_gen(spec, wrapped, args, kwargs, record_args)
            return cast(F, agen_wrapper(func))

        if inspect.isgeneratorfunction(func):
            @wrapt.decorator
            def gen_wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
                return _observe_gen(spec, wrapped, args, kwargs, record_args)
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


class _GeneratorRun:
    """Callbacks that give a generator's steps one span (started at the first step)."""

    def __init__(self, spec: start_observe, args: tuple[Any, ...], kwargs: dict[str, Any],
                 record_args: Recorder) -> None:
        self.spec = spec
        self.base = otel_context.get_current()  # where the generator was created
        self.args, self.kwargs, self.record_args = args, kwargs, record_args
        self.items: list[Any] = []
        self.run: _Run | None = None

    def enter(self) -> Context:
        self.run = _Run(self.spec, self.base)
        self.record_args(self.run, self.args, self.kwargs)
        return self.run.ctx

    def on_item(self, item: Any) -> None:
        if self.spec.record_output and len(self.items) < _MAX_RECORDED_ITEMS:
            self.items.append(item)

    def on_finish(self, error: BaseException | None, value: Any) -> None:
        if self.run is None:
            return
        if error is None and self.spec.record_output:
            self.run.observed.set_output(self.items if value is None else value)
        self.run.finish(error)


def _observe_gen(spec: start_observe, wrapped: Any, args: Any, kwargs: Any,
                 record_args: Recorder) -> Generator[Any, Any, Any]:
    steps = _GeneratorRun(spec, args, kwargs, record_args)
    return run_generator_in(steps.enter, wrapped(*args, **kwargs), steps.on_item,
                            steps.on_finish)


def _observe_async_gen(spec: start_observe, wrapped: Any, args: Any, kwargs: Any,
                       record_args: Recorder) -> AsyncGenerator[Any, Any]:
    steps = _GeneratorRun(spec, args, kwargs, record_args)
    return run_async_generator_in(steps.enter, wrapped(*args, **kwargs), steps.on_item,
                                  steps.on_finish)


__all__ = [
    "OBSERVED_SPAN_KEY",
    "SCOPE_KEY",
    "ObservedSpan",
    "current_observed_span",
    "observe",
    "start_observe",
]
