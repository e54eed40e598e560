"""otel-experiments: tag every span with the experiment and identity it runs under."""

from __future__ import annotations

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

__all__ = [
    "ContextExecutor",
    "Experiment",
    "ExperimentScope",
    "ExperimentSpanProcessor",
    "Identity",
    "ObservedSpan",
    "Organization",
    "TraceExperiment",
    "User",
    "__version__",
    "bind_context",
    "configure",
    "current_experiment",
    "current_identity",
    "experiment_context",
    "observe",
    "start_observe",
    "wrap_executor",
]
