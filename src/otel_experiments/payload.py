"""Encoding of inputs, outputs and metadata into span attribute values.

Strings are kept as they are (``text/plain``); anything else is JSON-encoded
(``application/json``). Values that cannot be encoded fall back to ``repr`` and values
over the size cap are cut with a marker, so recording a payload never raises.
"""

from __future__ import annotations

import json
from typing import Any

from . import attributes as attr


def _default(value: Any) -> Any:
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if hasattr(value, "model_dump"):  # pydantic models
        try:
            return value.model_dump()
        except Exception:
            pass
    if hasattr(value, "__dataclass_fields__"):
        import dataclasses

        try:
            return dataclasses.asdict(value)
        except Exception:
            pass
    return repr(value)


def truncate(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    keep = max(0, max_chars - len(attr.TRUNCATION_MARKER))
    return text[:keep] + attr.TRUNCATION_MARKER


def encode(value: Any, max_chars: int) -> tuple[str, str]:
    """Return ``(text, mime_type)`` for a payload, at most ``max_chars`` long."""
    if isinstance(value, str):
        return truncate(value, max_chars), attr.MIME_TEXT
    try:
        text = json.dumps(value, default=_default, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        # NaN, circular references, hostile __repr__: keep something readable.
        try:
            text = json.dumps(repr(value))
        except Exception:
            text = json.dumps(f"<unencodable {type(value).__name__}>")
    if len(text) > max_chars:
        # A cut JSON document is no longer JSON: ship it as text with the marker.
        return truncate(text, max_chars), attr.MIME_TEXT
    return text, attr.MIME_JSON
