"""``POST /v1/traces``: the OTLP/HTTP trace receiver."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from .. import _openapi as doc
from ..jsonapi import ApiError, JsonApiResponse, media_type, read_body
from ..otlp import JSON_TYPE, PROTOBUF_TYPES, otlp_response, receive_otlp
from ._common import settings_of, store_of

router = APIRouter(tags=["otlp"], default_response_class=JsonApiResponse)


@router.post("/v1/traces", responses=doc.otlp_responses(), openapi_extra=doc.otlp_request_body(),
             description="OTLP/HTTP traces. The answer is in the request's encoding; "
                         "refused requests get a JSON:API error document.")
async def otlp_traces(request: Request) -> Response:
    content_type = request.headers.get("content-type", "")
    media = media_type(content_type)
    # No default encoding: a request without a Content-Type is one a browser may send
    # cross-site without a CORS preflight, so it must never be decoded and stored.
    if media not in PROTOBUF_TYPES and media != JSON_TYPE:
        raise ApiError(415, f"unsupported Content-Type {media or 'none'!r}; use "
                       "application/x-protobuf or application/json")
    settings = settings_of(request)
    body = await read_body(request, settings.max_body_bytes, settings.max_decompressed_bytes)
    result = await run_in_threadpool(receive_otlp, store_of(request), body, content_type,
                                     settings.max_items_per_request)
    return otlp_response(result, content_type)
