"""Cost beside usage in the API's answers, when the server has a price table.

``OTEL_EXPERIMENTS_PRICES`` names a JSON / TOML / CSV table (:mod:`otel_experiments.pricing`:
USD per 1M tokens, no built-in prices). With it, every ``usage`` object the summary and the
per-record results carry gets a sibling ``cost``: ``{total_usd, complete, unpriced,
by_model}``. Without it there is no ``cost`` member at all, rather than a made-up zero.
"""

from __future__ import annotations

from typing import Any

from ..pricing import PriceTable


def add_cost(doc: dict[str, Any], prices: PriceTable | None) -> dict[str, Any]:
    """``doc`` with ``cost`` next to its ``usage`` (and in each of its ``groups``)."""
    if prices is None:
        return doc
    usage = doc.get("usage")
    if isinstance(usage, dict) and isinstance(usage.get("by_model"), list):
        doc["cost"] = prices.cost(usage["by_model"]).to_dict()
    for group in doc.get("groups") or []:
        if isinstance(group, dict):
            add_cost(group, prices)
    return doc


__all__ = ["add_cost"]
