"""Evaluation metrics recorded on spans (``experiment.metric`` span events).

:func:`record_metric` is the single writer; ``observe.add_metric(...)`` and
``span.add_metric(...)`` delegate to it. The events converter turns every such span event
into one ``metrics`` entry of the experiment events body.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from opentelemetry.trace import Span

from .. import attributes as A
from .._runtime.logs import RateLimitedWarning
from .._runtime.text import clean_text, truncate
from ..events.metrics import check_metric
from ..settings import scope_settings

__all__ = ["MetricValue", "record_metric"]

MetricValue = float | int | bool | str


def _encode_metadata(label: str, metadata: Mapping[str, Any], max_chars: int) -> str:
    if not isinstance(metadata, Mapping):
        raise TypeError(
            f"metric {label!r}: metadata must be a mapping, got {type(metadata).__name__}"
        )
    try:
        text = json.dumps(dict(metadata), separators=(",", ":"), allow_nan=False)
        # Over the payload cap: kept as marked text (the converter wraps it as {"value"}).
        return truncate(clean_text(text), max_chars)
    except TypeError as exc:
        raise TypeError(f"metric {label!r}: metadata is not JSON-serializable: {exc}") from None
    except ValueError as exc:  # NaN / infinity, circular references
        raise ValueError(f"metric {label!r}: metadata is not valid JSON: {exc}") from None


_warn_unattributed = RateLimitedWarning()


def _warn_if_unattributed(span: Span, label: str) -> None:
    # A metric on a span of no experiment is never exported: say so, never drop silently.
    if not span.is_recording():
        return  # sampled out, or no SDK provider (start_observe warns about that)
    attributes = getattr(span, "attributes", None)
    if attributes is not None and attributes.get(A.EXPERIMENT_ID) is None:
        _warn_unattributed(
            "otel-experiments: metric %r was recorded on span %r, which belongs to no "
            "experiment, so it will not be exported. Record it inside start_observe(...) or "
            "experiment_context(...), or set OTEL_EXPERIMENTS_ID",
            label[:80], getattr(span, "name", "?"),
        )


def record_metric(
    span: Span,
    label: str,
    value: MetricValue,
    metric_type: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    *,
    max_metadata_chars: int | None = None,
) -> None:
    """Record an evaluation of ``span`` as an ``experiment.metric`` span event.

    ``metric_type`` is ``"score"``, ``"categorical"`` or ``"boolean"``; when ``None`` it is
    inferred from ``value`` (``bool`` -> boolean, ``int``/``float`` -> score,
    ``str`` -> categorical). ``metadata`` must be a JSON-serializable mapping.

    Raises ``ValueError`` for an empty label, an unknown ``metric_type``, NaN or infinity,
    and ``TypeError`` for a value (or metadata) of the wrong type -- at the call, before
    anything is recorded. On a non-recording span the call validates and does nothing else.
    """
    kind = check_metric(label, value, metric_type)
    event_attributes: dict[str, Any] = {
        A.METRIC_LABEL: label,
        A.METRIC_TYPE: kind,
        A.METRIC_VALUE: value,
    }
    if metadata is not None:
        cap = (max_metadata_chars if max_metadata_chars is not None
               else scope_settings().max_payload_chars)
        event_attributes[A.METRIC_METADATA] = _encode_metadata(label, metadata, cap)
    if not isinstance(span, Span):
        raise TypeError(f"span must be an opentelemetry.trace.Span, got {type(span).__name__}")
    _warn_if_unattributed(span, label)
    now_ns = time.time_ns()
    event_attributes[A.METRIC_TIMESTAMP_MS] = now_ns // 1_000_000
    span.add_event(A.METRIC_EVENT_NAME, event_attributes, timestamp=now_ns)
