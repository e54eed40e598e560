"""``ExperimentSpanProcessor``: stamps the active experiment and identity on every span.

The per-span work under an in-process experiment is one Context lookup and one write of
a mapping computed and validated once per scope (see :mod:`otel_experiments.context`).
The write is ``span.set_attributes`` without its second cleaning of every value
(``_compat.set_clean_attributes``): about a fifth of what passing ``attributes=`` to
``start_span`` costs. Without one, the experiment comes from inbound W3C Baggage (only
when baggage is trusted, validated, the mapping cached per baggage object) or from the
process-wide default, and an in-process identity-only scope is laid on top (a second
write).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Final

from opentelemetry.context import Context
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.trace import Span

from .. import settings
from .._compat import BAGGAGE_KEY, baggage_of, get_current_context, set_clean_attributes
from .._runtime.logs import WarnOnce
from ..context.baggage import scope_from_baggage
from ..context.scope import SCOPE_KEY, ExperimentScope, scope_attributes
from ..models import ExperimentLike, TraceExperiment

logger = logging.getLogger("otel_experiments")
_warn_once = WarnOnce()

#: ``default_experiment`` not given: read ``OTEL_EXPERIMENTS_ID`` & co.
FROM_ENV: Final = object()


def _stamp_scope(span: Span, scope: ExperimentScope) -> None:
    clean = scope.clean_attributes
    if clean is not None:
        set_clean_attributes(span, clean)
    else:  # a scope built by hand: the SDK cleans its values
        span.set_attributes(scope.attributes)


class ExperimentSpanProcessor(SpanProcessor):
    """Add ``experiment.*``, ``user.*`` and ``organization.*`` attributes on span start.

    Args:
        trust_baggage: stamp spans from inbound W3C Baggage (another service's
            experiment). Default: ``OTEL_EXPERIMENTS_TRUST_BAGGAGE`` (true).
        default_experiment: experiment for spans started outside any scope (batch
            jobs). Default: ``OTEL_EXPERIMENTS_ID`` / ``_NAME`` / ``_FEATURE_SLUG``;
            pass ``None`` to disable.
    """

    def __init__(
        self,
        *,
        trust_baggage: bool | None = None,
        default_experiment: ExperimentLike | object | None = FROM_ENV,
    ) -> None:
        self._trust_baggage = (
            settings.ScopeSettings.from_env().trust_baggage if trust_baggage is None
            else trust_baggage
        )
        if default_experiment is FROM_ENV:
            default: TraceExperiment | None = settings.default_experiment()
        elif default_experiment is None:
            default = None
        else:
            default = TraceExperiment.coerce(default_experiment)  # type: ignore[arg-type]
        self.default_experiment = default
        self._default_attrs: Mapping[str, str] | None = (
            scope_attributes(default, None) if default is not None else None
        )
        # The key whose presence in a Context means inbound baggage to read (None: never;
        # without the SDK's private key, every Context is read through the public API).
        self._baggage_probe: str | None = (
            BAGGAGE_KEY if self._trust_baggage and BAGGAGE_KEY is not None else None
        )
        self._baggage_public = self._trust_baggage and BAGGAGE_KEY is None
        # One-entry cache: (baggage dict, validated attributes). A request's spans share
        # the same baggage object, so validation runs once per inbound request.
        self._bag_cache: tuple[object, Mapping[str, str] | None] = (None, None)

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        try:
            ctx = parent_context if parent_context is not None else get_current_context()
            # ``in`` before any ``get``: the idle case (no scope, no baggage) is one or two
            # membership tests, the cheapest thing a processor on every span can do
            if SCOPE_KEY in ctx:
                scope: ExperimentScope | None = ctx[SCOPE_KEY]  # type: ignore[assignment]
                if scope is not None and scope.experiment is not None:
                    _stamp_scope(span, scope)
                    return
            else:
                scope = None
                probe = self._baggage_probe
                if (probe is None or probe not in ctx) and not self._baggage_public:
                    if self._default_attrs is not None:
                        set_clean_attributes(span, self._default_attrs)
                    return
            # No experiment in-process: inbound baggage (trusted), else the default one;
            # an in-process identity-only scope is laid on top.
            bag = None
            if self._trust_baggage:
                bag = ctx.get(BAGGAGE_KEY) if BAGGAGE_KEY is not None else baggage_of(ctx)
            if not bag and scope is None:
                if self._default_attrs is not None:
                    set_clean_attributes(span, self._default_attrs)
                return
            fallback = self._baggage_attributes(bag) if bag else None  # type: ignore[arg-type]
            if fallback is None:
                fallback = self._default_attrs
            if fallback is not None:
                set_clean_attributes(span, fallback)
            if scope is not None:
                _stamp_scope(span, scope)
        except Exception:  # never into the host application
            _warn_once("stamp", "otel-experiments: could not stamp a span", exc_info=True)

    def _baggage_attributes(self, bag: Mapping[str, object]) -> Mapping[str, str] | None:
        cached_bag, cached = self._bag_cache
        if cached_bag is bag:
            return cached
        scope = scope_from_baggage(bag)
        attrs: Mapping[str, str] | None = None
        if scope is not None:
            attrs = dict(scope.attributes)
            if scope.experiment is None and self._default_attrs is not None:
                attrs = {**self._default_attrs, **attrs}
        self._bag_cache = (bag, attrs)
        return attrs
