"""What a run produced: one :class:`RecordOutcome` per record and the run's summary.

The same shape whether it comes from a run in this process, a ``results.json`` file or an
experiment stored on a server, so the gate and the comparison work on any of them.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .datasets import repetition_key
from .intervals import add_intervals, split_repetition

if TYPE_CHECKING:
    from ..client import ExperimentsClient

RESULTS_FORMAT = "otel-experiments/results@1"


@dataclass
class RecordOutcome:
    """One record of a run: what went in, what came out, and its scores."""

    record_id: str
    input: Any = None
    expected_output: Any = None
    output: Any = None
    #: ``{"type", "message"}`` when the task raised or timed out, else ``None``
    error: dict[str, Any] | None = None
    latency_ms: float | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    #: evaluators that raised on this record: ``{label: "Type: message"}``
    evaluator_errors: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    span_id: str | None = None
    trace_id: str | None = None
    #: which run of the record (0, 1, ...) when the run repeated records, else ``None``
    repetition: int | None = None
    #: GenAI tokens of the record's trace, read back from the server (``runner/usage.py``)
    usage: dict[str, Any] | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None

    @property
    def key(self) -> str:
        """The record id, with the repetition when there is one (unique within a run)."""
        return repetition_key(self.record_id, self.repetition)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RecordOutcome:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


def _percentile(values: Sequence[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * p
    lo = math.floor(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def metric_stats(values: Iterable[Any]) -> dict[str, Any]:
    """Aggregate one metric's values: mean (numbers and booleans), pass rate (booleans),
    counts per value (strings)."""
    present = [v for v in values if v is not None]
    out: dict[str, Any] = {"count": len(present)}
    bools = [v for v in present if isinstance(v, bool)]
    numbers = [float(v) for v in present if isinstance(v, (int, float))]
    if bools and len(bools) == len(present):
        out["type"] = "boolean"
        out["pass_rate"] = sum(bools) / len(bools)
        out["mean"] = out["pass_rate"]
    elif numbers and len(numbers) == len(present):
        out["type"] = "score"
        out["mean"] = sum(numbers) / len(numbers)
        out["min"], out["max"] = min(numbers), max(numbers)
    else:
        out["type"] = "categorical"
        counts: dict[str, int] = {}
        for v in present:
            counts[str(v)] = counts.get(str(v), 0) + 1
        out["value_counts"] = counts
    return out


def summarize(records: Sequence[RecordOutcome]) -> dict[str, Any]:
    """The run's summary from its records (metrics, failures, latency)."""
    labels: dict[str, list[Any]] = {}
    for r in records:
        for label in r.metrics:
            labels.setdefault(label, [])
    for label, values in labels.items():
        values.extend(r.metrics.get(label) for r in records)
    failed = sum(1 for r in records if r.failed)
    latencies = [r.latency_ms for r in records if r.latency_ms is not None]
    return {
        "record_count": len(records),
        "failed_count": failed,
        "error_rate": failed / len(records) if records else None,
        "evaluator_error_count": sum(len(r.evaluator_errors) for r in records),
        "latency_ms": {"mean": sum(latencies) / len(latencies) if latencies else None,
                       "p50": _percentile(latencies, 0.5), "p95": _percentile(latencies, 0.95)},
        "metrics": add_intervals(
            {label: metric_stats(values) for label, values in sorted(labels.items())}, records),
    }


