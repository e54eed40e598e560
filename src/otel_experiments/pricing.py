"""Token prices the user supplies, and what a run's GenAI usage cost under them.

There are no built-in prices: list prices change and differ per contract, so a stale table
shipped here would be presented as truth. A table comes from a file (JSON, TOML or CSV) or a
mapping, in US dollars per **one million** tokens, input and output apart::

    {"gpt-4o": {"input": 2.5, "output": 10}, "claude-3-5-*": {"input": 3, "output": 15}}

    # TOML: the same as tables (optionally under [models])
    ["gpt-4o"]
    input = 2.5
    output = 10

    # CSV: a header row naming the columns
    model,input,output
    gpt-4o,2.5,10

``input`` / ``output`` may also be spelled ``input_per_million`` / ``output_per_million``.
A model name matches exactly first; otherwise a name with ``*`` / ``?`` / ``[...]`` is a
glob (``gpt-4o*`` covers the dated ``gpt-4o-2024-08-06``), the longest matching pattern
winning. A model no entry matches — or usage that names no model — is reported as
*unpriced*: its tokens are counted, its cost never guessed.
"""

from __future__ import annotations

import csv
import fnmatch
import io
import json
import math
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

#: Accepted spellings of the two prices in a table entry.
INPUT_KEYS: Final = ("input", "input_per_million")
OUTPUT_KEYS: Final = ("output", "output_per_million")
_GLOB_CHARS: Final = frozenset("*?[")


class PriceTableError(ValueError):
    """A price table that cannot be read or has a bad entry (the message names it)."""


@dataclass(frozen=True)
class Price:
    """US dollars per one million input tokens and per one million output tokens."""

    input_per_million: float
    output_per_million: float

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        return (input_tokens * self.input_per_million
                + output_tokens * self.output_per_million) / 1_000_000


@dataclass(frozen=True)
class ModelCost:
    model: str | None
    input_tokens: int
    output_tokens: int
    #: ``None`` when the table has no price for ``model``
    cost_usd: float | None


