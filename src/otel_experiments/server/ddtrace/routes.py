"""The endpoints ddtrace's ``LLMObs`` experiments client calls, as its code builds them.

ddtrace 4.x (``ddtrace/llmobs/_writer.py``) talks to ``DD_LLMOBS_OVERRIDE_ORIGIN`` with
``DD-API-KEY`` / ``DD-APPLICATION-KEY`` headers and requires 200 (not 201) from every
create. Everything lands in the same tables as our own API, so what ddtrace creates is
listed by ``/api/v2/llm-obs/v1/...`` (and the other way round).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ..jsonapi import ApiError, JsonApiResponse, loads, read_body, resource
from ..parsing import DATASET_TYPES, EXPERIMENT_TYPES, PROJECT_TYPES, optional, status_value
from ..render import dataset_resource, project_resource
from ..routes._common import json_body
from ..store import MAX_PAGE_SIZE, Store, decode_cursor, new_id
from ..store.ddtrace import (
    DD_KEY,
    batch_update,
    contains,
    find_datasets,
    get_or_create_dataset,
    merge_experiment,
    newest_experiments,
)
from ..store.records import experiment_records
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
from .ingest import ingest_ddtrace_events, ingest_intake
from .shapes import (
    batch_request,
    experiment_doc,
    experiment_events,
    record_doc,
)
from .upload import csv_records

#: ddtrace's prefixes: "unstable" for writes, v2 for dataset reads and its span intake.
UNSTABLE = "/api/unstable/llm-obs/v1"
V2 = "/api/v2/llm-obs/v1"
INTAKE = "/api/v2/llmobs"

# Left out of /openapi.json: these answer ddtrace's client, in its shapes, and are
# described where that client is (docs/server.md), not as part of our API.
router = APIRouter(tags=["ddtrace"], include_in_schema=False)


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def _max_items(request: Request) -> int:
    return int(request.app.state.settings.max_items_per_request)


async def _require_project(store: Store, project_id: str) -> str:
    project_id = path_id(project_id, "project_id")
    if await run_in_threadpool(store.get_project, project_id) is None:
        raise ApiError(404, f"project {project_id!r} not found")
    return project_id


async def _require_dataset(store: Store, project_id: str, dataset_id: str) -> dict[str, Any]:
    dataset_id = path_id(dataset_id, "dataset_id")
    row = await run_in_threadpool(store.get_dataset, dataset_id)
    if row is None or row["project_id"] != project_id:
        raise ApiError(404, f"dataset {dataset_id!r} not found in project {project_id!r}")
    return row


# -- projects and datasets ---------------------------------------------------------------


@router.post(f"{UNSTABLE}/projects")
async def create_project(request: Request) -> Response:
    """Get-or-create by name; ddtrace calls it before every dataset and experiment."""
    (res,) = document_data(await json_body(request), PROJECT_TYPES)
    attrs = attributes(res)
    name = name_value(attrs.get("name"), "/data/attributes/name")
    description = optional(attrs, "description", text_value) or ""
    row, _ = await run_in_threadpool(_store(request).create_project, name, description)
    return JsonApiResponse({"data": project_resource(row)})


@router.post(f"{UNSTABLE}/{{project_id:id}}/datasets")
async def create_dataset(project_id: str, request: Request) -> Response:
    """Get-or-create by (project, name): rerunning a script lands on the same dataset."""
    store = _store(request)
    project_id = await _require_project(store, project_id)
    (res,) = document_data(await json_body(request), DATASET_TYPES)
    attrs = attributes(res)
    name = name_value(attrs.get("name"), "/data/attributes/name")
    description = optional(attrs, "description", text_value) or ""
    row, _ = await run_in_threadpool(get_or_create_dataset, store, project_id, name, description)
    return JsonApiResponse({"data": dataset_resource(row)})


@router.get(f"{V2}/{{project_id:id}}/datasets")
async def find_dataset(project_id: str, request: Request,
                       name: str | None = Query(None, alias="filter[name]")) -> Response:
    store = _store(request)
    project_id = await _require_project(store, project_id)
    rows = await run_in_threadpool(find_datasets, store, project_id, name)
    return JsonApiResponse({"data": [dataset_resource(r) for r in rows]})


@router.post(f"{V2}/{{project_id:id}}/datasets/{{dataset_id:id}}/batch_update")
async def update_records(project_id: str, dataset_id: str, request: Request) -> Response:
    store = _store(request)
    project_id = await _require_project(store, project_id)
    dataset = await _require_dataset(store, project_id, dataset_id)
    (res,) = document_data(await json_body(request), DATASET_TYPES)
    batch = batch_request(attributes(res), _max_items(request))
    items = await run_in_threadpool(
        lambda: batch_update(store, dataset["id"], batch["inserts"], batch["updates"],
                             batch["deletes"], deduplicate=batch["deduplicate"],
                             new_version=batch["new_version"]))
    return JsonApiResponse({"data": [
        resource("dataset_records", item["id"], {"version": item["version"],
                                                 "canonical_id": item["record_id"],
                                                 "dataset_id": dataset["id"]})
        for item in items]})


@router.post(f"{UNSTABLE}/datasets/{{dataset_id:id}}/records/upload")
async def upload_records(dataset_id: str, request: Request,
                         deduplicate: str = Query("True")) -> Response:
    """``create_dataset_from_csv`` / ``bulk_upload``: the CSV's records as one version."""
    store = _store(request)
    dataset_id = path_id(dataset_id, "dataset_id")
    settings = request.app.state.settings
    body = await read_body(request, settings.max_body_bytes, settings.max_decompressed_bytes)
    records = csv_records(request.headers.get("content-type", ""), body, _max_items(request))
    items = await run_in_threadpool(
        lambda: batch_update(store, dataset_id, records, [], [],
                             deduplicate=deduplicate.lower() != "false", new_version=True))
    return JsonApiResponse({"data": [
        resource("dataset_records", item["id"], {"version": item["version"],
                                                 "canonical_id": item["record_id"]})
        for item in items]})


