"""A plain events body straight from its JSON text to rows, through typed structs.

msgspec decodes the text into structs typed after the events JSON Schema
(``events/experiment_events.schema.json``): every member, JSON type, enum, required member,
length and integer bound the schema states is checked by the decoder itself, in C, while it
parses (no dict per item, no second walk). What is left for Python is what the schema's
patterns say (hex ids: all of a body's at once, in C) and what the checked path of
``server.ingest`` declines for storage (NUL in names and labels, non-ASCII labels, numbers
past 64 bits). Anything else makes :func:`plain_rows` answer ``None``: then the caller
decodes the text as JSON and ``ingest.parse_events`` decides, naming every invalid field,
so this path only ever accepts a subset of what that one accepts, with the same rows
(``tests/server/test_plain_decode.py``; documents compared as what they read back as: a
plain metric sent with its members in another order is stored here without a document,
there with one).

Stored documents are written by the encoder from the structs: members in the exporter's
order, whatever order they came in (JSON objects are unordered), and a span's without the
members its columns hold (``store.columns.COLUMN_MEMBERS``).
"""

from __future__ import annotations

from operator import attrgetter
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeAlias

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType
from msgspec.structs import replace

from .. import attributes as attr
from .jsonapi import dumps_str
from .plain_body import hex_ids
from .rows import cached_tag_values, span_row, value_in_columns
from .schema import CATEGORY_INDEX_CHARS
from .store import MetricRow, SpanRow
from .usage import NO_USAGE, span_usage
from .validation import INT64_MAX

__all__ = ["plain_rows"]

_Count = Annotated[int, Meta(ge=0, le=INT64_MAX)]
#: Integers the checked path's JSON parser keeps as they are (past them it makes floats,
#: or refuses the body): the typed path takes no other.
_Int = Annotated[int, Meta(ge=-INT64_MAX - 1, le=INT64_MAX)]
_Scalar = str | _Int | float | bool


def _json_value(depth: int) -> Any:
    """Any JSON value nested at most ``depth`` containers deep (deeper: not plain)."""
    value: Any = None | bool | _Int | float | str
    for _ in range(depth):
        value = None | bool | _Int | float | str | list[value] | dict[str, value]
    return value


if TYPE_CHECKING:
    _Json: TypeAlias = Any
else:
    _Json = _json_value(8)


class _Error(Struct, forbid_unknown_fields=True, gc=False):
    type: str | None
    message: Annotated[str, Meta(min_length=1)]
    stack: str | None


class _Meta(Struct, forbid_unknown_fields=True, omit_defaults=True, gc=False):
    input: _Json | UnsetType = UNSET
    output: _Json | UnsetType = UNSET
    expected_output: _Json | UnsetType = UNSET
    error: _Error | UnsetType = UNSET
    metadata: dict[str, _Json] | UnsetType = UNSET


class _Span(Struct, forbid_unknown_fields=True, omit_defaults=True, gc=False):
    trace_id: str
    span_id: str
    name: str
    start_ns: _Count
    duration: _Count
    status: Literal["ok", "error"]
    meta: _Meta
    tags: list[str]
    parent_id: str | UnsetType = UNSET
    dataset_record_id: Annotated[str, Meta(min_length=1)] | UnsetType = UNSET
    attributes: dict[str, _Scalar | list[_Scalar]] | UnsetType = UNSET


_Label = Annotated[str, Meta(min_length=1, max_length=256)]


class _Metric(Struct, forbid_unknown_fields=True, gc=False, tag_field="metric_type"):
    span_id: str
    trace_id: str
    label: _Label


class _Score(_Metric, tag=attr.METRIC_TYPE_SCORE):
    score_value: _Int | float
    timestamp_ms: _Count
    metadata: dict[str, _Json] | UnsetType = UNSET


class _Categorical(_Metric, tag=attr.METRIC_TYPE_CATEGORICAL):
    categorical_value: str
    timestamp_ms: _Count
    metadata: dict[str, _Json] | UnsetType = UNSET


class _Boolean(_Metric, tag=attr.METRIC_TYPE_BOOLEAN):
    boolean_value: bool
    timestamp_ms: _Count
    metadata: dict[str, _Json] | UnsetType = UNSET


class _Attributes(Struct, forbid_unknown_fields=True, gc=False):
    spans: list[_Span]
    metrics: list[_Score | _Categorical | _Boolean]


