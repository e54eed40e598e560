"""OTLP/HTTP trace receiver: ExportTraceServiceRequest -> ReadableSpan -> events -> storage.

Spans are rebuilt as :class:`opentelemetry.sdk.trace.ReadableSpan` objects (resource,
attributes, events, status, kind, parent) and converted by the package's own
:func:`~otel_experiments.events.convert.span_to_event`, so a span received over OTLP is
stored exactly as if the in-process exporter had sent it to the events API.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags
from starlette.responses import Response

from ..events.convert import make_body, span_to_event
from .ingest import parse_events
from .jsonapi import ApiError, ApiErrors, loads, media_type
from .store import MetricRow, SpanRow, Store
from .validation import id_value

PROTOBUF_TYPES = frozenset({"application/x-protobuf", "application/protobuf"})
JSON_TYPE = "application/json"
_ID_FIELDS = frozenset({"traceId", "spanId", "parentSpanId", "trace_id", "span_id",
                        "parent_span_id"})
_SDK_KINDS = list(SpanKind)  # INTERNAL, SERVER, CLIENT, PRODUCER, CONSUMER


@dataclass
class OtlpResult:
    received_spans: int = 0
    accepted_spans: int = 0
    duplicate_spans: int = 0
    ignored_spans: int = 0
    rejected_spans: int = 0
    accepted_metrics: int = 0
    duplicate_metrics: int = 0
    error_message: str = ""


def _hex_ids_to_base64(node: Any) -> Any:
    """OTLP/JSON spells trace/span ids as hex; protobuf's JSON mapping expects base64."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key in _ID_FIELDS and isinstance(value, str):
                try:
                    value = base64.b64encode(bytes.fromhex(value)).decode()
                except ValueError:
                    raise ApiError(400, f"{key} must be hex, got {value[:64]!r}") from None
            else:
                value = _hex_ids_to_base64(value)
            out[key] = value
        return out
    if isinstance(node, list):
        return [_hex_ids_to_base64(v) for v in node]
    return node


def decode_request(body: bytes, content_type: str) -> ExportTraceServiceRequest:
    media = media_type(content_type)
    request = ExportTraceServiceRequest()
    if media in PROTOBUF_TYPES:
        try:
            request.ParseFromString(body)
        except (DecodeError, RecursionError, ValueError) as exc:
            raise ApiError(400, f"invalid OTLP protobuf: {exc}") from None
    elif media == JSON_TYPE:
        try:
            doc = loads(body) if body.strip() else {}
        except (ValueError, RecursionError) as exc:
            raise ApiError(400, f"malformed JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise ApiError(400, "an OTLP JSON body must be an object")
        try:
            json_format.ParseDict(_hex_ids_to_base64(doc), request, ignore_unknown_fields=True)
        except (json_format.ParseError, RecursionError, ValueError, TypeError) as exc:
            raise ApiError(400, f"invalid OTLP JSON: {exc}") from None
    else:
        raise ApiError(415, f"unsupported Content-Type {media!r}; use application/x-protobuf "
                       "or application/json")
    return request


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return tuple(_value(v) for v in value.array_value.values)
    if kind == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    return getattr(value, kind)


def _attributes(pairs: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    kv: KeyValue
    for kv in pairs:
        out[kv.key] = _value(kv.value)
    return out


def _id(raw: bytes, size: int) -> int | None:
    return int.from_bytes(raw, "big") if len(raw) == size and any(raw) else None


def readable_spans(request: ExportTraceServiceRequest) -> Iterator[ReadableSpan | None]:
    """Every span of the request as a ReadableSpan (``None`` where its ids are invalid)."""
    for resource_spans in request.resource_spans:
        resource = Resource(_attributes(resource_spans.resource.attributes))
        for scope_spans in resource_spans.scope_spans:
            scope = InstrumentationScope(scope_spans.scope.name, scope_spans.scope.version or None)
            for span in scope_spans.spans:
                trace_id = _id(span.trace_id, 16)
                span_id = _id(span.span_id, 8)
                if trace_id is None or span_id is None:
                    yield None
                    continue
                flags = TraceFlags(span.flags & 0xFF)
                parent_id = _id(span.parent_span_id, 8)
                parent = (None if parent_id is None
                          else SpanContext(trace_id, parent_id, is_remote=True, trace_flags=flags))
                code = StatusCode(span.status.code) if span.status.code in (0, 1, 2) \
                    else StatusCode.UNSET
                status = Status(code, span.status.message if code is StatusCode.ERROR else None)
                yield ReadableSpan(
                    name=span.name,
                    context=SpanContext(trace_id, span_id, is_remote=False, trace_flags=flags),
                    parent=parent,
                    resource=resource,
                    attributes=_attributes(span.attributes),
                    events=[Event(e.name, _attributes(e.attributes), e.time_unix_nano)
                            for e in span.events],
                    kind=_SDK_KINDS[min(max(span.kind - 1, 0), len(_SDK_KINDS) - 1)],
                    status=status,
                    start_time=span.start_time_unix_nano,
                    end_time=span.end_time_unix_nano,
                    instrumentation_scope=scope,
                )


def _convert(spans: list[ReadableSpan], result: OtlpResult) -> dict[str, dict[str, Any]]:
    """One events body per experiment, by the package's converter, span by span.

    Spans without ``experiment.id`` are counted as ignored; a span the converter cannot
    convert is rejected alone (foreign input must never become a 500). ``spans`` is a list
    so every resource stays alive: the converter's tag cache is keyed by ``id(resource)``.
    """
    cache: dict[tuple[int, int], tuple[list[str], str]] = {}
    grouped: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]] = {}
    for span in spans:
        try:
            converted = span_to_event(span, cache)
        except Exception as exc:
            result.rejected_spans += 1
            result.error_message = f"span {span.name[:100]!r} could not be converted: {exc}"[:1000]
            continue
        if converted is None:
            result.ignored_spans += 1
            continue
        experiment_id, event, metrics = converted
        span_events, metric_events = grouped.setdefault(experiment_id, ([], []))
        span_events.append(event)
        metric_events += metrics
    return {experiment_id: make_body(*pair) for experiment_id, pair in grouped.items()}


