"""Comparing two runs: per-metric deltas, the winner, and the records that changed."""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from ..outcomes import outcome_change
from ..stats import PairedDelta
from .results import ExperimentResult, RecordOutcome
from .significance import paired_metrics
from .usage import USAGE_LABELS, has_usage, usage_headline

#: Lower is better for these; every other metric is "higher is better".
LOWER_IS_BETTER = frozenset({"error_rate", "latency_p50_ms", "latency_p95_ms", *USAGE_LABELS})


@dataclass(frozen=True)
class MetricDelta:
    label: str
    a: float | None
    b: float | None
    #: ``"A"``, ``"B"`` or ``"tie"`` (``None`` when one side lacks the metric)
    winner: str | None

    @property
    def delta(self) -> float | None:
        return None if self.a is None or self.b is None else self.b - self.a


@dataclass(frozen=True)
class RecordChange:
    record_id: str
    #: ``"regression"`` (worse in B), ``"improvement"`` or ``"changed"``
    kind: str
    what: str
    input: Any = None


@dataclass
class Comparison:
    a: ExperimentResult
    b: ExperimentResult
    metrics: list[MetricDelta] = field(default_factory=list)
    changes: list[RecordChange] = field(default_factory=list)
    common_records: int = 0
    #: per metric: delta with its interval, p-value and verdict (``significance.py``)
    significance: list[PairedDelta] = field(default_factory=list)

    @property
    def winner(self) -> str:
        """``"A"``, ``"B"`` or ``"tie"``: who wins more metrics (quality metrics only)."""
        wins = {"A": 0, "B": 0}
        for m in self.metrics:
            if m.winner in wins and not m.label.startswith("latency") \
                    and m.label not in USAGE_LABELS:
                wins[m.winner] += 1
        if wins["A"] == wins["B"]:
            return "tie"
        return "A" if wins["A"] > wins["B"] else "B"

    @property
    def regressions(self) -> list[RecordChange]:
        return [c for c in self.changes if c.kind == "regression"]


def _winner(label: str, a: float | None, b: float | None, eps: float = 1e-12) -> str | None:
    if a is None or b is None:
        return None
    if abs(a - b) <= eps:
        return "tie"
    better_b = b < a if label in LOWER_IS_BETTER else b > a
    return "B" if better_b else "A"


def headline(result: ExperimentResult, label: str) -> float | None:
    """A run's number for ``label``: a metric's pass rate / mean, a summary evaluation,
    ``error_rate``, ``latency_p50_ms`` or ``latency_p95_ms``."""
    if label == "error_rate":
        value = result.summary.get("error_rate")
    elif label.startswith("latency_"):
        value = (result.summary.get("latency_ms") or {}).get(label.split("_")[1])
    elif label in USAGE_LABELS:
        return usage_headline(result.summary, label)
    else:
        return result.value(label)
    return float(value) if isinstance(value, (int, float)) else None


def _change(a: RecordOutcome, b: RecordOutcome) -> RecordChange | None:
    found = outcome_change(
        None if not a.failed else str((a.error or {}).get("message")),
        None if not b.failed else str((b.error or {}).get("message")),
        a.metrics, b.metrics, failed_a=a.failed, failed_b=b.failed)
    return None if found is None else RecordChange(a.key, found[0], found[1], a.input)


def compare(a: ExperimentResult, b: ExperimentResult, *,
            confidence: float | None = 0.95) -> Comparison:
    """Compare run ``b`` against run ``a`` (records paired by dataset record id, and by
    repetition for the changed records). ``confidence``: the level of the paired tests in
    ``significance`` (``None``: skip them)."""
    out = Comparison(a, b)
    if confidence is not None:
        with suppress(ImportError):  # scipy missing: the plain deltas still stand
            out.significance = paired_metrics(a, b, confidence, LOWER_IS_BETTER)
    labels = list(dict.fromkeys([*a.labels(), *b.labels()]))
    usage = USAGE_LABELS if has_usage(a) or has_usage(b) else ()
    for label in [*labels, "error_rate", "latency_p50_ms", "latency_p95_ms", *usage]:
        va, vb = headline(a, label), headline(b, label)
        out.metrics.append(MetricDelta(label, va, vb, _winner(label, va, vb)))
    by_id = {r.key: r for r in a.records}
    for rb in b.records:
        ra = by_id.get(rb.key)
        if ra is None:
            continue
        out.common_records += 1
        change = _change(ra, rb)
        if change is not None:
            out.changes.append(change)
    order = {"regression": 0, "improvement": 1, "changed": 2}
    out.changes.sort(key=lambda c: order[c.kind])
    return out


__all__ = ["LOWER_IS_BETTER", "Comparison", "MetricDelta", "RecordChange", "compare", "headline"]
