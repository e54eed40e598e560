"""Experiment events: ingest (the exporter's endpoint), read back, summary."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ...events import load_events_schema
from .. import _openapi as doc
from ..ingest import parse_events
from ..jsonapi import ApiError, JsonApiResponse, resource
from ..parsing import page_params
from ..render import EXAMPLES, list_document
from ..validation import path_id
from ._common import EVENTS_ROUTE, json_body, settings_of, store_of, whole_number

router = APIRouter(tags=["events"], default_response_class=JsonApiResponse)


def _integer_members() -> dict[str, tuple[str, ...]]:
    """The integer members of spans and metrics, as the events schema declares them."""
    defs = load_events_schema()["$defs"]
    return {kind: tuple(name for name, member in defs[kind]["properties"].items()
                        if member.get("type") == "integer")
            for kind in ("span", "metric")}


_INTEGER_MEMBERS = _integer_members()


def _whole_numbers(body: Any) -> None:
    """Turn ``5.0`` into ``5`` in the integer members of spans and metrics, in place."""
    data = body.get("data") if isinstance(body, dict) else None
    attrs = data.get("attributes") if isinstance(data, dict) else None
    if not isinstance(attrs, dict):
        return
    for key, kind in (("spans", "span"), ("metrics", "metric")):
        items = attrs.get(key)
        for item in items if isinstance(items, list) else ():
            if isinstance(item, dict):
                for name in _INTEGER_MEMBERS[kind]:
                    if name in item:
                        item[name] = whole_number(item[name])


@router.post(EVENTS_ROUTE, status_code=202,
             responses=doc.responses({202: "EventsAccepted"}, 400, 413, 415),
             openapi_extra=doc.request_body("EventsBody", EXAMPLES["events"]),
             description="Idempotent: a span or metric sent again is counted as a duplicate. "
                         "An unknown experiment id creates the experiment.")
async def push_events(request: Request, experiment_id: str) -> Response:
    experiment_id = path_id(experiment_id, "experiment_id")
    body = await json_body(request)
    store = store_of(request)
    max_items = settings_of(request).max_items_per_request

    def work() -> Any:
        _whole_numbers(body)
        span_rows, metric_rows = parse_events(body, max_items)
        return store.ingest(experiment_id, span_rows, metric_rows)

    result = await run_in_threadpool(work)
    return JsonApiResponse({"data": resource("experiment_events", experiment_id, {
        "accepted_spans": result.accepted_spans,
        "duplicate_spans": result.duplicate_spans,
        "accepted_metrics": result.accepted_metrics,
        "duplicate_metrics": result.duplicate_metrics,
        "experiment_created": result.experiment_created,
    })}, 202)


@router.get(EVENTS_ROUTE, responses=doc.responses({200: "SpanList"}, 400, 404))
async def list_events(
    request: Request,
    experiment_id: str,
    user_id: str | None = Query(None, alias="filter[user_id]"),
    organization_id: str | None = Query(None, alias="filter[organization_id]"),
    status: str | None = Query(None, alias="filter[status]"),
    page_size: int | None = Query(None, alias="page[size]"),
    page_cursor: str | None = Query(None, alias="page[cursor]"),
) -> Response:
    experiment_id = path_id(experiment_id, "experiment_id")
    size, cursor = page_params(page_size, page_cursor)
    filters: dict[str, str] = {}
    for column, value in (("user_id", user_id), ("organization_id", organization_id)):
        if value is not None:
            filters[column] = path_id(value, f"filter[{column}]")
    if status is not None:
        if status.lower() not in doc.SPAN_STATUSES:
            raise ApiError(400, "must be 'ok' or 'error'", parameter="filter[status]")
        filters["status"] = status.lower()
    page = await run_in_threadpool(store_of(request).list_events, experiment_id, filters,
                                   size, cursor)
    return JsonApiResponse(list_document(
        request, page, lambda r: resource("spans", r["span_id"], r["doc"]), size))


@router.get("/experiments/{experiment_id}/summary",
            responses=doc.responses({200: "SummaryDocument"}, 400, 404))
async def summary(request: Request, experiment_id: str) -> Response:
    experiment_id = path_id(experiment_id, "experiment_id")
    attrs = await run_in_threadpool(store_of(request).summary, experiment_id)
    return JsonApiResponse({"data": resource("experiment_summaries", experiment_id, attrs)})
