"""Experiments: create, list with filters, read, update."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from .. import _openapi as doc
from ..jsonapi import ApiError, JsonApiResponse
from ..parsing import EXPERIMENT_TYPES, optional, page_params, status_value
from ..render import EXAMPLES, experiment_resource, list_document
from ..store import new_id
from ..validation import (
    attributes,
    document_data,
    id_value,
    int32_value,
    name_value,
    object_value,
    path_id,
    text_value,
)
from ..where import ALIASES, parse_where
from ._common import json_body, store_of, whole_number

WHERE_HELP = ("Run metadata: PATH=VALUE, repeatable, all must hold. PATH starts at config. or "
              f"metadata., or is one of {', '.join(ALIASES)}; VALUE is the stored value as "
              "text (true/false, numbers as JSON writes them). Example: config.model=gpt-4o")

router = APIRouter(tags=["experiments"], default_response_class=JsonApiResponse)

#: The attributes a PATCH may change, each with its check.
_UPDATABLE: dict[str, Callable[[Any, str], Any]] = {
    "name": name_value, "description": text_value, "status": status_value,
    "feature_slug": id_value, "config": object_value, "metadata": object_value,
}


@router.post("/experiments", status_code=201,
             responses=doc.responses({201: "ExperimentDocument"}, 400, 404, 409, 413, 415),
             openapi_extra=doc.request_body("ExperimentCreate", EXAMPLES["experiment"]))
async def create_experiment(request: Request) -> Response:
    (res,) = document_data(await json_body(request), EXPERIMENT_TYPES)
    attrs = attributes(res)
    if "dataset_version" in attrs:
        attrs["dataset_version"] = whole_number(attrs["dataset_version"])
    values = {
        "id": new_id("exp") if res.get("id") is None else id_value(res["id"], "/data/id"),
        "name": name_value(attrs.get("name"), "/data/attributes/name"),
        "description": optional(attrs, "description", text_value) or "",
        "project_id": optional(attrs, "project_id", id_value),
        "dataset_id": optional(attrs, "dataset_id", id_value),
        "dataset_version": optional(attrs, "dataset_version", int32_value),
        "feature_slug": optional(attrs, "feature_slug", id_value),
        "status": optional(attrs, "status", status_value) or "PENDING",
        "config": optional(attrs, "config", object_value) or {},
        "metadata": optional(attrs, "metadata", object_value) or {},
    }
    row = await run_in_threadpool(store_of(request).create_experiment, values)
    return JsonApiResponse({"data": experiment_resource(row)}, 201)


@router.get("/experiments", responses=doc.responses({200: "ExperimentList"}, 400))
async def list_experiments(
    request: Request,
    project_id: str | None = Query(None, alias="filter[project_id]"),
    feature_slug: str | None = Query(None, alias="filter[feature_slug]"),
    status: str | None = Query(None, alias="filter[status]"),
    dataset_id: str | None = Query(None, alias="filter[dataset_id]"),
    where: list[str] | None = Query(None, alias="filter[where]",  # noqa: B008
                                    description=WHERE_HELP),
    page_size: int | None = Query(None, alias="page[size]"),
    page_cursor: str | None = Query(None, alias="page[cursor]"),
) -> Response:
    size, cursor = page_params(page_size, page_cursor)
    filters: dict[str, str] = {}
    for column, value in (("project_id", project_id), ("feature_slug", feature_slug),
                          ("dataset_id", dataset_id)):
        if value is not None:
            filters[column] = path_id(value, f"filter[{column}]")
    if status is not None:
        try:
            filters["status"] = status_value(status, "")
        except ApiError as exc:
            raise ApiError(400, exc.detail, parameter="filter[status]") from None
    conditions = parse_where(where)
    page = await run_in_threadpool(store_of(request).list_experiments, filters, size, cursor,
                                   conditions)
    return JsonApiResponse(list_document(request, page, experiment_resource, size))


@router.get("/experiments/{experiment_id}",
            responses=doc.responses({200: "ExperimentDocument"}, 400, 404))
async def get_experiment(request: Request, experiment_id: str) -> Response:
    row = await run_in_threadpool(store_of(request).get_experiment,
                                  path_id(experiment_id, "experiment_id"))
    if row is None:
        raise ApiError(404, f"experiment {experiment_id!r} not found")
    return JsonApiResponse({"data": experiment_resource(row)})


@router.patch("/experiments/{experiment_id}",
              responses=doc.responses({200: "ExperimentDocument"}, 400, 404, 413, 415),
              openapi_extra=doc.request_body("ExperimentUpdate", EXAMPLES["experiment_update"]),
              description="Attributes that are absent or null stay as they are.")
async def update_experiment(request: Request, experiment_id: str) -> Response:
    experiment_id = path_id(experiment_id, "experiment_id")
    (res,) = document_data(await json_body(request), EXPERIMENT_TYPES)
    attrs = attributes(res)
    changes = {key: optional(attrs, key, check) for key, check in _UPDATABLE.items()
               if attrs.get(key) is not None}
    store = store_of(request)
    if not changes:
        row = await run_in_threadpool(store.get_experiment, experiment_id)
        if row is None:
            raise ApiError(404, f"experiment {experiment_id!r} not found")
    else:
        row = await run_in_threadpool(store.update_experiment, experiment_id, changes)
    return JsonApiResponse({"data": experiment_resource(row)})
