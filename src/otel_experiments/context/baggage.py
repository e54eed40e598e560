"""Experiment scopes in W3C Baggage: written for other services, read back with suspicion.

Outgoing, the scope's values go into the Context's baggage so the standard
``tracecontext,baggage`` propagators carry them across HTTP and process boundaries
(identity names only when enabled: they are personal data). Incoming baggage is
attacker-controlled: :func:`scope_from_baggage` re-validates every value and drops,
with a rate-limited warning, what the models would refuse.
"""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry import baggage as otel_baggage
from opentelemetry.context import Context

from .. import attributes as attr
from .._runtime.logs import RateLimitedWarning
from ..models import (
    MAX_ID_LENGTH,
    Identity,
    Organization,
    TraceExperiment,
    User,
    validate_id,
    validate_name,
)
from ..settings import scope_settings
from .scope import ExperimentScope

__all__ = ["scope_from_baggage", "with_baggage"]

_EXPERIMENT_KEYS = frozenset({attr.EXPERIMENT_ID, attr.EXPERIMENT_NAME, attr.EXPERIMENT_FEATURE_SLUG})
_ORGANIZATION_KEYS = frozenset({attr.ORGANIZATION_ID, attr.ORGANIZATION_NAME})
_USER_KEYS = frozenset({attr.USER_ID, attr.USER_NAME})


def with_baggage(ctx: Context, scope: ExperimentScope, names: bool) -> Context:
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
    redact = scope_settings().redact  # OTEL_EXPERIMENTS_REDACT: never sent downstream
    for key, value in scope.attributes.items():
        if (names or key not in attr.PII_KEYS) and key not in redact:
            entries[key] = value
    ctx = otel_baggage.clear(ctx)
    for name, item in entries.items():
        ctx = otel_baggage.set_baggage(name, item, ctx)
    return ctx



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
