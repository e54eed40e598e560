"""Run a task over a dataset as an experiment: evaluators, resume, gate and compare.

``run_experiment(name, dataset, task, evaluators, summary_evaluators, ...)`` runs each
record inside ``start_observe`` (so every span is stamped and exported), scores it, and
stores the experiment with its status, config and reproducibility metadata.
"""

from __future__ import annotations

from .datasets import DatasetError, LoadedDataset, Record, load_dataset
from .decorators import aeval_dataset, eval_dataset, experiment
from .evaluators import (
    Metric,
    accuracy,
    contains,
    error_rate,
    exact_match,
    exact_match_ignoring,
    json_field_match,
    mean,
    numeric_match,
    pass_rate,
    regex,
    string_similarity,
)
from .results import ExperimentResult, RecordOutcome
from .run import RunInterrupted, run_experiment

__all__ = [
    "DatasetError",
    "ExperimentResult",
    "LoadedDataset",
    "Metric",
    "Record",
    "RecordOutcome",
    "RunInterrupted",
    "accuracy",
    "aeval_dataset",
    "contains",
    "error_rate",
    "eval_dataset",
    "exact_match",
    "exact_match_ignoring",
    "experiment",
    "json_field_match",
    "load_dataset",
    "mean",
    "numeric_match",
    "pass_rate",
    "regex",
    "run_experiment",
    "string_similarity",
]