@dataclass(frozen=True)
class CostReport:
    """Cost of usage ``by_model``: the total over the priced models, and which were not."""

    total_usd: float
    by_model: list[ModelCost] = field(default_factory=list)
    #: models (``None``: usage naming no model) the table has no price for
    unpriced: list[str | None] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Every token was priced (the total is the whole cost)."""
        return not self.unpriced

    def to_dict(self) -> dict[str, Any]:
        return {"total_usd": self.total_usd, "complete": self.complete,
                "unpriced": list(self.unpriced),
                "by_model": [{"model": m.model, "input_tokens": m.input_tokens,
                              "output_tokens": m.output_tokens, "cost_usd": m.cost_usd}
                             for m in self.by_model]}


def _number(entry: Mapping[str, Any], keys: tuple[str, ...], where: str) -> float:
    for key in keys:
        if key in entry:
            value = entry[key]
            if isinstance(value, str):
                try:
                    value = float(value)
                except ValueError:
                    raise PriceTableError(f"{where}: {key} {value!r} is not a number") from None
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value) or value < 0:
                raise PriceTableError(f"{where}: {key} must be a number >= 0, got {value!r}")
            return float(value)
    raise PriceTableError(f"{where}: needs {keys[0]} (USD per 1M tokens)")


class PriceTable:
    """Model name (or glob) -> :class:`Price`."""

    def __init__(self, prices: Mapping[str, Price | Mapping[str, Any]]) -> None:
        if not isinstance(prices, Mapping):
            raise PriceTableError(f"a price table is a mapping of model -> prices, got "
                                  f"{type(prices).__name__}")
        self._exact: dict[str, Price] = {}
        self._globs: list[tuple[str, Price]] = []
        for model, entry in prices.items():
            if not isinstance(model, str) or not model:
                raise PriceTableError(f"model names are non-empty strings, got {model!r}")
            if isinstance(entry, Price):
                price = entry
            elif isinstance(entry, Mapping):
                where = f"price of {model!r}"
                price = Price(_number(entry, INPUT_KEYS, where), _number(entry, OUTPUT_KEYS, where))
            else:
                raise PriceTableError(f"price of {model!r}: expected {{'input': USD, "
                                      f"'output': USD}} per 1M tokens, got {entry!r}")
            if _GLOB_CHARS & set(model):
                self._globs.append((model, price))
            else:
                self._exact[model] = price
        # The most specific pattern first: "gpt-4o-mini*" before "gpt-4o*".
        self._globs.sort(key=lambda item: -len(item[0]))

    def __len__(self) -> int:
        return len(self._exact) + len(self._globs)

    def price_of(self, model: str | None) -> Price | None:
        if model is None:
            return None
        found = self._exact.get(model)
        if found is not None:
            return found
        for pattern, price in self._globs:
            if fnmatch.fnmatchcase(model, pattern):
                return price
        return None

    def cost(self, by_model: Iterable[Mapping[str, Any]]) -> CostReport:
        """Price usage items (``{"model", "input_tokens", "output_tokens"}``, as the
        server's ``usage.by_model``)."""
        items: list[ModelCost] = []
        unpriced: list[str | None] = []
        total = 0.0
        for item in by_model:
            model = item.get("model")
            model = model if isinstance(model, str) and model else None
            tokens_in = int(item.get("input_tokens") or 0)
            tokens_out = int(item.get("output_tokens") or 0)
            price = self.price_of(model)
            cost = None if price is None else price.cost(tokens_in, tokens_out)
            if cost is None:
                if model not in unpriced:
                    unpriced.append(model)
            else:
                total += cost
            items.append(ModelCost(model, tokens_in, tokens_out, cost))
        return CostReport(total, items, unpriced)

    # -- loading ----------------------------------------------------------------------------

    @classmethod
    def from_file(cls, path: str | Path) -> PriceTable:
        """A ``.json``, ``.toml`` or ``.csv`` file (by its suffix)."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise PriceTableError(f"cannot read price table {path}: "
                                  f"{exc.strerror or exc}") from None
        suffix = path.suffix.lower()
        try:
            if suffix == ".json":
                return cls(_unwrap(json.loads(text)))
            if suffix == ".toml":
                return cls(_unwrap(_toml(text)))
            if suffix == ".csv":
                return cls(_csv(text))
        except PriceTableError as exc:
            raise PriceTableError(f"{path}: {exc}") from None
        except ValueError as exc:  # JSON / TOML syntax
            raise PriceTableError(f"{path}: not valid {suffix[1:].upper()}: {exc}") from None
        raise PriceTableError(f"{path}: a price table is a .json, .toml or .csv file")


def _unwrap(data: Any) -> Any:
    """``{"models": {...}}`` or the models at the top level."""
    if isinstance(data, Mapping) and isinstance(data.get("models"), Mapping):
        return data["models"]
    return data


def _toml(text: str) -> Any:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # the backport: a dependency of the [server] and [runner] extras there
        import tomli as tomllib
    return tomllib.loads(text)


def _csv(text: str) -> dict[str, dict[str, str]]:
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or "model" not in reader.fieldnames:
        raise PriceTableError("a CSV price table needs a header row: model,input,output")
    out: dict[str, dict[str, str]] = {}
    for line, row in enumerate(reader, start=2):
        model = (row.get("model") or "").strip()
        if not model:
            raise PriceTableError(f"line {line}: no model")
        out[model] = {k.strip(): (v or "").strip() for k, v in row.items()
                      if k is not None and k != "model"}
    return out


PriceSource = PriceTable | Mapping[str, Any] | str | Path


def load_prices(source: PriceSource | None) -> PriceTable | None:
    """A :class:`PriceTable` from a table, a mapping or a file path (``None``: none)."""
    if source is None or isinstance(source, PriceTable):
        return source
    if isinstance(source, (str, Path)):
        return PriceTable.from_file(source)
    return PriceTable(source)


__all__ = ["CostReport", "ModelCost", "Price", "PriceSource", "PriceTable", "PriceTableError",
           "load_prices"]