@router.get(f"{V2}/{{project_id:id}}/datasets/{{dataset_id:id}}/records")
async def pull_records(
    project_id: str, dataset_id: str, request: Request,
    version: int | None = Query(None, alias="filter[version]", ge=0, le=2**31 - 1),
    cursor: str | None = Query(None, alias="page[cursor]"),
) -> Response:
    """One page of records (``meta.after``: the next page's cursor, as ddtrace pages);
    ``filter[tags]`` keeps the page's records holding every tag given."""
    store = _store(request)
    project_id = await _require_project(store, project_id)
    dataset = await _require_dataset(store, project_id, dataset_id)
    tags = request.query_params.getlist("filter[tags]")
    v, page = await run_in_threadpool(store.list_records, dataset["id"], version or None,
                                      MAX_PAGE_SIZE, decode_cursor(cursor))
    rows = [r for r in page.rows if not tags or set(tags) <= set(record_doc(r)["attributes"]
                                                                 ["tags"])]
    return JsonApiResponse({"data": [record_doc(r) for r in rows],
                            "meta": {"after": page.next_cursor, "dataset_version": v}})


# -- experiments ---------------------------------------------------------------------------


@router.post(f"{UNSTABLE}/experiments")
async def create_experiment(request: Request) -> Response:
    (res,) = document_data(await json_body(request), EXPERIMENT_TYPES)
    attrs = attributes(res)
    metadata = optional(attrs, "metadata", object_value) or {}
    extras: dict[str, Any] = {"run_count": optional(attrs, "run_count", int32_value) or 1}
    parent = optional(attrs, "parent_experiment_id", id_value)
    if parent is not None:
        extras["parent_experiment_id"] = parent
    values = {
        "id": new_id("exp"),
        "name": name_value(attrs.get("name"), "/data/attributes/name"),
        "description": optional(attrs, "description", text_value) or "",
        "project_id": optional(attrs, "project_id", id_value),
        "dataset_id": optional(attrs, "dataset_id", id_value),
        # version 0 of a dataset is empty: ddtrace sends 0 when it does not know the
        # version (after a bulk upload), so 0 means the current one, as no version does
        "dataset_version": optional(attrs, "dataset_version", int32_value) or None,
        "feature_slug": None, "status": "PENDING",
        "config": optional(attrs, "config", object_value) or {},
        "metadata": {**metadata, "_dd": extras},
    }
    row = await run_in_threadpool(_store(request).create_experiment, values)
    return JsonApiResponse({"data": experiment_doc(row)})


@router.patch(f"{UNSTABLE}/experiments/{{experiment_id:id}}")
async def update_experiment(experiment_id: str, request: Request) -> Response:
    """``status`` (running / completed / failed / interrupted, any case) and ``error``."""
    experiment_id = path_id(experiment_id, "experiment_id")
    (res,) = document_data(await json_body(request), EXPERIMENT_TYPES)
    attrs = attributes(res)
    status = optional(attrs, "status", status_value)
    error = optional(attrs, "error", text_value)
    row = await run_in_threadpool(
        lambda: merge_experiment(_store(request), experiment_id, status=status,
                                 dd=None if error is None else {"error": error}))
    return JsonApiResponse({"data": experiment_doc(row)})


async def push_ddtrace_events(request: Request, experiment_id: str, body: Any) -> Response:
    """Store a ddtrace ``experiments`` events body (also called by our events endpoint,
    which takes both dialects)."""
    experiment_id = path_id(experiment_id, "experiment_id")
    counts = await run_in_threadpool(ingest_ddtrace_events, _store(request), experiment_id,
                                     body, _max_items(request))
    return JsonApiResponse({"data": resource("experiment_events", experiment_id, counts)}, 202)


