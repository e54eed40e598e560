"""Repetitions and confidence intervals in a run's summary.

A run may repeat each record (``run_experiment(..., repetitions=k)``): every run of a
record is its own :class:`~.results.RecordOutcome` (``repetition`` 0..k-1), and its span
carries the index in its ``metadata`` under ``experiment.repetition`` so a server can
pair the runs too. The summary's metric entries gain the statistics of
:func:`otel_experiments.stats.describe`, computed over records (repetitions grouped).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..attributes import REPETITION
from ..stats import describe

if TYPE_CHECKING:
    from .results import RecordOutcome

logger = logging.getLogger("otel_experiments.runner")

#: The summary's confidence level for every metric's interval.
CONFIDENCE = 0.95


def split_repetition(metadata: Mapping[str, Any] | None) -> tuple[dict[str, Any], int | None]:
    """A stored span's metadata without the repetition index, and the index (or ``None``)."""
    out = dict(metadata or {})
    raw = out.pop(REPETITION, None)
    if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0:
        return out, raw
    if raw is not None:
        out[REPETITION] = raw  # not ours: leave the user's value alone
    return out, None


def metric_values(records: Sequence[RecordOutcome], label: str) -> dict[str, list[Any]]:
    """``{record id: [value per run]}`` of one metric (records without it left out)."""
    out: dict[str, list[Any]] = {}
    for r in records:
        value = r.metrics.get(label)
        if value is not None:
            out.setdefault(r.record_id, []).append(value)
    return out


def repetitions(records: Sequence[RecordOutcome]) -> int:
    """The most runs any record had (1 without repetitions, 0 without records)."""
    counts: dict[str, int] = {}
    for r in records:
        counts[r.record_id] = counts.get(r.record_id, 0) + 1
    return max(counts.values(), default=0)


def spread_text(entry: Mapping[str, Any] | None) -> str:
    """``[0.55, 0.72] pass@3 0.91 pass^3 0.32`` for a summary entry ("" without interval)."""
    if not entry or entry.get("ci_low") is None or entry.get("ci_high") is None:
        return ""
    text = f"[{entry['ci_low']:.4g}, {entry['ci_high']:.4g}]"
    at, hat = entry.get("pass_at_k") or {}, entry.get("pass_hat_k") or {}
    if at and hat:
        k = max(at, key=int)
        text += f" pass@{k} {at[k]:.3g} pass^{k} {hat[k]:.3g}"
    return text


def add_intervals(metrics: dict[str, dict[str, Any]], records: Sequence[RecordOutcome],
                  confidence: float = CONFIDENCE) -> dict[str, dict[str, Any]]:
    """Each boolean / score entry of ``metrics`` gains ``std``, ``ci_low``, ``ci_high``,
    ``confidence`` (and ``pass_at_k`` / ``pass_hat_k`` with repetitions). Without scipy
    the entries stay as they are (one warning): the run's results still stand."""
    for label, entry in metrics.items():
        if entry.get("type") not in ("boolean", "score"):
            continue
        try:
            found = describe(metric_values(records, label), confidence=confidence)
        except ImportError:
            logger.warning("otel-experiments: no confidence intervals without scipy "
                           "(pip install 'otel-experiments[runner]')")
            break
        except Exception as exc:  # the statistics never cost a finished run its summary
            logger.warning("otel-experiments: no interval for metric %r: %s: %s", label,
                           type(exc).__name__, exc)
            continue
        if found is not None:
            entry.update({k: v for k, v in found.items()
                          if k not in ("type", "mean", "trials", "records")})
            entry["records"] = found["records"]
    return metrics


__all__ = ["CONFIDENCE", "add_intervals", "metric_values", "repetitions", "split_repetition",
           "spread_text"]
