"""Experiment events: ingest (the exporter's endpoint), read back, summary."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ...events.dialects import is_ddtrace_events
from .. import _openapi as doc
from ..costs import add_cost
from ..ddtrace import push_ddtrace_events
from ..ingest import parse_events
from ..jsonapi import (
    ApiError,
    JsonApiResponse,
    decode_body,
    parse_json,
    read_raw_body,
    resource,
)
from ..parsing import page_params
from ..plain_decode import plain_rows
from ..render import EXAMPLES, list_document
from ..store import GROUP_COLUMNS, IngestResult, SpanFilters
from ..validation import path_id
from ._common import (
    EVENTS_ROUTE_ID,
    require_json_media,
    settings_of,
    store_of,
    strict_query,
    time_ns,
)

router = APIRouter(tags=["events"], default_response_class=JsonApiResponse)
#: The exporter's POSTs, most of the server's requests: ``strict_query`` is called by the
#: route itself rather than solved as a dependency (FastAPI's dependency machinery cost
#: ~20 % of an empty request's CPU).
ingest_router = APIRouter(tags=["events"], default_response_class=JsonApiResponse)

#: Events bodies up to this size (decompressed) are stored on the event loop thread (SQLite
#: only): about 1,000 exporter spans, at most ~30 ms of the loop on a slow core (measured:
#: at batch 1000, 1.25x the spans per second of handing the body to a thread, whose hop and
#: contention for the interpreter cost more than the wait they spare the loop).
INLINE_INGEST_BYTES = 1 << 20


@ingest_router.post(EVENTS_ROUTE_ID, status_code=202,
                    responses=doc.responses({202: "EventsAccepted"}, 400, 413, 415),
                    openapi_extra=doc.request_body("EventsBody", EXAMPLES["events"]),
                    description="Idempotent: a span or metric sent again is counted as a "
                                "duplicate. An unknown experiment id creates the experiment.")
async def push_events(request: Request, experiment_id: str) -> Response:
    await strict_query(request)
    experiment_id = path_id(experiment_id, "experiment_id")
    require_json_media(request)
    settings = settings_of(request)
    raw = await read_raw_body(request, settings.max_body_bytes)
    text = decode_body(raw, request.headers.get("content-encoding"),
                       settings.max_decompressed_bytes)
    store = store_of(request)
    # SQLite, small body: on the event loop, as a thread hop (and the two threads' contention
    # for the interpreter) costs more than the work; a big body goes to a thread, so that
    # the server keeps answering meanwhile.
    inline = store.sqlite and len(text) <= INLINE_INGEST_BYTES

    def work() -> Any:
        # Decoded, checked and stored by one thread in one go: the decoded body (a few MB
        # of objects at batch 1000) is still in this core's cache while it is walked.
        rows = plain_rows(text, settings.max_items_per_request)  # the common body
        if rows is None:  # anything else: decoded as JSON, and every field checked
            body = parse_json(text)
            if is_ddtrace_events(body):  # ddtrace's dialect (events/dialects.py)
                return body
            rows = parse_events(body, settings.max_items_per_request)
        span_rows, metric_rows = rows
        if inline:
            done = store.ingest_now(experiment_id, span_rows, metric_rows)
            if done is not None:
                return done
            return (span_rows, metric_rows)  # the writer is busy: wait in a thread
        return store.ingest(experiment_id, span_rows, metric_rows)

    result = work() if inline else await run_in_threadpool(work)
    if isinstance(result, tuple):
        result = await run_in_threadpool(store.ingest, experiment_id, *result)
    if not isinstance(result, IngestResult):  # its own handler
        return await push_ddtrace_events(request, experiment_id, result)
    return JsonApiResponse({"data": resource("experiment_events", experiment_id, {
        "accepted_spans": result.accepted_spans,
        "duplicate_spans": result.duplicate_spans,
        "accepted_metrics": result.accepted_metrics,
        "duplicate_metrics": result.duplicate_metrics,
        "experiment_created": result.experiment_created,
    })}, 202)


def _span_filters(user_id: str | None, organization_id: str | None, status: str | None,
                  name: str | None, start_after: str | None,
                  start_before: str | None) -> SpanFilters:
    if status is not None and status.lower() not in doc.SPAN_STATUSES:
        raise ApiError(400, "must be 'ok' or 'error'", parameter="filter[status]")
    if name is not None and (not name or len(name) > 512):
        raise ApiError(400, "must be a span name (1 to 512 characters)", parameter="filter[name]")
    return SpanFilters(
        user_id=None if user_id is None else path_id(user_id, "filter[user_id]"),
        organization_id=(None if organization_id is None
                         else path_id(organization_id, "filter[organization_id]")),
        status=None if status is None else status.lower(),
        name=name,
        start_after_ns=time_ns(start_after, "filter[start_after]"),
        start_before_ns=time_ns(start_before, "filter[start_before]"),
    )


_FILTER_DOC = {
    "user_id": "spans of this user (the user.id tag)",
    "organization_id": "spans of this organization (the organization.id tag)",
    "status": "ok or error",
    "name": "spans with this name (e.g. a variant's entry span name)",
    "start_after": "spans starting at or after this time (ns since the epoch, or ISO 8601)",
    "start_before": "spans starting before this time (ns since the epoch, or ISO 8601)",
}


def _span_filter_params(
    user_id: str | None = Query(None, alias="filter[user_id]", description=_FILTER_DOC["user_id"]),
    organization_id: str | None = Query(None, alias="filter[organization_id]",
                                        description=_FILTER_DOC["organization_id"]),
    status: str | None = Query(None, alias="filter[status]", description=_FILTER_DOC["status"]),
    name: str | None = Query(None, alias="filter[name]", description=_FILTER_DOC["name"]),
    start_after: str | None = Query(None, alias="filter[start_after]",
                                    description=_FILTER_DOC["start_after"]),
    start_before: str | None = Query(None, alias="filter[start_before]",
                                     description=_FILTER_DOC["start_before"]),
) -> SpanFilters:
    """The span filters of a read (one declaration for events and summary)."""
    return _span_filters(user_id, organization_id, status, name, start_after, start_before)


@router.get(EVENTS_ROUTE_ID, responses=doc.responses({200: "SpanList"}, 400, 404))
async def list_events(
    request: Request,
    experiment_id: str,
    chosen: Annotated[SpanFilters, Depends(_span_filter_params)],
    page_size: int | None = Query(None, alias="page[size]"),
    page_cursor: str | None = Query(None, alias="page[cursor]"),
) -> Response:
    experiment_id = path_id(experiment_id, "experiment_id")
    size, cursor = page_params(page_size, page_cursor)
    filters = {key: str(value) for key, value in (
        ("user_id", chosen.user_id), ("organization_id", chosen.organization_id),
        ("status", chosen.status), ("name", chosen.name),
        ("start_after", chosen.start_after_ns), ("start_before", chosen.start_before_ns),
    ) if value is not None}
    page = await run_in_threadpool(store_of(request).list_events, experiment_id, filters,
                                   size, cursor)
    return JsonApiResponse(list_document(
        request, page, lambda r: resource("spans", r["span_id"], r["doc"]), size))


@router.get("/experiments/{experiment_id:id}/summary",
            responses=doc.responses({200: "SummaryDocument"}, 400, 404),
            description="Statistics of the experiment's spans, units of work (`root_spans`) "
                        "and metrics; with filters, of the matching spans and the metrics of "
                        "the matching units; with `group_by`, also per group of units.")
async def summary(
    request: Request,
    experiment_id: str,
    chosen: Annotated[SpanFilters, Depends(_span_filter_params)],
    group_by: str | None = Query(None, description="name, user_id or organization_id: "
                                 "the same statistics per group of units"),
) -> Response:
    experiment_id = path_id(experiment_id, "experiment_id")
    if group_by is not None and group_by not in GROUP_COLUMNS:
        raise ApiError(400, f"must be one of {', '.join(GROUP_COLUMNS)}", parameter="group_by")
    store = store_of(request)
    if chosen or group_by is not None:
        attrs = await run_in_threadpool(store.summary_of, experiment_id, chosen, group_by)
    else:  # the plain summary reads covering indexes only
        attrs = await run_in_threadpool(store.summary, experiment_id)
    attrs = add_cost(attrs, settings_of(request).prices)
    return JsonApiResponse({"data": resource("experiment_summaries", experiment_id, attrs)})
