"""``GET /health``: liveness, the database dialect and schema revision."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from .. import _openapi as doc
from ..jsonapi import ApiError, JsonApiResponse, error_response
from ._common import store_of

logger = logging.getLogger("otel_experiments.server")

router = APIRouter(tags=["server"], default_response_class=JsonApiResponse)


@router.get("/health", responses=doc.responses({200: "Health"}, 503))
async def health(request: Request) -> Response:
    store = store_of(request)
    try:
        await run_in_threadpool(store.ping)
    except Exception:
        logger.exception("health check failed")
        return error_response([ApiError(503, "database unavailable")], 503)
    return JsonApiResponse({"status": "ok", "database": store.engine.dialect.name,
                            "schema_revision": request.app.state.schema_revision})
