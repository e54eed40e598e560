"""Paired significance between two runs: per-metric delta, interval, p-value, verdict.

Records are paired by dataset record id (a record's repetitions averaged) and judged by
:func:`otel_experiments.stats.paired_delta`. Used by ``compare`` (the ``significance``
of a :class:`~.compare.Comparison`), by the gate's ``confidence=`` (only a significant
regression fails) and by the CLI's tables. ``error_rate`` is paired too, as each
record's "task failed" (lower is better).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..stats import REGRESSED, PairedDelta, paired_deltas
from .intervals import metric_values

if TYPE_CHECKING:
    from .results import ExperimentResult, RecordOutcome

#: The pseudo-metric pairing whether each record's task failed.
ERROR_RATE = "error_rate"

HEADERS = ("metric", "n", "A", "B", "delta [CI]", "p", "test", "verdict")


def _paired_labels(a: ExperimentResult, b: ExperimentResult) -> list[str]:
    metrics_a, metrics_b = a.summary.get("metrics", {}), b.summary.get("metrics", {})
    return [label for label in dict.fromkeys([*metrics_a, *metrics_b])
            if (metrics_a.get(label) or metrics_b.get(label) or {}).get("type")
            in ("boolean", "score")]


def _failures(records: Sequence[RecordOutcome]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for r in records:
        out.setdefault(r.record_id, []).append(r.failed)
    return out


def paired_metrics(a: ExperimentResult, b: ExperimentResult, confidence: float = 0.95,
                   lower_is_better: frozenset[str] = frozenset({ERROR_RATE})
                   ) -> list[PairedDelta]:
    """Run b against run a, per metric both have per-record values for, then error_rate."""
    def values(result: ExperimentResult) -> dict[str, dict[str, list[Any]]]:
        out = {label: metric_values(result.records, label) for label in _paired_labels(a, b)}
        out[ERROR_RATE] = _failures(result.records)
        return out

    return paired_deltas(values(a), values(b), confidence=confidence,
                         lower_is_better=lower_is_better | {ERROR_RATE})


def _num(value: float) -> str:
    return f"{value:.4g}"


def interval(d: PairedDelta) -> str:
    """``+0.12 [+0.05, +0.19]``."""
    return d.interval_text()


def rows(deltas: Sequence[PairedDelta]) -> list[list[str]]:
    return [[d.label, str(d.pairs), _num(d.a), _num(d.b), interval(d), f"{d.p_value:.3g}",
             d.test, d.verdict] for d in deltas]


def title(deltas: Sequence[PairedDelta]) -> str:
    level = f"{deltas[0].confidence:.0%}" if deltas else "-"
    # n is per metric: a record without a value in either run (a failed task) is left out
    return f"paired by record (n: records both runs have the metric for), {level} confidence"


@dataclass(frozen=True)
class SignificanceCheck:
    """One gate condition: metric ``label`` of the run did not significantly regress."""

    label: str
    passed: bool
    actual: float
    limit: str
    detail: str


def significance_checks(result: ExperimentResult, baseline: ExperimentResult,
                        confidence: float, tolerance: float = 0.0) -> list[SignificanceCheck]:
    """A check per paired metric: it fails only on a *significant* regression whose size
    is beyond ``tolerance`` (noise alone never fails it)."""
    out: list[SignificanceCheck] = []
    for d in paired_metrics(baseline, result, confidence):
        failed = d.verdict == REGRESSED and abs(d.delta) > tolerance
        limit = f"no significant regression at {confidence:.0%}"
        detail = (f"baseline {_num(d.a)}, delta {interval(d)}, p={d.p_value:.3g} ({d.test}), "
                  f"{d.verdict}")
        out.append(SignificanceCheck(d.label, not failed, d.b, limit, detail))
    return out


__all__ = ["ERROR_RATE", "HEADERS", "SignificanceCheck", "interval", "paired_metrics", "rows",
           "significance_checks", "title"]
