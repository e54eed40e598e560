"""Request parameters and resource attributes -> validated values (400 naming the field)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

from .jsonapi import ApiError
from .store import DEFAULT_PAGE_SIZE, EXPERIMENT_STATUSES, MAX_PAGE_SIZE, decode_cursor, new_id
from .validation import attributes, id_value, object_value, string_list

T = TypeVar("T")

PROJECT_TYPES = frozenset({"project", "projects"})
DATASET_TYPES = frozenset({"dataset", "datasets"})
RECORD_TYPES = frozenset({"dataset_record", "dataset_records", "record", "records"})
EXPERIMENT_TYPES = frozenset({"experiment", "experiments"})


# A cursor is what ``encode_cursor`` writes: the decimal sequence number, base64url without
# padding. Three ASCII digits make four characters, each from the class the digits' bits
# allow; up to 18 digits, so every match decodes to a number below 2**63. The pattern is
# the whole grammar (the OpenAPI publishes it), so a lenient base64 decoder never decides.
_LEAD = "(?:[MN][DTjz]|O[DT])"
_THREE_DIGITS = f"{_LEAD}[AEIMQUYcgk][w-z0-5]"
_TAIL = f"(?:{_LEAD}[AEIMQUYcgk]|[MN][AQgw]|O[AQ])"
CURSOR_PATTERN = f"^(?:(?:{_THREE_DIGITS}){{0,6}}|(?:{_THREE_DIGITS}){{0,5}}{_TAIL})$"
_CURSOR = re.compile(CURSOR_PATTERN.removesuffix("$") + r"\Z")


def page_params(size: int | None, cursor: str | None) -> tuple[int, int]:
    if size is None:
        size = DEFAULT_PAGE_SIZE
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise ApiError(400, f"must be between 1 and {MAX_PAGE_SIZE}", parameter="page[size]")
    if cursor is not None and not _CURSOR.match(cursor):
        raise ApiError(400, "invalid page[cursor]", parameter="page[cursor]")
    return size, decode_cursor(cursor)


def optional(attrs: dict[str, Any], key: str, check: Callable[[Any, str], T],
              base: str = "/data/attributes") -> T | None:
    value = attrs.get(key)
    return None if value is None else check(value, f"{base}/{key}")


def status_value(value: object, ptr: str) -> str:
    if not isinstance(value, str) or value.upper() not in EXPERIMENT_STATUSES:
        raise ApiError(400, f"must be one of {sorted(EXPERIMENT_STATUSES)}", ptr)
    return value.upper()


def record_values(res: dict[str, Any], ptr: str, *, partial: bool) -> dict[str, Any]:
    attrs = attributes(res)
    base = f"{ptr}/attributes"
    out: dict[str, Any] = {}
    if not partial:
        if "input" not in attrs:
            raise ApiError(400, "is required", f"{base}/input")
        record_id = res.get("id", attrs.get("id"))
        out["record_id"] = (new_id("rec") if record_id is None
                            else id_value(record_id, f"{ptr}/id"))
    for key in ("input", "expected_output"):
        if key in attrs:
            out[key] = attrs[key]
        elif not partial:
            out[key] = None
    if "metadata" in attrs or not partial:
        out["metadata"] = optional(attrs, "metadata", object_value, base) or {}
    if "tags" in attrs or not partial:
        out["tags"] = optional(attrs, "tags", string_list, base) or []
    return out
