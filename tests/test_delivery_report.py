"""The delivery report: counts of what became of the spans, against real HTTP servers."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

import otel_experiments
from helpers import free_port, warnings_of
from otel_experiments import DeliveryReport, ExperimentEventsExporter
from otel_experiments import attributes as A

EVENTS = re.compile(r"^/api/v2/llm-obs/v1/experiments/.+/events$")


@pytest.fixture
def make_spans() -> Iterator:
    mem = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(mem))
    tracer = provider.get_tracer("report")

    def make(n: int, exp_id: str = "exp-report") -> list[ReadableSpan]:
        mem.clear()
        for i in range(n):
            with tracer.start_as_current_span(f"r-{i}", attributes={A.EXPERIMENT_ID: exp_id}):
                pass
        return list(mem.get_finished_spans())

    yield make
    provider.shutdown()


def scripted(httpserver: HTTPServer, statuses: list[int]) -> list[int]:
    """Answer with ``statuses`` in turn, then 202; returns the statuses answered."""
    answered: list[int] = []

    def handler(request: Request) -> Response:
        status = statuses.pop(0) if statuses else 202
        answered.append(status)
        return Response("{}", status=status)

    httpserver.expect_request(EVENTS, method="POST").respond_with_handler(handler)
    return answered


def test_counts_delivered_retried_and_dropped_by_reason_with_the_last_error(
    httpserver: HTTPServer, make_spans, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="otel_experiments")
    answered = scripted(httpserver, [503, 503, 202, 404])
    exp = ExperimentEventsExporter(endpoint=httpserver.url_for("").rstrip("/"), timeout=5,
                                   backoff_initial=0.01, backoff_max=0.02, compression="none")
    assert exp.delivery_report() == DeliveryReport()
    before = time.time()
    assert exp.export(make_spans(3)) is SpanExportResult.SUCCESS  # after two 503s
    assert exp.export(make_spans(2)) is SpanExportResult.FAILURE  # 404: dropped
    assert answered == [503, 503, 202, 404]
    report = exp.delivery_report()
    assert (report.delivered, report.retried, report.spooled, report.replayed) == (3, 6, 0, 0)
    assert report.dropped == 2 and dict(report.dropped_by_reason) == {"rejected": 2}
    assert report.last_error is not None and "rejected" in report.last_error
    assert report.last_error_at is not None and before <= report.last_error_at <= time.time()
    with pytest.raises(AttributeError):
        report.delivered = 5  # type: ignore[misc]  # frozen
    with pytest.raises(TypeError):
        report.dropped_by_reason["x"] = 1  # type: ignore[index]  # read-only
    assert any("2 span(s) dropped (rejected)" in w for w in warnings_of(caplog))
    exp.shutdown()
    summary = [r for r in caplog.records if "delivery report for" in r.getMessage()]
    assert len(summary) == 1 and summary[0].levelno == logging.WARNING  # something was lost
    assert "delivered=3 retried=6 spooled=0 replayed=0 dropped=2 (rejected=2)" in (
        summary[0].getMessage()
    )


def test_spooled_then_replayed_and_spool_off_drops(
    httpserver: HTTPServer, make_spans, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="otel_experiments")
    answered = scripted(httpserver, [401])  # credentials refused: kept for later
    exp = ExperimentEventsExporter(endpoint=httpserver.url_for("").rstrip("/"), timeout=5,
                                   background_replay=False)
    assert exp.export(make_spans(4)) is SpanExportResult.FAILURE
    assert exp.delivery_report().spooled == 4
    assert exp.force_flush() is True  # replayed: everything delivered after all
    report = exp.delivery_report()
    assert (report.delivered, report.spooled, report.replayed, report.dropped) == (4, 4, 4, 0)
    assert report.last_error == "HTTP 401 (credentials refused)"
    assert answered == [401, 202]
    exp.shutdown()
    summary = [r for r in caplog.records if "delivery report for" in r.getMessage()]
    assert summary[0].levelno == logging.INFO

    dead = ExperimentEventsExporter(endpoint=f"http://127.0.0.1:{free_port()}", timeout=1,
                                    spool_max_bytes=0, backoff_initial=0.01)
    assert dead.export(make_spans(2)) is SpanExportResult.FAILURE
    report = dead.delivery_report()
    assert dict(report.dropped_by_reason) == {"spool_off": 2}
    assert report.last_error is not None
    dead.shutdown()


def test_the_drop_warning_is_rate_limited_but_counts_everything(
    make_spans, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="otel_experiments")
    exp = ExperimentEventsExporter(endpoint=f"http://127.0.0.1:{free_port()}", timeout=1,
                                   spool_max_bytes=0, backoff_initial=0.01)
    for _ in range(5):
        exp.export(make_spans(1))
    tallies = [w for w in warnings_of(caplog) if "dropped in all" in w]
    assert len(tallies) == 1  # not one per export ...
    assert exp.delivery_report().dropped == 5  # ... but every span is counted
    exp.shutdown()
    assert "dropped=5 (spool_off=5)" in caplog.text  # and said at shutdown


def test_handle_sums_its_exporters_and_the_public_api_exports_the_report(
    httpserver: HTTPServer,
) -> None:
    scripted(httpserver, [])
    provider = TracerProvider()
    handle = otel_experiments.configure(
        tracer_provider=provider, endpoint=httpserver.url_for("").rstrip("/"),
        default_experiment=None,
    )
    try:
        tracer = provider.get_tracer("t")
        for i in range(7):
            with otel_experiments.start_observe("slug", f"job-{i}", experiment="exp-handle"):
                tracer.start_span("child").end()
        assert handle.force_flush(10_000) is True
        report = handle.delivery_report()
        assert isinstance(report, otel_experiments.DeliveryReport)
        assert "DeliveryReport" in otel_experiments.__all__
    finally:
        handle.shutdown()
    assert report.delivered == 7  # start_observe spans of the global provider are not ours
    assert DeliveryReport.combine([report, report]).delivered == 14
