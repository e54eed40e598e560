"""otel-experiments: tag every span with the experiment and identity it runs under.

This module is the public API, declared once. Names are imported on first use, so
``import otel_experiments`` stays cheap (the exporter's httpx, for one, loads only when
the exporter is used).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: public name -> the module defining it
_EXPORTS: dict[str, str] = {
    "AsyncExperimentsClient": ".client",
    "ExperimentsClient": ".client",
    "Metric": ".runner",
    "eval_dataset": ".runner",
    "experiment": ".runner",
    "run_experiment": ".runner",
    "ContextExecutor": ".context.threads",
    "DeliveryReport": ".export.report",
    "Experiment": ".models",
    "ExperimentBatchSpanProcessor": ".sdk.batch",
    "ExperimentEventsExporter": ".export.exporter",
    "ExperimentScope": ".context.scope",
    "ExperimentSpanProcessor": ".sdk.processor",
    "ExperimentsHandle": ".sdk.configure",
    "ExporterSettings": ".settings",
    "Identity": ".models",
    "ObservedSpan": ".observation.span",
    "Organization": ".models",
    "TraceExperiment": ".models",
    "User": ".models",
    "bind_context": ".context.threads",
    "configure": ".sdk.configure",
    "current_experiment": ".context.active",
    "current_identity": ".context.active",
    "experiment_context": ".context.experiment_context",
    "observe": ".observation.span",
    "start_observe": ".observation.start",
}

__all__ = [
    "AsyncExperimentsClient",
    "ContextExecutor",
    "DeliveryReport",
    "Experiment",
    "ExperimentBatchSpanProcessor",
    "ExperimentEventsExporter",
    "ExperimentScope",
    "ExperimentSpanProcessor",
    "ExperimentsClient",
    "ExperimentsHandle",
    "ExporterSettings",
    "Identity",
    "Metric",
    "ObservedSpan",
    "Organization",
    "TraceExperiment",
    "User",
    "__version__",
    "bind_context",
    "configure",
    "current_experiment",
    "current_identity",
    "eval_dataset",
    "experiment",
    "experiment_context",
    "observe",
    "run_experiment",
    "start_observe",
]

if TYPE_CHECKING:
    from .client import AsyncExperimentsClient, ExperimentsClient
    from .context.active import current_experiment, current_identity
    from .context.experiment_context import experiment_context
    from .context.scope import ExperimentScope
    from .context.threads import ContextExecutor, bind_context
    from .export.exporter import ExperimentEventsExporter
    from .export.report import DeliveryReport
    from .models import Experiment, Identity, Organization, TraceExperiment, User
    from .observation.span import ObservedSpan, observe
    from .observation.start import start_observe
    from .runner import Metric, eval_dataset, experiment, run_experiment
    from .sdk.batch import ExperimentBatchSpanProcessor
    from .sdk.configure import ExperimentsHandle, configure
    from .sdk.processor import ExperimentSpanProcessor
    from .settings import ExporterSettings


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'otel_experiments' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # the next access is a plain attribute lookup
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
