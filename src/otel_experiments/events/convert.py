"""Finished spans to experiment event bodies (the ``POST /experiments/{id}/events`` format).

This module is pure: no I/O, no globals mutated, no logging on the hot path. The wire
format is described field by field in ``docs/events-format.md`` and published as the JSON
Schema ``experiment_events.schema.json`` next to this file.

Dicts are built directly from the :class:`~opentelemetry.sdk.trace.ReadableSpan` fields
(never through ``ReadableSpan.to_json``): that is most of the per-span cost.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Final

from opentelemetry.sdk.resources import (
    DEPLOYMENT_ENVIRONMENT,
    SERVICE_NAME,
    SERVICE_NAMESPACE,
    SERVICE_VERSION,
    Resource,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.semconv.attributes.exception_attributes import (
    EXCEPTION_MESSAGE,
    EXCEPTION_STACKTRACE,
    EXCEPTION_TYPE,
)
from opentelemetry.trace import SpanKind, StatusCode

from .._compat import attribute_dict, event_fields, events_of, span_fields
from ..attributes import (
    DATASET_RECORD_ID,
    EXPECTED_OUTPUT_MIME_TYPE,
    EXPECTED_OUTPUT_VALUE,
    EXPERIMENT_ID,
    INPUT_MIME_TYPE,
    INPUT_VALUE,
    METADATA,
    METRIC_EVENT_NAME,
    MIME_JSON,
    OUTPUT_MIME_TYPE,
    OUTPUT_VALUE,
)
from ._json import as_object, loads
from .metrics import metric_from_event
from .shapes import (
    DEFAULT_KEPT,
    DEFAULT_KEPT_ATTRIBUTES,
    SPAN_TAG_KEYS,
    KeptAttributes,
    kept_attributes,
)

__all__ = [
    "DEFAULT_KEPT_ATTRIBUTES",
    "EVENTS_TYPE",
    "RESOURCE_TAG_KEYS",
    "SPAN_KIND_TAG",
    "SPAN_TAG_KEYS",
    "KeptAttributes",
    "SpanEvent",
    "experiment_id_of",
    "iter_span_events",
    "make_body",
    "span_to_event",
    "spans_to_event_bodies",
]

#: ``data.type`` of every body.
EVENTS_TYPE: Final = "experiment_events"

#: Tag key carrying the OpenTelemetry span kind (``internal``, ``server``, ...).
SPAN_KIND_TAG: Final = "span.kind"

#: Name of the span event ``Span.record_exception`` adds (OpenTelemetry specification).
EXCEPTION_EVENT_NAME: Final = "exception"

try:  # stable since semantic-conventions 0.5x; older releases only know the legacy key
    from opentelemetry.semconv.attributes.deployment_attributes import (
        DEPLOYMENT_ENVIRONMENT_NAME,
    )
except ImportError:  # pragma: no cover - depends on the installed semconv
    DEPLOYMENT_ENVIRONMENT_NAME = "deployment.environment.name"  # type: ignore[misc]

#: Resource attributes copied into ``tags`` (when present), in this order.
RESOURCE_TAG_KEYS: Final = (
    SERVICE_NAME,
    SERVICE_NAMESPACE,
    SERVICE_VERSION,
    DEPLOYMENT_ENVIRONMENT,
    DEPLOYMENT_ENVIRONMENT_NAME,
)

_KIND_TAGS: Final = {kind: f"{SPAN_KIND_TAG}:{kind.name.lower()}" for kind in SpanKind}
_ERROR = StatusCode.ERROR

#: ``(experiment_id, span event dict, metric dicts)`` for one span.
SpanEvent = tuple[str, dict[str, Any], list[dict[str, Any]]]


# --------------------------------------------------------------------------- spans


def _payload(value: Any, mime_type: Any) -> Any:
    """``input``/``output``: JSON text tagged ``application/json`` is decoded back."""
    if isinstance(value, str):
        if mime_type == MIME_JSON:
            try:
                return loads(value)
            except ValueError:
                return value
        return value
    if isinstance(value, tuple):
        return list(value)
    return value


def _expected(value: Any) -> Any:
    """``expected_output`` set without a MIME type (by hand): JSON objects/arrays are decoded."""
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return loads(value)
        except ValueError:
            return value
    return list(value) if isinstance(value, tuple) else value


def _resource_tags(resource: Resource | None) -> list[str]:
    if resource is None:
        return []
    attrs = resource.attributes
    tags = []
    for key in RESOURCE_TAG_KEYS:
        value = attrs.get(key)
        if value is not None and value != "":
            tags.append(f"{key}:{value}")
    return tags


def _base_tags(resource: Resource | None, kind: SpanKind) -> tuple[list[str], str]:
    """Resource tags and the span-kind tag: computed once per resource and kind."""
    return _resource_tags(resource), _KIND_TAGS.get(kind) or f"{SPAN_KIND_TAG}:{kind}"


def _error(events: Sequence[Any], description: str | None) -> dict[str, Any]:
    exc_attrs: Mapping[str, Any] | None = None
    for event in reversed(events):
        name, attrs, _ = event_fields(event)
        if name == EXCEPTION_EVENT_NAME:
            exc_attrs = attrs
            break
    err_type = err_message = err_stack = None
    if exc_attrs:
        err_type = exc_attrs.get(EXCEPTION_TYPE)
        err_message = exc_attrs.get(EXCEPTION_MESSAGE)
        err_stack = exc_attrs.get(EXCEPTION_STACKTRACE)
    err_type = err_type if isinstance(err_type, str) and err_type else None
    err_stack = err_stack if isinstance(err_stack, str) and err_stack else None
    if not isinstance(err_message, str) or not err_message:
        err_message = description or err_type or "error"
    return {"type": err_type, "message": err_message, "stack": err_stack}


def _hex(value: int, width: int) -> str:
    try:
        return value.to_bytes(width // 2, "big").hex()  # ~2x an f-string's format spec
    except (OverflowError, AttributeError, TypeError):  # a foreign span's odd id
        return f"{value:0{width}x}"


def _experiment_id(attrs: Mapping[str, Any]) -> str | None:
    experiment_id = attrs.get(EXPERIMENT_ID) if attrs else None
    return experiment_id if isinstance(experiment_id, str) and experiment_id else None


def experiment_id_of(span: ReadableSpan) -> str | None:
    """The experiment a span belongs to (its non-empty string ``experiment.id``), or
    ``None``: the rule :func:`span_to_event` applies first."""
    return _experiment_id(attribute_dict(span_fields(span)["_attributes"]))


def span_to_event(
    span: ReadableSpan,
    _tags_cache: dict[tuple[int, int], tuple[list[str], str]] | None = None,
    kept: KeptAttributes = DEFAULT_KEPT,
) -> SpanEvent | None:
    """Convert one finished span; ``None`` when it has no ``experiment.id`` attribute."""
    fields = span_fields(span)
    attrs = attribute_dict(fields["_attributes"])
    experiment_id = _experiment_id(attrs)
    if experiment_id is None:
        return None
    ctx = fields["_context"]
    if ctx is None:
        return None
    try:  # SpanContext is a tuple (trace_id, span_id, ...); to_bytes is ~2x a format spec
        trace_id = ctx[0].to_bytes(16, "big").hex()
        span_id = ctx[1].to_bytes(8, "big").hex()
    except (OverflowError, AttributeError, TypeError):  # a foreign span's odd ids
        trace_id, span_id = _hex(ctx[0], 32), _hex(ctx[1], 16)
    keys = tuple(attrs)
    shape = kept.shapes.get(keys) or kept.shape(keys)
    status = fields["_status"]
    is_error = status.status_code is _ERROR
    raw_events = fields["_events"]
    raw_events = events_of(raw_events) if raw_events else ()

    meta: dict[str, Any] = {}
    if shape.payload:
        get = attrs.get
        value = get(INPUT_VALUE)
        if value is not None:
            if type(value) is str and get(INPUT_MIME_TYPE) != MIME_JSON:
                meta["input"] = value  # plain text: the common case, no call
            else:
                meta["input"] = _payload(value, get(INPUT_MIME_TYPE))
        value = get(OUTPUT_VALUE)
        if value is not None:
            if type(value) is str and get(OUTPUT_MIME_TYPE) != MIME_JSON:
                meta["output"] = value
            else:
                meta["output"] = _payload(value, get(OUTPUT_MIME_TYPE))
        value = get(EXPECTED_OUTPUT_VALUE)
        if value is not None:
            mime = get(EXPECTED_OUTPUT_MIME_TYPE)
            meta["expected_output"] = _expected(value) if mime is None else _payload(value, mime)
    if is_error:
        meta["error"] = _error(raw_events, status.description)
    if shape.payload:
        value = attrs.get(METADATA)
        if value is not None:
            meta["metadata"] = as_object(value)

    resource = fields["_resource"]
    kind = fields["_kind"]
    if _tags_cache is None:
        base = _base_tags(resource, kind)
    else:
        key = (id(resource), id(kind))
        base = _tags_cache.get(key)  # type: ignore[assignment]
        if base is None:
            base = _tags_cache[key] = _base_tags(resource, kind)
    try:
        tags = [*base[0], *[p + v for k, p in shape.tag_pairs if (v := attrs[k]) is not None],
                base[1]]
    except TypeError:  # a non-string value: format it
        tags = [*base[0], *[f"{p}{v}" for k, p in shape.tag_pairs if (v := attrs[k]) is not None],
                base[1]]

    start = fields["_start_time"] or 0
    end = fields["_end_time"]
    event: dict[str, Any] = {
        "trace_id": trace_id,
        "span_id": span_id,
        "name": fields["_name"],
        "start_ns": start,
        "duration": end - start if end is not None and end > start else 0,
        "status": "error" if is_error else "ok",
        "meta": meta,
        "tags": tags,
    }
    parent = fields["_parent"]
    if parent is not None:
        event["parent_id"] = _hex(parent[1], 16)
    if shape.record_id:
        value = attrs[DATASET_RECORD_ID]
        if value and isinstance(value, str):
            event["dataset_record_id"] = value
    if shape.kept:
        kept_values = kept_attributes(attrs, shape.kept)
        if kept_values is not None:
            event["attributes"] = kept_values

    metrics: list[dict[str, Any]] = []
    for span_event in raw_events:
        name, event_attrs, timestamp = event_fields(span_event)
        if name == METRIC_EVENT_NAME:
            metric = metric_from_event(event_attrs, timestamp, trace_id, span_id)
            if metric is not None:
                metrics.append(metric)
    return experiment_id, event, metrics


def iter_span_events(
    spans: Iterable[ReadableSpan], kept: KeptAttributes | None = None
) -> Iterator[SpanEvent]:
    """Yield ``(experiment_id, span event, metrics)`` for every span carrying ``experiment.id``."""
    # resource and span-kind tags are computed once per distinct resource and kind
    cache: dict[tuple[int, int], tuple[list[str], str]] = {}
    selection = DEFAULT_KEPT if kept is None else kept
    for span in spans:
        converted = span_to_event(span, cache, selection)
        if converted is not None:
            yield converted


def make_body(spans: list[dict[str, Any]], metrics: list[dict[str, Any]]) -> dict[str, Any]:
    """Wrap span events and metrics in the ``{"data": {...}}`` envelope."""
    return {"data": {"type": EVENTS_TYPE, "attributes": {"spans": spans, "metrics": metrics}}}


def spans_to_event_bodies(
    spans: Iterable[ReadableSpan], kept: KeptAttributes | None = None
) -> dict[str, dict[str, Any]]:
    """Convert finished spans to one experiment events body per experiment.

    Returns ``{experiment_id: {"data": {"type": "experiment_events", "attributes":
    {"spans": [...], "metrics": [...]}}}}``, experiments in first-seen order and spans in
    input order. Spans without a string ``experiment.id`` attribute are skipped. Every
    body validates against :data:`~otel_experiments.events.EVENTS_SCHEMA_PATH`.
    """
    bodies: dict[str, dict[str, Any]] = {}
    lists: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]] = {}
    for experiment_id, event, metrics in iter_span_events(spans, kept):
        pair = lists.get(experiment_id)
        if pair is None:
            pair = lists[experiment_id] = ([], [])
            bodies[experiment_id] = make_body(*pair)
        pair[0].append(event)
        if metrics:
            pair[1].extend(metrics)
    return bodies
