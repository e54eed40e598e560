"""``--prices FILE`` for ``run``, ``gate`` and ``compare``: tokens priced, and their rows.

The runner is imported only when a command runs (as everywhere in the CLI), so ``--help``
stays quick.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from ._common import CliError

if TYPE_CHECKING:
    from ..pricing import PriceTable
    from ..runner.gate import Check
    from ..runner.results import ExperimentResult


def add_prices_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--prices", metavar="FILE",
                        help="price table (.json / .toml / .csv: model -> USD per 1M input "
                        "and output tokens) to price the runs' GenAI token usage")


def load_price_table(path: str | None) -> PriceTable | None:
    from ..pricing import PriceTable, PriceTableError

    if path is None:
        return None
    try:
        return PriceTable.from_file(path)
    except PriceTableError as exc:
        raise CliError(str(exc), 2) from None


def priced(args: argparse.Namespace, *results: ExperimentResult | None) -> None:
    """Price every result's usage with ``--prices`` (a result's own cost stays otherwise)."""
    from ..runner.usage import apply_prices

    table = load_price_table(args.prices)
    for result in results:
        if table is not None and result is not None:
            apply_prices(result.summary, result.records, table)


def usage_rows(result: ExperimentResult) -> list[list[str]]:
    from ..runner.usage import usage_rows as rows

    return rows(result)


def cost_check(result: ExperimentResult, max_cost: float) -> Check:
    from ..runner.usage import cost_check as check

    return check(result, max_cost)


__all__ = ["add_prices_arg", "cost_check", "load_price_table", "priced", "usage_rows"]
