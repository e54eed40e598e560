"""Events bodies -> storage rows: schema validation plus the checks storage relies on."""

from __future__ import annotations

from typing import Any

from .. import attributes as attr
from ..events.convert import EVENTS_TYPE
from .jsonapi import ApiError, ApiErrors, dumps_str, pointer
from .plain_body import (
    META_KEYS,
    MISSING,
    SPAN_KEYS,
    SPAN_LAYOUTS,
    SPAN_REQUIRED,
    SPAN_STATUSES,
    hex_id,
    plain_attributes,
    plain_envelope,
    plain_meta,
)
from .rows import (
    TAG_KEYS,
    TagValues,
    cached_tag_values,
    span_row,
    tag_values,
    value_in_columns,
)
from .schema import CATEGORY_INDEX_CHARS, LABEL_MAX_BYTES
from .store import MetricRow, SpanRow, tag_map
from .store.columns import narrow_document
from .usage import NO_USAGE, span_usage
from .validation import (
    INT64_MAX,
    column_text,
    document_data,
    id_value,
    int_value,
    number_value,
    text_value,
)

EVENT_TYPES = frozenset({EVENTS_TYPE})
_MAX_SCHEMA_ERRORS = 20


class _SchemaValidator:
    """The events JSON Schema, compiled once.

    ``jsonschema-rs`` (the ``[server]`` extra's one validator) answers "valid?" two orders
    of magnitude faster than ``jsonschema`` and names what is wrong; when ``jsonschema``
    is installed too (the dev extra), its messages are used for an invalid body (they
    point at a missing member itself rather than at its parent).
    """

    def __init__(self, *, explain: bool = True) -> None:
        import jsonschema_rs

        from ..events import load_events_schema

        schema = load_events_schema()
        self.fast: Any = jsonschema_rs.validator_for(schema)
        self.explainer: Any = None
        if explain:
            try:
                import jsonschema
            except ImportError:
                return
            cls = jsonschema.validators.validator_for(schema)
            cls.check_schema(schema)
            self.explainer = cls(schema, format_checker=cls.FORMAT_CHECKER)

    def errors(self, body: Any) -> list[ApiError]:
        if self.fast.is_valid(body):
            return []
        errors = []
        if self.explainer is not None:
            found = sorted(self.explainer.iter_errors(body), key=_path_key)
            errors = [_schema_error(e) for e in found[:_MAX_SCHEMA_ERRORS]]
        if not errors:  # no explainer, or the two validators disagree: trust either
            found = sorted((_fast_path(e), e.message) for e in self.fast.iter_errors(body))
            errors = [ApiError(400, message, pointer(path))
                      for path, message in found[:_MAX_SCHEMA_ERRORS]]
        return errors


def _fast_path(error: Any) -> list[Any]:
    """jsonschema-rs's path of an error, pointing at a missing member itself."""
    path = list(error.instance_path)
    missing = getattr(error.kind, "property", None)
    if type(error.kind).__name__ == "Required" and isinstance(missing, str):
        path.append(missing)
    return path


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


# Rows are built in two tiers, both after ``validate_schema`` (so every member's presence and
# JSON type, the enums, the one-value-per-metric-type rule and the id patterns hold):
# * ``_span_fast`` / ``_metric_fast`` take the common, plainly valid item with a handful of
#   C-level checks and no per-field strings; they return ``None`` for anything unusual;
# * ``_span`` / ``_metric`` (the slow path) check every field and name it with a JSON pointer
#   on error. They decide every item the fast path declines, so they alone define what is
#   accepted: the fast path only ever accepts a subset of what they accept, with equal rows.
# What the schema cannot say, and both tiers check:
# * int64 bounds, and whole-number floats (``5.0`` is a JSON Schema "integer");
# * number overflow (``10**400`` is a valid "number" but no finite float);
# * ids: Python's ``re`` lets ``$`` match before a trailing newline, so without
#   ``jsonschema-rs`` "<16 hex digits>\n" passes the ``span_id`` pattern (the fast path's
#   exact-length check rules that out, as the pattern allows only hex digits otherwise);
# * storable text (lone surrogates, NUL -> U+FFFD) and the label's UTF-8 byte limit;
# * lookup columns, which only take values that are valid ids.

_ASCII_LABEL_OK = LABEL_MAX_BYTES >= 256  # the schema caps labels at 256 characters
_FLOAT_INT_LIMIT = 2**1000  # ints below this convert to a finite float
_VALUE_KEYS = {attr.METRIC_TYPE_SCORE: "score_value",
               attr.METRIC_TYPE_CATEGORICAL: "categorical_value",
               attr.METRIC_TYPE_BOOLEAN: "boolean_value"}
