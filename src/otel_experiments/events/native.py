"""Finished spans to encoded events, the common case in C (``_speedups.c``).

The C encoder writes a span's event and metric entries straight to JSON bytes, the same
bytes ``dumps`` gives for :func:`~otel_experiments.events.convert.span_to_event`'s dicts;
it declines any span it does not know to the last detail (an error status, a non-string
tag, a float orjson writes in its own exponent form, a metric ``record_metric`` would not
write, ...), and :mod:`.convert` converts that one as always. The rules live in Python;
the C file restates only their common case, and the tests compare the two on random
spans. Without a compiler at install time there is no ``_speedups`` and every span goes
through Python.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from types import ModuleType
from typing import Any, Final

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

from .. import attributes as A
from .._compat import NATIVE_FIELD_NAMES
from ._json import BACKEND, as_object, dumps, loads
from .bodies import Encoded, encode_item
from .convert import _base_tags, span_to_event
from .shapes import KeptAttributes, kept_attributes

__all__ = ["NATIVE", "encode_span_events"]

_speedups: ModuleType | None
try:
    from . import _speedups
except ImportError:  # pragma: no cover - built without a C compiler
    _speedups = None

#: Whether the C encoder is in use.
NATIVE: Final = _speedups is not None

if _speedups is not None:  # the keys and helpers the C side reads, in its order
    _speedups.configure(
        A.EXPERIMENT_ID, A.INPUT_VALUE, A.INPUT_MIME_TYPE, A.OUTPUT_VALUE, A.OUTPUT_MIME_TYPE,
        A.EXPECTED_OUTPUT_VALUE, A.EXPECTED_OUTPUT_MIME_TYPE, A.METADATA, A.DATASET_RECORD_ID,
        A.MIME_JSON, A.METRIC_EVENT_NAME, A.METRIC_LABEL, A.METRIC_TYPE, A.METRIC_VALUE,
        A.METRIC_TIMESTAMP_MS, A.METRIC_METADATA, StatusCode.ERROR, loads, dumps, as_object,
        kept_attributes, _base_tags, *NATIVE_FIELD_NAMES,
    )

# the stdlib writes non-ASCII as \\uXXXX escapes; orjson as raw UTF-8
_ASCII: Final = BACKEND != "orjson"


def encode_span_events(
    spans: Sequence[ReadableSpan], kept: KeptAttributes, native: bool = NATIVE
) -> Iterator[tuple[str, Encoded | None]]:
    """``(experiment_id, encoded event and metrics)`` for every span carrying
    ``experiment.id``, in order: from C, or for the spans C declines from
    :func:`~otel_experiments.events.convert.span_to_event` and
    :func:`~otel_experiments.events.bodies.encode_item` (``None``: not even the cleaned
    standard library could encode it). ``native=False``: every span in Python."""
    results: list[Any]
    if native and _speedups is not None:
        try:
            results = _speedups.encode_spans(spans, kept, _ASCII)
        except Exception:  # pragma: no cover - the encoder declines instead of raising
            results = [None] * len(spans)
    else:
        results = [None] * len(spans)
    cache: dict[tuple[int, int], tuple[list[str], str]] = {}
    for span, result in zip(spans, results, strict=True):
        if result is not None:
            yield result[0], (result[1], result[2])
            continue
        converted = span_to_event(span, cache, kept)
        if converted is not None:
            yield converted[0], encode_item(converted[1], converted[2])
