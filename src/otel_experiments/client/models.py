"""What the client returns: frozen dataclasses built from JSON:API resources.

Unknown attributes from a newer server are ignored; missing optional ones default, so the
client keeps working against any compatible backend.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..models import Experiment, TraceExperiment
from ..stats import PairedDelta


def _attrs(resource: Mapping[str, Any]) -> dict[str, Any]:
    attrs = resource.get("attributes")
    return dict(attrs) if isinstance(attrs, Mapping) else {}


def _dict(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


@dataclass(frozen=True)
class Project:
    id: str
    name: str
    description: str = ""
    created_at: str | None = None
    updated_at: str | None = None

    @classmethod
    def from_resource(cls, res: Mapping[str, Any]) -> Project:
        a = _attrs(res)
        return cls(str(res["id"]), str(a.get("name", "")), str(a.get("description") or ""),
                   a.get("created_at"), a.get("updated_at"))


@dataclass(frozen=True)
class Dataset:
    id: str
    name: str
    project_id: str | None = None
    description: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    current_version: int = 0
    record_count: int | None = None
    created_at: str | None = None
    updated_at: str | None = None

    @classmethod
    def from_resource(cls, res: Mapping[str, Any]) -> Dataset:
        a = _attrs(res)
        return cls(str(res["id"]), str(a.get("name", "")), a.get("project_id"),
                   str(a.get("description") or ""), _dict(a.get("metadata")),
                   int(a.get("current_version") or 0), a.get("record_count"),
                   a.get("created_at"), a.get("updated_at"))


@dataclass(frozen=True)
class DatasetRecord:
    id: str
    input: Any
    expected_output: Any = None
    metadata: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    dataset_id: str | None = None
    version: int | None = None
    created_at: str | None = None

    @classmethod
    def from_resource(cls, res: Mapping[str, Any]) -> DatasetRecord:
        a = _attrs(res)
        return cls(str(res["id"]), a.get("input"), a.get("expected_output"),
                   _dict(a.get("metadata")), list(a.get("tags") or []), a.get("dataset_id"),
                   a.get("version"), a.get("created_at"))


@dataclass(frozen=True)
class RecordsFromSpans:
    """What ``datasets.records.from_spans`` added: the new records and the counts (spans
    matched, inputs already in the dataset or repeated, spans without an input)."""

    records: list[DatasetRecord]
    dataset_version: int
    matched_spans: int
    duplicates: int
    without_input: int

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> RecordsFromSpans:
        meta = doc.get("meta") or {}
        return cls([DatasetRecord.from_resource(r) for r in doc.get("data") or []],
                   int(meta.get("dataset_version", 0)), int(meta.get("matched_spans", 0)),
                   int(meta.get("duplicates", 0)), int(meta.get("without_input", 0)))


@dataclass(frozen=True)
class ExperimentDetails:
    """An experiment as the server stores it (``list`` / ``retrieve`` / ``update``)."""

    id: str
    name: str
    feature_slug: str | None = None
    status: str | None = None
    project_id: str | None = None
    dataset_id: str | None = None
    dataset_version: int | None = None
    description: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: str | None = None
    updated_at: str | None = None

    @classmethod
    def from_resource(cls, res: Mapping[str, Any]) -> ExperimentDetails:
        a = _attrs(res)
        return cls(str(res["id"]), str(a.get("name") or res["id"]), a.get("feature_slug"),
                   a.get("status"), a.get("project_id"), a.get("dataset_id"),
                   a.get("dataset_version"), str(a.get("description") or ""),
                   _dict(a.get("config")), _dict(a.get("metadata")), a.get("created_at"),
                   a.get("updated_at"))

    @property
    def experiment(self) -> Experiment | TraceExperiment:
        """What ``start_observe(experiment=...)`` takes (an ``Experiment`` when it has a slug)."""
        if self.feature_slug:
            return Experiment(self.id, self.name, self.feature_slug, self.created_at or "")
        return TraceExperiment(self.id, self.name)


def _usage(attrs: Mapping[str, Any]) -> dict[str, Any] | None:
    usage = attrs.get("usage")
    if not isinstance(usage, dict):
        return None
    return {**usage, "cost": attrs["cost"]} if isinstance(attrs.get("cost"), dict) else usage


@dataclass(frozen=True)
class RecordResult:
    """One record of an experiment: its record span, metrics and dataset record."""

    span_id: str
    trace_id: str
    name: str
    status: str
    duration_ns: int
    dataset_record_id: str | None = None
    input: Any = None
    output: Any = None
    expected_output: Any = None
    error: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    tags: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    record: dict[str, Any] | None = None
    user_id: str | None = None
    organization_id: str | None = None
    start_ns: int = 0
    #: GenAI tokens of every span of the record's trace (``input_tokens``,
    #: ``output_tokens``, ``by_model``), with ``cost`` when the server has prices
    usage: dict[str, Any] | None = None

    @classmethod
    def from_resource(cls, res: Mapping[str, Any]) -> RecordResult:
        a = _attrs(res)
        metrics = {str(m.get("label")): m.get("value") for m in a.get("metrics") or []
                   if isinstance(m, Mapping)}
        error = a.get("error")
        return cls(str(res["id"]), str(a.get("trace_id", "")), str(a.get("name", "")),
                   str(a.get("status", "ok")), int(a.get("duration") or 0),
                   a.get("dataset_record_id"), a.get("input"), a.get("output"),
                   a.get("expected_output"), error if isinstance(error, dict) else None,
                   a.get("metadata"), list(a.get("tags") or []), metrics, a.get("record"),
                   a.get("user_id"), a.get("organization_id"), int(a.get("start_ns") or 0),
                   _usage(a))

    def tag(self, key: str) -> str | None:
        """The value of tag ``key`` (``"key:value"`` tags), or ``None``."""
        prefix = f"{key}:"
        return next((t[len(prefix):] for t in self.tags if t.startswith(prefix)), None)


@dataclass(frozen=True)
class MetricSummary:
    label: str
    metric_type: str
    count: int
    mean: float | None = None
    min: float | None = None
    max: float | None = None
    p50: float | None = None
    p95: float | None = None
    value_counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ExperimentSummary:
    """``GET /experiments/{id}/summary``: counts, error rate, latency and every metric."""

    experiment_id: str
    span_count: int
    error_count: int
    error_rate: float | None
    latency_ns: dict[str, float | None]
    root_spans: dict[str, Any]
    metrics: list[MetricSummary]
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_resource(cls, res: Mapping[str, Any]) -> ExperimentSummary:
        a = _attrs(res)
        metrics = [MetricSummary(str(m.get("label")), str(m.get("metric_type")),
                                 int(m.get("count") or 0), m.get("mean"), m.get("min"),
                                 m.get("max"), m.get("p50"), m.get("p95"),
                                 _dict(m.get("value_counts")))
                   for m in a.get("metrics") or [] if isinstance(m, Mapping)]
        return cls(str(res["id"]), int(a.get("span_count") or 0), int(a.get("error_count") or 0),
                   a.get("error_rate"), _dict(a.get("latency_ns")), _dict(a.get("root_spans")),
                   metrics, a)

    def metric(self, label: str) -> MetricSummary | None:
        return next((m for m in self.metrics if m.label == label), None)


@dataclass(frozen=True)
class ExperimentComparison:
    """``GET /experiments/compare``: experiment ``b`` against ``a``, paired per record;
    one :class:`~otel_experiments.stats.PairedDelta` per metric (delta, interval, p-value,
    verdict); each experiment's GenAI ``usage`` (``{"a": ..., "b": ...}``: tokens in total
    and per model) and, when the server has a price table, its ``cost`` (else ``None``)."""

    a: str
    b: str
    confidence: float
    common_records: int
    metrics: list[PairedDelta]
    usage: dict[str, dict[str, Any]] = field(default_factory=dict)
    cost: dict[str, dict[str, Any]] | None = None

    @classmethod
    def from_resource(cls, res: Mapping[str, Any]) -> ExperimentComparison:
        attrs = _attrs(res)
        metrics = [PairedDelta.from_dict(m) for m in attrs.get("metrics") or []
                   if isinstance(m, Mapping)]
        usage, cost = attrs.get("usage"), attrs.get("cost")
        return cls(str(attrs.get("a")), str(attrs.get("b")), float(attrs.get("confidence") or 0),
                   int(attrs.get("common_records") or 0), metrics,
                   dict(usage) if isinstance(usage, Mapping) else {},
                   dict(cost) if isinstance(cost, Mapping) else None)

    def metric(self, label: str) -> PairedDelta | None:
        return next((m for m in self.metrics if m.label == label), None)

    def tokens(self, side: str) -> tuple[int, int]:
        """``(input, output)`` tokens of experiment ``"a"`` or ``"b"`` (0 without usage)."""
        usage = self.usage.get(side) or {}
        return int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0)

    def cost_usd(self, side: str) -> float | None:
        """Experiment ``"a"``'s or ``"b"``'s cost in USD; ``None`` without a price table on
        the server or when a model is unpriced (a partial sum is not the cost)."""
        cost = (self.cost or {}).get(side)
        if not isinstance(cost, Mapping) or not cost.get("complete"):
            return None
        return float(cost.get("total_usd") or 0.0)


__all__ = [
    "Dataset",
    "DatasetRecord",
    "ExperimentComparison",
    "ExperimentDetails",
    "ExperimentSummary",
    "MetricSummary",
    "Project",
    "RecordResult",
]
