"""What every router shares: the store and settings of the app, JSON bodies, paging."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from starlette.requests import Request

from ..jsonapi import ApiError, media_type, parse_json, read_body
from ..paths import IdConvertor  # noqa: F401  (registers the "id" convertor before any route)
from ..settings import ServerSettings
from ..store import Store
from ..validation import INT64_MAX

#: Every JSON:API route lives under this prefix (the exporter's ``EVENTS_PATH`` is
#: ``API_PREFIX + EVENTS_ROUTE``; a test keeps the two in step).
API_PREFIX = "/api/v2/llm-obs/v1"
EVENTS_ROUTE = "/experiments/{experiment_id}/events"
#: ``EVENTS_ROUTE`` as routed: the id may hold a slash (``paths.IdConvertor``)
EVENTS_ROUTE_ID = "/experiments/{experiment_id:id}/events"


def store_of(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def settings_of(request: Request) -> ServerSettings:
    settings: ServerSettings = request.app.state.settings
    return settings


def is_json_media(media: str) -> bool:
    return media == "application/json" or media.endswith("+json")


def require_json_media(request: Request) -> None:
    """415 unless the request says its body is JSON."""
    media = media_type(request.headers.get("content-type", ""))
    if not is_json_media(media):
        raise ApiError(415, f"Content-Type must be application/json or "
                       f"application/vnd.api+json, got {media or 'none'!r}")


async def json_body(request: Request) -> Any:
    """The decoded JSON body; 415 unless the request says it is JSON.

    Requiring a JSON media type keeps browsers' no-preflight cross-site requests (no
    Content-Type, text/plain, form encodings) away from a local server without API keys.
    """
    require_json_media(request)
    settings = settings_of(request)
    body = await read_body(request, settings.max_body_bytes, settings.max_decompressed_bytes)
    return parse_json(body)


def whole_number(value: object) -> object:
    """``5.0`` as ``5``, anything else as it is.

    JSON Schema, and so the published contract, calls every number without a fraction an
    integer, while the checks downstream take only ints.
    """
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


async def strict_query(request: Request) -> None:
    """400 for a query parameter the route does not take: a typo must not look like a filter.

    Every API router depends on this; the route's declared query parameters (their
    aliases, e.g. ``filter[user_id]``) are the ones allowed.
    """
    if not request.scope.get("query_string"):  # most requests (the exporter's POSTs)
        return
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    allowed: set[str] = set()
    pending = [dependant]
    while pending:  # the route's own query parameters and those of its dependencies
        current = pending.pop()
        allowed.update(param.alias for param in current.query_params)
        pending.extend(current.dependencies)
    for name in request.query_params:
        if name not in allowed:
            known = ", ".join(sorted(allowed)) or "none"
            raise ApiError(400, f"unknown query parameter {name!r} (this endpoint takes: "
                           f"{known})", parameter=name)


def time_ns(value: str | None, name: str) -> int | None:
    """A time filter: integer nanoseconds since the epoch, or an ISO 8601 date-time."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit() and len(text) <= 19:
        ns = int(text)
    else:
        try:
            when = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise ApiError(400, "must be nanoseconds since the epoch or an ISO 8601 date-time, "
                           f"got {value[:40]!r}", parameter=name) from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        ns = int(when.timestamp() * 1_000_000_000)
    # Span start times are stored as 0..2**63-1: a bound outside that selects the same spans
    # as the nearest end of it, and fits the column (year 1 or 9999 must not be a 500).
    return min(max(ns, 0), INT64_MAX)
