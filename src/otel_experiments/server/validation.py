"""Field-level validation of JSON:API request documents (every failure names its field)."""

from __future__ import annotations

import math
from typing import Any

from ..models import validate_id, validate_name
from .jsonapi import ApiError

INT64_MAX = 2**63 - 1


def _bad(detail: str, ptr: str) -> ApiError:
    return ApiError(400, detail, ptr)


def column_text(value: str) -> str:
    """A copy of ``value`` PostgreSQL can store in a text column (NUL -> U+FFFD)."""
    return value.replace("\x00", "\ufffd") if "\x00" in value else value


def check_text(value: str, ptr: str, *, nul_ok: bool = False) -> str:
    """Reject NUL (unstorable in PostgreSQL text) and lone surrogates."""
    if not nul_ok and "\x00" in value:
        raise _bad("must not contain NUL characters", ptr)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _bad("must be valid Unicode (no lone surrogates)", ptr) from None
    return value


def _field(ptr: str) -> str:
    return ptr.rsplit("/", 1)[-1] or "value"


def id_value(value: object, ptr: str) -> str:
    """An id as the package defines one (:func:`otel_experiments.models.validate_id`).

    ``validate_id`` requires printable text, so NUL and lone surrogates are already rejected.
    """
    try:
        return validate_id(value, _field(ptr))
    except (TypeError, ValueError) as exc:
        raise _bad(str(exc), ptr) from None


def path_id(value: str, name: str) -> str:
    try:
        return id_value(value, "")
    except ApiError as exc:
        raise ApiError(400, f"{name} {exc.detail}", parameter=name) from None


def name_value(value: object, ptr: str) -> str:
    """A display name (:func:`otel_experiments.models.validate_name`).

    ``validate_name`` rejects control characters (NUL included) and lone surrogates.
    """
    try:
        name = validate_name(value, _field(ptr), optional=False)
    except (TypeError, ValueError) as exc:
        raise _bad(str(exc), ptr) from None
    assert name is not None  # optional=False
    return name


def text_value(value: object, ptr: str, *, nul_ok: bool = False) -> str:
    if not isinstance(value, str):
        raise _bad(f"must be a string, got {type(value).__name__}", ptr)
    return check_text(value, ptr, nul_ok=nul_ok)


def int_value(value: object, ptr: str, minimum: int = 0, maximum: int = INT64_MAX) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(f"must be an integer, got {type(value).__name__}", ptr)
    if not minimum <= value <= maximum:
        raise _bad(f"must be between {minimum} and {maximum}", ptr)
    return value


def int32_value(value: object, ptr: str) -> int:
    return int_value(value, ptr, 0, 2**31 - 1)


def number_value(value: object, ptr: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _bad(f"must be a number, got {type(value).__name__}", ptr)
    try:
        result = float(value)
    except OverflowError:
        result = math.inf
    if not math.isfinite(result):
        raise _bad("must be a finite number", ptr)
    return result


def object_value(value: object, ptr: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _bad(f"must be an object, got {_json_type(value)}", ptr)
    return value


def string_list(value: object, ptr: str) -> list[str]:
    if not isinstance(value, list):
        raise _bad(f"must be an array of strings, got {_json_type(value)}", ptr)
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise _bad(f"must be a string, got {_json_type(item)}", f"{ptr}/{i}")
    return value


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def document_data(doc: object, types: frozenset[str], *, many: bool = False) -> list[dict[str, Any]]:
    """Return the resource object(s) of a JSON:API document, checking their ``type``."""
    doc = object_value(doc, "")
    if "data" not in doc:
        raise _bad("is required", "/data")
    data = doc["data"]
    items: list[tuple[str, object]]
    if isinstance(data, list):
        if not many:
            raise _bad("must be a single resource object", "/data")
        if not data:
            raise _bad("must not be empty", "/data")
        items = [(f"/data/{i}", item) for i, item in enumerate(data)]
    else:
        items = [("/data", data)]
    out = []
    for ptr, item in items:
        res = object_value(item, ptr)
        type_ = res.get("type")
        if type_ is not None and (not isinstance(type_, str) or type_ not in types):
            raise _bad(f"must be one of {sorted(types)}, got {type_!r}", f"{ptr}/type")
        attrs = res.get("attributes", {})
        object_value(attrs, f"{ptr}/attributes")
        out.append(res)
    return out


def attributes(res: dict[str, Any]) -> dict[str, Any]:
    attrs = res.get("attributes", {})
    assert isinstance(attrs, dict)
    return attrs


def valid_or(check: Any, value: object, default: Any) -> Any:
    """``value`` if it passes ``check`` (a validation function), else ``default``."""
    if value is None:
        return default
    try:
        return check(value, "")
    except ApiError:
        return default
