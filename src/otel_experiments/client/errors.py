"""Typed errors of the experiments client (one base class to catch them all)."""

from __future__ import annotations

from typing import Any


class ExperimentsError(Exception):
    """Base class of every error the client raises."""


class APIConnectionError(ExperimentsError):
    """The server could not be reached (refused, DNS, TLS, connection reset)."""


class APITimeoutError(APIConnectionError):
    """The request timed out (``timeout=`` / ``OTEL_EXPERIMENTS_TIMEOUT``)."""


class APIError(ExperimentsError):
    """The server answered with an error status.

    ``status``: the HTTP status; ``message``: the server's own explanation (the JSON:API
    ``errors[].detail`` joined), ``errors``: the error objects as sent.
    """

    def __init__(self, status: int, message: str, errors: list[dict[str, Any]] | None = None,
                 *, method: str = "", url: str = "") -> None:
        where = f" ({method} {url})" if method else ""
        super().__init__(f"HTTP {status}: {message}{where}")
        self.status = status
        self.message = message
        self.errors = errors or []
        self.method = method
        self.url = url


class BadRequestError(APIError):
    """400 / 422: the request was refused for its content."""


class AuthenticationError(APIError):
    """401 / 403: missing or wrong API key (``api_key=`` / ``OTEL_EXPERIMENTS_API_KEY``)."""


class NotFoundError(APIError):
    """404: no such project, dataset, record or experiment."""


class ConflictError(APIError):
    """409: the resource already exists."""


class RateLimitError(APIError):
    """429 after every retry; ``retry_after`` is the server's hint in seconds (or ``None``)."""

    def __init__(self, status: int, message: str, errors: list[dict[str, Any]] | None = None,
                 *, retry_after: float | None = None, method: str = "", url: str = "") -> None:
        super().__init__(status, message, errors, method=method, url=url)
        self.retry_after = retry_after


class InternalServerError(APIError):
    """5xx after every retry."""


def error_for(status: int, message: str, errors: list[dict[str, Any]], *,
              retry_after: float | None, method: str, url: str) -> APIError:
    if status == 429:
        return RateLimitError(status, message, errors, retry_after=retry_after, method=method,
                              url=url)
    cls: type[APIError] = APIError
    if status in (400, 413, 415, 422):
        cls = BadRequestError
    elif status in (401, 403):
        cls = AuthenticationError
    elif status == 404:
        cls = NotFoundError
    elif status == 409:
        cls = ConflictError
    elif status >= 500:
        cls = InternalServerError
    return cls(status, message, errors, method=method, url=url)


__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "ExperimentsError",
    "InternalServerError",
    "NotFoundError",
    "RateLimitError",
    "error_for",
]
