"""FastAPI application factory: settings, store lifecycle, error handlers, routers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from starlette.middleware.cors import CORSMiddleware

from . import _openapi, ddtrace
from ._errors import install_error_handlers
from .auth import ApiKeyMiddleware, HostCheckMiddleware
from .db import create_engine, current_revision, migrate
from .ingest import schema_validator
from .paths import EncodedSlashes
from .routes import (
    compare,
    datasets,
    events,
    experiments,
    from_spans,
    health,
    otlp,
    projects,
    records,
)
from .routes._common import API_PREFIX, EVENTS_ROUTE, strict_query
from .settings import ServerSettings
from .store import Store
from .ui import install as install_ui


def create_app(settings: ServerSettings | None = None) -> FastAPI:
    """Build the app: connect, migrate to the newest schema, register routes."""
    settings = settings or ServerSettings()
    engine = create_engine(settings.database_url)
    if settings.migrate:
        migrate(engine)
    schema_validator()  # compile the events schema now, not on the first request

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        store.close()

    app = FastAPI(
        title="otel-experiments server",
        version="1",
        description="Local experiments backend: JSON:API resources, events ingest, OTLP.",
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.store = store = Store(engine)
    app.state.settings = settings
    app.state.schema_revision = current_revision(engine)
    install_error_handlers(app)

    strict = [Depends(strict_query)]  # an unknown query parameter is a 400, not ignored
    # First: routes are tried in order, and the exporter's POSTs are most of the requests
    # (no other route's path can take an events or summary path: ids are one segment).
    app.include_router(events.ingest_router, prefix=API_PREFIX)  # (calls strict_query)
    app.include_router(events.router, prefix=API_PREFIX, dependencies=strict)
    app.include_router(health.router)
    app.include_router(projects.router, prefix=API_PREFIX, dependencies=strict)
    app.include_router(datasets.router, prefix=API_PREFIX, dependencies=strict)
    # before the experiment routes: /experiments/compare is not an experiment id
    app.include_router(compare.router, prefix=API_PREFIX, dependencies=strict)
    app.include_router(from_spans.router, prefix=API_PREFIX, dependencies=strict)
    app.include_router(experiments.router, prefix=API_PREFIX, dependencies=strict)
    app.include_router(records.router, prefix=API_PREFIX, dependencies=strict)
    app.include_router(otlp.router)
    app.include_router(ddtrace.router)  # ddtrace's own paths (server/ddtrace/)
    install_ui(app)

    _openapi.install(app, settings)
    app.add_middleware(EncodedSlashes)  # innermost: ids with a slash route as one segment
    app.add_middleware(ddtrace.DdtraceQueryDispatch)  # after auth, like routing
    # Added last = outermost: the Host check runs first, and a CORS preflight (which
    # carries no API key) is answered before the key check.
    if settings.api_keys:
        app.add_middleware(ApiKeyMiddleware, keys=settings.api_keys)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins),
                           allow_methods=["GET", "POST", "PATCH", "DELETE"],
                           allow_headers=["Authorization", "Content-Type", "Content-Encoding",
                                          "DD-API-KEY", "DD-APPLICATION-KEY"],
                           expose_headers=list(_openapi.OTLP_COUNT_HEADERS))
    if settings.allowed_hosts is not None:
        app.add_middleware(HostCheckMiddleware, hosts=settings.allowed_hosts)
    return app


__all__ = ["API_PREFIX", "EVENTS_ROUTE", "create_app"]
