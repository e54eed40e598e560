"""Records whose outcome changed between two experiments, for the compare page.

Each experiment's records are those of the records API
(:func:`..store.records.experiment_records`), read leaner (a test holds the two equal).
Records are paired by dataset record id (span
id when a record has none) and judged by :func:`otel_experiments.outcomes.outcome_change`,
the rule ``otel-experiments compare`` uses too.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ... import attributes as attr
from ...outcomes import KINDS, outcome_change
from ..jsonapi import loads
from ..schema import metrics, spans
from ..store import MAX_PAGE_SIZE, Store
from ..store.records import _metric_value as metric_value

#: Summary evaluations judged lower-is-better (the runner's ``compare.LOWER_IS_BETTER``).
LOWER_IS_BETTER = frozenset({"error_rate", "latency_p50_ms", "latency_p95_ms",
                             "input_tokens", "output_tokens", "cost_usd"})


#: Records read per query (the page size of the records API).
_PAGE = MAX_PAGE_SIZE


def _error(status: str, meta: Any) -> dict[str, Any] | None:
    if status != "error":
        return None
    err = meta.get("error") if isinstance(meta, dict) else None
    err = err if isinstance(err, dict) else {}
    return {"type": err.get("type"), "message": err.get("message") or "error"}


def _metric_values(conn: sa.Connection, experiment_id: str,
                   span_ids: list[str]) -> dict[str, dict[str, Any]]:
    """``{span id: {label: value}}``: the value the records API shows (``metrics[].value``),
    from the columns, or from the stored document when the columns do not hold it."""
    m = metrics.c
    out: dict[str, dict[str, Any]] = {}
    for span_id, label, mtype, score, category, boolean, doc in conn.execute(
        sa.select(m.span_id, m.label, m.metric_type, m.score_value, m.categorical_value,
                  m.boolean_value, m.doc)
        .where(m.experiment_id == experiment_id, m.span_id.in_(span_ids)).order_by(m.seq)
    ):
        if doc is not None:
            value = metric_value(loads(doc))
        elif mtype == attr.METRIC_TYPE_SCORE:
            value = score
        elif mtype == attr.METRIC_TYPE_BOOLEAN:
            value = None if boolean is None else bool(boolean)
        else:
            value = category
        out.setdefault(span_id, {})[label] = value
    return out


def outcomes(store: Store, experiment_id: str) -> dict[str, dict[str, Any]]:
    """Every record of the experiment, by dataset record id (span id when it has none).

    The records API's rows, reduced to what a comparison reads (``input``, ``output``,
    error, metric values) and read with two plain queries per thousand records: listing
    every record of two 100,000-span runs is most of what the compare page waits for."""
    s = spans.c
    out: dict[str, dict[str, Any]] = {}
    cursor = 0
    while True:
        with store._read() as conn:
            rows = conn.execute(
                sa.select(s.seq, s.span_id, s.trace_id, s.status, s.dataset_record_id, s.doc)
                .where(s.experiment_id == experiment_id, s.is_root.is_(True), s.seq > cursor)
                .order_by(s.seq).limit(_PAGE)).all()
            values = _metric_values(conn, experiment_id, [r[1] for r in rows])
        for seq, span_id, trace_id, status, record_id, doc in rows:
            meta = loads(doc).get("meta")
            meta = meta if isinstance(meta, dict) else {}
            key = record_id or span_id
            out[key] = {"record_id": key, "input": meta.get("input"),
                        "output": meta.get("output"), "error": _error(status, meta),
                        "metrics": values.get(span_id, {}), "span_id": span_id,
                        "trace_id": trace_id}
            cursor = seq
        if len(rows) < _PAGE:
            return out


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