#: A metric with exactly these members, in this order (the exporter's), is rebuilt from its
#: columns on read when they hold it exactly: it is stored without a ``doc``.
_PLAIN_KEYS = {t: ("span_id", "trace_id", "metric_type", "label", key, "timestamp_ms")
               for t, key in _VALUE_KEYS.items()}


def _metric_doc(metric: dict[str, Any], mtype: str) -> str | None:
    """``None`` when the metric's columns hold it exactly (most metrics: a third of the bytes
    an ingest writes, saved), else its JSON text."""
    if (tuple(metric) == _PLAIN_KEYS[mtype] and "\x00" not in metric["label"]
            and value_in_columns(mtype, metric[_VALUE_KEYS[mtype]])):
        return None
    return dumps_str(metric)


def _span_row(span: dict[str, Any], parent: str | None, name: str, start: int,
              duration: int, tags: TagValues) -> SpanRow:
    # (``name`` is the column's text: when it differs from the member, the document keeps
    # the member as sent)
    doc = narrow_document(span) if name == span["name"] else span
    return span_row(span["span_id"], span["trace_id"], parent, name, start, duration,
                    span["status"], span.get("dataset_record_id"),
                    span_usage(span) if "attributes" in span else NO_USAGE, dumps_str(doc),
                    tags)


def _span_fast(span: Any) -> SpanRow | None:
    """The row of a plainly valid span: ``None`` for anything else (then the schema and
    :func:`_span` decide). Accepting implies the schema's span rules hold (tested)."""
    if type(span) is not dict or (tuple(span) not in SPAN_LAYOUTS
                                   and not SPAN_REQUIRED <= span.keys() <= SPAN_KEYS):
        return None
    parent = span.get("parent_id", MISSING)
    start, duration, name, meta = span["start_ns"], span["duration"], span["name"], span["meta"]
    tags = span["tags"]
    if (not hex_id(span["span_id"], 16) or not hex_id(span["trace_id"], 32)
            or (parent is not MISSING and not hex_id(parent, 16))
            or type(start) is not int or type(duration) is not int
            or not 0 <= start <= INT64_MAX or not 0 <= duration <= INT64_MAX
            or type(name) is not str or "\x00" in name
            or type(span["status"]) is not str or span["status"] not in SPAN_STATUSES
            or type(meta) is not dict or not meta.keys() <= META_KEYS
            or (("error" in meta or "metadata" in meta) and not plain_meta(meta))
            or type(tags) is not list):
        return None
    record_id = span.get("dataset_record_id", MISSING)
    if record_id is not MISSING and (type(record_id) is not str or not record_id):
        return None
    if "attributes" in span and not plain_attributes(span["attributes"]):
        return None
    try:
        values = cached_tag_values(tags)
    except TypeError:  # an unhashable member: not a tag
        return None
    if values is None:
        return None
    return _span_row(span, None if parent is MISSING else parent, name, start, duration,
                     values)


def _whole(item: dict[str, Any], name: str) -> Any:
    """``item[name]``, a whole float (``5.0``) turned into an int in place (so the stored
    document has the int too): JSON Schema, and so the published contract, calls every
    number without a fraction an integer, while the checks take only ints. Only the slow
    path needs it: the fast path declines anything but an int."""
    value = item[name]
    if type(value) is float and value.is_integer():
        value = item[name] = int(value)
    return value


def _span(span: dict[str, Any], ptr: str) -> SpanRow:
    parent = span.get("parent_id")  # omitted for a root span
    if parent is not None:
        parent = id_value(parent, f"{ptr}/parent_id")
    id_value(span["span_id"], f"{ptr}/span_id")
    id_value(span["trace_id"], f"{ptr}/trace_id")
    start = int_value(_whole(span, "start_ns"), f"{ptr}/start_ns")
    duration = int_value(_whole(span, "duration"), f"{ptr}/duration")
    tags = tag_values({k: v for k, v in tag_map(span["tags"]).items() if k in TAG_KEYS})
    return _span_row(span, parent, column_text(span["name"]), start, duration, tags)


_METRIC_REQUIRED = {t: frozenset(keys) for t, keys in _PLAIN_KEYS.items()}
_METRIC_KEYS = {t: keys | {"metadata"} for t, keys in _METRIC_REQUIRED.items()}


