"""Checking constructor arguments: a bad value is the developer's own code, so it raises.

(Environment variables never raise: :mod:`.env` warns and falls back.) Messages name
the argument and never echo a secret.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

from .env import valid_header_value

__all__ = [
    "api_key_arg", "attribute_keys_arg", "hash_key_arg", "int_arg", "parse_rules", "redact_arg", "seconds_arg",
    "spool_dir_arg",
]


def parse_rules(raw: str | Iterable[str]) -> tuple[str, ...]:
    """``OTEL_EXPERIMENTS_REDACT``: ``"a, $.b"`` (or an iterable) -> ``("a", "$.b")``."""
    items = raw.split(",") if isinstance(raw, str) else raw
    return tuple(item.strip() for item in items if item and item.strip())


def api_key_arg(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("api_key must be a non-empty str")
    if not valid_header_value(value):
        raise ValueError("api_key contains control characters")
    return value.strip()


def seconds_arg(name: str) -> Callable[[object], float]:
    def check(value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            0.001 <= float(value) < float("inf")
        ):
            raise ValueError(f"{name} must be a finite number of seconds >= 0.001, got {value!r}")
        return float(value)

    return check


def int_arg(name: str, minimum: int) -> Callable[[object], int]:
    def check(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
        return value

    return check


def _rules_arg(name: str, what: str) -> Callable[[object], tuple[str, ...]]:
    def check(value: object) -> tuple[str, ...]:
        # a bare str would be split into characters: a list is asked for
        if isinstance(value, str) or not isinstance(value, Iterable):
            raise ValueError(f"{name} must be a sequence of {what}, got {value!r}")
        rules = list(value)
        if not all(isinstance(rule, str) for rule in rules):
            raise ValueError(f"{name} must be a sequence of {what}, got {value!r}")
        return parse_rules(rules)

    return check


redact_arg = _rules_arg("redact", "keys / JSON paths")
attribute_keys_arg = _rules_arg("span_attributes", "keys")


def hash_key_arg(value: object) -> str:
    if not isinstance(value, str) or len(value) < 16:
        raise ValueError("hash_user_ids_key must be a str of at least 16 characters")
    return value


def spool_dir_arg(value: object) -> str:
    if not isinstance(value, (str, os.PathLike)) or not str(os.fspath(value)).strip():
        raise ValueError(f"spool_dir must be a non-empty path, got {value!r}")
    return os.path.abspath(os.path.expanduser(os.fspath(value)))
