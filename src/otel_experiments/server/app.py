"""FastAPI application factory: JSON:API routes over :class:`~.store.Store`."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from . import ddtrace
from .auth import ApiKeyMiddleware, HostCheckMiddleware
from .db import create_engine, current_revision, migrate
from .ingest import parse_events, schema_validator
from .jsonapi import (
    ApiError,
    ApiErrors,
    JsonApiResponse,
    error_response,
    media_type,
    parse_json,
    read_body,
    resource,
)
from .otlp import otlp_response, receive_otlp
from .parsing import (
    DATASET_TYPES,
    EXPERIMENT_TYPES,
    PROJECT_TYPES,
    RECORD_TYPES,
    optional,
    page_params,
    record_values,
    status_value,
)
from .render import (
    EXAMPLES,
    dataset_resource,
    experiment_resource,
    list_document,
    project_resource,
    record_resource,
    request_body,
)
from .routes import records as records_routes
from .settings import ServerSettings
from .store import Store, new_id
from .validation import (
    attributes,
    document_data,
    id_value,
    int32_value,
    name_value,
    object_value,
    path_id,
    text_value,
)

logger = logging.getLogger("otel_experiments.server")

#: Every JSON:API route lives under this prefix (the exporter's ``EVENTS_PATH`` is
#: ``API_PREFIX + EVENTS_ROUTE``; a test keeps the two in step).
API_PREFIX = "/api/v2/llm-obs/v1"
EVENTS_ROUTE = "/experiments/{experiment_id}/events"


def create_app(settings: ServerSettings | None = None) -> FastAPI:
    """Build the app: connect, migrate to the newest schema, register routes."""
    settings = settings or ServerSettings()
    engine = create_engine(settings.database_url)
    if settings.migrate:
        migrate(engine)
    revision = current_revision(engine)
    store = Store(engine)
    schema_validator()  # compile the events schema now, not on the first request

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        engine.dispose()

    app = FastAPI(
        title="otel-experiments server",
        version="1",
        description="Local experiments backend: JSON:API resources, events ingest, OTLP.",
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.store = store
    app.state.settings = settings

    async def body_json(request: Request) -> Any:
        # Requiring a JSON media type also keeps browsers' no-preflight cross-site form
        # posts (text/plain, form encodings) away from a local server without API keys.
        media = media_type(request.headers.get("content-type", ""))
        if media != "application/json" and not media.endswith("+json"):
            raise ApiError(415, f"Content-Type must be application/json or "
                           f"application/vnd.api+json, got {media or 'none'!r}")
        body = await read_body(request, settings.max_body_bytes, settings.max_decompressed_bytes)
        return parse_json(body)

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> Response:
        return error_response([exc], exc.status)

    @app.exception_handler(ApiErrors)
    async def _api_errors(_request: Request, exc: ApiErrors) -> Response:
        return error_response(exc.errors, exc.status)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> Response:
        errors = []
        for err in exc.errors():
            loc = [str(p) for p in err.get("loc", ())]
            name = loc[-1] if loc else "request"
            errors.append(ApiError(400, f"{name}: {err.get('msg', 'invalid')}", parameter=name))
        return error_response(errors or [ApiError(400, "invalid request")], 400)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> Response:
        return error_response([ApiError(exc.status_code, str(exc.detail))], exc.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> Response:
        logger.exception("unhandled error", exc_info=exc)
        return error_response([ApiError(500, "internal error; see the server log")], 500)

    @app.get("/health", tags=["server"])
    async def health() -> Response:
        try:
            await run_in_threadpool(store.ping)
        except Exception:
            logger.exception("health check failed")
            return error_response([ApiError(503, "database unavailable")], 503)
        return JsonApiResponse({"status": "ok", "database": engine.dialect.name,
                                "schema_revision": revision})

    api = APIRouter(prefix=API_PREFIX)

    # projects ---------------------------------------------------------------------------------

    @api.post("/projects", tags=["projects"], status_code=201,
              openapi_extra=request_body(EXAMPLES["project"]))
    async def create_project(request: Request) -> Response:
        (res,) = document_data(await body_json(request), PROJECT_TYPES)
        attrs = attributes(res)
        name = name_value(attrs.get("name"), "/data/attributes/name")
        description = optional(attrs, "description", text_value) or ""
        row, created = await run_in_threadpool(store.create_project, name, description)
        return JsonApiResponse({"data": project_resource(row)}, 201 if created else 200)

    @api.get("/projects", tags=["projects"])
    async def list_projects(
        request: Request,
        page_size: int | None = Query(None, alias="page[size]"),
        page_cursor: str | None = Query(None, alias="page[cursor]"),
    ) -> Response:
        size, cursor = page_params(page_size, page_cursor)
        page = await run_in_threadpool(store.list_projects, size, cursor)
        return JsonApiResponse(list_document(request, page, project_resource, size))

    @api.get("/projects/{project_id}", tags=["projects"])
    async def get_project(project_id: str) -> Response:
        row = await run_in_threadpool(store.get_project, path_id(project_id, "project_id"))
        if row is None:
            raise ApiError(404, f"project {project_id!r} not found")
        return JsonApiResponse({"data": project_resource(row)})

    # datasets ---------------------------------------------------------------------------------

    @api.post("/datasets", tags=["datasets"], status_code=201,
              openapi_extra=request_body(EXAMPLES["dataset"]))
    async def create_dataset(request: Request) -> Response:
        (res,) = document_data(await body_json(request), DATASET_TYPES)
        attrs = attributes(res)
        project_id = optional(attrs, "project_id", id_value)
        name = name_value(attrs.get("name"), "/data/attributes/name")
        description = optional(attrs, "description", text_value) or ""
        metadata = optional(attrs, "metadata", object_value) or {}
        row = await run_in_threadpool(store.create_dataset, project_id, name, description, metadata)
        row["record_count"] = 0
        return JsonApiResponse({"data": dataset_resource(row)}, 201)

    @api.get("/datasets", tags=["datasets"])
    async def list_datasets(
        request: Request,
        project_id: str | None = Query(None, alias="filter[project_id]"),
        page_size: int | None = Query(None, alias="page[size]"),
        page_cursor: str | None = Query(None, alias="page[cursor]"),
    ) -> Response:
        size, cursor = page_params(page_size, page_cursor)
        if project_id is not None:
            project_id = path_id(project_id, "filter[project_id]")
        page = await run_in_threadpool(store.list_datasets, project_id, size, cursor)
        return JsonApiResponse(list_document(request, page, dataset_resource, size))

    @api.get("/datasets/{dataset_id}", tags=["datasets"])
    async def get_dataset(dataset_id: str) -> Response:
        row = await run_in_threadpool(store.get_dataset, path_id(dataset_id, "dataset_id"))
        if row is None:
            raise ApiError(404, f"dataset {dataset_id!r} not found")
        return JsonApiResponse({"data": dataset_resource(row)})

    @api.post("/datasets/{dataset_id}/records", tags=["datasets"], status_code=201,
              openapi_extra=request_body(EXAMPLES["records"]))
    async def add_records(dataset_id: str, request: Request) -> Response:
        dataset_id = path_id(dataset_id, "dataset_id")
        doc = await body_json(request)
        items = document_data(doc, RECORD_TYPES, many=True)
        if len(items) > settings.max_items_per_request:
            raise ApiError(413, f"{len(items)} records; the limit is "
                           f"{settings.max_items_per_request}", "/data")
        single = not isinstance(doc["data"], list)
        records = [record_values(res, f"/data/{i}" if not single else "/data", partial=False)
                   for i, res in enumerate(items)]
        version, rows = await run_in_threadpool(store.add_records, dataset_id, records)
        data = [record_resource(r) for r in rows]
        return JsonApiResponse({"data": data[0] if single else data,
                                "meta": {"dataset_version": version}}, 201)

    @api.get("/datasets/{dataset_id}/records", tags=["datasets"])
    async def list_records(
        dataset_id: str,
        request: Request,
        version: int | None = Query(None, ge=0, le=2**31 - 1),
        page_size: int | None = Query(None, alias="page[size]"),
        page_cursor: str | None = Query(None, alias="page[cursor]"),
    ) -> Response:
        size, cursor = page_params(page_size, page_cursor)
        v, page = await run_in_threadpool(
            store.list_records, path_id(dataset_id, "dataset_id"), version, size, cursor)
        return JsonApiResponse(list_document(request, page, record_resource, size,
                                             {"dataset_version": v}))

    @api.patch("/datasets/{dataset_id}/records/{record_id}", tags=["datasets"],
               openapi_extra=request_body(EXAMPLES["record_update"]))
    async def update_record(dataset_id: str, record_id: str, request: Request) -> Response:
        dataset_id = path_id(dataset_id, "dataset_id")
        record_id = path_id(record_id, "record_id")
        (res,) = document_data(await body_json(request), RECORD_TYPES)
        changes = record_values(res, "/data", partial=True)
        if not changes:
            raise ApiError(400, "nothing to update: give input, expected_output, metadata or tags",
                           "/data/attributes")
        version, row = await run_in_threadpool(store.update_record, dataset_id, record_id, changes)
        return JsonApiResponse({"data": record_resource(row), "meta": {"dataset_version": version}})

    @api.delete("/datasets/{dataset_id}/records/{record_id}", tags=["datasets"])
    async def delete_record(dataset_id: str, record_id: str) -> Response:
        version = await run_in_threadpool(
            store.delete_record, path_id(dataset_id, "dataset_id"), path_id(record_id, "record_id"))
        return JsonApiResponse({"meta": {"dataset_version": version, "deleted": record_id}})

    # experiments ------------------------------------------------------------------------------

    @api.post("/experiments", tags=["experiments"], status_code=201,
              openapi_extra=request_body(EXAMPLES["experiment"]))
    async def create_experiment(request: Request) -> Response:
        (res,) = document_data(await body_json(request), EXPERIMENT_TYPES)
        attrs = attributes(res)
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
        row = await run_in_threadpool(store.create_experiment, values)
        return JsonApiResponse({"data": experiment_resource(row)}, 201)

    @api.get("/experiments", tags=["experiments"])
    async def list_experiments(
        request: Request,
        project_id: str | None = Query(None, alias="filter[project_id]"),
        feature_slug: str | None = Query(None, alias="filter[feature_slug]"),
        status: str | None = Query(None, alias="filter[status]"),
        dataset_id: str | None = Query(None, alias="filter[dataset_id]"),
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
        page = await run_in_threadpool(store.list_experiments, filters, size, cursor)
        return JsonApiResponse(list_document(request, page, experiment_resource, size))

    @api.get("/experiments/{experiment_id}", tags=["experiments"])
    async def get_experiment(experiment_id: str) -> Response:
        row = await run_in_threadpool(store.get_experiment,
                                      path_id(experiment_id, "experiment_id"))
        if row is None:
            raise ApiError(404, f"experiment {experiment_id!r} not found")
        return JsonApiResponse({"data": experiment_resource(row)})

    @api.patch("/experiments/{experiment_id}", tags=["experiments"],
               openapi_extra=request_body(EXAMPLES["experiment_update"]))
    async def update_experiment(experiment_id: str, request: Request) -> Response:
        experiment_id = path_id(experiment_id, "experiment_id")
        (res,) = document_data(await body_json(request), EXPERIMENT_TYPES)
        attrs = attributes(res)
        checks: dict[str, Callable[[Any, str], Any]] = {
            "name": name_value, "description": text_value, "status": status_value,
            "feature_slug": id_value, "config": object_value, "metadata": object_value,
        }
        changes = {key: optional(attrs, key, check) for key, check in checks.items()
                   if attrs.get(key) is not None}
        if not changes:
            row = await run_in_threadpool(store.get_experiment, experiment_id)
            if row is None:
                raise ApiError(404, f"experiment {experiment_id!r} not found")
        else:
            row = await run_in_threadpool(store.update_experiment, experiment_id, changes)
        return JsonApiResponse({"data": experiment_resource(row)})

    # events -----------------------------------------------------------------------------------

    @api.post(EVENTS_ROUTE, tags=["events"], status_code=202,
              openapi_extra=request_body(EXAMPLES["events"], ("application/json",)))
    async def push_events(experiment_id: str, request: Request) -> Response:
        experiment_id = path_id(experiment_id, "experiment_id")
        body = await body_json(request)
        if ddtrace.dialects.is_ddtrace_events(body):  # ddtrace's dialect: its own handler
            return await ddtrace.push_ddtrace_events(request, experiment_id, body)

        def work() -> Any:
            span_rows, metric_rows = parse_events(body, settings.max_items_per_request)
            return store.ingest(experiment_id, span_rows, metric_rows)

        result = await run_in_threadpool(work)
        return JsonApiResponse({"data": resource("experiment_events", experiment_id, {
            "accepted_spans": result.accepted_spans,
            "duplicate_spans": result.duplicate_spans,
            "accepted_metrics": result.accepted_metrics,
            "duplicate_metrics": result.duplicate_metrics,
            "experiment_created": result.experiment_created,
        })}, 202)

    @api.get(EVENTS_ROUTE, tags=["events"])
    async def list_events(
        experiment_id: str,
        request: Request,
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
            if status.lower() not in ("ok", "error"):
                raise ApiError(400, "must be 'ok' or 'error'", parameter="filter[status]")
            filters["status"] = status.lower()
        page = await run_in_threadpool(store.list_events, experiment_id, filters, size, cursor)
        return JsonApiResponse(list_document(
            request, page, lambda r: resource("spans", r["span_id"], r["doc"]), size))

    @api.get("/experiments/{experiment_id}/summary", tags=["events"])
    async def summary(experiment_id: str) -> Response:
        experiment_id = path_id(experiment_id, "experiment_id")
        attrs = await run_in_threadpool(store.summary, experiment_id)
        return JsonApiResponse({"data": resource("experiment_summaries", experiment_id, attrs)})

    app.include_router(api)
    app.include_router(records_routes.router, prefix=API_PREFIX)
    app.include_router(ddtrace.router)  # ddtrace's own paths (server/ddtrace/)

    # OTLP -------------------------------------------------------------------------------------

    @app.post("/v1/traces", tags=["otlp"], openapi_extra={"requestBody": {"required": True, "content": {
        "application/x-protobuf": {"schema": {"type": "string", "format": "binary"}},
        "application/json": {"schema": {"type": "object"}}}}})
    async def otlp_traces(request: Request) -> Response:
        body = await read_body(request, settings.max_body_bytes, settings.max_decompressed_bytes)
        content_type = request.headers.get("content-type", "application/x-protobuf")
        result = await run_in_threadpool(
            receive_otlp, store, body, content_type, settings.max_items_per_request)
        return otlp_response(result, content_type)

    app.add_middleware(ddtrace.DdtraceQueryDispatch)
    if settings.api_keys:
        app.add_middleware(ApiKeyMiddleware, keys=settings.api_keys)
    if settings.allowed_hosts is not None:
        app.add_middleware(HostCheckMiddleware, hosts=settings.allowed_hosts)
    return app


__all__ = ["API_PREFIX", "EVENTS_ROUTE", "create_app"]
