"""Records whose outcome changed between two experiments, for the compare page.

No join of its own: each experiment's records come from the runner's store query
(:func:`..store.records.experiment_records`). Records are paired by dataset record id (span
id when a record has none) and judged by the rule of ``otel-experiments compare``
(``runner/compare.py``): the server layer may not import the runner, so the rule is
restated here and ``tests/ui/test_ui_units.py`` checks that both give the same verdicts.
"""

from __future__ import annotations

from typing import Any

from ..store import MAX_PAGE_SIZE, Store, decode_cursor
from ..store.records import experiment_records

#: Listed first to last, as the runner's comparison orders them.
KINDS = ("regression", "improvement", "changed")
#: Summary evaluations judged lower-is-better (the runner's ``compare.LOWER_IS_BETTER``).
LOWER_IS_BETTER = frozenset({"error_rate", "latency_p50_ms", "latency_p95_ms"})


def outcomes(store: Store, experiment_id: str) -> dict[str, dict[str, Any]]:
    """Every record of the experiment, by dataset record id (span id when it has none)."""
    out: dict[str, dict[str, Any]] = {}
    cursor = 0
    while True:
        page = experiment_records(store, experiment_id, size=MAX_PAGE_SIZE, cursor=cursor)
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


def _score(value: Any) -> float | None:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)):
        return float(value)
    return None


def change(a: dict[str, Any], b: dict[str, Any]) -> tuple[str, str] | None:
    """``(kind, what)`` when record ``b`` differs in outcome from ``a``, else ``None``."""
    if (a["error"] is None) != (b["error"] is None):
        if b["error"] is not None:
            return "regression", f"task now fails ({b['error'].get('message')})"
        return "improvement", "task no longer fails"
    worse, better, other = [], [], []
    for label in sorted(set(a["metrics"]) | set(b["metrics"])):
        va, vb = a["metrics"].get(label), b["metrics"].get(label)
        if va == vb:
            continue
        sa, sb = _score(va), _score(vb)
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
