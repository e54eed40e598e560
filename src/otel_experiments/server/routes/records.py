"""Per-record results of an experiment, and deleting an experiment.

``GET /experiments/{id}/records``: one row per record span (see
:func:`~otel_experiments.server.store.records.experiment_records`), paged like every list.
``DELETE /experiments/{id}``: the experiment, its spans and its metrics.
Included by the app under ``API_PREFIX``.
"""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from .. import _openapi as doc
from ..costs import add_cost
from ..jsonapi import ApiError, JsonApiResponse, resource
from ..parsing import page_params
from ..render import list_document
from ..store.records import RecordFilters, delete_experiment, experiment_records
from ..validation import path_id
from ._common import settings_of, store_of

router = APIRouter(tags=["events"], default_response_class=JsonApiResponse)


@router.get("/experiments/{experiment_id}/records",
            responses=doc.responses({200: "ExperimentRecordList"}, 400, 404))
async def list_experiment_records(
    experiment_id: str,
    request: Request,
    status: str | None = Query(None, alias="filter[status]"),
    dataset_record_id: str | None = Query(None, alias="filter[dataset_record_id]"),
    user_id: str | None = Query(None, alias="filter[user_id]"),
    organization_id: str | None = Query(None, alias="filter[organization_id]"),
    page_size: int | None = Query(None, alias="page[size]"),
    page_cursor: str | None = Query(None, alias="page[cursor]"),
) -> Response:
    experiment_id = path_id(experiment_id, "experiment_id")
    size, cursor = page_params(page_size, page_cursor)
    if status is not None and status.lower() not in ("ok", "error"):
        raise ApiError(400, "must be 'ok' or 'error'", parameter="filter[status]")
    ids = {name: None if value is None else path_id(value, f"filter[{name}]")
           for name, value in (("dataset_record_id", dataset_record_id), ("user_id", user_id),
                               ("organization_id", organization_id))}
    filters = RecordFilters(status=None if status is None else status.lower(), **ids)
    page = await run_in_threadpool(experiment_records, store_of(request), experiment_id,
                                   filters=filters,
                                   size=size, cursor=cursor)
    prices = settings_of(request).prices
    return JsonApiResponse(list_document(
        request, page,
        lambda row: resource("experiment_records", row["span_id"],
                             add_cost({k: v for k, v in row.items() if k != "seq"}, prices)),
        size))


@router.delete("/experiments/{experiment_id}", tags=["experiments"],
               responses=doc.responses({200: "ExperimentDeleted"}, 400, 404))
async def remove_experiment(experiment_id: str, request: Request) -> Response:
    experiment_id = path_id(experiment_id, "experiment_id")
    spans = await run_in_threadpool(delete_experiment, store_of(request), experiment_id)
    return JsonApiResponse({"meta": {"deleted": experiment_id, "deleted_spans": spans}})