class _Data(Struct, forbid_unknown_fields=True, gc=False):
    type: Literal["experiment_events"]
    attributes: _Attributes


class _Body(Struct, forbid_unknown_fields=True, gc=False):
    data: _Data


_decode = msgspec.json.Decoder(_Body).decode
_encode = msgspec.json.Encoder().encode


_SPAN_ID, _TRACE_ID = attrgetter("span_id"), attrgetter("trace_id")
_PARENT_ID = attrgetter("parent_id")


def _span(span: _Span) -> SpanRow | None:
    """The span's row (its ids are checked already: :func:`~.plain_body.hex_ids`)."""
    parent = span.parent_id
    name, record_id = span.name, span.dataset_record_id
    if "\x00" in name:
        return None
    tags = cached_tag_values(span.tags)
    if tags is None:
        return None
    attributes = span.attributes
    usage = (NO_USAGE if attributes is UNSET
             else span_usage({"attributes": attributes}))
    # the document without the members the columns hold (``store.columns.COLUMN_MEMBERS``)
    doc = _encode(replace(span, trace_id=UNSET, span_id=UNSET, name=UNSET, start_ns=UNSET,
                          duration=UNSET, status=UNSET, parent_id=UNSET)).decode()
    return span_row(span.span_id, span.trace_id, None if parent is UNSET else parent, name,
                    span.start_ns, span.duration, span.status,
                    None if record_id is UNSET else record_id, usage, doc, tags)


def _metric(metric: _Score | _Categorical | _Boolean) -> MetricRow | None:
    """The metric's row (its ids are checked already: :func:`~.plain_body.hex_ids`)."""
    label = metric.label
    if not label.isascii() or "\x00" in label:
        return None
    score: float | None = None
    cat: str | None = None
    boolean: bool | None = None
    value: Any
    if type(metric) is _Score:
        mtype, value_key, value = attr.METRIC_TYPE_SCORE, "score_value", metric.score_value
        score = float(value)
    elif type(metric) is _Boolean:
        mtype, value_key, value = attr.METRIC_TYPE_BOOLEAN, "boolean_value", metric.boolean_value
        boolean = value
    else:
        assert type(metric) is _Categorical
        mtype, value_key, value = (attr.METRIC_TYPE_CATEGORICAL, "categorical_value",
                                   metric.categorical_value)
        if not value.isascii() or "\x00" in value:
            return None
        cat = value[:CATEGORY_INDEX_CHARS]
    doc = None
    if metric.metadata is not UNSET or not value_in_columns(mtype, value):
        member: dict[str, Any] = {"span_id": metric.span_id, "trace_id": metric.trace_id,
                                  "metric_type": mtype, "label": label, value_key: value,
                                  "timestamp_ms": metric.timestamp_ms}
        if metric.metadata is not UNSET:
            member["metadata"] = metric.metadata
        doc = dumps_str(member)
    return (metric.span_id, metric.trace_id, mtype, label, score, cat, boolean,
            metric.timestamp_ms, doc)


def plain_rows(text: bytes | str, max_items: int
               ) -> tuple[list[SpanRow], list[MetricRow]] | None:
    """The span and metric rows of a plain events body, or ``None`` when the body is not
    plain (then decode it as JSON and let ``ingest.parse_events`` decide)."""
    try:
        body = _decode(text)
    except (msgspec.DecodeError, RecursionError):  # (ValidationError is a DecodeError)
        return None
    attributes = body.data.attributes
    spans, metrics = attributes.spans, attributes.metrics
    if len(spans) > max_items or len(metrics) > max_items:
        return None  # (the checked path answers 413)
    parents = [p for p in map(_PARENT_ID, spans) if p is not UNSET]
    if not (hex_ids([*map(_SPAN_ID, spans), *map(_SPAN_ID, metrics), *parents], 16)
            and hex_ids([*map(_TRACE_ID, spans), *map(_TRACE_ID, metrics)], 32)):
        return None
    span_rows: list[SpanRow] = []
    metric_rows: list[MetricRow] = []
    for span in spans:
        row = _span(span)
        if row is None:
            return None
        span_rows.append(row)
    for metric in metrics:
        metric_row = _metric(metric)
        if metric_row is None:
            return None
        metric_rows.append(metric_row)
    return span_rows, metric_rows
