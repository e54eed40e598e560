"""``configure()``: one call that stamps and exports experiment events.

``configure()`` reads the environment (see :mod:`otel_experiments.settings`), finds the
global SDK ``TracerProvider`` (creating one with ``Resource.create()``, i.e. the
standard ``OTEL_SERVICE_NAME`` / ``OTEL_RESOURCE_ATTRIBUTES`` resource, when none is
set) and adds to it:

* an :class:`~otel_experiments.ExperimentSpanProcessor`, unless the provider already
  has one (added by hand, by the ``opentelemetry-instrument`` instrumentor or by an
  earlier call);
* an :class:`~otel_experiments.sdk.batch.ExperimentBatchSpanProcessor` around an
  :class:`~otel_experiments.ExperimentEventsExporter` (bounded queue, flush and
  shutdown), unless the provider already exports to one (for example through
  ``OTEL_TRACES_EXPORTER=experiments``).

It is idempotent: calling it again returns the same :class:`ExperimentsHandle`, so
every span is exported once. :meth:`ExperimentsHandle.shutdown` flushes and shuts down
only the processors ``configure()`` added: it never shuts the provider down, so the
application's own tracing keeps working, and ``configure()`` may be called again.
"""

from __future__ import annotations

import atexit
import dataclasses
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter

from .. import settings as settings_module
from .._compat import span_processors
from ..events.redact import RedactHook
from ..export.exporter import ExperimentEventsExporter
from ..models import ExperimentLike
from ..settings import ExporterSettings
from .batch import ExperimentBatchSpanProcessor
from .handle import ExperimentsHandle, _exporter_of, _lock, _retired
from .handle import _handles as _handles  # re-exported: the runner reads it
from .processor import FROM_ENV, ExperimentSpanProcessor

if TYPE_CHECKING:
    pass

__all__ = [
    "ExperimentsHandle",
    "configure",
    "configured_handle",
    "find_experiment_processor",
    "install_processor",
    "resolve_tracer_provider",
]

logger = logging.getLogger("otel_experiments")
# --------------------------------------------------------------------- provider helpers


def configured_handle(provider: object) -> ExperimentsHandle | None:
    """The live handle of an earlier :func:`configure` call on ``provider``, if any."""
    with _lock:
        handle = _handles.get(provider) if isinstance(provider, TracerProvider) else None
    return handle if handle is not None and not handle.is_shut_down else None


def find_experiment_processor(provider: TracerProvider) -> ExperimentSpanProcessor | None:
    """The :class:`ExperimentSpanProcessor` already added to ``provider``, if any."""
    for proc in span_processors(provider):
        if isinstance(proc, ExperimentSpanProcessor):
            return proc
    return None


def _find_export_processor(
    provider: TracerProvider, exporter: SpanExporter | None
) -> SpanProcessor | None:
    """A live processor exporting to ``exporter`` (or to any experiments exporter)."""
    for proc in span_processors(provider):
        if proc in _retired:
            continue
        target = _exporter_of(proc)
        if target is None:
            continue
        if exporter is not None:
            if target is exporter:
                return proc
        elif isinstance(target, ExperimentEventsExporter):
            return proc
    return None


def resolve_tracer_provider(
    tracer_provider: trace.TracerProvider | None = None, *, create: bool
) -> TracerProvider | None:
    """The SDK provider to configure, or ``None`` (logged) when there is none to use.

    ``tracer_provider`` wins; otherwise the global provider. When the global provider
    is still the API's ``ProxyTracerProvider`` (nothing configured yet) and ``create`` is
    true, a ``TracerProvider(resource=Resource.create())`` is created and set globally.
    """
    if tracer_provider is not None:
        if isinstance(tracer_provider, TracerProvider):
            return tracer_provider
        logger.warning(
            "otel-experiments: %s is not an SDK TracerProvider; experiment processors "
            "cannot be added to it",
            type(tracer_provider).__name__,
        )
        return None
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        return current
    if isinstance(current, trace.ProxyTracerProvider) and create:
        provider = TracerProvider(resource=Resource.create())
        trace.set_tracer_provider(provider)  # no-op (logged by the API) if another won
        current = trace.get_tracer_provider()
        if isinstance(current, TracerProvider):
            return current
    if isinstance(current, trace.ProxyTracerProvider):
        logger.warning(
            "otel-experiments: no SDK TracerProvider is configured yet (the global provider "
            "is a ProxyTracerProvider); spans will not be stamped with experiments. Call "
            "otel_experiments.configure() after setting up tracing, or add "
            "ExperimentSpanProcessor() to your TracerProvider."
        )
    else:
        logger.warning(
            "otel-experiments: the global tracer provider %s is not an SDK TracerProvider; "
            "experiment processors cannot be added to it",
            type(current).__name__,
        )
    return None


def install_processor(
    provider: TracerProvider,
    *,
    trust_baggage: bool | None = None,
    default_experiment: ExperimentLike | object | None = FROM_ENV,
) -> tuple[ExperimentSpanProcessor, bool]:
    """Add an :class:`ExperimentSpanProcessor` to ``provider`` unless it has one.

    Returns the processor in use and whether it was added now.
    """
    with _lock:
        existing = find_experiment_processor(provider)
        if existing is not None:
            return existing, False
        processor = ExperimentSpanProcessor(
            trust_baggage=trust_baggage, default_experiment=default_experiment
        )
        provider.add_span_processor(processor)
        return processor, True


# ---------------------------------------------------------------------------- configure


