"""What a span's attribute keys hold, worked out once per distinct key set, and the span
attributes an event carries in ``attributes`` (the GenAI semantic conventions and the
keys a user lists in ``OTEL_EXPERIMENTS_SPAN_ATTRIBUTES``).

Spans from one code path share their keys, so the converter looks up a :class:`_Shape`
per key tuple instead of probing every key it knows on every span.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, Final, NamedTuple

from .._runtime.text import clean_text, truncate
from ..attributes import (
    DATASET_RECORD_ID,
    EXPECTED_OUTPUT_VALUE,
    EXPERIMENT_ENTRY,
    INPUT_VALUE,
    METADATA,
    OBSERVE_FEATURE_SLUG,
    OUTPUT_VALUE,
    STAMPED_KEYS,
)

__all__ = [
    "DEFAULT_KEPT",
    "DEFAULT_KEPT_ATTRIBUTES",
    "MAX_KEPT_ITEMS",
    "MAX_KEPT_VALUE_CHARS",
    "SPAN_TAG_KEYS",
    "KeptAttributes",
    "kept_attributes",
]

#: Span attributes copied into ``tags`` (when present), in this order.
SPAN_TAG_KEYS: Final = (*STAMPED_KEYS, OBSERVE_FEATURE_SLUG, EXPERIMENT_ENTRY)

_SPAN_TAG_PAIRS: Final = tuple((key, f"{key}:") for key in SPAN_TAG_KEYS)

#: Span attributes every event keeps in ``attributes``: the OpenTelemetry GenAI semantic
#: conventions (model, token usage), whichever instrumentation set them.
DEFAULT_KEPT_ATTRIBUTES: Final = ("gen_ai.*",)

#: A kept string value longer than this is cut (with the truncation marker), an array
#: longer than ``MAX_KEPT_ITEMS`` keeps its first items: attributes such as a prompt must
#: not make one span outgrow a request body.
MAX_KEPT_VALUE_CHARS: Final = 4096
MAX_KEPT_ITEMS: Final = 128

_MAX_SHAPES: Final = 1024


class _Shape(NamedTuple):
    """What one set of attribute keys holds, worked out once per distinct key tuple:
    the per-span work is then lookups of keys known to be present."""

    tag_pairs: tuple[tuple[str, str], ...]
    payload: bool
    record_id: bool
    kept: tuple[str, ...]


_PAYLOAD_KEYS: Final = frozenset({INPUT_VALUE, OUTPUT_VALUE, EXPECTED_OUTPUT_VALUE, METADATA})


class KeptAttributes:
    """Which span attributes an event carries in ``attributes``: :data:`DEFAULT_KEPT_ATTRIBUTES`
    plus ``patterns`` (exact keys, or prefixes ending in ``*``), e.g. from
    ``OTEL_EXPERIMENTS_SPAN_ATTRIBUTES``. Holds the per-key-set shapes the converter reuses."""

    __slots__ = ("exact", "prefixes", "shapes")

    def __init__(self, patterns: Iterable[str] = ()) -> None:
        exact: set[str] = set()
        prefixes: list[str] = []
        for pattern in (*DEFAULT_KEPT_ATTRIBUTES, *patterns):
            pattern = pattern.strip()
            if pattern.endswith("*"):
                if pattern[:-1] not in prefixes:
                    prefixes.append(pattern[:-1])
            elif pattern:
                exact.add(pattern)
        self.exact: frozenset[str] = frozenset(exact)
        self.prefixes: tuple[str, ...] = tuple(prefixes)
        #: key tuple -> shape; the converter reads it directly on its hot path (a call
        #: to :meth:`shape` only on a miss)
        self.shapes: dict[tuple[str, ...], _Shape] = {}

    def keeps(self, key: str) -> bool:
        return key in self.exact or key.startswith(self.prefixes)

    def shape(self, keys: tuple[str, ...]) -> _Shape:
        shape = self.shapes.get(keys)
        if shape is None:
            present = set(keys)
            shape = _Shape(
                tuple(pair for pair in _SPAN_TAG_PAIRS if pair[0] in present),
                not present.isdisjoint(_PAYLOAD_KEYS),
                DATASET_RECORD_ID in present,
                tuple(k for k in keys if isinstance(k, str) and self.keeps(k)),
            )
            if len(self.shapes) >= _MAX_SHAPES:  # spans with ever-new keys: stay bounded
                self.shapes.clear()
            self.shapes[keys] = shape
        return shape

    def __repr__(self) -> str:
        patterns = sorted(self.exact) + [p + "*" for p in self.prefixes]
        return f"KeptAttributes({patterns!r})"


#: The selection every converter call uses unless given another (``gen_ai.*`` only).
DEFAULT_KEPT: Final = KeptAttributes()


def _kept_value(value: Any) -> Any:
    """An attribute value as JSON can carry it; ``None`` to leave it out."""
    kind = type(value)
    if kind is str:  # from any instrumentation: may be huge or hold lone surrogates
        if len(value) > MAX_KEPT_VALUE_CHARS:
            value = truncate(value, MAX_KEPT_VALUE_CHARS)
        return value if value.isascii() else clean_text(value)
    if kind is int or kind is bool:
        return value
    if kind is float:
        return value if math.isfinite(value) else None
    if isinstance(value, (tuple, list)):
        items = [_kept_value(item) for item in value[:MAX_KEPT_ITEMS]]
        return [item for item in items if item is not None and not isinstance(item, list)]
    return None


def kept_attributes(attrs: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, Any] | None:
    kept = {}
    for key in keys:
        value = _kept_value(attrs[key])
        if value is not None:
            kept[key] = value
    return kept or None
