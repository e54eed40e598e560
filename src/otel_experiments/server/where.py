"""Run-metadata filters: ``filter[where]=config.model=gpt-4o`` on the experiment list.

An experiment's ``config`` and ``metadata`` are free-form JSON objects, so their keys cannot
be declared as query parameters one by one (and an undeclared parameter is a 400: a typo
must not look like a filter). One repeatable parameter carries ``PATH=VALUE`` conditions
instead, all of which must hold:

* ``PATH`` is dotted and starts at ``config`` or ``metadata`` (``config.model``,
  ``metadata.prompt.version``), or is one of the :data:`ALIASES` for what the runner stores
  (``git.commit``, ``git.dirty``, ``git.branch``) and the usual config keys (``model``,
  ``prompt_version``);
* ``VALUE`` is compared with the stored value written as text: strings as they are,
  ``true`` / ``false``, numbers as JSON writes them (``0.5``, ``3``), ``null``. Objects and
  lists never match. ``git.commit`` also matches a prefix of 7 or more characters, as git
  itself accepts.

Matching runs in Python over the rows the column filters already selected: the same code on
SQLite and PostgreSQL. A ``LIKE '%value%'`` on the JSON text first skips the rows that cannot
match (:func:`text_hint`): ``make bench`` (``benchmarks/bench_run_metadata.py``) measures
a first page in 5,000 experiments at 2-6x the indexed ``filter[feature_slug]`` (1 ms vs
2-7 ms on the shared 2-CPU box).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from .jsonapi import ApiError

#: Short names -> full paths (the runner stores git state under ``metadata.reproducibility``).
ALIASES: Final[dict[str, tuple[str, ...]]] = {
    "model": ("config", "model"),
    "prompt_version": ("config", "prompt_version"),
    "git.commit": ("metadata", "reproducibility", "git", "commit"),
    "git.dirty": ("metadata", "reproducibility", "git", "dirty"),
    "git.branch": ("metadata", "reproducibility", "git", "branch"),
}
ROOTS: Final = ("config", "metadata")
#: Conditions per request, and characters per condition: a filter, not a query language.
MAX_CONDITIONS: Final = 20
MAX_CONDITION_CHARS: Final = 512
#: Shortest commit prefix ``git.commit`` accepts (git's own default abbreviation).
MIN_COMMIT_PREFIX: Final = 7
PARAMETER: Final = "filter[where]"
#: The grammar above as a JSON Schema pattern (the OpenAPI publishes it).
CONDITION_PATTERN: Final = (
    "^(?:(?:config|metadata)(?:\\.[^.=]+)+|"
    + "|".join(k.replace(".", "\\.") for k in ALIASES) + ")=")


def as_text(value: Any) -> str | None:
    """A stored JSON value written as a condition's text; ``None`` for objects and lists."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer():
            return str(int(value))  # 3.0 was sent as 3 by most JSON writers
        return json.dumps(value)
    return None


@dataclass(frozen=True)
class Condition:
    """``path`` (starting at ``config`` or ``metadata``) must hold ``value``."""

    path: tuple[str, ...]
    value: str

    def matches(self, docs: Mapping[str, Any]) -> bool:
        node: Any = docs
        for key in self.path:
            if not isinstance(node, Mapping) or key not in node:
                return False
            node = node[key]
        text = as_text(node)
        if text is None:
            return False
        if self.path == ALIASES["git.commit"] and len(self.value) >= MIN_COMMIT_PREFIX:
            return text.startswith(self.value)
        return text == self.value


#: Values whose JSON text is themselves, the same in any JSON writer (no escapes), so a
#: ``LIKE '%value%'`` on the stored column is a safe first cut (:func:`text_hint`).
_PLAIN = re.compile(r"[A-Za-z0-9_.:+@/-]+")
_SHORT_DECIMAL = re.compile(r"-?[0-9]{1,12}(?:\.[0-9]{1,3})?")


def text_hint(condition: Condition) -> tuple[str, str] | None:
    """``(column, value)``: every row the condition matches has ``value`` somewhere in the
    JSON text of ``column``, so SQL can skip the rows that do not before Python decodes
    any; ``None`` when the value could be written escaped (then every row is decoded)."""
    value = condition.value
    if not _PLAIN.fullmatch(value):
        return None
    try:
        float(value)
    except ValueError:
        return condition.path[0], value
    # A number: writers differ on exponents and long fractions (1e16, 1e+16,
    # 10000000000000000), short plain decimals they all write alike.
    return (condition.path[0], value) if _SHORT_DECIMAL.fullmatch(value) else None


def parse_condition(text: str) -> Condition:
    """``PATH=VALUE`` -> :class:`Condition` (400 naming the parameter otherwise)."""
    if len(text) > MAX_CONDITION_CHARS:
        raise ApiError(400, f"a condition is at most {MAX_CONDITION_CHARS} characters",
                       parameter=PARAMETER)
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ApiError(400, f"expected PATH=VALUE (e.g. config.model=gpt-4o), got {text[:60]!r}",
                       parameter=PARAMETER)
    path = ALIASES.get(key) or tuple(key.split("."))
    if path[0] not in ROOTS or len(path) < 2 or any(not part for part in path):
        raise ApiError(400, f"{key[:60]!r}: PATH starts at config. or metadata. or is one of "
                       f"{', '.join(ALIASES)}", parameter=PARAMETER)
    return Condition(path, value)


def parse_where(values: Sequence[str] | None) -> list[Condition]:
    if not values:
        return []
    if len(values) > MAX_CONDITIONS:
        raise ApiError(400, f"at most {MAX_CONDITIONS} conditions", parameter=PARAMETER)
    return [parse_condition(v) for v in values]


def matches_all(conditions: Sequence[Condition], config: Any, metadata: Any) -> bool:
    docs = {"config": config, "metadata": metadata}
    return all(c.matches(docs) for c in conditions)


__all__ = ["ALIASES", "CONDITION_PATTERN", "Condition", "as_text", "matches_all",
           "parse_condition", "parse_where", "text_hint"]
