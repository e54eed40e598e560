"""What an experiment scope is: the experiment, the identity and the span attributes they imply.

An :class:`ExperimentScope` is built once when a scope is entered, so the processor's
per-span cost under an experiment is one write of a ready, validated mapping.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from opentelemetry import context as otel_context

from .. import attributes as attr
from ..models import Identity, TraceExperiment

__all__ = ["SCOPE_KEY", "ExperimentScope", "merge_scopes", "scope_attributes"]

#: The Context key an :class:`ExperimentScope` is stored under.
SCOPE_KEY = otel_context.create_key("otel_experiments.scope")


@dataclass(frozen=True, slots=True)
class ExperimentScope:
    """Experiment + identity active in a Context, with their span attributes precomputed."""

    experiment: TraceExperiment | None
    identity: Identity | None
    attributes: Mapping[str, str] = field(default_factory=dict)
    #: ``attributes`` as the processor writes them into every span without cleaning them
    #: again (``_compat.set_clean_attributes``): a copy, checked once here. ``None`` when
    #: they hold anything but non-empty ``str`` keys and ``str`` values (a scope built by
    #: hand): then every span goes through ``span.set_attributes``, which cleans them.
    clean_attributes: dict[str, str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        items = self.attributes.items() if isinstance(self.attributes, Mapping) else None
        clean = (None if items is None or not all(
            isinstance(k, str) and k and isinstance(v, str) for k, v in items)
            else dict(items))
        object.__setattr__(self, "clean_attributes", clean)

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


def merge_scopes(outer: ExperimentScope | None, experiment: TraceExperiment | None,
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