def configure(
    *,
    tracer_provider: trace.TracerProvider | None = None,
    exporter: SpanExporter | None = None,
    settings: ExporterSettings | None = None,
    export: bool = True,
    batch: bool = True,
    endpoint: str | None = None,
    api_key: str | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float | None = None,
    shutdown_timeout: float | None = None,
    compression: str | None = None,
    trust_baggage: bool | None = None,
    default_experiment: ExperimentLike | object | None = FROM_ENV,
    redact: RedactHook | None = None,
) -> ExperimentsHandle:
    """Stamp spans with their experiment and export them as experiment events.

    Every argument left ``None`` comes from the environment (argument > environment
    variable > default; see ``docs/configuration.md``).

    Args:
        tracer_provider: the SDK provider to add to. Default: the global one, created
            with ``Resource.create()`` if none is set yet.
        exporter: export through this exporter instead of an
            :class:`~otel_experiments.ExperimentEventsExporter`.
        settings: the exporter's settings whole (an
            :class:`~otel_experiments.settings.ExporterSettings`); or some of them as
            ``endpoint`` / ``api_key`` / ``headers`` / ``timeout`` / ``compression``.
        shutdown_timeout: seconds ``handle.shutdown()`` and the exit flush may take
            (``OTEL_EXPERIMENTS_SHUTDOWN_TIMEOUT``, default 5), whatever the backend does.
        export: false to only stamp spans (another exporter ships them).
        batch: wrap the exporter in an ``ExperimentBatchSpanProcessor`` (default; the
            SDK's ``BatchSpanProcessor`` for another exporter) rather than a
            ``SimpleSpanProcessor``.
        trust_baggage, default_experiment: passed to
            :class:`~otel_experiments.ExperimentSpanProcessor` when one is added.
        redact: a hook over each event about to be sent (returns the event, or ``None``
            to drop it); ``OTEL_EXPERIMENTS_REDACT`` masks keys and JSON paths.

    Returns:
        An :class:`ExperimentsHandle`; the same one on repeated calls for the same
        provider (until it is shut down). Its ``enabled`` is false when
        ``OTEL_SDK_DISABLED=true`` or ``OTEL_EXPERIMENTS_ENABLED=false``: then nothing
        is added and nothing is sent.
    """
    exporter_arguments: dict[str, Any] = {
        "endpoint": endpoint, "api_key": api_key, "headers": headers, "timeout": timeout,
        "shutdown_timeout": shutdown_timeout, "compression": compression,
    }
    requested: dict[str, object] = {
        key: value for key, value in (
            ("exporter", exporter), ("settings", settings), ("trust_baggage", trust_baggage),
            ("redact", redact),
            *exporter_arguments.items(),
        ) if value is not None
    }
    if not export:
        requested["export"] = False
    if not batch:
        requested["batch"] = False
    if default_experiment is not FROM_ENV:
        requested["default_experiment"] = default_experiment
    if not settings_module.enabled():
        logger.info(
            "otel-experiments: disabled by %s or %s; configure() adds nothing",
            settings_module.OTEL_SDK_DISABLED,
            settings_module.OTEL_EXPERIMENTS_ENABLED,
        )
        return ExperimentsHandle()
    with _lock:
        provider = resolve_tracer_provider(tracer_provider, create=True)
        if provider is None:
            return ExperimentsHandle()
        existing = _handles.get(provider)
        if existing is not None and not existing.is_shut_down:
            if requested and requested != existing.requested:
                logger.warning(
                    "otel-experiments: configure() was already called for this provider with "
                    "other arguments (%s); the first configuration stays. Call "
                    "handle.shutdown() first to configure it differently.",
                    ", ".join(sorted(requested)),
                )
            else:
                logger.debug("otel-experiments: already configured; configure() reuses the handle")
            return existing

        processor, added = install_processor(
            provider, trust_baggage=trust_baggage, default_experiment=default_experiment
        )
        owned: list[SpanProcessor] = [processor] if added else []
        if not added and (trust_baggage is not None or default_experiment is not FROM_ENV):
            logger.debug(
                "otel-experiments: the provider already has an ExperimentSpanProcessor; "
                "trust_baggage/default_experiment arguments are not applied to it"
            )

        used_exporter: SpanExporter | None = None
        reporting: tuple[SpanExporter, ...] = ()
        if settings is None:
            settings = ExporterSettings.resolve(**exporter_arguments)
        elif shutdown_timeout is not None:
            settings = dataclasses.replace(settings, shutdown_timeout=shutdown_timeout)
        if export:
            present = _find_export_processor(provider, exporter)
            if present is not None:
                found = _exporter_of(present)
                if isinstance(found, ExperimentEventsExporter):
                    reporting = (found,)
                logger.debug(
                    "otel-experiments: the provider already exports experiment events; "
                    "configure() adds no second exporter"
                )
            else:
                if exporter is None:
                    exporter = ExperimentEventsExporter(settings=settings, redact=redact)
                used_exporter = exporter
                export_processor: SpanProcessor
                if not batch:
                    export_processor = SimpleSpanProcessor(exporter)
                elif isinstance(exporter, ExperimentEventsExporter):
                    # bounded queue (overflow spooled), flush and shutdown
                    export_processor = ExperimentBatchSpanProcessor(exporter)
                else:
                    export_processor = BatchSpanProcessor(exporter)
                provider.add_span_processor(export_processor)
                owned.append(export_processor)

        handle = ExperimentsHandle(
            provider, processor, used_exporter, tuple(owned),
            shutdown_timeout=settings.shutdown_timeout, reporting=reporting,
        )
        handle.requested = requested
        _handles[provider] = handle
    # Flush at exit even when the provider was built with shutdown_on_exit=False.
    # Registered after the provider's own hook, so it runs first (atexit is LIFO).
    atexit.register(handle.shutdown)
    return handle
