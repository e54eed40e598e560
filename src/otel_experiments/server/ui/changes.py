"""Records whose outcome changed between two experiments, for the compare page.

No join of its own: each experiment's records come from the runner's store query
(:func:`..store.records.experiment_records`), become the runner's ``RecordOutcome`` the way
``runner.results.stored_outcomes`` builds them from the API, and ``runner.compare.compare``
pairs them by dataset record id and calls each change a regression, an improvement or a
change (regressions first) exactly as ``otel-experiments compare`` does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..store import MAX_PAGE_SIZE, Store, decode_cursor
from ..store.records import experiment_records

if TYPE_CHECKING:
    from ...runner.results import RecordOutcome


def outcomes(store: Store, experiment_id: str) -> dict[str, RecordOutcome]:
    """Every record of the experiment, by dataset record id (span id when it has none)."""
    # Imported here: the runner pulls in the OpenTelemetry SDK, which a server that never
    # shows a comparison need not load.
    from ...runner.results import RecordOutcome

    out: dict[str, RecordOutcome] = {}
    cursor = 0
    while True:
        page = experiment_records(store, experiment_id, size=MAX_PAGE_SIZE, cursor=cursor)
        for row in page.rows:
            key = row["dataset_record_id"] or row["span_id"]
            error = None
            if row["status"] == "error":
                err = row["error"] if isinstance(row["error"], dict) else {}
                error = {"type": err.get("type"), "message": err.get("message") or "error"}
            metadata = row["metadata"] if isinstance(row["metadata"], dict) else {}
            out[key] = RecordOutcome(
                key, row["input"], row["expected_output"], row["output"], error,
                row["duration"] / 1e6, {m["label"]: m["value"] for m in row["metrics"]}, {},
                metadata, row["span_id"], row["trace_id"])
        if page.next_cursor is None:
            return out
        cursor = decode_cursor(page.next_cursor)


def changed_records(store: Store, baseline: dict[str, Any], other: dict[str, Any],
                    limit: int) -> dict[str, Any]:
    """``{"changes": [...], "total", "common", "counts": {kind: n}}`` of ``other`` against
    ``baseline`` (experiment rows): the first ``limit`` changes (regressions first), each
    with both records' trace ids."""
    from ...runner.compare import compare
    from ...runner.results import ExperimentResult

    a_records = outcomes(store, baseline["id"])
    b_records = outcomes(store, other["id"])
    result = compare(
        ExperimentResult(baseline["id"], baseline["name"], baseline["status"],
                         list(a_records.values())),
        ExperimentResult(other["id"], other["name"], other["status"], list(b_records.values())))
    counts: dict[str, int] = {}
    changes = []
    for change in result.changes:
        counts[change.kind] = counts.get(change.kind, 0) + 1
    for change in result.changes[:limit]:
        a, b = a_records[change.record_id], b_records[change.record_id]
        changes.append({"record_id": change.record_id, "kind": change.kind, "what": change.what,
                        "input": change.input, "output_a": a.output, "output_b": b.output,
                        "trace_a": a.trace_id, "span_a": a.span_id,
                        "trace_b": b.trace_id, "span_b": b.span_id})
    return {"changes": changes, "total": len(result.changes), "common": result.common_records,
            "counts": counts}
