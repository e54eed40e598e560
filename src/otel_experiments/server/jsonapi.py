"""JSON:API error documents, bounded body reading and strict JSON parsing.

Encoding is the package's (``otel_experiments.events.dumps``: orjson when installed).
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Iterable, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..events import JSON_BACKEND, dumps
from ..events import loads as _fast_loads

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class ApiError(Exception):
    """An error that becomes a JSON:API ``errors`` document."""

    def __init__(
        self, status: int, detail: str, pointer: str | None = None, *, parameter: str | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.pointer = pointer
        self.parameter = parameter

    def to_dict(self) -> dict[str, Any]:
        err: dict[str, Any] = {
            "status": str(self.status),
            "title": _TITLES.get(self.status, "Error"),
            "detail": self.detail,
        }
        if self.pointer is not None:
            err["source"] = {"pointer": self.pointer}
        elif self.parameter is not None:
            err["source"] = {"parameter": self.parameter}
        return err


class ApiErrors(Exception):
    """Several errors of the same status (e.g. every schema violation of a body)."""

    def __init__(self, errors: Sequence[ApiError]) -> None:
        super().__init__("; ".join(e.detail for e in errors))
        self.errors = list(errors)
        self.status = errors[0].status if errors else 400


def dumps_str(obj: Any) -> str:
    return dumps(obj).decode()


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


#: A ``\u`` escape in the surrogate range (D800-DFFF). Once the JSON text itself is valid
#: Unicode, only such an escape can decode to a lone surrogate.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def loads(data: bytes | str) -> Any:
    """Strict JSON: no NaN/Infinity, no lone surrogates (``ValueError`` otherwise).

    Nesting is bounded by the parser, not here: orjson refuses more than 1024 levels
    (``JSONDecodeError``); the stdlib parser raises ``RecursionError`` at the interpreter's
    recursion limit (``sys.getrecursionlimit()``, 1000 by default). :func:`parse_json` and
    the OTLP receiver answer both with 400.
    """
    if JSON_BACKEND == "orjson":  # orjson is strict by itself
        return _fast_loads(data)
    if isinstance(data, str):
        text = data
        text.encode("utf-8")  # raises on a raw lone surrogate
    else:  # strict: json.loads(bytes) would let UTF-8-encoded surrogates through
        text = data.decode(json.detect_encoding(data))
    value = json.loads(text, parse_constant=_reject_constant)
    if _SURROGATE_ESCAPE.search(text):  # rare (an escaped emoji, or a lone surrogate):
        json.dumps(value, ensure_ascii=False).encode("utf-8")  # raises on lone surrogates
    return value


class JsonApiResponse(Response):
    media_type = "application/vnd.api+json"

    def render(self, content: Any) -> bytes:
        return dumps(content)


def error_response(errors: Iterable[ApiError], status: int) -> JsonApiResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JsonApiResponse({"errors": [e.to_dict() for e in errors]}, status, headers=headers)


def _decompress(data: bytes, encoding: str, limit: int) -> bytes:
    wbits = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}
    if encoding not in wbits:
        raise ApiError(415, f"unsupported Content-Encoding {encoding!r}; use gzip or deflate")
    if not data:
        return data
    out = bytearray()
    try:
        decomp = zlib.decompressobj(wbits[encoding])
        first = decomp.decompress(data, limit + 1)
        if decomp.eof and not decomp.unused_data and len(first) <= limit:
            return first  # one member, whole (the common body): no copies
        out += first
        while True:
            if len(out) > limit:
                raise ApiError(413, f"decompressed body exceeds {limit} bytes")
            if not decomp.eof:
                if decomp.unconsumed_tail:
                    raise ApiError(413, f"decompressed body exceeds {limit} bytes")
                raise ApiError(400, "truncated compressed body")
            data = decomp.unused_data  # concatenated gzip members
            if not data:
                break
            decomp = zlib.decompressobj(wbits[encoding])
            out += decomp.decompress(data, limit + 1 - len(out))
    except zlib.error as exc:
        raise ApiError(400, f"invalid {encoding} body: {exc}") from None
    return bytes(out)


async def read_body(request: Request, max_bytes: int, max_decompressed: int) -> bytes:
    """Read the request body, enforcing the wire limit and the decompressed limit."""
    raw = await read_raw_body(request, max_bytes)
    return decode_body(raw, request.headers.get("content-encoding"), max_decompressed)


async def read_raw_body(request: Request, max_bytes: int) -> bytes:
    """Read the request body as sent (still compressed), enforcing the wire limit."""
    length = request.headers.get("content-length")
    if length is not None:
        try:
            declared = int(length)
        except ValueError:
            raise ApiError(400, "invalid Content-Length header") from None
        if declared > max_bytes:
            raise ApiError(413, f"request body exceeds {max_bytes} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        if chunk:  # (the stream ends with an empty one)
            chunks.append(chunk)
            size += len(chunk)
        if size > max_bytes:
            raise ApiError(413, f"request body exceeds {max_bytes} bytes")
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)  # (at most one copy)


def decode_body(raw: bytes, content_encoding: str | None, max_decompressed: int) -> bytes:
    """``raw`` decompressed per its Content-Encoding, within the decompressed limit."""
    encoding = (content_encoding or "identity").strip().lower()
    if encoding in ("", "identity"):
        return raw
    return _decompress(raw, encoding, max_decompressed)


def parse_json(body: bytes) -> Any:
    if not body.strip():
        raise ApiError(400, "request body is empty; a JSON document is required", "")
    try:
        return loads(body)
    except (ValueError, RecursionError, UnicodeError) as exc:
        raise ApiError(400, f"malformed JSON: {exc}", "") from None


def media_type(content_type: str) -> str:
    """The media type of a Content-Type header value: lower-cased, parameters dropped."""
    return content_type.split(";", 1)[0].strip().lower()


def pointer(path: Iterable[Any]) -> str:
    """RFC 6901 JSON pointer for a path of keys/indices."""
    parts = [str(p).replace("~", "~0").replace("/", "~1") for p in path]
    return "/" + "/".join(parts) if parts else ""


def resource(type_: str, id_: str, attributes: dict[str, Any]) -> dict[str, Any]:
    """A JSON:API resource object."""
    return {"type": type_, "id": id_, "attributes": attributes}
