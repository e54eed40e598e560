"""Group commit: the batch processor's overflow reaches the spool as few files, one fsync
each, and every body in them is replayed exactly once (partly delivered files too)."""

from __future__ import annotations

import gzip
import json
import os
import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from otel_experiments import ExperimentEventsExporter
from otel_experiments import attributes as A
from otel_experiments.export import spool as spool_mod
from otel_experiments.export.spool import Part, Spool, endpoint_key
from otel_experiments.export.spoolfile import pack, unpack
from otel_experiments.sdk.batch import ExperimentBatchSpanProcessor
from test_shutdown import BadBackend

API = "/api/v2/llm-obs/v1"


def make_spans(names: list[str], exp_id: str) -> list[ReadableSpan]:
    mem = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(mem))
    tracer = provider.get_tracer("gc")
    for name in names:
        tracer.start_span(name, attributes={A.EXPERIMENT_ID: exp_id}).end()
    provider.shutdown()
    return list(mem.get_finished_spans())


def _parts(n: int, spans: int = 3, pad: int = 0) -> list[Part]:
    return [Part(f"{API}/experiments/e-{i}/events", spans, f'{{"body":{i}}}'.encode() + b" " * pad)
            for i in range(n)]


def test_a_file_of_many_bodies_round_trips_and_a_damaged_one_is_refused() -> None:
    parts = _parts(5)
    encoding, back = unpack(pack(parts, "identity"))
    assert encoding == "identity" and list(back) == parts
    one = unpack(pack(parts[:1], "gzip"))  # a single body keeps the version 1 header
    assert one == ("gzip", (parts[0],))
    data = pack(parts, "identity")
    for damaged in (data[:-1], data + b"x", data.replace(b'"v":2', b'"v":3'),
                    data.replace(b"/api", b"api", 1)):
        with pytest.raises(ValueError):
            unpack(damaged)


def test_put_many_writes_one_file_with_one_fsync(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(spool_mod.os, "fsync", counting_fsync)
    spool = Spool(tmp_path, "http://127.0.0.1:1", 1 << 20)
    assert spool.put_many(_parts(200), "identity") == 600
    files = list(spool.directory.glob("*.body"))
    assert len(files) == 1 and files[0].name.split("-")[1] == "600"
    assert len(synced) == 2  # the file, then the directory: not two per body
    # files stay within an eighth of max_bytes: a small spool gets several files
    small = Spool(tmp_path / "small", "http://127.0.0.1:1", 64 * 1024)
    assert small.put_many(_parts(40, pad=500), "identity") == 120
    sizes = [p.stat().st_size for p in small.directory.glob("*.body")]
    assert len(sizes) > 1 and max(sizes) <= 8 * 1024 + 4096  # an eighth, plus a header


class Flaky:
    """Answers 202 to the first ``ok`` requests, 503 afterwards; records what it got."""

    def __init__(self, ok: int) -> None:
        self.ok = ok
        self.lock = threading.Lock()
        self.delivered: list[str] = []

    def __call__(self, request: Request) -> Response:
        with self.lock:
            if self.ok <= 0:
                return Response("busy", status=503, headers={"Retry-After": "30"})
            self.ok -= 1
            body = json.loads(gzip.decompress(request.get_data()))
            self.delivered += [s["name"] for s in body["data"]["attributes"]["spans"]]
        return Response("{}", status=202)


def test_a_partly_delivered_file_keeps_only_the_rest(httpserver: HTTPServer,
                                                     spool_dir: Path) -> None:
    flaky = Flaky(ok=2)
    httpserver.expect_request(re.compile(r".*/events$"), method="POST").respond_with_handler(flaky)
    endpoint = httpserver.url_for("").rstrip("/")
    exporter = ExperimentEventsExporter(endpoint=endpoint, timeout=1, max_spans_per_request=10,
                                        backoff_initial=0.01, backoff_max=0.02,
                                        background_replay=False)
    names = [f"s-{i}" for i in range(50)]
    parts = exporter.encode_for_spool(make_spans(names, "exp-gc"))
    assert len(parts) == 5  # 10 spans a body
    exporter.spool_parts(parts)
    directory = spool_dir / endpoint_key(endpoint)
    assert len(list(directory.glob("*.body"))) == 1  # five bodies, one file
    assert exporter.force_flush(2000) is False  # two bodies delivered, then 503
    assert sorted(flaky.delivered) == sorted(names[:20])
    (rest,) = directory.glob("*.body")
    assert rest.name.split("-")[1] == "30"  # only the three bodies not delivered
    flaky.ok = 100
    assert exporter.force_flush(5000) is True
    assert sorted(flaky.delivered) == sorted(names)  # each span exactly once
    assert not list(directory.glob("*.body*"))
    report = exporter.delivery_report()
    assert (report.spooled, report.replayed, report.dropped) == (50, 50, 0)
    exporter.shutdown()


def _overflow_run(spool_max_bytes: int | None, overflow_max_bytes: int | None,
                  n: int) -> tuple[ExperimentBatchSpanProcessor, float]:
    backend = BadBackend("hang")  # the worker is stuck: everything past the queue overflows
    exporter = ExperimentEventsExporter(endpoint=backend.url, timeout=30, shutdown_timeout=1.0,
                                        spool_max_bytes=spool_max_bytes, background_replay=False)
    processor = ExperimentBatchSpanProcessor(exporter, max_queue_size=256,
                                             schedule_delay_millis=10, max_export_batch_size=16,
                                             overflow_max_bytes=overflow_max_bytes)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("gc")
    slowest = 0.0
    for i in range(n):
        span = tracer.start_span(f"s-{i}", attributes={A.EXPERIMENT_ID: "exp-gc"})
        start = time.perf_counter()
        span.end()
        slowest = max(slowest, time.perf_counter() - start)
        if i % 8 == 7:
            time.sleep(0.001)  # fast (up to ~8,000 spans/s), not a tight loop only
    time.sleep(0.5)
    processor.shutdown()
    backend.stop.set()
    return processor, slowest


def test_the_overflow_is_written_in_few_files_and_nothing_is_lost(
        spool_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_fsync = os.fsync

    def slow_disk_fsync(fd: int) -> None:  # (a fast disk lets each body have its own file)
        time.sleep(0.02)
        real_fsync(fd)

    monkeypatch.setattr(spool_mod.os, "fsync", slow_disk_fsync)
    n = 3000
    processor, slowest = _overflow_run(None, None, n)
    report = processor.span_exporter.delivery_report()
    assert slowest < 0.05  # span.end() takes a lock, never the disk
    assert report.dropped == 0 and report.spooled == n
    files = list(spool_dir.rglob("*.body"))
    bodies = 0
    for file in files:
        _, parts = unpack(file.read_bytes())
        bodies += len(parts)
    assert sum(int(f.name.split("-")[1]) for f in files) == n
    assert len(files) < bodies  # group commit: several bodies a file


def test_overflow_max_bytes_zero_counts_the_overflow_as_dropped(spool_dir: Path) -> None:
    processor, _ = _overflow_run(None, 0, 500)
    report: Any = processor.span_exporter.delivery_report()
    assert report.dropped_by_reason.get("queue_full", 0) > 0
    assert report.spooled + report.dropped == 500
