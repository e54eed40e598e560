"""The experiment context: what is active now, in-process and across services.

An :class:`ExperimentScope` holds the experiment and identity of the current unit of
work, plus the span attributes they imply, computed once when the scope is entered so
the processor's per-span cost under an experiment is one ``set_attributes`` call. The same values go into
W3C Baggage so the standard ``tracecontext,baggage`` propagators carry them across
HTTP and process boundaries; on the receiving side, :func:`scope_from_baggage`
re-validates them because inbound baggage is attacker-controlled.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import Token
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import wrapt
from opentelemetry import baggage as otel_baggage
from opentelemetry import context as otel_context
from opentelemetry.context import Context

from . import attributes as attr
from . import config
from .logs import RateLimitedWarning
from .models import (
    MAX_ID_LENGTH,
    ExperimentLike,
    Identity,
    IdentityLike,
    Organization,
    TraceExperiment,
    User,
    validate_id,
    validate_name,
)
from .scoping import ActiveStack, run_async_generator_in, run_generator_in

logger = logging.getLogger("otel_experiments")

SCOPE_KEY = otel_context.create_key("otel_experiments.scope")

try:  # Reading the baggage dict directly avoids a MappingProxy copy per span.
    from opentelemetry.baggage import _BAGGAGE_KEY

    BAGGAGE_KEY: str | None = _BAGGAGE_KEY
except ImportError:  # pragma: no cover - older/newer API without the private name
    BAGGAGE_KEY = None

__all__ = [
    "BAGGAGE_KEY",
    "SCOPE_KEY",
    "ExperimentScope",
    "baggage_of",
    "context_with_scope",
    "current_experiment",
    "current_identity",
    "current_scope",
    "experiment_context",
    "scope_attributes",
    "scope_from_baggage",
]

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class ExperimentScope:
    """Experiment + identity active in a Context, with their span attributes precomputed."""

    experiment: TraceExperiment | None
    identity: Identity | None
    attributes: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def build(cls, experiment: TraceExperiment | None, identity: Identity | None) -> ExperimentScope:
        return cls(experiment, identity, scope_attributes(experiment, identity))


def scope_attributes(
    experiment: TraceExperiment | None, identity: Identity | None
) -> dict[str, str]:
    """The attributes a span started under this experiment and identity carries."""
    out: dict[str, str] = {}
    if experiment is not None:
        out[attr.EXPERIMENT_ID] = experiment.id
        if experiment.name is not None:
            out[attr.EXPERIMENT_NAME] = experiment.name
        if experiment.feature_slug is not None:
            out[attr.EXPERIMENT_FEATURE_SLUG] = experiment.feature_slug
    if identity is not None:
        if identity.organization is not None:
            out[attr.ORGANIZATION_ID] = identity.organization.id
            if identity.organization.name is not None:
                out[attr.ORGANIZATION_NAME] = identity.organization.name
        if identity.user is not None:
            out[attr.USER_ID] = identity.user.id
            if identity.user.name is not None:
                out[attr.USER_NAME] = identity.user.name
    return out


def _merge(outer: ExperimentScope | None, experiment: TraceExperiment | None,
           identity: Identity | None) -> ExperimentScope:
    """Inner values override outer ones field by field; unspecified ones are inherited."""
    if outer is not None:
        if experiment is None:
            experiment = outer.experiment
        if identity is None:
            identity = outer.identity
        elif outer.identity is not None:
            identity = Identity(
                identity.organization or outer.identity.organization,
                identity.user or outer.identity.user,
            )
    return ExperimentScope.build(experiment, identity)


def context_with_scope(
    experiment: ExperimentLike | None = None,
    identity: IdentityLike | None = None,
    *,
    context: Context | None = None,
    propagate_identity_names: bool | None = None,
) -> Context:
    """Return a Context (based on ``context`` or the current one) holding the scope.

    Validation errors in ``experiment`` / ``identity`` raise here, at the caller's line,
    before anything is attached.
    """
    exp = TraceExperiment.coerce(experiment) if experiment is not None else None
    ident = Identity.coerce(identity) if identity is not None else None
    base = context if context is not None else otel_context.get_current()
    # Only the in-process scope is merged here: whether inbound baggage is trusted is the
    # processor's decision (and current_scope's), made where the baggage is read.
    outer = base.get(SCOPE_KEY)
    scope = _merge(outer if isinstance(outer, ExperimentScope) else None, exp, ident)
    ctx = otel_context.set_value(SCOPE_KEY, scope, base)
    if propagate_identity_names is None:
        propagate_identity_names = config.propagate_identity_names()
    return _with_baggage(ctx, scope, propagate_identity_names)


_EXPERIMENT_KEYS = frozenset({attr.EXPERIMENT_ID, attr.EXPERIMENT_NAME, attr.EXPERIMENT_FEATURE_SLUG})
_ORGANIZATION_KEYS = frozenset({attr.ORGANIZATION_ID, attr.ORGANIZATION_NAME})
_USER_KEYS = frozenset({attr.USER_ID, attr.USER_NAME})


def _with_baggage(ctx: Context, scope: ExperimentScope, names: bool) -> Context:
    # What the scope sets replaces its whole group in the outgoing baggage (a new
    # experiment id must not travel with an upstream experiment's name); what it does
    # not set, e.g. an upstream experiment under a local identity, travels on.
    replaced: set[str] = set()
    if scope.experiment is not None:
        replaced |= _EXPERIMENT_KEYS
    if scope.identity is not None:
        if scope.identity.organization is not None:
            replaced |= _ORGANIZATION_KEYS
        if scope.identity.user is not None:
            replaced |= _USER_KEYS
    entries: dict[str, object] = {
        k: v for k, v in otel_baggage.get_all(ctx).items() if k not in replaced
    }
    for key, value in scope.attributes.items():
        if names or key not in attr.PII_KEYS:
            entries[key] = value
    ctx = otel_baggage.clear(ctx)
    for name, item in entries.items():
        ctx = otel_baggage.set_baggage(name, item, ctx)
    return ctx


@contextmanager
def _attached(ctx: Context) -> Iterator[None]:
    token = otel_context.attach(ctx)
    try:
        yield
    finally:
        otel_context.detach(token)


class experiment_context:
    """Attach an experiment and/or identity without starting a span.

    For middleware and request handlers: every span started inside (by any library)
    is stamped by :class:`~otel_experiments.ExperimentSpanProcessor`, and outgoing
    requests carry the values as W3C Baggage. Use as ``with`` / ``async with`` or as a
    decorator (sync and async functions, generators, async generators). One instance may
    be shared: each thread or task entering it exits its own scope.
    """

    def __init__(
        self,
        experiment: ExperimentLike | None = None,
        identity: IdentityLike | None = None,
        *,
        propagate_identity_names: bool | None = None,
    ) -> None:
        self._experiment = TraceExperiment.coerce(experiment) if experiment is not None else None
        self._identity = Identity.coerce(identity) if identity is not None else None
        self._names = (
            config.propagate_identity_names()
            if propagate_identity_names is None
            else propagate_identity_names
        )

    def _context(self) -> Context:
        return context_with_scope(
            self._experiment, self._identity, propagate_identity_names=self._names
        )

    def __enter__(self) -> ExperimentScope:
        ctx = self._context()
        _ACTIVE_TOKENS.push(self, otel_context.attach(ctx))
        scope: ExperimentScope = ctx[SCOPE_KEY]  # type: ignore[assignment]
        return scope

    def __exit__(self, *exc: object) -> None:
        token = _ACTIVE_TOKENS.pop(self)
        if token is None:
            logger.warning(
                "otel-experiments: experiment_context exited in another context than entered"
            )
            return
        otel_context.detach(token)

    async def __aenter__(self) -> ExperimentScope:
        return self.__enter__()

    async def __aexit__(self, *exc: object) -> None:
        self.__exit__(*exc)

    def __call__(self, func: F) -> F:
        this = self

        if inspect.isasyncgenfunction(func):
            @wrapt.decorator
            def agen_wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
                return run_async_generator_in(this._context, wrapped(*args, **kwargs))
            return cast(F, agen_wrapper(func))

        if inspect.isgeneratorfunction(func):
            @wrapt.decorator
            def gen_wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
                return run_generator_in(this._context, wrapped(*args, **kwargs))
            return cast(F, gen_wrapper(func))

        if inspect.iscoroutinefunction(func):
            @wrapt.decorator
            async def async_wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
                with _attached(this._context()):
                    return await wrapped(*args, **kwargs)
            return cast(F, async_wrapper(func))

        @wrapt.decorator
        def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
            with _attached(this._context()):
                return wrapped(*args, **kwargs)
        return cast(F, wrapper(func))


_ACTIVE_TOKENS: ActiveStack[Token[Context]] = ActiveStack("otel_experiments_active_contexts")


def current_scope(
    context: Context | None = None, *, trust_baggage: bool | None = None
) -> ExperimentScope | None:
    """The scope active in ``context`` (default: current): the in-process scope, with
    what it leaves unset taken from inbound baggage when that is trusted."""
    ctx = context if context is not None else otel_context.get_current()
    found = ctx.get(SCOPE_KEY)
    local = found if isinstance(found, ExperimentScope) else None
    if local is not None and local.experiment is not None:
        return local
    if trust_baggage is None:
        trust_baggage = config.trust_baggage()
    inbound = scope_from_baggage(baggage_of(ctx)) if trust_baggage else None
    if local is None or inbound is None:
        return local or inbound
    return _merge(inbound, local.experiment, local.identity)


def current_experiment(context: Context | None = None) -> TraceExperiment | None:
    """The active experiment, or ``None``."""
    scope = current_scope(context)
    return scope.experiment if scope is not None else None


def current_identity(context: Context | None = None) -> Identity | None:
    """The active identity, or ``None``."""
    scope = current_scope(context)
    return scope.identity if scope is not None else None


def baggage_of(ctx: Context) -> Mapping[str, object]:
    if BAGGAGE_KEY is not None:
        bag = ctx.get(BAGGAGE_KEY)
        return bag if bag is not None else {}  # type: ignore[return-value]
    return otel_baggage.get_all(ctx)  # pragma: no cover


# --- inbound baggage -------------------------------------------------------------------

_warn_baggage = RateLimitedWarning()


def _bag_str(bag: Mapping[str, object], key: str, *, is_id: bool) -> str | None:
    """The value if the models accept it (and it is short and printable), else ``None``."""
    value = bag.get(key)
    if value is None:
        return None
    try:
        if not isinstance(value, str) or len(value) > MAX_ID_LENGTH or not value.isprintable():
            raise ValueError
        return validate_id(value, key) if is_id else validate_name(value, key, optional=False)
    except (TypeError, ValueError):
        shown = repr(value)[:64] if key not in attr.PII_KEYS else "<redacted>"
        _warn_baggage(
            "otel-experiments: dropped invalid inbound baggage %s=%s "
            "(limit %d printable characters)",
            key, shown, MAX_ID_LENGTH,
        )
        return None


def scope_from_baggage(bag: Mapping[str, object]) -> ExperimentScope | None:
    """Validate inbound baggage into a scope. Invalid values are dropped, never raised."""
    if not bag:
        return None
    exp_id = _bag_str(bag, attr.EXPERIMENT_ID, is_id=True)
    experiment = None
    if exp_id is not None:
        experiment = TraceExperiment(
            exp_id,
            _bag_str(bag, attr.EXPERIMENT_NAME, is_id=False),
            _bag_str(bag, attr.EXPERIMENT_FEATURE_SLUG, is_id=True),
        )
    org_id = _bag_str(bag, attr.ORGANIZATION_ID, is_id=True)
    user_id = _bag_str(bag, attr.USER_ID, is_id=True)
    identity = None
    if org_id is not None or user_id is not None:
        identity = Identity(
            Organization(org_id, _bag_str(bag, attr.ORGANIZATION_NAME, is_id=False))
            if org_id is not None else None,
            User(user_id, _bag_str(bag, attr.USER_NAME, is_id=False))
            if user_id is not None else None,
        )
    if experiment is None and identity is None:
        return None
    return ExperimentScope.build(experiment, identity)
