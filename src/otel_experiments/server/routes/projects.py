"""Projects: get-or-create by name, list, read."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from .. import _openapi as doc
from ..jsonapi import ApiError, JsonApiResponse
from ..parsing import PROJECT_TYPES, optional, page_params
from ..render import EXAMPLES, list_document, project_resource
from ..validation import attributes, document_data, name_value, path_id, text_value
from ._common import json_body, store_of

router = APIRouter(tags=["projects"], default_response_class=JsonApiResponse)


@router.post("/projects", status_code=201,
             responses=doc.responses({201: "ProjectDocument", 200: "ProjectDocument"},
                                     400, 413, 415),
             openapi_extra=doc.request_body("ProjectCreate", EXAMPLES["project"]),
             description="Get-or-create by name: 201 for a new project, 200 with the "
                         "existing one when the name is taken.")
async def create_project(request: Request) -> Response:
    (res,) = document_data(await json_body(request), PROJECT_TYPES)
    attrs = attributes(res)
    name = name_value(attrs.get("name"), "/data/attributes/name")
    description = optional(attrs, "description", text_value) or ""
    row, created = await run_in_threadpool(store_of(request).create_project, name, description)
    return JsonApiResponse({"data": project_resource(row)}, 201 if created else 200)


@router.get("/projects", responses=doc.responses({200: "ProjectList"}, 400))
async def list_projects(
    request: Request,
    page_size: int | None = Query(None, alias="page[size]"),
    page_cursor: str | None = Query(None, alias="page[cursor]"),
) -> Response:
    size, cursor = page_params(page_size, page_cursor)
    page = await run_in_threadpool(store_of(request).list_projects, size, cursor)
    return JsonApiResponse(list_document(request, page, project_resource, size))


@router.get("/projects/{project_id:id}", responses=doc.responses({200: "ProjectDocument"}, 400, 404))
async def get_project(request: Request, project_id: str) -> Response:
    row = await run_in_threadpool(store_of(request).get_project,
                                  path_id(project_id, "project_id"))
    if row is None:
        raise ApiError(404, f"project {project_id!r} not found")
    return JsonApiResponse({"data": project_resource(row)})
