"""UI sessions: a cookie minted from an API key, and the same-origin rule for form posts.

The cookie never holds the key. It holds ``v1.<issued>.<mac>`` where ``mac`` is
HMAC-SHA256 over the issue time keyed by the API key the user typed, so

* every replica configured with the same keys accepts it (no server-side session table);
* removing a key from the server ends every session made from it;
* it expires :data:`SESSION_SECONDS` after login.

Cross-site requests: the cookie is ``SameSite=Strict`` (a page on another site cannot make
the browser send it) and every form ``POST`` must come from a page of this server
(:func:`same_origin`), so no other site can log a browser in or out either.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Sequence

from starlette.requests import Request

from ..auth import key_matches

COOKIE_NAME = "otel_experiments_ui"
SESSION_SECONDS = 12 * 3600
_PURPOSE = b"otel-experiments-ui-session:"


def _mac(key: bytes, issued: int) -> str:
    return hmac.new(key, _PURPOSE + str(issued).encode(), hashlib.sha256).hexdigest()


def login(provided: str, keys: Sequence[str], now: float | None = None) -> str | None:
    """The cookie value for a correct key, ``None`` for a wrong one."""
    raw = provided.strip().encode("utf-8")
    encoded = [k.encode("utf-8") for k in keys]
    if not raw or not key_matches(raw, encoded):
        return None
    issued = int(time.time() if now is None else now)
    return f"v1.{issued}.{_mac(raw, issued)}"


def valid(cookie: str | None, keys: Sequence[str], now: float | None = None) -> bool:
    """True when ``cookie`` was minted from one of ``keys`` and has not expired."""
    if not cookie or not keys:
        return False
    version, _, rest = cookie.partition(".")
    issued_text, _, mac = rest.partition(".")
    if version != "v1" or not issued_text.isdigit() or len(issued_text) > 12:
        return False
    issued = int(issued_text)
    age = (time.time() if now is None else now) - issued
    if not -60 <= age <= SESSION_SECONDS:  # a minute of clock skew between replicas
        return False
    matched = False
    for key in keys:  # no early exit: timing does not tell which key (or whether any) matched
        matched |= hmac.compare_digest(_mac(key.encode("utf-8"), issued).encode(), mac.encode())
    return matched


def own_origin(request: Request) -> str:
    """``scheme://host[:port]`` of this request as the browser addressed it."""
    host = request.headers.get("host", "")
    return f"{request.url.scheme}://{host}".lower()


def same_origin(request: Request) -> bool:
    """A form post is accepted only from a page of this server.

    Browsers send ``Origin`` on every ``POST``; it must equal this request's own origin
    (the Host check in :mod:`..auth` already refuses foreign Host names). Without
    ``Origin`` (an old browser, or not a browser at all), ``Sec-Fetch-Site`` must not say
    ``cross-site``/``same-site``; a request with neither header is not from a browser, and
    only a browser carries another site's intent.
    """
    origin = request.headers.get("origin")
    if origin is not None:
        return origin.lower() == own_origin(request)
    fetch_site = request.headers.get("sec-fetch-site")
    return fetch_site is None or fetch_site in ("same-origin", "none")


def safe_next(target: str | None, base: str) -> str:
    """Where to go after login: a path of the UI only (never another site)."""
    if target and target.startswith(base + "/") and not target.startswith("//") \
            and "\\" not in target and "\n" not in target and "\r" not in target:
        return target
    return base + "/"
