"""Finished spans to encoded events, the common case in C (``_speedups_src/``).

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

from collections.abc import Sequence
from types import ModuleType
from typing import Any, Final

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

from .. import attributes as A
from .._compat import NATIVE_FIELD_NAMES
from ._compiled import NATIVE, speedups
from ._json import BACKEND, as_object, dumps, loads
from .bodies import Encoded, encode_item
from .convert import _base_tags, experiment_id_of, span_to_event
from .shapes import KeptAttributes, kept_attributes

__all__ = ["NATIVE", "encode_span_groups"]

_speedups: ModuleType | None = speedups  # a module global: tests swap it out

if _speedups is not None:  # the keys and helpers the C side reads, in its order
    _speedups.configure(
        A.EXPERIMENT_ID, A.INPUT_VALUE, A.INPUT_MIME_TYPE, A.OUTPUT_VALUE, A.OUTPUT_MIME_TYPE,
        A.EXPECTED_OUTPUT_VALUE, A.EXPECTED_OUTPUT_MIME_TYPE, A.METADATA, A.DATASET_RECORD_ID,
        A.MIME_JSON, A.METRIC_EVENT_NAME, A.METRIC_LABEL, A.METRIC_TYPE, A.METRIC_VALUE,
        A.METRIC_TIMESTAMP_MS, A.METRIC_METADATA, StatusCode.ERROR, loads, dumps, as_object,
        kept_attributes, _base_tags, experiment_id_of, *NATIVE_FIELD_NAMES,
    )

# the stdlib writes non-ASCII as \\uXXXX escapes; orjson as raw UTF-8
_ASCII: Final = BACKEND != "orjson"


def encode_span_groups(
    spans: Sequence[ReadableSpan], kept: KeptAttributes, native: bool = NATIVE
) -> tuple[dict[str, list[Encoded]], int]:
    """Every span carrying ``experiment.id``, encoded, per experiment id (spans in input
    order); and how many spans not even the cleaned standard library could encode.

    From C, or for the spans C declines from
    :func:`~otel_experiments.events.convert.span_to_event` and
    :func:`~otel_experiments.events.bodies.encode_item`. ``native=False``: every span in
    Python (the same bytes).
    """
    groups: dict[str, list[Any]]
    declined: list[tuple[str | None, int, Any]]
    if native and _speedups is not None:
        try:
            groups, declined = _speedups.encode_groups(spans, kept, _ASCII)
        except Exception:  # pragma: no cover - the encoder declines instead of raising
            groups, declined = {}, [(None, -1, span) for span in spans]
    else:
        groups, declined = {}, [(None, -1, span) for span in spans]
    if not declined:
        return groups, 0
    unencodable = 0
    holes: set[str] = set()
    cache: dict[tuple[int, int], tuple[list[str], str]] = {}
    for experiment_id, index, span in declined:
        converted = span_to_event(span, cache, kept)
        encoded = None if converted is None else encode_item(converted[1], converted[2])
        if converted is not None and encoded is None:
            unencodable += 1
        if experiment_id is not None:  # its place in its experiment's list, kept by C
            groups[experiment_id][index] = encoded
            if encoded is None:
                holes.add(experiment_id)
        elif encoded is not None:
            assert converted is not None
            groups.setdefault(converted[0], []).append(encoded)
    for experiment_id in holes:
        kept_items = [item for item in groups[experiment_id] if item is not None]
        if kept_items:
            groups[experiment_id] = kept_items
        else:
            del groups[experiment_id]
    return groups, unencodable
