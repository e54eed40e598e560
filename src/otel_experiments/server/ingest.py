"""Events bodies -> storage rows: schema validation plus the checks storage relies on."""

from __future__ import annotations

from typing import Any

from .. import attributes as attr
from .jsonapi import ApiError, ApiErrors, dumps_str, pointer
from .schema import CATEGORY_INDEX_CHARS, LABEL_MAX_BYTES
from .store import SpanRow, is_root_parent, tag_map
from .validation import (
    column_text,
    document_data,
    id_value,
    int_value,
    number_value,
    text_value,
    valid_or,
)

EVENT_TYPES = frozenset({"experiment_events"})
_MAX_SCHEMA_ERRORS = 20


class _SchemaValidator:
    """The events JSON Schema, compiled once.

    ``jsonschema-rs`` (when installed) answers "valid?" two orders of magnitude faster
    than ``jsonschema``; ``jsonschema`` explains what is wrong when a body is invalid.
    """

    def __init__(self) -> None:
        import jsonschema

        from ..events import load_events_schema

        schema = load_events_schema()
        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)
        self.explainer = cls(schema, format_checker=cls.FORMAT_CHECKER)
        self.fast: Any = None
        try:
            import jsonschema_rs
        except ImportError:  # pragma: no cover - depends on the installed extras
            return
        self.fast = jsonschema_rs.validator_for(schema)

    def errors(self, body: Any) -> list[ApiError]:
        if self.fast is not None and self.fast.is_valid(body):
            return []
        found = sorted(self.explainer.iter_errors(body), key=_path_key)
        errors = [_schema_error(e) for e in found[:_MAX_SCHEMA_ERRORS]]
        if not errors and self.fast is not None:  # the two validators disagree: trust either
            errors = [ApiError(400, e.message, pointer(e.instance_path))
                      for e in list(self.fast.iter_errors(body))[:_MAX_SCHEMA_ERRORS]]
        return errors


_validator: _SchemaValidator | None = None


def schema_validator() -> _SchemaValidator:
    """The compiled validator (built on first use; the app builds it at start-up)."""
    global _validator
    if _validator is None:
        _validator = _SchemaValidator()
    return _validator


def validate_schema(body: Any) -> None:
    """Validate an events body against the package's JSON Schema (400 naming each field)."""
    errors = schema_validator().errors(body)
    if errors:
        raise ApiErrors(errors)


def _path_key(error: Any) -> list[tuple[int, int, str]]:
    """Sort key for error paths that mix array indices and member names."""
    return [(0, p, "") if isinstance(p, int) else (1, 0, str(p)) for p in error.absolute_path]


def _schema_error(error: Any) -> ApiError:
    path = list(error.absolute_path)
    if error.validator == "required":  # point at the missing member itself
        missing = [p for p in error.validator_value if p in error.message]
        path += missing[:1]
    return ApiError(400, error.message, pointer(path))


# ``_span`` and ``_metric`` run after ``validate_schema``: every member's presence and JSON
# type, the status and metric-type enums, the one-value-per-metric-type rule and the id
# patterns already hold. What is left is what the schema cannot say:
# * int64 bounds, and whole-number floats (``5.0`` is a JSON Schema "integer");
# * number overflow (``10**400`` is a valid "number" but no finite float);
# * ids: Python's ``re`` lets ``$`` match before a trailing newline, so without
#   ``jsonschema-rs`` "<16 hex digits>\n" passes the ``span_id`` pattern;
# * storable text (lone surrogates, NUL -> U+FFFD) and the label's UTF-8 byte limit;
# * lookup columns, which only take values that are valid ids.


def _span(span: dict[str, Any], ptr: str) -> SpanRow:
    parent = span.get("parent_id")  # omitted for a root span
    if parent is not None:
        parent = id_value(parent, f"{ptr}/parent_id")
    tmap = tag_map(span["tags"])
    record_id = span.get("dataset_record_id", tmap.get("dataset_record_id"))
    values = {
        "span_id": id_value(span["span_id"], f"{ptr}/span_id"),
        "trace_id": id_value(span["trace_id"], f"{ptr}/trace_id"),
        "parent_id": parent,
        "name": column_text(span["name"]),
        "start_ns": int_value(span["start_ns"], f"{ptr}/start_ns"),
        "duration": int_value(span["duration"], f"{ptr}/duration"),
        "status": span["status"],
        "is_root": is_root_parent(parent),
        # Lookup columns hold only storable ids; the document keeps every value as sent.
        "dataset_record_id": valid_or(id_value, record_id, None),
        "user_id": valid_or(id_value, tmap.get(attr.USER_ID), None),
        "organization_id": valid_or(id_value, tmap.get(attr.ORGANIZATION_ID), None),
        "doc": dumps_str(span),
    }
    return SpanRow(values, tmap)


def _metric(metric: dict[str, Any], ptr: str) -> dict[str, Any]:
    mtype = metric["metric_type"]
    label = column_text(text_value(metric["label"], f"{ptr}/label", nul_ok=True))
    if len(label.encode()) > LABEL_MAX_BYTES:
        raise ApiError(400, f"must be a non-empty string of at most {LABEL_MAX_BYTES} UTF-8 "
                       "bytes", f"{ptr}/label")
    score = cat = boolean = None
    if mtype == attr.METRIC_TYPE_SCORE:
        score = number_value(metric["score_value"], f"{ptr}/score_value")
    elif mtype == attr.METRIC_TYPE_CATEGORICAL:
        cat = text_value(metric["categorical_value"], f"{ptr}/categorical_value", nul_ok=True)
        cat = column_text(cat[:CATEGORY_INDEX_CHARS])
    else:
        boolean = metric["boolean_value"]
    return {
        "span_id": id_value(metric["span_id"], f"{ptr}/span_id"),
        "trace_id": id_value(metric["trace_id"], f"{ptr}/trace_id"),
        "metric_type": mtype,
        "label": label,
        "score_value": score,
        "categorical_value": cat,
        "boolean_value": boolean,
        "timestamp_ms": int_value(metric["timestamp_ms"], f"{ptr}/timestamp_ms"),
        "doc": dumps_str(metric),
    }


def parse_events(body: Any, max_items: int) -> tuple[list[SpanRow], list[dict[str, Any]]]:
    """Validate an events body and turn it into span and metric rows.

    ``body`` is decoded JSON (from :func:`~.jsonapi.loads` or the package's converter):
    dicts, lists, strings, numbers, booleans and ``None`` only.
    """
    (res,) = document_data(body, EVENT_TYPES)
    attrs = res.get("attributes", {})
    raw_spans = attrs.get("spans", [])
    raw_metrics = attrs.get("metrics", [])
    for key, items in (("spans", raw_spans), ("metrics", raw_metrics)):
        if isinstance(items, list) and len(items) > max_items:
            raise ApiError(413, f"{len(items)} {key} in one request; the limit is {max_items}",
                           f"/data/attributes/{key}")
    validate_schema(body)
    span_rows = [_span(s, f"/data/attributes/spans/{i}") for i, s in enumerate(raw_spans)]
    metric_rows = [_metric(m, f"/data/attributes/metrics/{i}") for i, m in enumerate(raw_metrics)]
    return span_rows, metric_rows