@router.post(f"{UNSTABLE}/experiments/{{experiment_id:id}}/events", status_code=202)
async def push_events(experiment_id: str, request: Request) -> Response:
    return await push_ddtrace_events(request, experiment_id, await json_body(request))


@router.post(INTAKE, status_code=202)
async def span_intake(request: Request) -> Response:
    payload = await json_body(request)
    counts = await run_in_threadpool(ingest_intake, _store(request), payload,
                                     _max_items(request))
    return JsonApiResponse({"data": resource("llmobs_spans", "intake", counts)}, 202)


def _all_records(store: Store, experiment_id: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    cursor = 0
    while True:
        page = experiment_records(store, experiment_id, size=MAX_PAGE_SIZE, cursor=cursor)
        out.extend(page.rows)
        if page.next_cursor is None:
            return out
        cursor = decode_cursor(page.next_cursor)


async def _events_of(store: Store, experiment_id: str) -> Response:
    row = await run_in_threadpool(store.get_experiment, experiment_id)
    if row is None:
        raise ApiError(404, f"experiment {experiment_id!r} not found")
    records = await run_in_threadpool(_all_records, store, experiment_id)
    return JsonApiResponse(experiment_events(row, records))


@router.get(f"{UNSTABLE}/experiments/events")
async def events_by_name(request: Request,
                         project: str = Query(..., alias="filter[project_name]"),
                         name: str = Query(..., alias="filter[experiment_name]")) -> Response:
    """The latest experiment called ``name`` in the project called ``project``."""
    store = _store(request)
    projects = await run_in_threadpool(store.list_projects, MAX_PAGE_SIZE, 0)
    project_id = next((p["id"] for p in projects.rows if p["name"] == project), None)
    page = await run_in_threadpool(store.list_experiments,
                                   {"project_id": project_id or "", "name": name},
                                   MAX_PAGE_SIZE, 0)
    if not page.rows:
        raise ApiError(404, f"no experiment {name!r} in project {project!r}")
    return await _events_of(store, page.rows[-1]["id"])


@router.get(f"{UNSTABLE}/experiments/{{experiment_id:id}}/events")
async def pull_events(experiment_id: str, request: Request) -> Response:
    """Every record span with its ``eval_metrics``, and the ``summary_metrics``."""
    return await _events_of(_store(request), path_id(experiment_id, "experiment_id"))


@router.get(f"{UNSTABLE}/experiments")
async def list_experiments(
    request: Request,
    experiment_id: str | None = Query(None, alias="filter[id]"),
    name: str | None = Query(None, alias="filter[experiment]"),
    project_id: str | None = Query(None, alias="filter[project_id]"),
    dataset_id: str | None = Query(None, alias="filter[dataset_id]"),
    metadata: str | None = Query(None, alias="filter[metadata]"),
    deleted: str | None = Query(None, alias="filter[is_deleted]"),
    limit: int = Query(100, alias="page[limit]", ge=1, le=MAX_PAGE_SIZE),
    cursor: str | None = Query(None, alias="page[cursor]"),
) -> Response:
    """ddtrace's ``GET /api/v2/llm-obs/v1/experiments?filter[id]=...`` / ``?page[limit]=``
    (routed here by :class:`~.dispatch.DdtraceQueryDispatch`): newest first, ``meta.after``
    paging; ``filter[metadata]`` is JSON containment, ``filter[parent_experiment_id]``
    (repeatable) matches any; nothing is ever soft-deleted here."""
    filters = {column: path_id(value, f"filter[{column}]") for column, value in (
        ("id", experiment_id), ("project_id", project_id), ("dataset_id", dataset_id))
        if value is not None}
    if name is not None:
        filters["name"] = name
    wanted: Any = None
    if metadata is not None:
        try:
            wanted = json.loads(metadata)
        except ValueError:
            raise ApiError(400, "must be JSON", parameter="filter[metadata]") from None
    parents = set(request.query_params.getlist("filter[parent_experiment_id]"))
    if deleted is not None and deleted.lower() == "true":
        return JsonApiResponse({"data": [], "meta": {"after": None}})

    def keep(row: dict[str, Any]) -> bool:
        stored = loads(row["metadata"])
        if wanted is not None and not contains(stored, wanted):
            return False
        extras = stored.get(DD_KEY) if isinstance(stored, dict) else None
        parent = extras.get("parent_experiment_id") if isinstance(extras, dict) else None
        return not parents or parent in parents

    page = await run_in_threadpool(
        newest_experiments, _store(request), filters, limit, decode_cursor(cursor),
        keep if wanted is not None or parents else None)
    return JsonApiResponse({"data": [experiment_doc(r) for r in page.rows],
                            "meta": {"after": page.next_cursor}})


__all__ = ["INTAKE", "UNSTABLE", "V2", "push_ddtrace_events", "router"]
