"""record_metric: validation at the call and the span event it writes."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import INVALID_SPAN, Tracer

from otel_experiments import attributes as A
from otel_experiments.observation.metrics import record_metric


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracer(exporter: InMemorySpanExporter) -> Iterator[Tracer]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider.get_tracer("test")
    provider.shutdown()


@pytest.mark.parametrize(
    ("value", "metric_type", "expected_type"),
    [
        (0.5, None, "score"),
        (3, None, "score"),
        (True, None, "boolean"),
        (False, "boolean", "boolean"),
        ("good", None, "categorical"),
        (7, "score", "score"),
        ("", "categorical", "categorical"),
    ],
)
def test_records_span_event(
    tracer: Tracer,
    exporter: InMemorySpanExporter,
    value: Any,
    metric_type: str | None,
    expected_type: str,
) -> None:
    with tracer.start_as_current_span("s") as span:
        record_metric(span, "m", value, metric_type, metadata={"k": [1, "x"]})
    (finished,) = exporter.get_finished_spans()
    (event,) = finished.events
    assert event.name == A.METRIC_EVENT_NAME
    attrs = dict(event.attributes or {})
    assert attrs[A.METRIC_LABEL] == "m"
    assert attrs[A.METRIC_TYPE] == expected_type
    assert attrs[A.METRIC_VALUE] == value and type(attrs[A.METRIC_VALUE]) is type(value)
    assert json.loads(attrs[A.METRIC_METADATA]) == {"k": [1, "x"]}
    assert attrs[A.METRIC_TIMESTAMP_MS] == event.timestamp // 1_000_000


@pytest.mark.parametrize(
    ("label", "value", "metric_type", "error", "match"),
    [
        ("m", math.nan, None, ValueError, "finite"),
        ("m", math.inf, "score", ValueError, "finite"),
        ("m", -math.inf, None, ValueError, "finite"),
        ("", 1, None, ValueError, "empty"),
        ("  ", 1, None, ValueError, "empty"),
        (None, 1, None, TypeError, "label"),
        ("m", 1, "percent", ValueError, "unknown metric_type"),
        ("m", "x", "score", TypeError, "score"),
        ("m", True, "score", TypeError, "score"),
        ("m", 1, "boolean", TypeError, "bool"),
        ("m", 1.0, "categorical", TypeError, "categorical"),
        ("m", None, None, TypeError, "value"),
        ("m", [1], None, TypeError, "value"),
    ],
)
def test_rejects_bad_metrics_at_the_call(
    tracer: Tracer,
    exporter: InMemorySpanExporter,
    label: Any,
    value: Any,
    metric_type: Any,
    error: type[Exception],
    match: str,
) -> None:
    with tracer.start_as_current_span("s") as span, pytest.raises(error, match=match):
        record_metric(span, label, value, metric_type)
    (finished,) = exporter.get_finished_spans()
    assert finished.events == ()


def test_rejects_bad_metadata(tracer: Tracer) -> None:
    with tracer.start_as_current_span("s") as span:
        with pytest.raises(TypeError, match="JSON-serializable"):
            record_metric(span, "m", 1, metadata={"o": object()})
        with pytest.raises(ValueError, match="valid JSON"):
            record_metric(span, "m", 1, metadata={"x": math.nan})
        with pytest.raises(TypeError, match="mapping"):
            record_metric(span, "m", 1, metadata=[1, 2])  # type: ignore[arg-type]


def test_rejects_non_span() -> None:
    with pytest.raises(TypeError, match="Span"):
        record_metric("not a span", "m", 1)  # type: ignore[arg-type]


def test_non_recording_span_is_a_no_op() -> None:
    record_metric(INVALID_SPAN, "m", 1.0)
    with pytest.raises(ValueError):
        record_metric(INVALID_SPAN, "m", math.nan)


def test_metric_sizes_are_bounded() -> None:
    from opentelemetry.sdk.trace import TracerProvider

    from otel_experiments.observation.metrics import record_metric

    span = TracerProvider().get_tracer("t").start_span("s")
    with pytest.raises(ValueError, match="limit is 256"):
        record_metric(span, "l" * 257, 1.0)
    with pytest.raises(ValueError, match="put long text in metadata"):
        record_metric(span, "verdict", "c" * 5000)
    record_metric(span, "score", 0.5, metadata={"rationale": "r" * 10_000_000})
    span.end()
    (event,) = span.events
    assert len(event.attributes["metric.metadata"]) <= 32 * 1024


def test_foreign_metric_events_obey_the_same_limits() -> None:
    from otel_experiments.events.metrics import metric_from_event

    ok = {"metric.label": "l", "metric.type": "categorical", "metric.value": "yes"}
    assert metric_from_event(ok, 0, "t" * 32, "s" * 16) is not None
    assert metric_from_event({**ok, "metric.label": "l" * 1000}, 0, "t" * 32, "s" * 16) is None
    assert metric_from_event({**ok, "metric.value": "v" * 5000}, 0, "t" * 32, "s" * 16) is None


def test_label_byte_limit_matches_the_server() -> None:
    from opentelemetry.sdk.trace import TracerProvider

    from otel_experiments.events.metrics import MAX_LABEL_BYTES
    from otel_experiments.observation.metrics import record_metric
    from otel_experiments.server.schema import LABEL_MAX_BYTES

    assert MAX_LABEL_BYTES == LABEL_MAX_BYTES
    span = TracerProvider().get_tracer("t").start_span("s")
    with pytest.raises(ValueError, match="512 bytes"):
        record_metric(span, "\U0001f600" * 200, 1.0)  # 200 characters, 800 bytes
    record_metric(span, "\U0001f600" * 128, 1.0)  # exactly 512 bytes
    span.end()


def test_a_metric_no_experiment_will_carry_is_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    from opentelemetry import trace

    from otel_experiments import experiment_context, observe
    from otel_experiments.observation import metrics as metrics_module

    metrics_module._warn_unattributed = metrics_module.RateLimitedWarning()  # fresh limiter
    caplog.set_level("WARNING", logger="otel_experiments")
    tracer = trace.get_tracer("t")  # the global provider of tests/conftest.py (stamps)
    with tracer.start_as_current_span("no-experiment"):
        observe.add_metric("orphan", 1.0)
    assert any("metric 'orphan'" in r.getMessage() and "no-experiment" in r.getMessage()
               for r in caplog.records)
    caplog.clear()
    with tracer.start_as_current_span("server-span"), experiment_context("exp-web"):
        observe.add_metric("kept", 1.0)  # the entered span was stamped: attributable
    assert not [r for r in caplog.records if "kept" in r.getMessage()]
