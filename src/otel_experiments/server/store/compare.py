"""Two experiments paired record by record: per-metric delta [CI], p-value, verdict.

The server's side of ``compare``: it reads each experiment's records (root spans and their
metrics, the values ``GET /experiments/{id}/records`` shows, read lean: ``outcome_rows``), groups them by dataset record id
(span id for a span that names none; a record's repetitions share its id, see
``experiment.repetition`` in docs/events-format.md) and hands them to
:func:`otel_experiments.stats.paired_deltas`, the function the runner's ``compare`` uses,
so both report the same numbers for the same experiments. Beside them: each experiment's
GenAI usage (tokens, by model; the route adds its cost when the server has prices), as the
runner's ``compare`` and the UI's compare page show it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any

from ...stats import paired_deltas
from .aggregates import read_usage
from .base import StoreBase
from .outcome_rows import OutcomeRow, outcome_rows

#: The pseudo-metric pairing whether each record's task failed (lower is better), as in
#: the runner's ``compare``.
ERROR_RATE = "error_rate"


def record_values(rows: Iterable[OutcomeRow]) -> dict[str, dict[str, list[Any]]]:
    """``{metric label: {record id: [value per run]}}`` plus ``error_rate``, of an
    experiment's records."""
    out: dict[str, dict[str, list[Any]]] = {}
    failed: dict[str, list[Any]] = {}
    for row in rows:
        failed.setdefault(row.key, []).append(row.failed)
        for label, value in row.metrics.items():  # (the last value of a label on a span)
            if value is not None:
                out.setdefault(label, {}).setdefault(row.key, []).append(value)
    ordered = {label: out[label] for label in sorted(out) if label != ERROR_RATE}
    return {**ordered, ERROR_RATE: failed}  # the runner's order: metrics by label, then errors


def compare_experiments(store: StoreBase, a: str, b: str, confidence: float,
                        lower_is_better: Iterable[str] = (),
                        rows: Callable[[str], list[OutcomeRow]] | None = None) -> dict[str, Any]:
    """The attributes of an ``experiment_comparisons`` resource: b against a
    (``lower_is_better``: metric labels besides ``error_rate``, e.g. the UI's ticks; 404
    for an unknown experiment). ``rows`` reads an experiment's records (the UI's cache)."""
    read = rows or functools.partial(outcome_rows, store)
    values_a, values_b = record_values(read(a)), record_values(read(b))
    with store._read() as conn:
        usage = {side: read_usage(conn, exp) for side, exp in (("a", a), ("b", b))}
    common = set(values_a[ERROR_RATE]) & set(values_b[ERROR_RATE])
    deltas = paired_deltas(values_a, values_b, confidence=confidence,
                           lower_is_better=(ERROR_RATE, *lower_is_better))
    return {"a": a, "b": b, "confidence": confidence, "common_records": len(common),
            "metrics": [d.to_dict() for d in deltas], "usage": usage}


__all__ = ["ERROR_RATE", "compare_experiments", "record_values"]
