"""``ExperimentsInstrumentor``: zero-code setup through ``opentelemetry-instrument``.

Registered as the ``opentelemetry_instrumentor`` entry point ``otel_experiments``.
``opentelemetry-instrument`` (``opentelemetry.instrumentation.auto_instrumentation``)
runs, in this order: the distro's ``configure()``, the configurator (which, with
``opentelemetry-distro``, creates the global SDK ``TracerProvider`` and adds one
``BatchSpanProcessor`` per ``OTEL_TRACES_EXPORTER`` entry, e.g. ``experiments``), then
every instrumentor. So when :meth:`ExperimentsInstrumentor._instrument` runs, the
provider exists and this only adds the :class:`~otel_experiments.ExperimentSpanProcessor`
to it; exporting is left to the configurator (``OTEL_TRACES_EXPORTER=otlp,experiments``).

The processor lands after the configurator's export processors. That is fine: it
stamps in ``on_start`` and exporters only see spans in ``on_end``.

Without a configured SDK provider (no distro, another configurator, or
``OTEL_PYTHON_CONFIGURATOR`` pointing elsewhere) the global provider is still the
API's ``ProxyTracerProvider``: a warning is logged and nothing is added (call
:func:`otel_experiments.configure` from the application instead).
``OTEL_SDK_DISABLED=true`` or ``OTEL_EXPERIMENTS_ENABLED=false`` make it a no-op, and
``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=otel_experiments`` skips it altogether.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Any

from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)

from .. import settings
from .configure import install_processor, resolve_tracer_provider
from .processor import ExperimentSpanProcessor

__all__ = ["ExperimentsInstrumentor"]

logger = logging.getLogger("otel_experiments")


class ExperimentsInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Add an :class:`ExperimentSpanProcessor` to the configured ``TracerProvider``.

    ``instrument(tracer_provider=...)`` targets a given SDK provider instead of the
    global one. Never raises into the application.
    """

    processor: ExperimentSpanProcessor | None = None

    def instrumentation_dependencies(self) -> Collection[str]:
        return ()

    def _instrument(self, **kwargs: Any) -> None:
        self.processor = None
        try:
            if not settings.enabled():
                logger.info(
                    "otel-experiments: disabled by %s or %s; not instrumenting",
                    settings.OTEL_SDK_DISABLED,
                    settings.OTEL_EXPERIMENTS_ENABLED,
                )
                return
            provider = resolve_tracer_provider(kwargs.get("tracer_provider"), create=False)
            if provider is None:
                return
            processor, added = install_processor(provider)
            self.processor = processor
            logger.debug(
                "otel-experiments: %s",
                "ExperimentSpanProcessor added" if added else "ExperimentSpanProcessor present",
            )
        except Exception:  # never into the host application
            logger.warning("otel-experiments: instrumentation failed", exc_info=True)

    def _uninstrument(self, **kwargs: Any) -> None:
        # An SDK TracerProvider cannot remove a span processor; the processor stays.
        logger.debug("otel-experiments: the ExperimentSpanProcessor cannot be removed")
