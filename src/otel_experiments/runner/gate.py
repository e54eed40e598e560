"""The CI quality gate: thresholds, failures and regression against a baseline."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .compare import LOWER_IS_BETTER, headline
from .results import ExperimentResult
from .significance import significance_checks


class GateError(ValueError):
    """The gate cannot be evaluated as asked (e.g. an unknown metric label)."""


@dataclass(frozen=True)
class Check:
    """One condition of the gate and how the run fared."""

    name: str
    passed: bool
    actual: float | None
    limit: str
    detail: str = ""


@dataclass
class GateResult:
    result: ExperimentResult
    checks: list[Check] = field(default_factory=list)
    baseline: ExperimentResult | None = None

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.6g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.3e}"


def _value(result: ExperimentResult, label: str) -> float | None:
    return headline(result, label)


def _known(result: ExperimentResult, label: str) -> None:
    if label not in LOWER_IS_BETTER and result.metric(label) is None:
        known = ", ".join([*result.labels(), *sorted(LOWER_IS_BETTER)])
        raise GateError(f"unknown metric label {label!r} in {result.name}; known: {known}")


def gate(result: ExperimentResult, *, minimums: Mapping[str, float] | None = None,
         maximums: Mapping[str, float] | None = None, max_failures: int | None = None,
         baseline: ExperimentResult | None = None, tolerance: float = 0.0,
         confidence: float | None = None) -> GateResult:
    """Judge a run. Every metric is "higher is better" except ``error_rate`` and the
    latencies (``latency_p50_ms``, ``latency_p95_ms``: usable with ``maximums``).

    * ``minimums`` / ``maximums``: ``{label: bound}`` on a metric's headline number (pass
      rate of a boolean, mean of a score, value of a summary evaluation, ``error_rate``);
    * ``max_failures``: records whose task raised or timed out;
    * ``baseline``: every metric the baseline has may not drop by more than ``tolerance``
      (and the error rate may not rise by more than it);
    * ``confidence`` (with ``baseline``): metrics with per-record values, and the error
      rate, are paired record by record and fail only on a regression significant at this
      level (and larger than ``tolerance``): noise alone does not fail the gate. Summary
      evaluations (one number per run) keep the ``tolerance`` rule.

    Raises :class:`GateError` for a label the run does not have.
    """
    out = GateResult(result, baseline=baseline)
    for label, bound in (minimums or {}).items():
        _known(result, label)
        value = _value(result, label)
        out.checks.append(Check(f"{label} >= {_fmt(bound)}", value is not None and
                                value >= bound, value, f">= {_fmt(bound)}"))
    for label, bound in (maximums or {}).items():
        _known(result, label)
        value = _value(result, label)
        out.checks.append(Check(f"{label} <= {_fmt(bound)}", value is not None and
                                value <= bound, value, f"<= {_fmt(bound)}"))
    if max_failures is not None:
        failed = int(result.summary.get("failed_count", 0))
        detail = ", ".join(r.record_id for r in result.records if r.failed)[:300]
        out.checks.append(Check(f"failures <= {max_failures}", failed <= max_failures,
                                float(failed), f"<= {max_failures}", detail))
    covered: set[str] = set()
    if baseline is not None and confidence is not None:
        for sig in significance_checks(result, baseline, confidence, tolerance):
            covered.add(sig.label)
            out.checks.append(Check(f"{sig.label} vs baseline", sig.passed, sig.actual,
                                    sig.limit, sig.detail))
    if baseline is not None:
        for label in baseline.labels():
            base = baseline.value(label)
            value = result.value(label)
            if base is None or label in covered:
                continue
            floor = base - tolerance
            detail = f"baseline {_fmt(base)}, delta {_fmt(None if value is None else value - base)}"
            out.checks.append(Check(f"{label} vs baseline", value is not None and
                                    value >= floor - 1e-12, value, f">= {_fmt(floor)}", detail))
        base_err, err = _value(baseline, "error_rate"), _value(result, "error_rate")
        if base_err is not None and err is not None and "error_rate" not in covered:
            ceiling = base_err + tolerance
            out.checks.append(Check("error_rate vs baseline", err <= ceiling + 1e-12, err,
                                    f"<= {_fmt(ceiling)}", f"baseline {_fmt(base_err)}"))
    return out


def parse_bounds(items: list[str] | None, flag: str) -> dict[str, float]:
    """``["accuracy=0.9", ...]`` -> ``{"accuracy": 0.9}`` (``GateError`` naming the flag)."""
    out: dict[str, float] = {}
    for item in items or []:
        label, sep, raw = item.rpartition("=")
        if not sep or not label:
            raise GateError(f"{flag} {item!r}: expected LABEL=NUMBER")
        try:
            out[label] = float(raw)
        except ValueError:
            raise GateError(f"{flag} {item!r}: {raw!r} is not a number") from None
    return out


__all__ = ["Check", "GateError", "GateResult", "gate", "parse_bounds"]
