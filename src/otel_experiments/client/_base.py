"""What the sync and async clients share: settings, request building, retries, errors.

Each API call is described once as a :class:`Call` (method, path, parameters, body,
whether it is safe to repeat, how to read the answer); :class:`~._sync.ExperimentsClient`
and :class:`~._async.AsyncExperimentsClient` only differ in how they send it, as httpx's
``Client`` and ``AsyncClient`` share ``BaseClient``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Generic, TypeVar

import httpx

from ..export.rules import parse_retry_after as _retry_after_seconds
from ..settings import ExporterSettings
from .errors import APIError, error_for

T = TypeVar("T")

#: Every JSON:API resource lives under this prefix (the server's ``API_PREFIX``).
API_PREFIX = "/api/v2/llm-obs/v1"
DEFAULT_MAX_RETRIES = 2
_RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
_BACKOFF_BASE_S = 0.25
_BACKOFF_CAP_S = 8.0
_RETRY_AFTER_CAP_S = 60.0


def exporter_settings(**kwargs: Any) -> ExporterSettings:
    """The exporter's settings: the same arguments > ``OTEL_EXPERIMENTS_*`` > defaults."""
    return ExporterSettings.resolve(**kwargs)


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("otel-experiments")
    except Exception:
        return "0"


@dataclass(frozen=True)
class Call(Generic[T]):
    """One API request and how to read its answer (``parse`` gets the decoded body)."""

    method: str
    path: str
    parse: Callable[[Any], T]
    #: a list value is sent as the parameter repeated (``filter[where]``)
    params: Mapping[str, str | int | list[str]] = field(default_factory=dict)
    json: Any = None
    #: safe to send twice (GETs, DELETEs and writes keyed by a client-chosen id)
    idempotent: bool = False

    def with_params(self, **params: str | int) -> Call[T]:
        return replace(self, params={**self.params, **params})


def page_of(parse_item: Callable[[Any], T]) -> Callable[[Any], tuple[list[T], str | None]]:
    """Parse a JSON:API list document: ``(items, next cursor)``."""

    def parse(doc: Any) -> tuple[list[T], str | None]:
        items = [parse_item(r) for r in doc.get("data") or []]
        page = (doc.get("meta") or {}).get("page") or {}
        cursor = page.get("next_cursor")
        return items, cursor if isinstance(cursor, str) and cursor else None

    return parse


def data_of(parse_item: Callable[[Any], T]) -> Callable[[Any], T]:
    return lambda doc: parse_item(doc["data"])


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds (the exporter's rule), capped for an interactive client."""
    seconds = _retry_after_seconds(value)
    return None if seconds is None else min(seconds, _RETRY_AFTER_CAP_S)


def _detail(error: Mapping[str, Any]) -> str:
    """``"pointer: detail"``: the server's message and the field it is about."""
    detail = str(error.get("detail") or error.get("title") or "")
    source = error.get("source")
    if isinstance(source, Mapping):
        where = source.get("pointer") or source.get("parameter")
        if where:
            return f"{where}: {detail}"
    return detail


class BaseClient:
    """Settings and the request/response logic the two clients share."""

    def __init__(self, *, api_key: str | None = None, endpoint: str | None = None,
                 headers: Mapping[str, str] | None = None, timeout: float | None = None,
                 max_retries: int = DEFAULT_MAX_RETRIES) -> None:
        settings = exporter_settings(endpoint=endpoint, api_key=api_key, headers=headers,
                                     timeout=timeout)
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(f"max_retries must be an int >= 0, got {max_retries!r}")
        #: the resolved settings (shared with the exporter a run configures)
        self.settings: ExporterSettings = settings
        self.endpoint: str = settings.endpoint
        self.timeout: float = settings.timeout
        self.max_retries = max_retries
        self._api_key: str | None = settings.api_key
        #: the caller's own headers (``headers=`` / ``OTEL_EXPERIMENTS_HEADERS``)
        self.extra_headers: dict[str, str] = dict(settings.headers)
        self._headers = {"Accept": "application/vnd.api+json, application/json",
                         "User-Agent": f"otel-experiments-client/{_version()}",
                         **dict(settings.headers)}
        if self._api_key:
            self._headers["Authorization"] = f"Bearer {self._api_key}"

    @property
    def api_key(self) -> str | None:
        return self._api_key

    def __repr__(self) -> str:
        key = "<redacted>" if self._api_key else None
        return f"{type(self).__name__}(endpoint={self.endpoint!r}, api_key={key})"

    def _url(self, path: str) -> str:
        return f"{self.endpoint}{API_PREFIX}{path}"

    def _client_options(self) -> dict[str, Any]:
        return {"headers": self._headers, "timeout": self.timeout}

    def _build(self, client: httpx.Client | httpx.AsyncClient, call: Call[Any]) -> httpx.Request:
        return client.build_request(call.method, self._url(call.path),
                                    params={k: v if isinstance(v, list) else str(v)
                                            for k, v in call.params.items()},
                                    json=call.json, headers=self._headers)

    def _retry_delay(self, call: Call[Any], attempt: int,
                     response: httpx.Response | None) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or ``None``: do not retry."""
        if attempt >= self.max_retries:
            return None
        if response is not None:
            if response.status_code not in _RETRY_STATUSES:
                return None
            # 429 means "not processed": safe to repeat even when not idempotent.
            if response.status_code != 429 and not call.idempotent:
                return None
            hint = parse_retry_after(response.headers.get("retry-after"))
            if hint is not None:
                return hint
        elif not call.idempotent:
            return None
        backoff: float = min(_BACKOFF_CAP_S, _BACKOFF_BASE_S * 2 ** attempt)
        return backoff * (0.5 + random.random() / 2)  # jitter: spread retrying clients

    @staticmethod
    def _error(call: Call[Any], request: httpx.Request, response: httpx.Response) -> APIError:
        errors: list[dict[str, Any]] = []
        message = response.reason_phrase or "error"
        try:
            body = response.json()
        except ValueError:
            text = response.text.strip()
            if text:
                message = text[:500]
        else:
            if isinstance(body, dict) and isinstance(body.get("errors"), list):
                errors = [e for e in body["errors"] if isinstance(e, dict)]
                details = [_detail(e) for e in errors]
                message = "; ".join(d for d in details if d) or message
        return error_for(response.status_code, message, errors,
                         retry_after=parse_retry_after(response.headers.get("retry-after")),
                         method=call.method, url=str(request.url))

    def _parse(self, call: Call[T], request: httpx.Request, response: httpx.Response) -> T:
        if response.status_code >= 400:
            raise self._error(call, request, response)
        if response.status_code == 204 or not response.content:
            return call.parse(None)
        try:
            body = response.json()
        except ValueError:
            raise APIError(response.status_code, "the server's answer is not JSON",
                           method=call.method, url=str(request.url)) from None
        return call.parse(body)


__all__ = ["API_PREFIX", "BaseClient", "Call", "data_of", "exporter_settings", "page_of",
           "parse_retry_after"]
