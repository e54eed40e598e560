"""``/openapi.json`` as the contract: what each operation accepts, answers and refuses.

FastAPI derives operations and parameters from the routers. The routes read raw JSON:API
bodies (so every refusal names its field), so FastAPI knows neither their request nor their
response shapes; the routers declare them through :func:`responses` and
:func:`request_body`, and :func:`install` replaces what FastAPI would publish but the
server never does: the 422 answers, loose parameter schemas, ``application/json``.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from ..models import MAX_NAME_LENGTH
from ._schemas import INT32_MAX, JsonSchema, component_schemas, ref
from .jsonapi import _TITLES
from .otlp import COUNT_HEADERS
from .parsing import CURSOR_PATTERN
from .settings import ServerSettings
from .store import GROUP_COLUMNS, MAX_PAGE_SIZE
from .where import CONDITION_PATTERN, MAX_CONDITION_CHARS, MAX_CONDITIONS

JSONAPI = "application/vnd.api+json"
#: Request media types the JSON routes document (any ``+json`` type is accepted too).
JSON_REQUEST_TYPES = ("application/json", JSONAPI)
SPAN_STATUSES = ("ok", "error")
OTLP_COUNT_HEADERS = tuple(COUNT_HEADERS)


def _error(status: int) -> dict[str, Any]:
    return {"description": _TITLES.get(status, "Error"),
            "content": {JSONAPI: {"schema": ref("ErrorDocument")}}}


def responses(success: dict[int, str], *errors: int) -> dict[int | str, Any]:
    """Answers of an operation: success status -> component name, then error statuses."""
    out: dict[int | str, Any] = {
        status: {"description": "OK" if status == 200 else "Created" if status == 201
                 else "Accepted", "content": {JSONAPI: {"schema": ref(name)}}}
        for status, name in success.items()}
    out.update({status: _error(status) for status in errors})
    return out


def request_body(component: str, example: Any) -> dict[str, Any]:
    """``openapi_extra`` of a route that reads a JSON:API body."""
    return {"requestBody": {"required": True, "content": {
        media: {"schema": ref(component), "example": example} for media in JSON_REQUEST_TYPES}}}


def otlp_request_body() -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {
        "application/x-protobuf": {"schema": {
            "type": "string", "format": "binary",
            "description": "opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest"}},
        "application/json": {"schema": {
            "type": "object", "description": "OTLP/JSON ExportTraceServiceRequest (hex ids)"}},
    }}}


def otlp_responses() -> dict[int | str, Any]:
    headers = {name: {"required": True, "schema": {"type": "integer", "minimum": 0}}
               for name in OTLP_COUNT_HEADERS}
    ok = {"description": "Stored; spans that could not be are counted in partial_success.",
          "headers": headers, "content": {
              "application/x-protobuf": {"schema": {
                  "type": "string", "format": "binary",
                  "description": "ExportTraceServiceResponse, when the request was protobuf"}},
              "application/json": {"schema": {
                  "type": "object", "description": "ExportTraceServiceResponse, when the "
                  "request was JSON", "properties": {"partialSuccess": {"type": "object"}}}}}}
    return {200: ok, **{status: _error(status) for status in (400, 413, 415)}}


def _parameter_schemas() -> dict[str, JsonSchema]:
    return {
        "page[size]": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE},
        "page[cursor]": {"type": "string", "pattern": CURSOR_PATTERN,
                         "description": "meta.page.next_cursor of the previous page"},
        "version": {"type": "integer", "minimum": 0, "maximum": INT32_MAX},
        "filter[status]": ref("Status"),
        "filter[name]": {"type": "string", "minLength": 1, "maxLength": MAX_NAME_LENGTH},
        "filter[start_after]": _TIME,
        "filter[start_before]": _TIME,
        "group_by": {"enum": list(GROUP_COLUMNS)},
        "filter[where]": {"type": "array", "maxItems": MAX_CONDITIONS, "items": {
            "type": "string", "pattern": CONDITION_PATTERN, "maxLength": MAX_CONDITION_CHARS}},
        "confidence": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1,
                       "default": 0.95},
    }


#: A time filter: nanoseconds since the epoch (up to 19 digits) or an RFC 3339 date-time.
_TIME: JsonSchema = {"anyOf": [{"type": "string", "pattern": "^[0-9]{1,19}$"},
                               {"type": "string", "format": "date-time"}]}


def _events_status() -> JsonSchema:
    from ._patterns import any_case_pattern

    return {"type": "string", "pattern": any_case_pattern(SPAN_STATUSES)}


def build(app: FastAPI, settings: ServerSettings) -> dict[str, Any]:
    spec = get_openapi(title=app.title, version=app.version, description=app.description,
                       routes=app.routes)
    params = _parameter_schemas()
    for path, item in spec["paths"].items():
        for operation in item.values():
            operation["responses"].pop("422", None)
            for param in operation.get("parameters", []):
                name = param["name"]
                # Experiments have their statuses; spans (and record spans) ok / error.
                if name == "filter[status]" and not path.endswith("/experiments"):
                    param["schema"] = _events_status()
                else:
                    param["schema"] = params.get(name, ref("Id"))
            answers = operation["responses"]
            for answer in answers.values():
                for media in answer.get("content", {}).values():
                    # FastAPI merges its own guess ({"type": "string"}) into declared schemas.
                    if "$ref" in media.get("schema", {}):
                        media["schema"] = {"$ref": media["schema"]["$ref"]}
            if settings.allowed_hosts is not None:
                answers.setdefault("400", _error(400))
            if settings.api_keys and path != "/health":
                answers["401"] = {**_error(401), "headers": {"WWW-Authenticate": {
                    "required": True, "schema": {"type": "string"}}}}
            elif settings.api_keys:
                operation["security"] = []
            operation["responses"] = dict(sorted(answers.items()))
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    for generated in ("HTTPValidationError", "ValidationError"):
        schemas.pop(generated, None)
    schemas.update(component_schemas(settings.max_items_per_request))
    if settings.api_keys:
        spec["components"]["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer"},
            "ddApiKey": {"type": "apiKey", "in": "header", "name": "DD-API-KEY"},
        }
        spec["security"] = [{"bearer": []}, {"ddApiKey": []}]
    return spec


def install(app: FastAPI, settings: ServerSettings) -> None:
    """Serve :func:`build`'s document at ``/openapi.json`` (built on first request)."""
    cache: list[dict[str, Any]] = []

    def openapi() -> dict[str, Any]:
        if not cache:
            cache.append(build(app, settings))
        return cache[0]

    app.openapi = openapi  # type: ignore[method-assign]
