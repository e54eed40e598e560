"""What a plain events body is: the one-pass checks that let ingest skip the schema validator.

Each check here accepts only values the events JSON Schema (``events/experiment_events.
schema.json``) accepts; anything else is "not plain", and then the schema validator and the
field-by-field checks of ``server.ingest`` decide (``tests/server/test_ingest_fast_path.py``
checks the first claim with Hypothesis).
"""

from __future__ import annotations

import math
from typing import Any

from ..events.convert import EVENTS_TYPE

__all__ = [
    "META_KEYS",
    "MISSING",
    "SPAN_KEYS",
    "SPAN_LAYOUTS",
    "SPAN_REQUIRED",
    "SPAN_STATUSES",
    "hex_id",
    "hex_ids",
    "plain_attributes",
    "plain_envelope",
    "plain_meta",
]

_HEX = "0123456789abcdef"
SPAN_REQUIRED = frozenset({"trace_id", "span_id", "name", "start_ns", "duration", "status",
                            "meta", "tags"})
SPAN_KEYS = SPAN_REQUIRED | {"parent_id", "dataset_record_id", "attributes"}
META_KEYS = frozenset({"input", "output", "expected_output", "error", "metadata"})
_ERROR_KEYS = frozenset({"type", "message", "stack"})
SPAN_STATUSES = frozenset({"ok", "error"})
_SCALARS = (str, int, float, bool)
MISSING: Any = object()
#: The member orders the exporter writes (``events.convert``): checked with one lookup.
SPAN_LAYOUTS = frozenset(
    ("trace_id", "span_id", "name", "start_ns", "duration", "status", "meta", "tags", *extra)
    for extra in ((), ("parent_id",), ("dataset_record_id",), ("attributes",),
                  ("parent_id", "dataset_record_id"), ("parent_id", "attributes"),
                  ("dataset_record_id", "attributes"),
                  ("parent_id", "dataset_record_id", "attributes")))


#: Ids already found to be lowercase hex: a trace id repeats on every span of its trace and
#: a span id on each of its metrics, so most checks are one set lookup. Bounded.
_HEX_IDS: set[str] = set()
_HEX_IDS_MAX = 65536


def hex_id(value: object, length: int) -> bool:
    """``value`` is a string of ``length`` lowercase hex digits."""
    if type(value) is not str or len(value) != length:
        return False
    if value in _HEX_IDS:
        return True
    if value.strip(_HEX):
        return False
    if len(_HEX_IDS) >= _HEX_IDS_MAX:
        _HEX_IDS.clear()
    _HEX_IDS.add(value)
    return True


_HEX_BYTES = _HEX.encode()


def hex_ids(ids: list[str], length: int) -> bool:
    """Every one of ``ids`` is ``length`` lowercase hex digits (:func:`hex_id` for a whole
    body's ids at once, in C: a call per id cost more than the check)."""
    if not ids:
        return True
    if min(map(len, ids)) != length or max(map(len, ids)) != length:
        return False
    joined = "".join(ids)
    # (``isascii`` first: ``encode`` would raise on a lone surrogate, were one let through)
    return joined.isascii() and not joined.encode().translate(None, _HEX_BYTES)


def plain_meta(meta: dict[str, Any]) -> bool:
    error = meta.get("error", MISSING)
    if error is not MISSING:
        if type(error) is not dict or error.keys() != _ERROR_KEYS:
            return False
        message, err_type, stack = error["message"], error["type"], error["stack"]
        if (type(message) is not str or not message
                or (err_type is not None and type(err_type) is not str)
                or (stack is not None and type(stack) is not str)):
            return False
    metadata = meta.get("metadata", MISSING)
    return metadata is MISSING or type(metadata) is dict


def _plain_value(value: object) -> bool:
    """An attribute value the schema takes: a string, finite number or boolean."""
    if type(value) is float:
        return math.isfinite(value)  # (NaN, infinity: not JSON)
    return type(value) in _SCALARS


def plain_attributes(attributes: object) -> bool:
    if type(attributes) is not dict:
        return False
    for value in attributes.values():
        if type(value) is list:
            if not all(map(_plain_value, value)):
                return False
        elif not _plain_value(value):
            return False
    return True


_ENVELOPE_KEYS = frozenset({"data"})
_DATA_KEYS = frozenset({"type", "attributes"})
_ATTRIBUTES_KEYS = frozenset({"spans", "metrics"})


def plain_envelope(body: Any) -> bool:
    """The schema's envelope rules (no other members; both lists present)."""
    if type(body) is not dict or body.keys() != _ENVELOPE_KEYS:
        return False
    data = body["data"]
    if type(data) is not dict or data.keys() != _DATA_KEYS or data["type"] != EVENTS_TYPE:
        return False
    attrs = data["attributes"]
    return (type(attrs) is dict and attrs.keys() == _ATTRIBUTES_KEYS
            and type(attrs["spans"]) is list and type(attrs["metrics"]) is list)