def _metric_fast(metric: Any) -> MetricRow | None:
    """The row of a plainly valid metric: ``None`` for anything else (then the schema and
    :func:`_metric` decide). Accepting implies the schema's metric rules hold (tested)."""
    if type(metric) is not dict:
        return None
    mtype = metric.get("metric_type")
    if type(mtype) is not str or mtype not in _PLAIN_KEYS:
        return None
    plain = _PLAIN_KEYS[mtype]
    exact = tuple(metric) == plain  # the exporter's members, in its order (most metrics)
    if not exact and (not _METRIC_REQUIRED[mtype] <= metric.keys() <= _METRIC_KEYS[mtype]
                      or ("metadata" in metric and type(metric["metadata"]) is not dict)):
        return None
    label, ts = metric["label"], metric["timestamp_ms"]
    if (not hex_id(metric["span_id"], 16) or not hex_id(metric["trace_id"], 32)
            or type(ts) is not int or not 0 <= ts <= INT64_MAX or type(label) is not str
            or not 0 < len(label) <= 256 or not _ASCII_LABEL_OK or not label.isascii()
            or "\x00" in label):
        return None
    score = cat = boolean = None
    if mtype == attr.METRIC_TYPE_SCORE:
        score = metric["score_value"]
        if type(score) is int and -_FLOAT_INT_LIMIT < score < _FLOAT_INT_LIMIT:
            score = float(score)
        elif type(score) is not float or score - score != 0.0:  # not a finite float
            return None
    elif mtype == attr.METRIC_TYPE_CATEGORICAL:
        cat = metric["categorical_value"]
        if type(cat) is not str or not cat.isascii() or "\x00" in cat:
            return None
        cat = cat[:CATEGORY_INDEX_CHARS]
    else:
        boolean = metric["boolean_value"]
        if type(boolean) is not bool:
            return None
    # (the label holds no NUL here: ``_metric_doc``'s rule, with the member order known)
    in_columns = exact and value_in_columns(mtype, metric[_VALUE_KEYS[mtype]])
    return (metric["span_id"], metric["trace_id"], mtype, label, score, cat, boolean, ts,
            None if in_columns else dumps_str(metric))


def _metric(metric: dict[str, Any], ptr: str) -> MetricRow:
    _whole(metric, "timestamp_ms")  # before the document is dumped
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
    return (id_value(metric["span_id"], f"{ptr}/span_id"),
            id_value(metric["trace_id"], f"{ptr}/trace_id"), mtype, label, score, cat, boolean,
            int_value(metric["timestamp_ms"], f"{ptr}/timestamp_ms"), _metric_doc(metric, mtype))


def parse_events(body: Any, max_items: int) -> tuple[list[SpanRow], list[MetricRow]]:
    """Validate an events body and turn it into span and metric rows.

    ``body`` is decoded JSON (from :func:`~.jsonapi.loads` or the package's converter):
    dicts, lists, strings, numbers, booleans and ``None`` only. Span rows hold their values
    in :data:`~.store.SPAN_COLUMNS` order, metric rows are tuples in
    :data:`~.store.METRIC_COLUMNS` order.
    """
    (res,) = document_data(body, EVENT_TYPES)
    attrs = res.get("attributes", {})
    raw_spans = attrs.get("spans", [])
    raw_metrics = attrs.get("metrics", [])
    for key, items in (("spans", raw_spans), ("metrics", raw_metrics)):
        if isinstance(items, list) and len(items) > max_items:
            raise ApiError(413, f"{len(items)} {key} in one request; the limit is {max_items}",
                           f"/data/attributes/{key}")
    # The common body is checked in one pass by the fast paths; the schema validator runs
    # only when something is unusual (then it names every invalid field).
    span_rows = [_span_fast(s) for s in raw_spans] if type(raw_spans) is list else []
    metric_rows = [_metric_fast(m) for m in raw_metrics] if type(raw_metrics) is list else []
    odd_spans = [i for i, row in enumerate(span_rows) if row is None]
    odd_metrics = [i for i, mrow in enumerate(metric_rows) if mrow is None]
    if odd_spans or odd_metrics or not plain_envelope(body):
        validate_schema(body)
    for i in odd_spans:  # the slow path decides, naming the field on error
        span_rows[i] = _span(raw_spans[i], f"/data/attributes/spans/{i}")
    for i in odd_metrics:
        metric_rows[i] = _metric(raw_metrics[i], f"/data/attributes/metrics/{i}")
    return span_rows, metric_rows  # type: ignore[return-value]  # no None is left
