"""Encoding of inputs, outputs and metadata into span attribute values.

Strings are kept as they are (``text/plain``); anything else becomes JSON
(``application/json``). The work is bounded by the size cap *before* encoding: a
value is copied into plain JSON types with a character budget, so a 50 MB ``bytes``
argument or a list of two million rows costs what the cap allows, not what the value
weighs. What the budget cuts is replaced by a truncation marker; lone surrogates
(from ``surrogateescape``-decoded bytes) become U+FFFD so every JSON encoder accepts
the result; big integers and non-finite floats become strings. Recording a payload
never raises.
"""

from __future__ import annotations

import dataclasses
import json
import math
import reprlib
from collections.abc import Mapping, Set
from typing import Any

from .. import attributes as attr
from .._runtime.text import clean_text, truncate

_MAX_DEPTH = 32
_MARKER = attr.TRUNCATION_MARKER
_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = 200


class _Budget:
    __slots__ = ("left",)

    def __init__(self, chars: int) -> None:
        self.left = chars


def _clip(value: Any, budget: _Budget, depth: int) -> Any:
    """A copy of ``value`` in JSON types, costing about ``budget.left`` characters at most."""
    if value is None or isinstance(value, bool):
        budget.left -= 5
        return value
    if isinstance(value, int):
        budget.left -= 20
        return value if -(2**63) <= value < 2**63 else str(value)
    if isinstance(value, float):
        budget.left -= 24
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        part = value[: max(0, budget.left)]
        budget.left -= len(part) + 2
        return clean_text(part) + (_MARKER if len(part) < len(value) else "")
    if isinstance(value, (bytes, bytearray, memoryview)):
        budget.left -= 24
        return f"<{len(value)} bytes>"
    if depth >= _MAX_DEPTH:
        return _MARKER
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if budget.left <= 0:
                out[_MARKER] = f"{len(value) - len(out)} more"
                break
            name = key if isinstance(key, str) else _repr.repr(key)
            budget.left -= len(name) + 4
            out[clean_text(name)] = _clip(item, budget, depth + 1)
        return out
    if isinstance(value, (list, tuple, Set)):
        items: list[Any] = []
        for item in value:
            if budget.left <= 0:
                items.append(f"{_MARKER} {len(value) - len(items)} more")
                break
            items.append(_clip(item, budget, depth + 1))
        return items
    if hasattr(value, "model_dump"):  # pydantic models
        return _clip(value.model_dump(), budget, depth + 1)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        return _clip(fields, budget, depth + 1)
    text = clean_text(_repr.repr(value))
    budget.left -= len(text) + 2
    return text


def encode(value: Any, max_chars: int) -> tuple[str, str]:
    """Return ``(text, mime_type)`` for a payload, at most ``max_chars`` long."""
    try:
        if isinstance(value, str):
            return truncate(clean_text(value[: max_chars + 1]), max_chars), attr.MIME_TEXT
        text = json.dumps(_clip(value, _Budget(max_chars), 0), ensure_ascii=False)
    except Exception:  # hostile __repr__, __len__, mappings that raise while iterated...
        try:
            name = type(value).__name__
        except Exception:
            name = "object"
        text = json.dumps(f"<unencodable {name}>")
    if len(text) > max_chars:
        # A cut JSON document is no longer JSON: ship it as text with the marker.
        return truncate(text, max_chars), attr.MIME_TEXT
    return text, attr.MIME_JSON
