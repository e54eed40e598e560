"""API-key authentication as a pure ASGI middleware (constant-time comparison)."""

from __future__ import annotations

import hmac
from collections.abc import Sequence

from starlette.types import ASGIApp, Receive, Scope, Send

from .jsonapi import ApiError, error_response

#: Paths served without a key: liveness and the API description.
PUBLIC_PATHS = frozenset({"/health", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})
#: The web UI (``/`` redirects into it) checks its own session cookie, made from an API key
#: at its login form (``server/ui/session.py``); API routes never accept that cookie.
UI_PATHS = frozenset({"/", "/ui"})
UI_PREFIX = "/ui/"


def key_matches(provided: bytes, keys: Sequence[bytes]) -> bool:
    """Compare against every configured key (no early exit) with ``hmac.compare_digest``."""
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(provided, key)
    return matched


class ApiKeyMiddleware:
    """Accepts ``Authorization: Bearer KEY``, ``DD-API-KEY: KEY`` or ``DD-APPLICATION-KEY: KEY``
    (ddtrace sends its two keys in the last two: either may hold one of ours)."""

    def __init__(self, app: ASGIApp, keys: Sequence[str]) -> None:
        self.app = app
        self.keys = [k.encode("utf-8") for k in keys]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"] if scope["type"] == "http" else ""
        if (scope["type"] != "http" or not self.keys or path in PUBLIC_PATHS or path in UI_PATHS
                or path.startswith(UI_PREFIX)):
            await self.app(scope, receive, send)
            return
        provided: list[bytes] = []
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, token = value.partition(b" ")
                if scheme.lower() == b"bearer" and token.strip():
                    provided.append(token.strip())
            elif name in (b"dd-api-key", b"dd-application-key"):
                provided.append(value.strip())
        if any(key_matches(p, self.keys) for p in provided):
            await self.app(scope, receive, send)
            return
        detail = "invalid API key" if provided else (
            "missing API key: send 'Authorization: Bearer KEY' or 'DD-API-KEY: KEY'")
        response = error_response([ApiError(401, detail)], 401)
        await response(scope, receive, send)


def host_name(header: bytes) -> str:
    """``example.com:8642`` / ``[::1]:8642`` -> ``example.com`` / ``::1`` (lower-cased)."""
    host = header.decode("latin-1").strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if host.count(":") == 1 else host


class HostCheckMiddleware:
    """Rejects requests whose ``Host`` is not one of ``hosts`` (DNS-rebinding guard)."""

    def __init__(self, app: ASGIApp, hosts: Sequence[str]) -> None:
        self.app = app
        self.hosts = frozenset(h.strip("[]").lower() for h in hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            host = next((v for k, v in scope["headers"] if k == b"host"), b"")
            if host_name(host) not in self.hosts:
                response = error_response([ApiError(
                    400, "Host header not allowed: this server only answers requests "
                    "addressed to its loopback address (configure an API key to serve others)")],
                    400)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
