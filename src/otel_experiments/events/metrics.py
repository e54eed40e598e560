"""Evaluation metrics on the wire: validation and ``experiment.metric`` span events to entries.

:func:`check_metric` is the one rule for what a metric may be (used when recording, by
:func:`otel_experiments.observation.metrics.record_metric`, and when converting);
:func:`metric_from_event` turns one span event into one ``metrics`` entry of a body.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

from ..attributes import (
    METRIC_LABEL,
    METRIC_METADATA,
    METRIC_TIMESTAMP_MS,
    METRIC_TYPE,
    METRIC_TYPE_BOOLEAN,
    METRIC_TYPE_CATEGORICAL,
    METRIC_TYPE_SCORE,
    METRIC_TYPES,
    METRIC_VALUE,
)
from ._json import as_object

__all__ = ["MAX_CATEGORY_CHARS", "MAX_LABEL_BYTES", "MAX_LABEL_CHARS", "check_metric", "metric_from_event"]

_isfinite: Final[Any] = math.isfinite
#: A label names an evaluation; a categorical value names a category. Neither is a payload.
MAX_LABEL_CHARS: Final = 256
#: ... and at most this many bytes in UTF-8 (what the server stores and indexes).
MAX_LABEL_BYTES: Final = 512
MAX_CATEGORY_CHARS: Final = 1024
_VALUE_KEYS: Final = {
    METRIC_TYPE_SCORE: "score_value",
    METRIC_TYPE_CATEGORICAL: "categorical_value",
    METRIC_TYPE_BOOLEAN: "boolean_value",
}


def check_metric(label: object, value: object, metric_type: object = None) -> str:
    """Validate one evaluation metric and return its type (``score``/``categorical``/``boolean``).

    ``metric_type=None`` infers the type from ``value``: ``bool`` -> boolean,
    ``int``/``float`` -> score, ``str`` -> categorical. Raises ``TypeError`` for a value of
    the wrong type and ``ValueError`` for an empty label, an unknown type, NaN or infinity.
    """
    if not isinstance(label, str):
        raise TypeError(f"metric label must be a str, got {type(label).__name__}")
    if not label.strip():
        raise ValueError("metric label must not be empty")
    if len(label) > MAX_LABEL_CHARS:
        raise ValueError(f"metric label is {len(label)} characters; the limit is {MAX_LABEL_CHARS}")
    if len(label) * 4 > MAX_LABEL_BYTES and len(label.encode("utf-8", "replace")) > MAX_LABEL_BYTES:
        raise ValueError(f"metric label is over {MAX_LABEL_BYTES} bytes in UTF-8")
    if metric_type is None:
        if isinstance(value, bool):
            metric_type = METRIC_TYPE_BOOLEAN
        elif isinstance(value, (int, float)):
            metric_type = METRIC_TYPE_SCORE
        elif isinstance(value, str):
            metric_type = METRIC_TYPE_CATEGORICAL
        else:
            raise TypeError(
                f"metric {label!r}: value must be a bool, int, float or str, "
                f"got {type(value).__name__}"
            )
    elif not isinstance(metric_type, str) or metric_type not in METRIC_TYPES:
        raise ValueError(
            f"metric {label!r}: unknown metric_type {metric_type!r}; "
            f"expected one of {sorted(METRIC_TYPES)}"
        )
    if metric_type == METRIC_TYPE_SCORE:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(
                f"metric {label!r}: a score must be an int or float, got {type(value).__name__}"
            )
        if not math.isfinite(value):
            raise ValueError(f"metric {label!r}: a score must be finite, got {value!r}")
    elif metric_type == METRIC_TYPE_BOOLEAN:
        if not isinstance(value, bool):
            raise TypeError(
                f"metric {label!r}: a boolean metric needs a bool, got {type(value).__name__}"
            )
    elif not isinstance(value, str):
        raise TypeError(
            f"metric {label!r}: a categorical metric needs a str, got {type(value).__name__}"
        )
    elif len(value) > MAX_CATEGORY_CHARS:
        raise ValueError(
            f"metric {label!r}: a category is {len(value)} characters; the limit is "
            f"{MAX_CATEGORY_CHARS} (put long text in metadata)"
        )
    return metric_type


def metric_from_event(
    event_attributes: Mapping[str, Any] | None,
    event_timestamp_ns: int | None,
    trace_id: str,
    span_id: str,
) -> dict[str, Any] | None:
    """One ``metrics`` entry from an ``experiment.metric`` span event, or ``None`` if invalid.

    Invalid events (which :func:`otel_experiments.observation.metrics.record_metric` never writes, but a
    hand-made event or a foreign OTLP client might) are dropped rather than raising, so a
    body always validates against the schema.
    """
    if not event_attributes:
        return None
    get = event_attributes.get
    label = get(METRIC_LABEL)
    value = get(METRIC_VALUE)
    metric_type = get(METRIC_TYPE)
    value_type = type(value)
    # fast path: exactly what record_metric writes; anything else gets the full check
    if not (
        type(label) is str
        and label.strip()
        and (len(label) * 4 <= MAX_LABEL_BYTES or len(label.encode("utf-8", "replace")) <= MAX_LABEL_BYTES)
        and len(label) <= MAX_LABEL_CHARS
        and (
            (
                metric_type == METRIC_TYPE_SCORE
                and (value_type is int or (value_type is float and _isfinite(value)))
            )
            or (metric_type == METRIC_TYPE_BOOLEAN and value_type is bool)
            or (
                metric_type == METRIC_TYPE_CATEGORICAL
                and value_type is str
                and len(value) <= MAX_CATEGORY_CHARS  # type: ignore[arg-type]
            )
        )
    ):
        try:
            metric_type = check_metric(label, value, metric_type)
        except (TypeError, ValueError):
            return None
    timestamp_ms = get(METRIC_TIMESTAMP_MS)
    if isinstance(timestamp_ms, bool) or not isinstance(timestamp_ms, int) or timestamp_ms < 0:
        timestamp_ms = (event_timestamp_ns or 0) // 1_000_000
    if (
        metric_type == METRIC_TYPE_SCORE
        and isinstance(value, int)
        and not -(2**53) <= value <= 2**53
    ):
        value = float(value)  # keep JSON numbers within what every consumer can read
    metric: dict[str, Any] = {
        "span_id": span_id,
        "trace_id": trace_id,
        "metric_type": metric_type,
        "label": label,
        _VALUE_KEYS[metric_type]: value,
        "timestamp_ms": timestamp_ms,
    }
    metadata = get(METRIC_METADATA)
    if metadata is not None:
        metric["metadata"] = as_object(metadata)
    return metric
