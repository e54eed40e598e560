"""Finished spans to experiment event bodies (the ``POST /experiments/{id}/events`` format).

This module is pure: no I/O, no globals mutated, no logging on the hot path. The wire
format is described field by field in ``docs/events-format.md`` and published as the JSON
Schema ``experiment_events.schema.json`` next to this file.

Dicts are built directly from the :class:`~opentelemetry.sdk.trace.ReadableSpan` fields
(never through ``ReadableSpan.to_json``): that is most of the per-span cost.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
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

from ..attributes import (
    DATASET_RECORD_ID,
    EXPECTED_OUTPUT_MIME_TYPE,
    EXPECTED_OUTPUT_VALUE,
    EXPERIMENT_ID,
    INPUT_MIME_TYPE,
    INPUT_VALUE,
    METADATA,
    METRIC_EVENT_NAME,
    METRIC_LABEL,
    METRIC_METADATA,
    METRIC_TIMESTAMP_MS,
    METRIC_TYPE,
    METRIC_TYPE_BOOLEAN,
    METRIC_TYPE_CATEGORICAL,
    METRIC_TYPE_SCORE,
    METRIC_TYPES,
    METRIC_VALUE,
    MIME_JSON,
    OBSERVE_FEATURE_SLUG,
    OUTPUT_MIME_TYPE,
    OUTPUT_VALUE,
    STAMPED_KEYS,
)
from ._json import loads

__all__ = [
    "EVENTS_TYPE",
    "RESOURCE_TAG_KEYS",
    "SPAN_KIND_TAG",
    "SpanEvent",
    "check_metric",
    "iter_span_events",
    "make_body",
    "metric_from_event",
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

#: Span attributes copied into ``tags`` (when present), in this order.
SPAN_TAG_KEYS: Final = (*STAMPED_KEYS, OBSERVE_FEATURE_SLUG)

_SPAN_TAG_PAIRS: Final = tuple((key, f"{key}:") for key in SPAN_TAG_KEYS)
_EMPTY: Final[Mapping[str, Any]] = {}
_isfinite: Final[Any] = math.isfinite
_MISSING: Final = object()
_KIND_TAGS: Final = {kind: f"{SPAN_KIND_TAG}:{kind.name.lower()}" for kind in SpanKind}
_ERROR = StatusCode.ERROR
_VALUE_KEYS: Final = {
    METRIC_TYPE_SCORE: "score_value",
    METRIC_TYPE_CATEGORICAL: "categorical_value",
    METRIC_TYPE_BOOLEAN: "boolean_value",
}

#: ``(experiment_id, span event dict, metric dicts)`` for one span.
SpanEvent = tuple[str, dict[str, Any], list[dict[str, Any]]]


# --------------------------------------------------------------------------- metrics


def check_metric(label: object, value: object, metric_type: object = None) -> str:
    """Validate one evaluation metric and return its type (``score``/``categorical``/``boolean``).

    ``metric_type=None`` infers the type from ``value``: ``bool`` -> boolean,
    ``int``/``float`` -> score, ``str`` -> categorical. Raises ``TypeError`` for a value of
    the wrong type and ``ValueError`` for an empty label, an unknown type, NaN or infinity.
    """
    if not isinstance(label, str):
        raise TypeError(f"metric label must be a str, got {type(label).__name__}")
    if not label.strip():
        raise ValueError("metric label must not be empty")
    if metric_type is None:
        if isinstance(value, bool):
            metric_type = METRIC_TYPE_BOOLEAN
        elif isinstance(value, (int, float)):
            metric_type = METRIC_TYPE_SCORE
        elif isinstance(value, str):
            metric_type = METRIC_TYPE_CATEGORICAL
        else:
            raise TypeError(
                f"metric {label!r}: value must be a bool, int, float or str, "
                f"got {type(value).__name__}"
            )
    elif not isinstance(metric_type, str) or metric_type not in METRIC_TYPES:
        raise ValueError(
            f"metric {label!r}: unknown metric_type {metric_type!r}; "
            f"expected one of {sorted(METRIC_TYPES)}"
        )
    if metric_type == METRIC_TYPE_SCORE:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(
                f"metric {label!r}: a score must be an int or float, got {type(value).__name__}"
            )
        if not math.isfinite(value):
            raise ValueError(f"metric {label!r}: a score must be finite, got {value!r}")
    elif metric_type == METRIC_TYPE_BOOLEAN:
        if not isinstance(value, bool):
            raise TypeError(
                f"metric {label!r}: a boolean metric needs a bool, got {type(value).__name__}"
            )
    elif not isinstance(value, str):
        raise TypeError(
            f"metric {label!r}: a categorical metric needs a str, got {type(value).__name__}"
        )
    return metric_type


def metric_from_event(
    event_attributes: Mapping[str, Any] | None,
    event_timestamp_ns: int | None,
    trace_id: str,
    span_id: str,
) -> dict[str, Any] | None:
    """One ``metrics`` entry from an ``experiment.metric`` span event, or ``None`` if invalid.

    Invalid events (which :func:`otel_experiments.metrics.record_metric` never writes, but a
    hand-made event or a foreign OTLP client might) are dropped rather than raising, so a
    body always validates against the schema.
    """
    if not event_attributes:
        return None
    get = event_attributes.get
    label = get(METRIC_LABEL)
    value = get(METRIC_VALUE)
    metric_type = get(METRIC_TYPE)
    value_type = type(value)
    # fast path: exactly what record_metric writes; anything else gets the full check
    if not (
        type(label) is str
        and label.strip()
        and (
            (
                metric_type == METRIC_TYPE_SCORE
                and (value_type is int or (value_type is float and _isfinite(value)))
            )
            or (metric_type == METRIC_TYPE_BOOLEAN and value_type is bool)
            or (metric_type == METRIC_TYPE_CATEGORICAL and value_type is str)
        )
    ):
        try:
            metric_type = check_metric(label, value, metric_type)
        except (TypeError, ValueError):
            return None
    timestamp_ms = get(METRIC_TIMESTAMP_MS)
    if isinstance(timestamp_ms, bool) or not isinstance(timestamp_ms, int) or timestamp_ms < 0:
        timestamp_ms = (event_timestamp_ns or 0) // 1_000_000
    if (
        metric_type == METRIC_TYPE_SCORE
        and isinstance(value, int)
        and not -(2**53) <= value <= 2**53
    ):
        value = float(value)  # keep JSON numbers within what every consumer can read
    metric: dict[str, Any] = {
        "span_id": span_id,
        "trace_id": trace_id,
        "metric_type": metric_type,
        "label": label,
        _VALUE_KEYS[metric_type]: value,
        "timestamp_ms": timestamp_ms,
    }
    metadata = get(METRIC_METADATA)
    if metadata is not None:
        metric["metadata"] = _as_object(metadata)
    return metric


# --------------------------------------------------------------------------- spans


def _as_object(raw: Any) -> dict[str, Any]:
    """A JSON-object-valued field: decode JSON text; wrap anything else as ``{"value": ...}``."""
    if isinstance(raw, str):
        try:
            decoded = loads(raw)
        except ValueError:
            return {"value": raw}
        return decoded if isinstance(decoded, dict) else {"value": decoded}
    if isinstance(raw, tuple):
        raw = list(raw)
    return {"value": raw}


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


def _error(span: ReadableSpan, description: str | None) -> dict[str, Any]:
    exc_attrs: Mapping[str, Any] | None = None
    for event in reversed(span.events):
        if event.name == EXCEPTION_EVENT_NAME:
            exc_attrs = event.attributes
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


def _plain(attributes: Any) -> Mapping[str, Any]:
    """The plain dict behind the SDK's ``BoundedAttributes`` (C-speed ``.get``), if any.

    Falls back to the mapping itself, so spans built with plain dicts (or by another SDK
    version) convert the same way. Finished spans' attributes are immutable, so reading
    the inner dict is safe.
    """
    inner = getattr(attributes, "_dict", None)
    if isinstance(inner, dict):
        return inner
    return attributes if attributes is not None else _EMPTY


def span_to_event(
    span: ReadableSpan, _tags_cache: dict[tuple[int, int], tuple[list[str], str]] | None = None
) -> SpanEvent | None:
    """Convert one finished span; ``None`` when it has no ``experiment.id`` attribute."""
    raw = getattr(span, "_attributes", _MISSING)
    attrs = _plain(span.attributes if raw is _MISSING else raw)
    if not attrs:
        return None
    get = attrs.get
    experiment_id = get(EXPERIMENT_ID)
    if not isinstance(experiment_id, str) or not experiment_id:
        return None
    ctx = span.context
    if ctx is None:
        return None
    trace_id = f"{ctx.trace_id:032x}"
    span_id = f"{ctx.span_id:016x}"
    start = span.start_time or 0
    end = span.end_time
    status = span.status
    is_error = status.status_code is _ERROR

    meta: dict[str, Any] = {}
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
        meta["error"] = _error(span, status.description)
    value = get(METADATA)
    if value is not None:
        meta["metadata"] = _as_object(value)

    resource = span.resource
    kind = span.kind
    if _tags_cache is None:
        base = _base_tags(resource, kind)
    else:
        key = (id(resource), id(kind))
        base = _tags_cache.get(key)  # type: ignore[assignment]
        if base is None:
            base = _tags_cache[key] = _base_tags(resource, kind)
    try:
        tags = [p + v for k, p in _SPAN_TAG_PAIRS if (v := get(k)) is not None]
    except TypeError:  # a non-string value: format it
        tags = [f"{p}{v}" for k, p in _SPAN_TAG_PAIRS if (v := get(k)) is not None]
    tags[:0] = base[0]
    tags.append(base[1])

    event: dict[str, Any] = {
        "trace_id": trace_id,
        "span_id": span_id,
        "name": span.name,
        "start_ns": start,
        "duration": end - start if end is not None and end > start else 0,
        "status": "error" if is_error else "ok",
        "meta": meta,
        "tags": tags,
    }
    parent = span.parent
    if parent is not None:
        event["parent_id"] = f"{parent.span_id:016x}"
    value = get(DATASET_RECORD_ID)
    if value is not None and isinstance(value, str) and value:
        event["dataset_record_id"] = value

    metrics: list[dict[str, Any]] = []
    raw_events = getattr(span, "_events", None)
    span_events = getattr(raw_events, "_dq", None)  # the SDK's BoundedList: read its deque
    if span_events is None:
        span_events = span.events
    for span_event in span_events:
        if span_event.name == METRIC_EVENT_NAME:
            event_attrs = span_event.attributes
            inner = getattr(event_attrs, "_dict", None)
            metric = metric_from_event(
                inner if inner is not None else event_attrs,
                span_event.timestamp,
                trace_id,
                span_id,
            )
            if metric is not None:
                metrics.append(metric)
    return experiment_id, event, metrics


def iter_span_events(spans: Iterable[ReadableSpan]) -> Iterator[SpanEvent]:
    """Yield ``(experiment_id, span event, metrics)`` for every span carrying ``experiment.id``."""
    # resource and span-kind tags are computed once per distinct resource and kind
    cache: dict[tuple[int, int], tuple[list[str], str]] = {}
    for span in spans:
        converted = span_to_event(span, cache)
        if converted is not None:
            yield converted


def make_body(spans: list[dict[str, Any]], metrics: list[dict[str, Any]]) -> dict[str, Any]:
    """Wrap span events and metrics in the ``{"data": {...}}`` envelope."""
    return {"data": {"type": EVENTS_TYPE, "attributes": {"spans": spans, "metrics": metrics}}}


def spans_to_event_bodies(spans: Iterable[ReadableSpan]) -> dict[str, dict[str, Any]]:
    """Convert finished spans to one experiment events body per experiment.

    Returns ``{experiment_id: {"data": {"type": "experiment_events", "attributes":
    {"spans": [...], "metrics": [...]}}}}``, experiments in first-seen order and spans in
    input order. Spans without a string ``experiment.id`` attribute are skipped. Every
    body validates against :data:`~otel_experiments.events.EVENTS_SCHEMA_PATH`.
    """
    bodies: dict[str, dict[str, Any]] = {}
    lists: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]] = {}
    for experiment_id, event, metrics in iter_span_events(spans):
        pair = lists.get(experiment_id)
        if pair is None:
            pair = lists[experiment_id] = ([], [])
            bodies[experiment_id] = make_body(*pair)
        pair[0].append(event)
        if metrics:
            pair[1].extend(metrics)
    return bodies