@dataclass
class ExperimentResult:
    """A finished (or interrupted) run. ``summary`` holds the aggregates and the summary
    evaluators' results (``summary["evaluations"]``)."""

    experiment_id: str
    name: str
    status: str
    records: list[RecordOutcome]
    summary: dict[str, Any] = field(default_factory=dict)
    feature_slug: str | None = None
    dataset_id: str | None = None
    dataset_version: int | None = None
    config: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    #: spans delivered / spooled / dropped for this run (``None`` when unknown)
    delivery: dict[str, Any] | None = None
    endpoint: str | None = None

    def metric(self, label: str) -> dict[str, Any] | None:
        """The aggregate of metric ``label`` (or of summary evaluation ``label``)."""
        found = self.summary.get("metrics", {}).get(label)
        if found is not None:
            return dict(found)
        evaluations = self.summary.get("evaluations", {})
        if label in evaluations:
            return {"type": "summary", "mean": evaluations[label], "count": 1}
        return None

    def value(self, label: str) -> float | None:
        """The headline number of ``label``: pass rate, mean, or the summary value."""
        stats = self.metric(label)
        if stats is None:
            return None
        value = stats.get("mean")
        return float(value) if isinstance(value, (int, float)) else None

    def labels(self) -> list[str]:
        numeric = [k for k, v in self.summary.get("metrics", {}).items()
                   if v.get("type") in ("boolean", "score")]
        # error_rate is reported (and judged, lower is better) on its own
        summary = [k for k, v in self.summary.get("evaluations", {}).items()
                   if isinstance(v, (int, float)) and k not in numeric and k != "error_rate"]
        return numeric + summary

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        return {"format": RESULTS_FORMAT, **data}

    def to_json(self, path: str | os.PathLike[str] | None = None, *, indent: int = 2) -> str:
        """The result as JSON (written to ``path`` when given, atomically)."""
        text = json.dumps(self.to_dict(), indent=indent, default=str, ensure_ascii=False)
        if path is not None:
            target = Path(path)
            tmp = target.with_name(f".{target.name}.tmp")
            tmp.write_text(text + "\n", encoding="utf-8")
            os.replace(tmp, target)
        return text

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExperimentResult:
        if data.get("format") != RESULTS_FORMAT:
            raise ValueError(f"not an otel-experiments results file (format "
                             f"{data.get('format')!r}, expected {RESULTS_FORMAT!r})")
        known = set(cls.__dataclass_fields__)
        values = {k: v for k, v in data.items() if k in known}
        values["records"] = [RecordOutcome.from_dict(r) for r in data.get("records") or []]
        return cls(**values)

    @classmethod
    def from_json(cls, path: str | os.PathLike[str]) -> ExperimentResult:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FileNotFoundError(f"{path}: no such file") from None
        except ValueError as exc:
            raise ValueError(f"{path}: not JSON ({exc})") from None
        if not isinstance(data, Mapping):
            raise ValueError(f"{path}: not an otel-experiments results file")
        return cls.from_dict(data)

    @classmethod
    def from_server(cls, client: ExperimentsClient, experiment_id: str) -> ExperimentResult:
        """Rebuild a result from a stored experiment (its per-record results)."""
        details = client.experiments.retrieve(experiment_id)
        outcomes = stored_outcomes(client, experiment_id)
        records = list(outcomes.values())
        summary = summarize(records)
        stored = details.metadata.get("summary")
        if isinstance(stored, Mapping) and isinstance(stored.get("evaluations"), Mapping):
            summary["evaluations"] = dict(stored["evaluations"])
        from .usage import attach_usage

        attach_usage(client, details.id, records, summary)
        return cls(details.id, details.name, details.status or "UNKNOWN", records, summary,
                   details.feature_slug, details.dataset_id, details.dataset_version,
                   dict(details.config), dict(details.metadata), None, client.endpoint)


def stored_outcomes(client: ExperimentsClient, experiment_id: str) -> dict[str, RecordOutcome]:
    """The records an experiment stored, by dataset record id (span id when it has none;
    ``id#repetition`` for the runs of a record repeated by ``repetitions=``)."""
    outcomes: dict[str, RecordOutcome] = {}
    for row in client.experiments.records(experiment_id, page_size=1000):
        record_id = row.dataset_record_id or row.span_id
        metadata, repetition = split_repetition(row.metadata)
        key = repetition_key(record_id, repetition)
        error = None
        if row.status == "error":
            err = row.error or {}
            error = {"type": err.get("type"), "message": err.get("message") or "error"}
        outcomes[key] = RecordOutcome(
            record_id, row.input, row.expected_output, row.output, error,
            row.duration_ns / 1e6, dict(row.metrics), {}, metadata, row.span_id, row.trace_id,
            repetition=repetition, usage=row.usage)
    return outcomes


__all__ = ["RESULTS_FORMAT", "ExperimentResult", "RecordOutcome", "metric_stats", "stored_outcomes",
           "summarize"]
