"""Exception handlers: every refusal is a JSON:API error document, never a traceback."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match

from .jsonapi import ApiError, ApiErrors, error_response

logger = logging.getLogger("otel_experiments.server")


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves on this path.

    Starlette answers 405 from the first route whose path matches, so its ``Allow`` names
    only that route's methods; a path served by several routes needs them all.
    """
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches({**request.scope, "method": "GET"})
        route_methods = getattr(route, "methods", None)
        if match is not Match.NONE and route_methods:
            methods |= set(route_methods)
    return sorted(methods)


async def _api_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response([exc], exc.status)


async def _api_errors(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiErrors)
    return error_response(exc.errors, exc.status)


async def _validation_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())]
        name = loc[-1] if loc else "request"
        errors.append(ApiError(400, f"{name}: {err.get('msg', 'invalid')}", parameter=name))
    return error_response(errors or [ApiError(400, "invalid request")], 400)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    response = error_response([ApiError(exc.status_code, str(exc.detail))], exc.status_code)
    if exc.status_code == 405:
        response.headers["Allow"] = ", ".join(_allowed_methods(request))
    return response


async def _unexpected(_request: Request, exc: Exception) -> Response:
    logger.exception("unhandled error", exc_info=exc)
    return error_response([ApiError(500, "internal error; see the server log")], 500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(ApiErrors, _api_errors)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
