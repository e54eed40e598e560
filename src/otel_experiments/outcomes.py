"""When a record's outcome changed between two runs: the one rule.

Used by the runner's ``compare`` (``otel-experiments compare``, the CI gate's baseline) and
by the server's web UI compare page, so both always name the same records.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

__all__ = ["KINDS", "outcome_change", "score"]

#: The kinds of change, most important first (the order they are listed in).
KINDS: Final = ("regression", "improvement", "changed")


def score(value: Any) -> float | None:
    """A metric value as a number to compare (booleans as 0 / 1), or ``None``."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)):
        return float(value)
    return None


def outcome_change(error_a: str | None, error_b: str | None, metrics_a: Mapping[str, Any],
                   metrics_b: Mapping[str, Any], *, failed_a: bool | None = None,
                   failed_b: bool | None = None) -> tuple[str, str] | None:
    """``(kind, what changed)`` for run b's record against run a's, or ``None``.

    A task that starts failing is a regression and one that stops an improvement; else a
    metric that drops (higher is better; booleans count true above false) makes a
    regression, one that rises an improvement, and a non-numeric change is "changed".
    ``error_*`` is the error message (``None``: the task did not fail).
    """
    a_failed = error_a is not None if failed_a is None else failed_a
    b_failed = error_b is not None if failed_b is None else failed_b
    if a_failed != b_failed:
        if b_failed:
            return "regression", f"task now fails ({error_b})"
        return "improvement", "task no longer fails"
    worse, better, other = [], [], []
    for label in sorted(set(metrics_a) | set(metrics_b)):
        va, vb = metrics_a.get(label), metrics_b.get(label)
        if va == vb:
            continue
        sa, sb = score(va), score(vb)
        text = f"{label}: {va!r} -> {vb!r}"
        if sa is None or sb is None:
            other.append(text)
        elif sb < sa:
            worse.append(text)
        else:
            better.append(text)
    if worse:
        return "regression", "; ".join(worse + better + other)
    if better:
        return "improvement", "; ".join(better + other)
    if other:
        return "changed", "; ".join(other)
    return None
