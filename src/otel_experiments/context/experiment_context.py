"""``experiment_context``: make an experiment and/or identity current without a span."""

from __future__ import annotations

from opentelemetry.context import Context

from ..models import ExperimentLike, Identity, IdentityLike, TraceExperiment
from ..settings import scope_settings
from .active import context_with_scope, mark_entry_span
from .scope import SCOPE_KEY, ExperimentScope
from .scoped import Run, Scoped

__all__ = ["experiment_context"]


class experiment_context(Scoped[Run]):
    """Attach an experiment and/or identity without starting a span.

    For middleware and request handlers: every span started inside (by any library)
    is stamped by :class:`~otel_experiments.ExperimentSpanProcessor`, and outgoing
    requests carry the values as W3C Baggage. The span current when it is entered (a
    web framework's server span, started before any middleware) is stamped too and
    marked as the entry span of the unit of work, unless it already belongs to an
    experiment. Use as ``with`` / ``async with`` (which
    give the :class:`ExperimentScope`) or as a decorator (sync and async functions,
    generators, async generators). One instance may be shared: each thread or task
    entering it exits its own scope. Invalid values raise ``ValueError`` / ``TypeError``
    here, at the call.
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
            scope_settings().propagate_identity_names
            if propagate_identity_names is None
            else propagate_identity_names
        )

    def _start(self, base: Context | None = None) -> Run:
        ctx = context_with_scope(
            self._experiment, self._identity, context=base, propagate_identity_names=self._names
        )
        mark_entry_span(base, ctx)
        return Run(ctx)

    def _entered(self, run: Run) -> ExperimentScope:
        scope: ExperimentScope = run.ctx[SCOPE_KEY]  # type: ignore[assignment]
        return scope

    def __enter__(self) -> ExperimentScope:
        scope: ExperimentScope = super().__enter__()
        return scope

    async def __aenter__(self) -> ExperimentScope:
        return self.__enter__()
