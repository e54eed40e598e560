"""What each page shows, as plain data: the routes fetch, these functions shape."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ... import attributes as attr
from ..jsonapi import loads
from ..store import Store
from . import charts, queries
from .changes import LOWER_IS_BETTER
from .format import duration, number, percent

#: Buckets per distribution chart: fine enough to see a shape, coarse enough to read.
BINS = 20
#: Categories drawn per categorical metric (the rest are counted as "other").
MAX_CATEGORIES = 12


def metric_chart(store: Store, experiment_id: str, item: dict[str, Any]) -> charts.Chart | None:
    label = item["label"]
    if item["metric_type"] == attr.METRIC_TYPE_SCORE:
        lo, hi = item.get("min"), item.get("max")
        if lo is None or hi is None:
            return None
        counts = queries.score_histogram(store, experiment_id, label, float(lo), float(hi), BINS)
        return charts.histogram(counts, float(lo), float(hi), number, label)
    counts_map: dict[str, int] = item.get("value_counts") or {}
    ranked = sorted(counts_map.items(), key=lambda kv: (-kv[1], kv[0]))
    shown = ranked[:MAX_CATEGORIES]
    rest = sum(c for _, c in ranked[MAX_CATEGORIES:])
    if rest:
        shown.append(("(other)", rest))
    return charts.bars([(k, float(c)) for k, c in shown], lambda v: f"{v:,.0f}", label)


def metric_rows(store: Store, experiment_id: str,
                summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Every metric with its headline number, a total for scores, and its chart."""
    rows = []
    for item in summary.get("metrics", []):
        row = dict(item)
        counts = item.get("value_counts") or {}
        if item["metric_type"] == attr.METRIC_TYPE_BOOLEAN:
            decided = counts.get("true", 0) + counts.get("false", 0)
            row["headline"] = percent(counts.get("true", 0) / decided if decided else None)
            row["headline_kind"] = "pass rate"
        elif item["metric_type"] == attr.METRIC_TYPE_SCORE:
            row["headline"] = number(item.get("mean"))
            row["headline_kind"] = "mean"
            # A score's sum answers "how many tokens / how much cost in total".
            mean = item.get("mean")
            row["total"] = None if mean is None else mean * item["count"]
        else:
            row["headline"] = f"{len(counts)} values"
            row["headline_kind"] = "distinct"
        row["chart"] = metric_chart(store, experiment_id, item)
        rows.append(row)
    return rows


def latency_chart(store: Store, experiment_id: str,
                  stats: dict[str, Any]) -> charts.Chart | None:
    lat = stats.get("latency_ns") or {}
    lo, hi = lat.get("min"), lat.get("max")
    if not stats.get("span_count") or lo is None or hi is None:
        return None
    counts = queries.latency_histogram(store, experiment_id, float(lo), float(hi), BINS)
    return charts.histogram(counts, float(lo), float(hi), duration, "record latency")


