"""``ObservedSpan`` and ``observe.*``: recording input, output, metadata and metrics.

Everything here acts on a span that already exists and never raises into user code
(except metric validation, which is the developer's own input).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Concatenate, ParamSpec

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, Status, StatusCode

from .. import attributes as attr
from .._runtime.logs import RateLimitedWarning
from ..models import validate_id
from .metrics import record_metric
from .payload import encode

logger = logging.getLogger("otel_experiments")

P = ParamSpec("P")

OBSERVED_SPAN_KEY = otel_context.create_key("otel_experiments.observed_span")
_warn_payload = RateLimitedWarning()


class ObservedSpan:
    """The span of a ``start_observe`` scope, with payload helpers. Never raises."""

    __slots__ = ("_metadata", "_span", "max_payload_chars")

    def __init__(self, span: Span, max_payload_chars: int) -> None:
        self._span = span
        self._metadata: dict[str, Any] = {}
        self.max_payload_chars = max_payload_chars

    @property
    def span(self) -> Span:
        """The underlying OpenTelemetry span."""
        return self._span

    @property
    def trace_id(self) -> str:
        return format(self._span.get_span_context().trace_id, "032x")

    @property
    def span_id(self) -> str:
        return format(self._span.get_span_context().span_id, "016x")

    def _set_payload(self, key: str, mime_key: str | None, value: Any) -> None:
        try:
            text, mime = encode(value, self.max_payload_chars)
            self._span.set_attribute(key, text)
            if mime_key is not None:
                self._span.set_attribute(mime_key, mime)
        except Exception:  # never into user code
            _warn_payload("otel-experiments: could not record %s", key)

    def set_input(self, value: Any) -> None:
        self._set_payload(attr.INPUT_VALUE, attr.INPUT_MIME_TYPE, value)

    def set_output(self, value: Any) -> None:
        self._set_payload(attr.OUTPUT_VALUE, attr.OUTPUT_MIME_TYPE, value)

    def set_expected_output(self, value: Any) -> None:
        self._set_payload(attr.EXPECTED_OUTPUT_VALUE, attr.EXPECTED_OUTPUT_MIME_TYPE, value)

    def set_metadata(self, metadata: Mapping[str, Any]) -> None:
        """Merge ``metadata`` into the span's ``metadata`` attribute (JSON)."""
        if not isinstance(metadata, Mapping):
            _warn_payload("otel-experiments: set_metadata expects a mapping, got %s",
                          type(metadata).__name__)
            return
        try:
            self._metadata.update(metadata)
        except Exception:  # a hostile mapping must not reach the caller
            _warn_payload("otel-experiments: could not read the metadata mapping %s",
                          type(metadata).__name__)
            return
        self._set_payload(attr.METADATA, None, self._metadata)

    def set_dataset_record_id(self, record_id: str) -> None:
        try:
            self._span.set_attribute(attr.DATASET_RECORD_ID, validate_id(record_id, "record_id"))
        except (TypeError, ValueError) as exc:
            _warn_payload("otel-experiments: %s", exc)

    def add_metric(self, label: str, value: float | bool | str, metric_type: str | None = None,
                   metadata: Mapping[str, Any] | None = None) -> None:
        """Record an evaluation on this span. Invalid metrics raise ``ValueError``/``TypeError``."""
        record_metric(self._span, label, value, metric_type, metadata,
                      max_metadata_chars=self.max_payload_chars)

    def set_attribute(self, key: str, value: Any) -> None:
        try:
            self._span.set_attribute(key, value)
        except Exception:
            _warn_payload("otel-experiments: could not set attribute %r", key)

    def record_exception(self, exception: BaseException) -> None:
        try:
            self._span.record_exception(exception)
        except Exception:
            _warn_payload("otel-experiments: could not record an exception")

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        try:
            self._span.set_status(status, description)
        except Exception:
            _warn_payload("otel-experiments: could not set the span status")



def current_observed_span(context: Context | None = None) -> ObservedSpan | None:
    """The innermost ``start_observe`` span, or ``None``."""
    ctx = context if context is not None else otel_context.get_current()
    value = ctx.get(OBSERVED_SPAN_KEY)
    return value if isinstance(value, ObservedSpan) else None


def _on_current(
    method: Callable[Concatenate[ObservedSpan, P], None],
) -> Callable[Concatenate[_Observe, P], None]:
    """``method`` acting on the innermost observed span (a debug line outside any)."""

    def on_current(_self: _Observe, /, *args: P.args, **kwargs: P.kwargs) -> None:
        target = current_observed_span()
        if target is None:
            logger.debug("otel-experiments: observe.%s called outside start_observe",
                         method.__name__)
            return
        method(target, *args, **kwargs)

    on_current.__name__ = method.__name__
    on_current.__doc__ = method.__doc__
    return on_current


class _Observe:
    """``observe.set_input(...)`` etc.: :class:`ObservedSpan`'s recording methods, acting on
    the innermost observed span."""

    set_input = _on_current(ObservedSpan.set_input)
    set_output = _on_current(ObservedSpan.set_output)
    set_expected_output = _on_current(ObservedSpan.set_expected_output)
    set_metadata = _on_current(ObservedSpan.set_metadata)
    set_dataset_record_id = _on_current(ObservedSpan.set_dataset_record_id)

    def add_metric(self, label: str, value: float | bool | str, metric_type: str | None = None,
                   metadata: Mapping[str, Any] | None = None) -> None:
        """Record an evaluation on the innermost observed span (or else the current span)."""
        target = current_observed_span()
        if target is not None:
            target.add_metric(label, value, metric_type, metadata)
        else:
            record_metric(trace.get_current_span(), label, value, metric_type, metadata)


observe = _Observe()

__all__ = ["OBSERVED_SPAN_KEY", "ObservedSpan", "current_observed_span", "observe"]
