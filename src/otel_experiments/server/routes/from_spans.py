"""``POST /datasets/{dataset_id}/from-spans``: extend a dataset from stored spans."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from .. import _openapi as doc
from ..jsonapi import ApiError, JsonApiResponse
from ..parsing import optional
from ..render import record_resource
from ..store import MetricCondition, SpanSelection
from ..store.from_spans import EXPECTED_SOURCES
from ..validation import (
    attributes,
    document_data,
    id_value,
    int_value,
    name_value,
    number_value,
    object_value,
    path_id,
)
from ._common import json_body, settings_of, store_of, whole_number

router = APIRouter(tags=["datasets"], default_response_class=JsonApiResponse)

FROM_SPANS_TYPES = frozenset({"dataset_records_from_spans"})
_BASE = "/data/attributes"

EXAMPLE = {"data": {"type": "dataset_records_from_spans", "attributes": {
    "experiment_id": "exp-456", "metric": {"label": "exact_match", "equals": False},
    "expected_output": "output"}}}


def _choice(value: object, ptr: str, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ApiError(400, f"must be one of {list(choices)}", ptr)
    return value


def _bool(value: object, ptr: str) -> bool:
    if not isinstance(value, bool):
        raise ApiError(400, "must be a boolean", ptr)
    return value


def _metric(value: object, ptr: str) -> MetricCondition:
    attrs = object_value(value, ptr)
    label = name_value(attrs.get("label"), f"{ptr}/label")
    equals = attrs.get("equals")
    if equals is not None and not isinstance(equals, (bool, int, float, str)):
        raise ApiError(400, "must be a boolean, a number or a string", f"{ptr}/equals")
    if isinstance(equals, (int, float)) and not isinstance(equals, bool):
        equals = number_value(equals, f"{ptr}/equals")
    bounds = [None if attrs.get(k) is None else number_value(attrs[k], f"{ptr}/{k}")
              for k in ("min", "max")]
    return MetricCondition(label, equals, bounds[0], bounds[1])


def _ns(value: object, ptr: str) -> int:
    return int_value(whole_number(value), ptr)


def selection_of(attrs: dict[str, Any], max_items: int) -> SpanSelection:
    experiment_id = optional(attrs, "experiment_id", id_value)
    feature_slug = optional(attrs, "feature_slug", id_value)
    if experiment_id is None and feature_slug is None:
        raise ApiError(400, "give experiment_id or feature_slug (or both)",
                       f"{_BASE}/experiment_id")
    limit = optional(attrs, "limit", lambda v, p: int_value(whole_number(v), p, 1, max_items))
    roots_only = optional(attrs, "roots_only", _bool)
    return SpanSelection(
        experiment_id=experiment_id, feature_slug=feature_slug,
        roots_only=True if roots_only is None else roots_only,
        span_name=optional(attrs, "span_name", name_value),
        status=optional(attrs, "status", lambda v, p: _choice(v, p, ("ok", "error"))),
        start_after_ns=optional(attrs, "start_after_ns", _ns),
        start_before_ns=optional(attrs, "start_before_ns", _ns),
        metric=optional(attrs, "metric", _metric),
        expected_output=optional(
            attrs, "expected_output", lambda v, p: _choice(v, p, EXPECTED_SOURCES)) or "output",
        limit=limit or min(1000, max_items))


@router.post("/datasets/{dataset_id}/from-spans",
             responses=doc.responses({200: "RecordsFromSpans"}, 400, 404, 413, 415),
             openapi_extra=doc.request_body("RecordsFromSpansCreate", EXAMPLE),
             description="Add the inputs of stored spans to the dataset as records (one new "
                         "version; none when nothing is new). Deduplicated by input; each "
                         "record's metadata.source names its experiment, trace and span.")
async def records_from_spans(request: Request, dataset_id: str) -> Response:
    dataset_id = path_id(dataset_id, "dataset_id")
    (res,) = document_data(await json_body(request), FROM_SPANS_TYPES)
    selection = selection_of(attributes(res), settings_of(request).max_items_per_request)
    result = await run_in_threadpool(store_of(request).records_from_spans, dataset_id,
                                     selection)
    return JsonApiResponse({"data": [record_resource(r) for r in result.rows], "meta": {
        "dataset_version": result.version, "matched_spans": result.matched,
        "added": len(result.rows), "duplicates": result.duplicates,
        "without_input": result.without_input}})
