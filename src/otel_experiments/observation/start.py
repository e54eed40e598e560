"""``start_observe``: one span per unit of work, with its experiment and identity.

Works as a context manager and as a decorator for sync functions, coroutines,
generators and async generators (through :class:`~otel_experiments.context.scoped.Scoped`).
For generators the scope is attached only while the generator body runs (around each
step), so the consumer's code between two items is never stamped with the producer's
experiment and the caller's context is restored exactly even if the generator is
abandoned.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind, Status, StatusCode

from .. import attributes as attr
from .._runtime.logs import WarnOnce
from ..context.active import context_with_scope, current_scope
from ..context.scoped import Run, Scoped
from ..models import ExperimentLike, Identity, IdentityLike, TraceExperiment, validate_id
from ..settings import scope_settings
from .span import OBSERVED_SPAN_KEY, ObservedSpan

__all__ = ["start_observe"]

logger = logging.getLogger("otel_experiments")

_MAX_RECORDED_ITEMS = 100
_tracer = trace.get_tracer("otel_experiments")


class _ObservedRun(Run):
    """One execution of a ``start_observe`` scope: its span and the Context holding it."""

    __slots__ = ("items", "observed", "span", "spec")

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
        self.spec = spec
        self.items: list[Any] = []
        attributes = spec.span_attributes
        # A unit of work's entry span: the first span of its experiment in this trace.
        outer, inner = current_scope(base), current_scope(scoped)
        if (inner is not None and inner.experiment is not None
                and (outer is None or outer.experiment is None)):
            attributes = {**attributes, attr.EXPERIMENT_ENTRY: "true"}
        self.span = spec.tracer.start_span(
            spec.name, context=scoped, kind=spec.kind, attributes=attributes, links=links
        )
        if not self.span.is_recording():
            _warn_if_no_sdk_provider(spec)
        self.observed = ObservedSpan(self.span, spec.max_payload_chars)
        if spec.metadata:
            self.observed.set_metadata(spec.metadata)
        ctx = trace.set_span_in_context(self.span, scoped)
        super().__init__(otel_context.set_value(OBSERVED_SPAN_KEY, self.observed, ctx))

    def called(self, prepared: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if self.spec.record_input:
            self.observed.set_input(_arguments(prepared, args, kwargs))

    def returned(self, value: Any) -> None:
        if self.spec.record_output:
            self.observed.set_output(value)

    def yielded(self, item: Any) -> None:
        if self.spec.record_output and len(self.items) < _MAX_RECORDED_ITEMS:
            self.items.append(item)

    def generator_returned(self, value: Any) -> None:
        self.returned(self.items if value is None else value)

    def finish(self, error: BaseException | None) -> None:
        try:
            if error is not None and not isinstance(error, GeneratorExit):
                self.span.set_status(Status(StatusCode.ERROR, _describe(error)))
                self.span.record_exception(error)
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


class start_observe(Scoped[_ObservedRun]):
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
        settings = scope_settings()
        self.max_payload_chars = max_payload_chars or settings.max_payload_chars
        self.propagate_identity_names = settings.propagate_identity_names
        self.tracer = (
            _tracer if tracer_provider is None else tracer_provider.get_tracer("otel_experiments")
        )

    def _start(self, base: Context | None = None) -> _ObservedRun:
        return _ObservedRun(self, base)

    def _entered(self, run: _ObservedRun) -> ObservedSpan:
        return run.observed

    def __enter__(self) -> ObservedSpan:
        observed: ObservedSpan = super().__enter__()
        return observed

    async def __aenter__(self) -> ObservedSpan:
        return self.__enter__()

    def _prepare(self, func: Callable[..., Any]) -> inspect.Signature | None:
        try:
            return inspect.signature(func)
        except (TypeError, ValueError):
            return None


def _arguments(signature: inspect.Signature | None, args: tuple[Any, ...],
               kwargs: dict[str, Any]) -> Any:
    """A decorated function's arguments by name, as recorded for its input."""
    try:
        if signature is not None:
            params = dict(signature.bind_partial(*args, **kwargs).arguments)
            params.pop("self", None)
            params.pop("cls", None)
            return params
    except TypeError:
        pass
    return {"args": list(args), "kwargs": kwargs}
