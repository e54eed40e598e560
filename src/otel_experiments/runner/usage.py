"""Tokens and cost of a run: GenAI usage read back from the server, priced client-side.

The server sums the OpenTelemetry GenAI attributes (``gen_ai.usage.input_tokens`` /
``output_tokens``, the model from ``gen_ai.response.model`` / ``request.model``) of every
span of an experiment, whatever instrumentation made them; this module puts them in a
result: ``summary["usage"]`` (totals and ``by_model``), each record's ``usage`` (its whole
trace), and — with a price table (:mod:`otel_experiments.pricing`; there are no built-in
prices) — ``summary["cost"]`` and each record's ``cost_usd``. Models the table does not
price are listed in ``summary["cost"]["unpriced"]``, never guessed.

The headline labels ``input_tokens``, ``output_tokens`` and ``cost_usd`` are "lower is
better" numbers for ``compare`` and the gate, as the latencies are.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from ..pricing import PriceSource, PriceTable, load_prices

if TYPE_CHECKING:
    from ..client import ExperimentsClient
    from .gate import Check
    from .results import ExperimentResult, RecordOutcome

logger = logging.getLogger("otel_experiments.runner")

#: Headline numbers of a run's usage (compare rows, gate bounds).
USAGE_LABELS: Final = ("input_tokens", "output_tokens", "cost_usd")


def attach_usage(client: ExperimentsClient, experiment_id: str, records: Sequence[RecordOutcome],
                 summary: dict[str, Any], prices: PriceSource | None = None) -> None:
    """Read the experiment's usage from the server into ``summary`` and ``records`` (by span
    id), with the server's cost when it has prices, then price it with ``prices``. A server
    that does not report usage leaves both as they are."""
    from ..client import ExperimentsError

    try:
        raw = client.experiments.summary(experiment_id).raw
        usage, server_cost = raw.get("usage"), raw.get("cost")
        by_span: dict[str, Any] = {}
        if isinstance(usage, dict) and usage.get("by_model"):  # else no record has any
            by_span = {r.span_id: r.usage for r in client.experiments.records(
                experiment_id, page_size=1000) if r.usage is not None}
    except ExperimentsError as exc:
        logger.warning("otel-experiments: could not read the usage of experiment %s: %s",
                       experiment_id, exc)
        return
    if isinstance(usage, dict):
        summary["usage"] = usage
    if isinstance(server_cost, dict):  # the server's own price table; ``prices`` overrides
        summary["cost"] = server_cost
    for record in records:
        found = None if record.span_id is None else by_span.get(record.span_id)
        if found is not None:
            record.usage = found
    apply_prices(summary, records, load_prices(prices))


def apply_prices(summary: dict[str, Any], records: Sequence[RecordOutcome],
                 prices: PriceTable | None) -> None:
    """``summary["cost"]`` and each record's ``cost_usd`` from their usage (no table: no cost)."""
    if prices is None:
        return
    usage = summary.get("usage")
    if isinstance(usage, dict):
        summary["cost"] = prices.cost(usage.get("by_model") or []).to_dict()
    for record in records:
        if isinstance(record.usage, dict):
            report = prices.cost(record.usage.get("by_model") or [])
            record.usage = {**record.usage, "cost_usd": report.total_usd if report.complete
                            else None}


def usage_headline(summary: dict[str, Any], label: str) -> float | None:
    """``input_tokens`` / ``output_tokens`` (from the usage) or ``cost_usd`` (from the cost;
    ``None`` when any model was unpriced: a partial sum is not the cost)."""
    if label == "cost_usd":
        cost = summary.get("cost")
        if not isinstance(cost, dict) or not cost.get("complete", False):
            return None
        return float(cost["total_usd"])
    usage = summary.get("usage")
    if not isinstance(usage, dict) or label not in usage:
        return None
    return float(usage[label])


def has_usage(result: ExperimentResult) -> bool:
    usage = result.summary.get("usage")
    return isinstance(usage, dict) and bool(usage.get("by_model"))


def usage_rows(result: ExperimentResult) -> list[list[str]]:
    """Rows for the run's printout: tokens, cost, latency p50 / p95."""
    rows: list[list[str]] = []
    usage = result.summary.get("usage")
    if isinstance(usage, dict) and usage.get("by_model"):
        rows.append(["input_tokens", str(usage.get("input_tokens", 0))])
        rows.append(["output_tokens", str(usage.get("output_tokens", 0))])
        cost = result.summary.get("cost")
        if isinstance(cost, dict):
            text = f"{cost['total_usd']:.6g}"
            if cost.get("unpriced"):
                names = ", ".join(str(m) if m else "(no model)" for m in cost["unpriced"])
                text += f" + unpriced: {names}"
            rows.append(["cost_usd", text])
    latency = result.summary.get("latency_ms") or {}
    for key in ("p50", "p95"):
        if isinstance(latency.get(key), (int, float)):
            rows.append([f"latency_{key}_ms", f"{latency[key]:.4g}"])
    return rows


def cost_check(result: ExperimentResult, max_cost: float) -> Check:
    """The gate's ``--max-cost``: fails when the cost is over, unknown, or partial."""
    from .gate import Check

    cost = result.summary.get("cost")
    limit = f"<= {max_cost:g}"
    if not isinstance(cost, dict):
        return Check(f"cost_usd <= {max_cost:g}", False, None, limit,
                     "no cost: the run has no usage, or no price table was given (--prices)")
    total = float(cost["total_usd"])
    unpriced = [str(m) if m else "(no model)" for m in cost.get("unpriced") or []]
    detail = f"unpriced models: {', '.join(unpriced)}" if unpriced else ""
    return Check(f"cost_usd <= {max_cost:g}", not unpriced and total <= max_cost, total,
                 limit, detail)


__all__ = ["USAGE_LABELS", "apply_prices", "attach_usage", "cost_check", "has_usage",
           "usage_headline", "usage_rows"]
