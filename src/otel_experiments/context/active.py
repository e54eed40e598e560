"""The scope active now: attaching one to a Context, and reading it back.

The in-process scope wins field by field; what it leaves unset comes from inbound
baggage when baggage is trusted (``OTEL_EXPERIMENTS_TRUST_BAGGAGE``).
"""

from __future__ import annotations

from opentelemetry import context as otel_context
from opentelemetry.context import Context

from .._compat import baggage_of
from ..models import ExperimentLike, Identity, IdentityLike, TraceExperiment
from ..settings import scope_settings
from .baggage import scope_from_baggage, with_baggage
from .scope import SCOPE_KEY, ExperimentScope, merge_scopes

__all__ = ["context_with_scope", "current_experiment", "current_identity", "current_scope"]


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
    scope = merge_scopes(outer if isinstance(outer, ExperimentScope) else None, exp, ident)
    ctx = otel_context.set_value(SCOPE_KEY, scope, base)
    if propagate_identity_names is None:
        propagate_identity_names = scope_settings().propagate_identity_names
    return with_baggage(ctx, scope, propagate_identity_names)


def current_scope(context: Context | None = None) -> ExperimentScope | None:
    """The scope active in ``context`` (default: current): the in-process scope, with
    what it leaves unset taken from inbound baggage when that is trusted."""
    ctx = context if context is not None else otel_context.get_current()
    found = ctx.get(SCOPE_KEY)
    local = found if isinstance(found, ExperimentScope) else None
    if local is not None and local.experiment is not None:
        return local
    inbound = scope_from_baggage(baggage_of(ctx)) if scope_settings().trust_baggage else None
    if local is None or inbound is None:
        return local or inbound
    return merge_scopes(inbound, local.experiment, local.identity)


def current_experiment(context: Context | None = None) -> TraceExperiment | None:
    """The active experiment, or ``None``."""
    scope = current_scope(context)
    return scope.experiment if scope is not None else None


def current_identity(context: Context | None = None) -> Identity | None:
    """The active identity, or ``None``."""
    scope = current_scope(context)
    return scope.identity if scope is not None else None
