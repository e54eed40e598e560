"""Records whose outcome changed between two experiments, for the compare page.

Each experiment's records are those of the records API
(:func:`..store.records.experiment_records`), read lean (:mod:`..store.outcome_rows`: no
span documents; a test holds the two equal). Records are paired by dataset record id (span
id when a record has none) and judged by :func:`otel_experiments.outcomes.outcome_change`,
the rule ``otel-experiments compare`` uses too. Only the records listed have their
documents (input, output, error message) read.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import sqlalchemy as sa

from ...outcomes import KINDS, outcome_change
from ..jsonapi import loads
from ..schema import spans
from ..store import MAX_PAGE_SIZE, Store
from ..store.outcome_rows import OutcomeRow, outcome_rows

#: Summary evaluations judged lower-is-better (the runner's ``compare.LOWER_IS_BETTER``).
LOWER_IS_BETTER = frozenset({"error_rate", "latency_p50_ms", "latency_p95_ms",
                             "input_tokens", "output_tokens", "cost_usd"})


#: Documents read per query (the page size of the records API).
_PAGE = MAX_PAGE_SIZE


def _error(status: str, meta: Any) -> dict[str, Any] | None:
    if status != "error":
        return None
    err = meta.get("error") if isinstance(meta, dict) else None
    err = err if isinstance(err, dict) else {}
    return {"type": err.get("type"), "message": err.get("message") or "error"}


def _latest(rows: list[OutcomeRow]) -> dict[str, OutcomeRow]:
    """By record id; a record run more than once counts its last run (in its first place)."""
    return {row.key: row for row in rows}


def _details(store: Store, experiment_id: str,
             span_ids: list[str]) -> dict[str, tuple[Any, Any, dict[str, Any] | None]]:
    """``{span id: (input, output, error)}`` from the stored documents of ``span_ids`` only
    (the records shown): parsing every record's document was most of a comparison's time."""
    s = spans.c
    out: dict[str, tuple[Any, Any, dict[str, Any] | None]] = {}
    for lo in range(0, len(span_ids), _PAGE):
        with store._read() as conn:
            found = conn.execute(
                sa.select(s.span_id, s.status, s.doc)
                .where(s.experiment_id == experiment_id,
                       s.span_id.in_(span_ids[lo:lo + _PAGE]))).all()
        for span_id, status, doc in found:
            meta = loads(doc).get("meta")
            meta = meta if isinstance(meta, dict) else {}
            out[span_id] = (meta.get("input"), meta.get("output"), _error(status, meta))
    return out


def _full(row: OutcomeRow, details: dict[str, tuple[Any, Any, dict[str, Any] | None]]
          ) -> dict[str, Any]:
    inp, output, error = details.get(row.span_id, (None, None, None))
    return {"record_id": row.key, "input": inp, "output": output, "error": error,
            "metrics": row.metrics, "span_id": row.span_id, "trace_id": row.trace_id}


def outcomes(store: Store, experiment_id: str) -> dict[str, dict[str, Any]]:
    """Every record of the experiment, by dataset record id (span id when it has none):
    the records API's rows reduced to what a comparison shows (``input``, ``output``,
    error, metric values)."""
    latest = _latest(outcome_rows(store, experiment_id))
    details = _details(store, experiment_id, [r.span_id for r in latest.values()])
    return {key: _full(row, details) for key, row in latest.items()}


def change(a: dict[str, Any], b: dict[str, Any]) -> tuple[str, str] | None:
    """``(kind, what)`` when record ``b`` differs in outcome from ``a``, else ``None``."""
    return outcome_change(
        None if a["error"] is None else str(a["error"].get("message")),
        None if b["error"] is None else str(b["error"].get("message")),
        a["metrics"], b["metrics"])


_K = TypeVar("_K")
_A = TypeVar("_A")
_B = TypeVar("_B")


def _common(a_items: dict[_K, _A], b_items: dict[_K, _B]) -> list[tuple[_K, _A, _B]]:
    """The records both runs have, as ``(key, a, b)`` in ``b``'s order."""
    return [(key, a_items[key], b) for key, b in b_items.items() if key in a_items]


def compare_outcomes(a_records: dict[str, dict[str, Any]],
                     b_records: dict[str, dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """Changes of ``b`` against ``a`` (regressions first, then ``b``'s record order) and
    how many records both have."""
    found: list[dict[str, Any]] = []
    pairs = _common(a_records, b_records)
    for record_id, a, b in pairs:
        verdict = change(a, b)
        if verdict is not None:
            found.append({"record_id": record_id, "kind": verdict[0], "what": verdict[1],
                          "input": a["input"], "output_a": a["output"], "output_b": b["output"],
                          "trace_a": a["trace_id"], "span_a": a["span_id"],
                          "trace_b": b["trace_id"], "span_b": b["span_id"]})
    found.sort(key=lambda c: KINDS.index(c["kind"]))
    return found, len(pairs)


def changed_records(store: Store, baseline: dict[str, Any], other: dict[str, Any],
                    limit: int, rows: Callable[[str], list[OutcomeRow]] | None = None
                    ) -> dict[str, Any]:
    """``{"changes": [...], "total", "common", "counts": {kind: n}}`` of ``other`` against
    ``baseline`` (experiment rows): the first ``limit`` changes, regressions first.

    Every common record is judged on the lean rows (whether the task failed, metric
    values); only the ``limit`` records shown have their documents read, and are judged
    again with their error messages, which only the text of ``what`` depends on."""
    read = rows or functools.partial(outcome_rows, store)  # (``rows``: the page's cache)
    a_rows, b_rows = _latest(read(baseline["id"])), _latest(read(other["id"]))
    found: list[tuple[int, OutcomeRow, OutcomeRow]] = []
    counts: dict[str, int] = {}
    pairs = _common(a_rows, b_rows)
    for _, a, b in pairs:
        verdict = outcome_change(None, None, a.metrics, b.metrics,
                                 failed_a=a.failed, failed_b=b.failed)
        if verdict is not None:
            found.append((KINDS.index(verdict[0]), a, b))
            counts[verdict[0]] = counts.get(verdict[0], 0) + 1
    found.sort(key=lambda item: item[0])  # stable: then b's record order
    shown = found[:limit]
    details_a = _details(store, baseline["id"], [a.span_id for _, a, _ in shown])
    details_b = _details(store, other["id"], [b.span_id for _, _, b in shown])
    changes, _ = compare_outcomes({a.key: _full(a, details_a) for _, a, _ in shown},
                                  {b.key: _full(b, details_b) for _, _, b in shown})
    return {"changes": changes, "total": len(found), "common": len(pairs), "counts": counts}
