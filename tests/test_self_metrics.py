"""Self-observability: the exporter's counts as OpenTelemetry metrics, one source with the
delivery report (SDK exporter conventions: otel.sdk.exporter.span.exported + error.type)."""

from __future__ import annotations

import re

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pytest_httpserver import HTTPServer
from werkzeug import Response

from otel_experiments import ExperimentEventsExporter
from otel_experiments import attributes as A
from otel_experiments.export import report as report_mod


def test_counters_match_the_delivery_report(httpserver: HTTPServer) -> None:
    statuses = [503, 202, 404]
    httpserver.expect_request(re.compile(r".*/events$"), method="POST").respond_with_handler(
        lambda request: Response("{}", status=statuses.pop(0) if statuses else 202))
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    exporter = ExperimentEventsExporter(endpoint=httpserver.url_for("").rstrip("/"), timeout=5,
                                        backoff_initial=0.01, meter_provider=meters)
    mem = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(mem))
    for n in (3, 2):
        mem.clear()
        for i in range(n):
            provider.get_tracer("m").start_span(f"s{i}", attributes={A.EXPERIMENT_ID: "e"}).end()
        exporter.export(list(mem.get_finished_spans()))
    points: dict[tuple[str, str | None], int] = {}
    data = reader.get_metrics_data()
    assert data is not None
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                for point in metric.data.data_points:  # type: ignore[union-attr]
                    attrs = dict(point.attributes or {})
                    assert attrs["otel.component.type"] == report_mod.COMPONENT_TYPE
                    key = (metric.name, attrs.get("error.type"))  # type: ignore[arg-type]
                    points[key] = points.get(key, 0) + int(point.value)  # type: ignore[union-attr]
    report = exporter.delivery_report()
    assert report.delivered == 3 and report.retried == 3 and report.dropped == 2
    assert points[("otel.sdk.exporter.span.exported", None)] == report.delivered
    assert points[("otel.sdk.exporter.span.exported", "rejected")] == report.dropped
    assert points[(report_mod.METRIC_RETRIED, None)] == report.retried
    exporter.shutdown()
    meters.shutdown()
