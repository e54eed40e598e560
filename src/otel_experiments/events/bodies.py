"""Packing span events into request bodies within size and span-count limits.

Each span is JSON-encoded once, with its metrics, as a fragment; fragments are joined
into ``{"data": {"type": "experiment_events", "attributes": {"spans": [...],
"metrics": [...]}}}`` bodies, none over ``max_body_bytes`` (uncompressed) or
``max_spans`` spans, and a span's metrics always travel in its body. A span orjson
refuses (a lone surrogate, an int beyond 64 bits) is encoded again with the standard
library after cleaning, so one odd value never costs the span. Spans the C encoder
wrote (:mod:`.native`) arrive already encoded and are only packed. Pure: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Final

from .._runtime.text import clean_text
from ._compiled import NATIVE, speedups
from ._json import dumps, stdlib_dumps
from .convert import make_body

_join_body: Callable[[bytes, list[bytes], bytes, list[bytes], bytes], bytes] | None = (
    speedups.join_body if NATIVE and speedups is not None else None
)

__all__ = ["Encoded", "Item", "encode_bodies", "encode_item", "pack_encoded"]

#: One span event and its metric entries, as the converter yields them.
Item = tuple[dict[str, Any], list[dict[str, Any]]]
#: One span event and its metric entries, JSON-encoded (the C encoder's output).
Encoded = tuple[bytes, Sequence[bytes]]

# The envelope around the span and metric fragments; identical to
# ``dumps(make_body(spans, metrics))`` (the tests check it byte for byte).
_PREFIX: Final = b'{"data":{"type":"experiment_events","attributes":{"spans":['
_MIDDLE: Final = b'],"metrics":['
_SUFFIX: Final = b"]}}}"
_ENVELOPE_BYTES: Final = len(_PREFIX) + len(_MIDDLE) + len(_SUFFIX)


class _Fragment:
    """One span's encoded JSON and its metrics' encoded JSON: they always travel together."""

    __slots__ = ("item", "metrics", "size", "span")

    def __init__(self, span: bytes, metrics: Sequence[bytes], item: Any) -> None:
        self.span = span
        self.metrics = metrics
        self.item = item
        # the fragment's bytes plus one separating comma per element
        self.size = len(span) + 1 + sum(len(m) + 1 for m in metrics)


def _ignore(_size: int) -> None:
    pass


def encode_item(event: dict[str, Any], metrics: list[dict[str, Any]]) -> Encoded | None:
    """One span's event and metrics as JSON bytes; ``None`` if even the cleaned standard
    library encoding fails."""
    try:
        return dumps(event), tuple([dumps(m) for m in metrics])
    except Exception:
        pass
    # orjson refuses lone surrogates and ints beyond 64 bits: the stdlib does not
    try:
        return _fallback_dumps(event), tuple([_fallback_dumps(m) for m in metrics])
    except Exception:
        return None


def encode_bodies(
    items: list[Item],
    max_body_bytes: int,
    max_spans: int,
    on_oversize: Callable[[int], None] = _ignore,
) -> tuple[list[tuple[bytes, list[Item]]], int]:
    """Encode one experiment's spans into bodies; returns ``(bodies, dropped spans)``.

    Each body comes with the items it holds (so a rejected body can be split).

    Common case: everything fits in one request, encoded in one call. Otherwise each
    span (with its metrics) is encoded on its own and the fragments are packed.
    """
    if len(items) <= max_spans:
        try:
            body: bytes | None = dumps(
                make_body([e for e, _ in items], [m for _, ms in items for m in ms])
            )
        except Exception:
            body = None  # find the culprit span below
        if body is not None and len(body) <= max_body_bytes:
            return [(body, items)], 0
    fragments: list[_Fragment] = []
    dropped = 0
    for item in items:
        encoded = encode_item(*item)
        if encoded is None:
            dropped += 1
        else:
            fragments.append(_Fragment(encoded[0], encoded[1], item))
    return list(_pack(fragments, max_body_bytes, max_spans, on_oversize)), dropped


def pack_encoded(
    items: list[Encoded],
    max_body_bytes: int,
    max_spans: int,
    on_oversize: Callable[[int], None] = _ignore,
) -> list[tuple[bytes, list[Encoded]]]:
    """Bodies of already encoded spans, within the limits, each with the items it holds.

    Common case: they all fit in one request, joined at once."""
    if len(items) <= max_spans:
        spans = [span for span, _ in items]
        metrics = [m for _, ms in items for m in ms]
        commas = max(len(spans) - 1, 0) + max(len(metrics) - 1, 0)
        size = _ENVELOPE_BYTES + sum(map(len, spans)) + sum(map(len, metrics)) + commas
        if size <= max_body_bytes:
            return [(_join(spans, metrics), items)]
    fragments = [_Fragment(span, metrics, (span, metrics)) for span, metrics in items]
    return list(_pack(fragments, max_body_bytes, max_spans, on_oversize))


def _pack(
    fragments: list[_Fragment], limit: int, max_spans: int, on_oversize: Callable[[int], None]
) -> Iterator[tuple[bytes, list[Any]]]:
    """Pack fragments into bodies within the size and span-count limits."""
    batch: list[_Fragment] = []
    size = _ENVELOPE_BYTES
    for fragment in fragments:
        if batch and (len(batch) >= max_spans or size + fragment.size > limit):
            yield _assemble(batch), [f.item for f in batch]
            batch, size = [], _ENVELOPE_BYTES
        if not batch and size + fragment.size > limit:
            on_oversize(fragment.size)
        batch.append(fragment)
        size += fragment.size
    if batch:
        yield _assemble(batch), [f.item for f in batch]


def _clean(value: Any) -> Any:
    """``value`` with lone surrogates replaced (U+FFFD) and NaN/infinity as ``None``."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {_clean(key) if isinstance(key, str) else key: _clean(item)
                for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(item) for item in value]
    return value


def _fallback_dumps(value: Any) -> bytes:
    """Compact JSON bytes from the standard library, valid UTF-8 and strict JSON."""
    return stdlib_dumps(_clean(value))


def _assemble(batch: list[_Fragment]) -> bytes:
    return _join([fragment.span for fragment in batch],
                 [m for fragment in batch for m in fragment.metrics])


def _join(spans: list[bytes], metrics: list[bytes]) -> bytes:
    if _join_body is not None:  # one copy of the body, not three
        return _join_body(_PREFIX, spans, _MIDDLE, metrics, _SUFFIX)
    return b"".join((_PREFIX, b",".join(spans), _MIDDLE, b",".join(metrics), _SUFFIX))
