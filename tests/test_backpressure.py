"""Back-pressure: a backend that never answers cannot grow memory or block span.end()."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from otel_experiments import ExperimentEventsExporter
from otel_experiments import attributes as A
from otel_experiments.sdk.batch import ExperimentBatchSpanProcessor
from test_shutdown import BadBackend

N = 200


def run(spool_max_bytes: int | None) -> tuple[ExperimentBatchSpanProcessor, float, int]:
    backend = BadBackend("hang")
    exporter = ExperimentEventsExporter(endpoint=backend.url, timeout=30, shutdown_timeout=1.0,
                                        spool_max_bytes=spool_max_bytes, compression="none")
    processor = ExperimentBatchSpanProcessor(exporter, max_queue_size=8,
                                             schedule_delay_millis=10, max_export_batch_size=4)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("bp")
    slowest = 0.0
    peak = 0
    for i in range(N):
        span = tracer.start_span(f"s-{i}", attributes={A.EXPERIMENT_ID: "exp-bp"})
        start = time.perf_counter()
        span.end()
        slowest = max(slowest, time.perf_counter() - start)
        spill = processor._spill
        assert spill is not None
        peak = max(peak, len(processor._queue) + len(spill.spans))
    time.sleep(0.3)  # let the spill thread write
    start = time.monotonic()
    processor.shutdown()
    assert time.monotonic() - start < 1.0 + 1.0  # the shutdown budget, plus scheduling
    backend.stop.set()
    return processor, slowest, peak


def test_overflow_goes_to_the_spool_and_end_never_blocks(spool_dir: Path) -> None:
    processor, slowest, peak = run(None)
    report = processor.span_exporter.delivery_report()
    assert slowest < 0.05  # a lock, never the network or the disk
    assert peak <= 16  # two queues of 8, whatever the backend does
    assert report.delivered == 0
    # every span is accounted for: spooled (the overflow, and the rest at shutdown) or
    # dropped as queue_full when both queues were full; nothing vanished
    assert report.spooled + report.dropped == N
    assert set(report.dropped_by_reason) <= {"queue_full"}
    assert report.spooled > 8  # more than the queue ever held: the overflow was spooled
    assert len(list(spool_dir.rglob("*.body"))) > 0


def test_without_a_spool_overflow_is_counted_as_dropped(spool_dir: Path) -> None:
    processor, slowest, peak = run(0)
    report = processor.span_exporter.delivery_report()
    assert slowest < 0.05 and peak <= 16
    assert report.dropped == N and report.spooled == 0
    assert report.dropped_by_reason["queue_full"] > 0
    assert set(report.dropped_by_reason) <= {"queue_full", "spool_off"}
    assert not spool_dir.exists()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_forked_child_batches_and_delivers_its_own_spans(httpserver: HTTPServer) -> None:
    """Pre-fork servers (gunicorn --preload): the processor is built in the parent."""
    names: list[str] = []

    def handler(request: Request) -> Response:
        body = json.loads(request.get_data())
        names.extend(s["name"] for s in body["data"]["attributes"]["spans"])
        return Response("{}", status=202)

    httpserver.expect_request(re.compile(r".*/events$"), method="POST").respond_with_handler(handler)
    exporter = ExperimentEventsExporter(endpoint=httpserver.url_for("").rstrip("/"), timeout=5,
                                        compression="none")
    processor = ExperimentBatchSpanProcessor(exporter, schedule_delay_millis=5000)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("fork")
    tracer.start_span("parent-queued", attributes={A.EXPERIMENT_ID: "exp-fork"}).end()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            signal.alarm(15)
            tracer.start_span("child", attributes={A.EXPERIMENT_ID: "exp-fork"}).end()
            if processor.force_flush(10_000):
                code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert names == ["child"]  # the parent's queued span is the parent's to send
    assert processor.force_flush(10_000) is True
    assert sorted(names) == ["child", "parent-queued"]  # each exactly once
    processor.shutdown()
