"""Replay without traffic: spooled spans reach the backend as soon as it answers again,
though the application never exports another span (real server subprocess)."""

from __future__ import annotations

import os
import re
import signal
import time
import uuid
from pathlib import Path

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from helpers import free_port
from otel_experiments import ExperimentEventsExporter
from otel_experiments import attributes as A
from otel_experiments.export import spool as spool_mod
from otel_experiments.export.spool import endpoint_key

API = "/api/v2/llm-obs/v1"


def spans(n: int, exp_id: str) -> list[ReadableSpan]:
    mem = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(mem))
    tracer = provider.get_tracer("replay")
    for i in range(n):
        with tracer.start_as_current_span(f"s-{i}", attributes={A.EXPERIMENT_ID: exp_id}):
            pass
    provider.shutdown()
    return list(mem.get_finished_spans())


def stored(base_url: str, exp_id: str) -> int:
    r = httpx.get(f"{base_url}{API}/experiments/{exp_id}/summary", timeout=5)
    return int(r.json()["data"]["attributes"]["span_count"]) if r.status_code == 200 else 0


def test_spooled_spans_are_delivered_when_the_backend_returns_without_new_traffic(
    spool_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("fastapi")
    import server_process as testing

    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    exp_id = f"exp-{uuid.uuid4().hex[:10]}"
    exp = ExperimentEventsExporter(endpoint=endpoint, timeout=2, max_spans_per_request=10,
                                   backoff_initial=0.05)
    assert exp.export(spans(30, exp_id)) is SpanExportResult.FAILURE  # nothing listens
    # (the background replay may have claimed one already: "*.body.claim-...")
    assert len(list((spool_dir / endpoint_key(endpoint)).glob("*.body*"))) == 3
    monkeypatch.setattr(testing, "free_port", lambda: port)
    with testing.ServerProcess(f"sqlite:///{tmp_path / 'r.db'}") as server:
        up = time.monotonic()
        count = 0
        while time.monotonic() - up < 15 and count < 30:  # bounded; no export() here
            time.sleep(0.1)
            count = stored(server.base_url, exp_id)
        latency = time.monotonic() - up
        assert count == 30, "the background replay never delivered the spooled spans"
        print(f"replay latency after the backend came back: {latency:.2f}s")
        assert latency < 8.0  # backoff tops out at 5 s
        report = exp.delivery_report()
        assert report.replayed == 30 and report.spooled == 30 and report.dropped == 0
        assert list((spool_dir / endpoint_key(endpoint)).glob("*")) == []
    exp.shutdown()


def test_spool_writes_are_fsynced_before_and_after_the_rename(
    spool_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}") if os.path.exists("/proc") else "?")
        real_fsync(fd)

    monkeypatch.setattr(spool_mod.os, "fsync", fsync)
    spool = spool_mod.Spool(spool_dir, "http://127.0.0.1:9", 1 << 20)
    assert spool.put("/x", b"{}", 1, "identity")
    assert len(synced) == 2
    if os.path.exists("/proc"):
        assert ".tmp-" in synced[0]  # the data, under its temporary name
        assert synced[1] == str(spool.directory)  # then the directory holding the rename


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_forked_child_has_no_replay_thread_and_does_not_hold_the_spool_lock(
    spool_dir: Path,
) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    exp = ExperimentEventsExporter(endpoint=endpoint, timeout=1, backoff_initial=0.05)
    assert exp.export(spans(1, "exp-fork")) is SpanExportResult.FAILURE  # spooled: replay runs
    replayer = exp._replayer
    assert replayer is not None and replayer._thread is not None
    assert replayer._lock_spool()  # as if the parent were mid-pass at fork time
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            signal.alarm(10)
            child = exp._replayer
            if child is not None and child._thread is None and child._lock_fd is None \
                    and child.lock.acquire(blocking=False):
                code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    replayer._unlock_spool()
    # the child closed its copy of the descriptor: the lock is free again for everyone
    assert replayer._lock_spool()
    replayer._unlock_spool()
    exp.shutdown()


def test_a_new_process_replays_what_an_old_one_left_without_any_export(
    spool_dir: Path, httpserver: HTTPServer
) -> None:
    received: list[int] = []

    def handler(request: Request) -> Response:
        received.append(len(request.get_data()))
        return Response("{}", status=503 if len(received) == 1 else 202)

    httpserver.expect_request(re.compile(r".*/events$"), method="POST").respond_with_handler(handler)
    endpoint = httpserver.url_for("").rstrip("/")
    old = ExperimentEventsExporter(endpoint=endpoint, timeout=0.3, background_replay=False,
                                   backoff_initial=1.0)
    assert old.export(spans(2, "exp-left")) is SpanExportResult.FAILURE  # 503: spooled
    old.shutdown()
    healthy = ExperimentEventsExporter(endpoint=f"http://127.0.0.1:{free_port()}")
    healthy.shutdown()
    assert not list(spool_dir.glob(".*lock"))  # an empty spool: no lock file, nothing on disk
    new = ExperimentEventsExporter(endpoint=endpoint, timeout=2)  # no export, no flush
    deadline = time.monotonic() + 10
    while len(received) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(received) == 2 and new.delivery_report().replayed == 2
    new.shutdown()
