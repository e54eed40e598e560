"""otel-experiments: tag every span with the experiment and identity it runs under."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .concurrency import ContextExecutor, bind_context, wrap_executor
from .context import (
    ExperimentScope,
    current_experiment,
    current_identity,
    experiment_context,
)
from .models import Experiment, Identity, Organization, TraceExperiment, User
from .observe import ObservedSpan, observe, start_observe
from .processor import ExperimentSpanProcessor
from .setup import configure

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .client import AsyncExperimentsClient, ExperimentsClient
    from .runner import Metric, eval_dataset, experiment, run_experiment

# The client and the runner pull in more (httpx clients, executors, rich): imported on
# first use, so ``import otel_experiments`` stays cheap for an instrumented app.
_LAZY = {
    "ExperimentsClient": "otel_experiments.client",
    "AsyncExperimentsClient": "otel_experiments.client",
    "run_experiment": "otel_experiments.runner",
    "Metric": "otel_experiments.runner",
    "experiment": "otel_experiments.runner",
    "eval_dataset": "otel_experiments.runner",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'otel_experiments' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value

__all__ = [
    "AsyncExperimentsClient",
    "ContextExecutor",
    "Experiment",
    "ExperimentScope",
    "ExperimentSpanProcessor",
    "ExperimentsClient",
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
    "wrap_executor",
]
