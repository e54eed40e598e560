"""Datasets and their versioned records."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from .. import _openapi as doc
from ..jsonapi import ApiError, JsonApiResponse
from ..parsing import DATASET_TYPES, RECORD_TYPES, optional, page_params, record_values
from ..render import EXAMPLES, dataset_resource, list_document, record_resource
from ..validation import (
    attributes,
    document_data,
    id_value,
    name_value,
    object_value,
    path_id,
    text_value,
)
from ._common import json_body, settings_of, store_of

router = APIRouter(tags=["datasets"], default_response_class=JsonApiResponse)


@router.post("/datasets", status_code=201,
             responses=doc.responses({201: "DatasetDocument"}, 400, 404, 413, 415),
             openapi_extra=doc.request_body("DatasetCreate", EXAMPLES["dataset"]))
async def create_dataset(request: Request) -> Response:
    (res,) = document_data(await json_body(request), DATASET_TYPES)
    attrs = attributes(res)
    project_id = optional(attrs, "project_id", id_value)
    name = name_value(attrs.get("name"), "/data/attributes/name")
    description = optional(attrs, "description", text_value) or ""
    metadata = optional(attrs, "metadata", object_value) or {}
    row = await run_in_threadpool(store_of(request).create_dataset, project_id, name,
                                  description, metadata)
    row["record_count"] = 0
    return JsonApiResponse({"data": dataset_resource(row)}, 201)


@router.get("/datasets", responses=doc.responses({200: "DatasetList"}, 400))
async def list_datasets(
    request: Request,
    project_id: str | None = Query(None, alias="filter[project_id]"),
    page_size: int | None = Query(None, alias="page[size]"),
    page_cursor: str | None = Query(None, alias="page[cursor]"),
) -> Response:
    size, cursor = page_params(page_size, page_cursor)
    if project_id is not None:
        project_id = path_id(project_id, "filter[project_id]")
    page = await run_in_threadpool(store_of(request).list_datasets, project_id, size, cursor)
    return JsonApiResponse(list_document(request, page, dataset_resource, size))


@router.get("/datasets/{dataset_id:id}", responses=doc.responses({200: "DatasetDocument"}, 400, 404))
async def get_dataset(request: Request, dataset_id: str) -> Response:
    row = await run_in_threadpool(store_of(request).get_dataset,
                                  path_id(dataset_id, "dataset_id"))
    if row is None:
        raise ApiError(404, f"dataset {dataset_id!r} not found")
    return JsonApiResponse({"data": dataset_resource(row)})


@router.post("/datasets/{dataset_id:id}/records", status_code=201,
             responses=doc.responses({201: "RecordsCreated"}, 400, 404, 409, 413, 415),
             openapi_extra=doc.request_body("RecordsCreate", EXAMPLES["records"]),
             description="One record object or an array of them; `data` in the answer has "
                         "the same shape.")
async def add_records(request: Request, dataset_id: str) -> Response:
    dataset_id = path_id(dataset_id, "dataset_id")
    body = await json_body(request)
    items = document_data(body, RECORD_TYPES, many=True)
    limit = settings_of(request).max_items_per_request
    if len(items) > limit:
        raise ApiError(413, f"{len(items)} records; the limit is {limit}", "/data")
    single = not isinstance(body["data"], list)
    records = [record_values(res, "/data" if single else f"/data/{i}", partial=False)
               for i, res in enumerate(items)]
    version, rows = await run_in_threadpool(store_of(request).add_records, dataset_id, records)
    data = [record_resource(r) for r in rows]
    return JsonApiResponse({"data": data[0] if single else data,
                            "meta": {"dataset_version": version}}, 201)


@router.get("/datasets/{dataset_id:id}/records",
            responses=doc.responses({200: "RecordList"}, 400, 404))
async def list_records(
    request: Request,
    dataset_id: str,
    version: int | None = Query(None, ge=0, le=2**31 - 1),
    page_size: int | None = Query(None, alias="page[size]"),
    page_cursor: str | None = Query(None, alias="page[cursor]"),
) -> Response:
    size, cursor = page_params(page_size, page_cursor)
    v, page = await run_in_threadpool(
        store_of(request).list_records, path_id(dataset_id, "dataset_id"), version, size, cursor)
    return JsonApiResponse(list_document(request, page, record_resource, size,
                                         {"dataset_version": v}))


@router.patch("/datasets/{dataset_id:id}/records/{record_id:id}",
              responses=doc.responses({200: "RecordUpdated"}, 400, 404, 413, 415),
              openapi_extra=doc.request_body("RecordUpdate", EXAMPLES["record_update"]))
async def update_record(request: Request, dataset_id: str, record_id: str) -> Response:
    dataset_id = path_id(dataset_id, "dataset_id")
    record_id = path_id(record_id, "record_id")
    (res,) = document_data(await json_body(request), RECORD_TYPES)
    changes = record_values(res, "/data", partial=True)
    if not changes:
        raise ApiError(400, "nothing to update: give input, expected_output, metadata or tags",
                       "/data/attributes")
    version, row = await run_in_threadpool(store_of(request).update_record, dataset_id,
                                           record_id, changes)
    return JsonApiResponse({"data": record_resource(row), "meta": {"dataset_version": version}})


@router.delete("/datasets/{dataset_id:id}/records/{record_id:id}",
               responses=doc.responses({200: "RecordDeleted"}, 400, 404))
async def delete_record(request: Request, dataset_id: str, record_id: str) -> Response:
    version = await run_in_threadpool(
        store_of(request).delete_record, path_id(dataset_id, "dataset_id"),
        path_id(record_id, "record_id"))
    return JsonApiResponse({"meta": {"dataset_version": version, "deleted": record_id}})
