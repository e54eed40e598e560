"""API-key authentication as a pure ASGI middleware (constant-time comparison)."""

from __future__ import annotations

import hmac
from collections.abc import Sequence

from starlette.types import ASGIApp, Receive, Scope, Send

from .jsonapi import ApiError, error_response

#: Paths served without a key: liveness and the API description.
PUBLIC_PATHS = frozenset({"/health", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})


def key_matches(provided: bytes, keys: Sequence[bytes]) -> bool:
    """Compare against every configured key (no early exit) with ``hmac.compare_digest``."""
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(provided, key)
    return matched


class ApiKeyMiddleware:
    """Accepts ``Authorization: Bearer KEY`` or ``DD-API-KEY: KEY``."""

    def __init__(self, app: ASGIApp, keys: Sequence[str]) -> None:
        self.app = app
        self.keys = [k.encode("utf-8") for k in keys]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.keys or scope["path"] in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        provided: list[bytes] = []
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, token = value.partition(b" ")
                if scheme.lower() == b"bearer" and token.strip():
                    provided.append(token.strip())
            elif name == b"dd-api-key":
                provided.append(value.strip())
        if any(key_matches(p, self.keys) for p in provided):
            await self.app(scope, receive, send)
            return
        detail = "invalid API key" if provided else (
            "missing API key: send 'Authorization: Bearer KEY' or 'DD-API-KEY: KEY'")
        response = error_response([ApiError(401, detail)], 401)
        await response(scope, receive, send)