def _parse_each(events_body: dict[str, Any], max_spans: int,
                result: OtlpResult) -> tuple[list[SpanRow], list[MetricRow]]:
    """Parse a converted body; when it fails, parse span by span and reject only the bad."""
    try:
        return parse_events(events_body, max_spans)
    except (ApiError, ApiErrors, TypeError, ValueError):
        pass
    attrs = events_body["data"]["attributes"]
    span_rows: list[SpanRow] = []
    metric_rows: list[MetricRow] = []
    for span in attrs["spans"]:
        own = [m for m in attrs["metrics"] if m.get("span_id") == span.get("span_id")]
        one = {"data": {**events_body["data"], "attributes": {"spans": [span], "metrics": own}}}
        try:
            rows, metrics = parse_events(one, max_spans)
        except (ApiError, ApiErrors, TypeError, ValueError) as exc:
            result.rejected_spans += 1
            result.error_message = f"span {span.get('span_id')!r}: {exc}"[:1000]
            continue
        span_rows += rows
        metric_rows += metrics
    return span_rows, metric_rows


def receive_otlp(store: Store, body: bytes, content_type: str, max_spans: int) -> OtlpResult:
    """Decode, convert and store; spans without ``experiment.id`` are counted and ignored."""
    request = decode_request(body, content_type)
    result = OtlpResult()
    spans: list[ReadableSpan] = []
    for span in readable_spans(request):
        result.received_spans += 1
        if result.received_spans > max_spans:
            raise ApiError(413, f"more than {max_spans} spans in one request")
        if span is None:
            result.rejected_spans += 1
            result.error_message = "spans with invalid trace or span ids were rejected"
        else:
            spans.append(span)
    bodies = _convert(spans, result)
    for experiment_id, events_body in bodies.items():
        try:
            id_value(experiment_id, "experiment.id")
        except ApiError as exc:
            result.rejected_spans += len(events_body["data"]["attributes"]["spans"])
            result.error_message = f"experiment.id {experiment_id[:256]!r}: {exc}"[:1000]
            continue
        span_rows, metric_rows = _parse_each(events_body, max_spans, result)
        if not span_rows and not metric_rows:
            continue
        stored = store.ingest(experiment_id, span_rows, metric_rows)
        result.accepted_spans += stored.accepted_spans
        result.duplicate_spans += stored.duplicate_spans
        result.accepted_metrics += stored.accepted_metrics
        result.duplicate_metrics += stored.duplicate_metrics
    return result


#: Response header -> the :class:`OtlpResult` count it carries.
COUNT_HEADERS = {
    "X-Otel-Experiments-Accepted-Spans": "accepted_spans",
    "X-Otel-Experiments-Duplicate-Spans": "duplicate_spans",
    "X-Otel-Experiments-Ignored-Spans": "ignored_spans",
    "X-Otel-Experiments-Rejected-Spans": "rejected_spans",
    "X-Otel-Experiments-Accepted-Metrics": "accepted_metrics",
}


def otlp_response(result: OtlpResult, content_type: str) -> Response:
    headers = {name: str(getattr(result, field)) for name, field in COUNT_HEADERS.items()}
    message = ExportTraceServiceResponse()
    if result.rejected_spans:
        message.partial_success.rejected_spans = result.rejected_spans
        message.partial_success.error_message = result.error_message
    if media_type(content_type) == JSON_TYPE:
        return Response(json_format.MessageToJson(message, indent=None), 200,
                        media_type=JSON_TYPE, headers=headers)
    return Response(message.SerializeToString(), 200, media_type="application/x-protobuf",
                    headers=headers)
