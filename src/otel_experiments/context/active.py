"""The scope active now: attaching one to a Context, and reading it back.

The in-process scope wins field by field; what it leaves unset comes from inbound
baggage when baggage is trusted (``OTEL_EXPERIMENTS_TRUST_BAGGAGE``).
"""

from __future__ import annotations

import logging

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context

from .. import attributes as attr
from .._compat import baggage_of
from ..models import ExperimentLike, Identity, IdentityLike, TraceExperiment
from ..settings import scope_settings
from .baggage import scope_from_baggage, with_baggage
from .scope import SCOPE_KEY, ExperimentScope, merge_scopes

__all__ = [
    "context_with_scope",
    "current_experiment",
    "current_identity",
    "current_scope",
    "mark_entry_span",
]

logger = logging.getLogger("otel_experiments")


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


def mark_entry_span(base: Context | None, scoped: Context) -> None:
    """Stamp the span current in ``base`` with ``scoped``'s experiment, as an entry span.

    That span (a web framework's server span) started before the experiment was known,
    so the processor could not stamp it; without this it would never be exported and
    the unit of work would have no span of its own. A span that already belongs to an
    experiment (in-process or from inbound baggage) is left alone.
    """
    scope = scoped.get(SCOPE_KEY)
    if not isinstance(scope, ExperimentScope) or scope.experiment is None:
        return
    span = trace.get_current_span(base)
    if not span.is_recording():
        return
    outer = current_scope(base)
    if outer is not None and outer.experiment is not None:
        return
    try:
        span.set_attributes({**scope.attributes, attr.EXPERIMENT_ENTRY: "true"})
    except Exception:  # a foreign span implementation must not break the request
        logger.debug("otel-experiments: could not stamp the entry span", exc_info=True)
