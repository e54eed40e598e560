"""JSON encoding for experiment events: orjson when importable, stdlib ``json`` otherwise.

Both paths produce compact UTF-8 JSON bytes that decode to the same value. They differ
only in non-ASCII handling (orjson writes raw UTF-8, the stdlib escapes to ``\\uXXXX``).
Decoding errors are ``ValueError`` subclasses on both paths.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from types import ModuleType
from typing import Any

__all__ = ["BACKEND", "as_object", "dumps", "loads", "stdlib_dumps"]

_orjson: ModuleType | None
try:
    import orjson as _orjson
except ImportError:  # pragma: no cover - depends on the environment
    _orjson = None

#: ``"orjson"`` or ``"json"``: the encoder :func:`dumps` uses.
BACKEND = "json" if _orjson is None else "orjson"


# One encoder instance: ``json.dumps(obj, separators=...)`` builds a new one per call.
_STDLIB_ENCODER = json.JSONEncoder(separators=(",", ":"))


def stdlib_dumps(obj: Any) -> bytes:
    """Encode ``obj`` as compact JSON bytes with the standard library.

    Same output as ``json.dumps(obj, separators=(",", ":")).encode()``.
    """
    return _STDLIB_ENCODER.encode(obj).encode()


if _orjson is not None:
    #: Encode ``obj`` as compact JSON bytes (orjson). A ``partial`` of orjson's own
    #: function, not a wrapper: the C encoder calls it per JSON payload.
    dumps: Callable[[Any], bytes] = functools.partial(
        _orjson.dumps, option=_orjson.OPT_NON_STR_KEYS
    )
    #: Decode JSON text; raises ``ValueError`` on malformed input.
    loads: Callable[[str | bytes], Any] = _orjson.loads

else:  # pragma: no cover - depends on the environment
    dumps = stdlib_dumps
    loads = json.loads


def as_object(raw: Any) -> dict[str, Any]:
    """A JSON-object-valued field: decode JSON text; wrap anything else as ``{"value": ...}``."""
    if isinstance(raw, str):
        try:
            decoded = loads(raw)
        except ValueError:
            return {"value": raw}
        return decoded if isinstance(decoded, dict) else {"value": decoded}
    if isinstance(raw, tuple):
        raw = list(raw)
    return {"value": raw}