def experiment_view(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    out["config"] = loads(row["config"]) if isinstance(row.get("config"), str) else row.get("config")
    out["metadata"] = (loads(row["metadata"]) if isinstance(row.get("metadata"), str)
                       else row.get("metadata"))
    return out


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def run_facts(metadata: Any) -> list[tuple[str, str]]:
    """Git commit, Python and platform from the runner's ``reproducibility`` metadata (or
    a top-level ``git`` object), for the run panel; the full metadata is shown as well."""
    meta = _mapping(metadata)
    repro = _mapping(meta.get("reproducibility"))
    git = _mapping(repro.get("git")) or _mapping(meta.get("git"))
    facts = []
    if git.get("commit"):
        dirty = " (uncommitted changes)" if git.get("dirty") else ""
        branch = f" on {git['branch']}" if git.get("branch") else ""
        facts.append(("Git commit", f"{git['commit']}{branch}{dirty}"))
    for key, label in (("python", "Python"), ("platform", "Platform")):
        if repro.get(key):
            facts.append((label, str(repro[key])))
    return facts


def summary_evaluations(metadata: Any) -> dict[str, float]:
    """The runner's summary evaluators' numeric results (``metadata.summary.evaluations``)."""
    evaluations = _mapping(_mapping(_mapping(metadata).get("summary")).get("evaluations"))
    return {k: float(v) for k, v in sorted(evaluations.items())
            if isinstance(v, (int, float)) and not isinstance(v, bool)}


def record_view(row: dict[str, Any]) -> dict[str, Any]:
    """A records-table row: the span's own values, falling back to its dataset record."""
    record = row.get("record") or {}
    expected = row.get("expected_output")
    if expected is None:
        expected = record.get("expected_output")
    inp = row.get("input")
    if inp is None:
        inp = record.get("input")
    return {**row, "input": inp, "expected_output": expected}


# -- comparison -------------------------------------------------------------------------------

def _winner(values: Sequence[float | None], higher_is_better: bool) -> list[bool]:
    known = [v for v in values if v is not None]
    if len(known) < 2 or max(known) == min(known):
        return [False] * len(values)  # no winner on a tie or a single value
    best = max(known) if higher_is_better else min(known)
    return [v == best for v in values]


def comparison(experiments: Sequence[dict[str, Any]],
               summaries: Sequence[dict[str, Any]],
               lower_is_better: frozenset[str]) -> list[dict[str, Any]]:
    """One row per metric (and error rate, latency): each experiment's value, its delta
    against the first (the baseline), the winner, and a chart."""
    names = [e["name"] for e in experiments]
    specs: list[tuple[str, str, list[float | None], bool, Any]] = []
    labels: dict[tuple[str, str], list[float | None]] = {}
    for i, summary in enumerate(summaries):
        for item in summary.get("metrics", []):
            key = (item["label"], item["metric_type"])
            values = labels.setdefault(key, [None] * len(summaries))
            if item["metric_type"] == attr.METRIC_TYPE_SCORE:
                values[i] = item.get("mean")
            elif item["metric_type"] == attr.METRIC_TYPE_BOOLEAN:
                counts = item.get("value_counts") or {}
                decided = counts.get("true", 0) + counts.get("false", 0)
                values[i] = counts.get("true", 0) / decided if decided else None
    for (label, mtype), values in sorted(labels.items()):
        if mtype == attr.METRIC_TYPE_CATEGORICAL:
            continue  # no order between categories: nothing to call better
        kind = "mean" if mtype == attr.METRIC_TYPE_SCORE else "pass rate"
        fmt = number if mtype == attr.METRIC_TYPE_SCORE else percent
        specs.append((label, kind, values, label not in lower_is_better, fmt))
    evaluations = [summary_evaluations(e.get("metadata")) for e in experiments]
    for label in sorted({k for ev in evaluations for k in ev}):
        values = [ev.get(label) for ev in evaluations]
        # Summary evaluations come from the runner: judged by its rule, as
        # `otel-experiments compare` judges them (error_rate and latencies lower).
        higher = label not in lower_is_better and label not in LOWER_IS_BETTER
        specs.append((label, "summary evaluation", values, higher, number))
    roots = [s.get("root_spans") or s for s in summaries]
    specs.append(("error rate", "records", [r.get("error_rate") for r in roots], False, percent))
    for p in ("p50", "p95"):
        specs.append((f"latency {p}", "records",
                      [(r.get("latency_ns") or {}).get(p) for r in roots], False, duration))
    specs.extend(_usage_specs(summaries))
    rows = []
    for label, kind, values, higher, fmt in specs:
        wins = _winner(values, higher)
        base = values[0]
        deltas = [None if v is None or base is None or i == 0 else v - base
                  for i, v in enumerate(values)]
        chart = charts.bars([(n, float(v or 0)) for n, v in zip(names, values, strict=True)],
                            fmt, f"{label} ({kind})", wins)
        rows.append({"label": label, "kind": kind, "higher_is_better": higher,
                     "cells": [{"value": fmt(v), "delta": d, "delta_text": _delta(d, fmt),
                                "better": _better(d, higher), "winner": w}
                               for v, d, w in zip(values, deltas, wins, strict=True)],
                     "chart": chart, "has_winner": any(wins),
                     "adjustable": kind != "records" and (higher or label in lower_is_better)})
    return rows


def _usage_specs(summaries: Sequence[dict[str, Any]]
                 ) -> list[tuple[str, str, list[float | None], bool, Any]]:
    """Tokens (and cost, when the server has prices) of experiments that used any: lower is
    better. A cost with an unpriced model is shown as unknown, not as a partial sum."""
    usages = [u if isinstance(u := s.get("usage"), dict) and u.get("by_model") else None
              for s in summaries]
    if not any(usages):
        return []
    out: list[tuple[str, str, list[float | None], bool, Any]] = [
        (f"{key.replace('_', ' ')}", "GenAI usage",
         [None if u is None else u.get(key) for u in usages], False, number)
        for key in ("input_tokens", "output_tokens")]
    costs = [c if isinstance(c := s.get("cost"), dict) else None for s in summaries]
    if any(costs):
        out.append(("cost (USD)", "GenAI usage",
                    [c["total_usd"] if c and c.get("complete") else None for c in costs],
                    False, number))
    return out


def _delta(delta: float | None, fmt: Any) -> str:
    if delta is None:
        return ""
    text: str = fmt(abs(delta))
    return ("+" if delta > 0 else "\u2212" if delta < 0 else "±") + text


def _better(delta: float | None, higher_is_better: bool) -> bool | None:
    if delta is None or delta == 0:
        return None
    return (delta > 0) == higher_is_better


# -- trace ------------------------------------------------------------------------------------

#: Indentation levels the stylesheet has classes for (deeper spans stay at the last one).
MAX_DEPTH = 12


def span_tree(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Spans in depth-first order, each with its depth and its place on the timeline
    (percent of the trace's extent), ready for a waterfall."""
    ids = {r["span_id"] for r in rows}
    children: dict[str | None, list[dict[str, Any]]] = {}
    for r in rows:  # rows come sorted by start time, so siblings stay in start order
        parent = r["parent_id"] if r["parent_id"] in ids else None
        children.setdefault(parent, []).append(r)
    start = min((r["start_ns"] for r in rows), default=0)
    end = max((r["start_ns"] + r["duration"] for r in rows), default=0)
    extent = max(end - start, 1)
    ordered: list[dict[str, Any]] = []
    seen: set[str] = set()
    stack = [(r, 0) for r in reversed(children.get(None, []))]
    while True:
        if not stack:
            # Spans whose parents form a cycle are reachable from no root: show them at
            # the top level rather than lose them.
            rest = [r for r in rows if r["span_id"] not in seen]
            if not rest:
                break
            stack = [(rest[0], 0)]
        node, depth = stack.pop()  # iterative: a deep chain cannot hit the recursion limit
        if node["span_id"] in seen:
            continue
        seen.add(node["span_id"])
        offset = (node["start_ns"] - start) / extent * 100
        ordered.append({**node, "depth": depth, "indent": min(depth, MAX_DEPTH),
                        "offset": round(offset, 3),
                        "width": round(max(node["duration"] / extent * 100, 0.2), 3)})
        stack.extend((c, depth + 1) for c in reversed(children.get(node["span_id"], [])))
    return {"spans": ordered, "start_ns": start, "duration": end - start}
