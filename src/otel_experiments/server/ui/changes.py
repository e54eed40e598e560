"""Records whose outcome changed between two experiments, for the compare page.

No join of its own: each experiment's records come from the runner's store query
(:func:`..store.records.experiment_records`). Records are paired by dataset record id (span
id when a record has none) and judged by :func:`otel_experiments.outcomes.outcome_change`,
the rule ``otel-experiments compare`` uses too.
"""

from __future__ import annotations

from typing import Any

from ...outcomes import KINDS, outcome_change
from ..store import MAX_PAGE_SIZE, Store, decode_cursor
from ..store.records import experiment_records

#: Summary evaluations judged lower-is-better (the runner's ``compare.LOWER_IS_BETTER``).
LOWER_IS_BETTER = frozenset({"error_rate", "latency_p50_ms", "latency_p95_ms",
                             "input_tokens", "output_tokens", "cost_usd"})


def outcomes(store: Store, experiment_id: str) -> dict[str, dict[str, Any]]:
    """Every record of the experiment, by dataset record id (span id when it has none)."""
    out: dict[str, dict[str, Any]] = {}
    cursor = 0
    while True:
        page = experiment_records(store, experiment_id, size=MAX_PAGE_SIZE, cursor=cursor,
                                  usage=False)
        for row in page.rows:
            key = row["dataset_record_id"] or row["span_id"]
            error = None
            if row["status"] == "error":
                err = row["error"] if isinstance(row["error"], dict) else {}
                error = {"type": err.get("type"), "message": err.get("message") or "error"}
            out[key] = {"record_id": key, "input": row["input"], "output": row["output"],
                        "error": error, "metrics": {m["label"]: m["value"] for m in row["metrics"]},
                        "span_id": row["span_id"], "trace_id": row["trace_id"]}
        if page.next_cursor is None:
            return out
        cursor = decode_cursor(page.next_cursor)


def change(a: dict[str, Any], b: dict[str, Any]) -> tuple[str, str] | None:
    """``(kind, what)`` when record ``b`` differs in outcome from ``a``, else ``None``."""
    return outcome_change(
        None if a["error"] is None else str(a["error"].get("message")),
        None if b["error"] is None else str(b["error"].get("message")),
        a["metrics"], b["metrics"])


def compare_outcomes(a_records: dict[str, dict[str, Any]],
                     b_records: dict[str, dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """Changes of ``b`` against ``a`` (regressions first, then ``b``'s record order) and
    how many records both have."""
    found: list[dict[str, Any]] = []
    common = 0
    for record_id, b in b_records.items():
        a = a_records.get(record_id)
        if a is None:
            continue
        common += 1
        verdict = change(a, b)
        if verdict is not None:
            found.append({"record_id": record_id, "kind": verdict[0], "what": verdict[1],
                          "input": a["input"], "output_a": a["output"], "output_b": b["output"],
                          "trace_a": a["trace_id"], "span_a": a["span_id"],
                          "trace_b": b["trace_id"], "span_b": b["span_id"]})
    found.sort(key=lambda c: KINDS.index(c["kind"]))
    return found, common


def changed_records(store: Store, baseline: dict[str, Any], other: dict[str, Any],
                    limit: int) -> dict[str, Any]:
    """``{"changes": [...], "total", "common", "counts": {kind: n}}`` of ``other`` against
    ``baseline`` (experiment rows): the first ``limit`` changes, regressions first."""
    found, common = compare_outcomes(outcomes(store, baseline["id"]),
                                     outcomes(store, other["id"]))
    counts: dict[str, int] = {}
    for item in found:
        counts[item["kind"]] = counts.get(item["kind"], 0) + 1
    return {"changes": found[:limit], "total": len(found), "common": common, "counts": counts}
