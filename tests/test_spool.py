"""The on-disk spool: nothing is lost to a dead or failing backend, against real servers."""

from __future__ import annotations

import gzip
import json
import logging
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Tracer
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from helpers import cause_warnings, free_port, warnings_of
from otel_experiments import ExperimentEventsExporter
from otel_experiments import attributes as A
from otel_experiments import settings as config
from otel_experiments.export import replay as replay_mod
from otel_experiments.export.spool import Part, Spool, endpoint_key
from otel_experiments.settings import ExporterSettings

SECRET_KEY = "sk-spool-secret-0123456789"
SECRET_HEADER = "hdr-spool-secret-abcdef"
API = "/api/v2/llm-obs/v1"


class Backend:
    """A pytest-httpserver handler: answers from ``mode`` (a Response factory), records 2xx."""

    def __init__(self) -> None:
        self.mode: Callable[[], Response] = lambda: Response("{}", status=202)
        self.delay = 0.0
        self.received: list[dict[str, Any]] = []
        self.attempts = 0
        self.lock = threading.Lock()

    def __call__(self, request: Request) -> Response:
        raw = request.get_data()
        body = gzip.decompress(raw) if request.headers.get("Content-Encoding") == "gzip" else raw
        if self.delay:
            time.sleep(self.delay)
        response = self.mode()
        with self.lock:
            self.attempts += 1
            if 200 <= response.status_code < 300:
                self.received.append(
                    {"path": request.path, "headers": dict(request.headers), "body": json.loads(body)}
                )
        return response

    def span_names(self) -> list[str]:
        with self.lock:
            return [s["name"] for r in self.received for s in r["body"]["data"]["attributes"]["spans"]]


@pytest.fixture
def backend(httpserver: HTTPServer) -> Backend:
    handler = Backend()
    httpserver.expect_request(
        re.compile(r"^/api/v2/llm-obs/v1/experiments/.+/events$"), method="POST"
    ).respond_with_handler(handler)
    return handler


@pytest.fixture
def endpoint(httpserver: HTTPServer) -> str:
    return httpserver.url_for("").rstrip("/")


@pytest.fixture
def tracer() -> Iterator[tuple[Tracer, InMemorySpanExporter]]:
    mem = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: "spool"}))
    provider.add_span_processor(SimpleSpanProcessor(mem))
    yield provider.get_tracer("spool"), mem
    provider.shutdown()


SpanFactory = Callable[..., list[ReadableSpan]]


@pytest.fixture
def make_spans(tracer: tuple[Tracer, InMemorySpanExporter]) -> SpanFactory:
    t, mem = tracer

    def make(n: int, prefix: str, exp_id: str = "exp-spool", payload: str = "x" * 100) -> list[ReadableSpan]:
        mem.clear()
        for i in range(n):
            with t.start_as_current_span(f"{prefix}-{i}", attributes={A.EXPERIMENT_ID: exp_id}) as s:
                s.set_attribute(A.OUTPUT_VALUE, payload)
        return list(mem.get_finished_spans())

    return make


def exporter(endpoint: str, **kwargs: Any) -> ExperimentEventsExporter:
    kwargs.setdefault("timeout", 2.0)
    kwargs.setdefault("backoff_initial", 0.01)
    kwargs.setdefault("backoff_max", 0.05)
    # the order of requests is asserted: no background replay (tests/test_replay.py)
    kwargs.setdefault("background_replay", False)
    return ExperimentEventsExporter(endpoint=endpoint, **kwargs)


def spool_files(
    root: Path, endpoint: str, pattern: str = "*.body", credentials: tuple[str, ...] = ()
) -> list[Path]:
    return sorted((root / endpoint_key(endpoint, credentials)).glob(pattern))


def busy() -> Response:
    return Response("busy", status=503, headers={"Retry-After": "30"})


# ----------------------------------------------------------------------------- end to end


def test_dead_endpoint_spools_then_real_server_gets_every_span_once(
    spool_dir: Path,
    make_spans: SpanFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    pytest.importorskip("fastapi")
    import server_process

    caplog.set_level(logging.INFO, logger="otel_experiments")
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    exp_id = f"exp-{uuid.uuid4().hex[:10]}"
    exp = exporter(
        endpoint, timeout=1.5, api_key=SECRET_KEY, headers={"x-secret": SECRET_HEADER},
        max_spans_per_request=2,
    )
    first = make_spans(3, "first", exp_id)
    assert exp.export(first) is SpanExportResult.FAILURE
    files = spool_files(spool_dir, endpoint, credentials=(SECRET_KEY, f"x-secret={SECRET_HEADER}"))
    assert len(files) == 2  # 2 + 1 spans
    for path in files:
        raw = path.read_bytes()
        assert SECRET_KEY.encode() not in raw and SECRET_HEADER.encode() not in raw
        assert b"x-secret" not in raw and b"Authorization" not in raw
        header = json.loads(raw.split(b"\n", 1)[0])
        assert header["path"] == f"{API}/experiments/{exp_id}/events"
        assert header["encoding"] == "gzip" and header["spans"] in (1, 2)
        assert oct(path.stat().st_mode & 0o777) == oct(0o600)
    assert files[0].parent.stat().st_mode & 0o077 == 0
    assert f"spooled 3 span(s) for later delivery to {endpoint}" in caplog.text

    # the backend comes up on that very port (requiring the API key)
    monkeypatch.setattr(server_process, "free_port", lambda: port)
    monkeypatch.setattr(replay_mod, "REPLAY_INTERVAL_S", 0.0)
    with server_process.ServerProcess(f"sqlite:///{tmp_path / 'e.db'}", api_keys=[SECRET_KEY]) as server:
        assert server.port == port
        second = make_spans(2, "second", exp_id)
        assert exp.export(second) is SpanExportResult.SUCCESS
        assert spool_files(spool_dir, endpoint, "*") == []
        assert "delivered 3 spooled span(s)" in caplog.text
        names: list[str] = []
        with httpx.Client(base_url=endpoint, headers={"Authorization": f"Bearer {SECRET_KEY}"}) as c:
            url: str | None = f"{API}/experiments/{exp_id}/events?page[size]=2"
            while url:
                page = c.get(url).json()
                names += [s["attributes"]["name"] for s in page["data"]]
                url = page["links"].get("next")
    exp.shutdown()
    assert sorted(names) == sorted(s.name for s in first + second)  # each exactly once
    assert SECRET_KEY not in caplog.text and SECRET_HEADER not in caplog.text


def test_503_retry_after_beyond_deadline_is_spooled_and_replayed(
    spool_dir: Path, endpoint: str, backend: Backend, make_spans: SpanFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="otel_experiments")
    backend.mode = busy
    exp = exporter(endpoint, timeout=1.0, compression="none")
    start = time.monotonic()
    assert exp.export(make_spans(2, "a")) is SpanExportResult.FAILURE
    assert time.monotonic() - start < 0.5  # Retry-After 30 > deadline: no waiting
    assert len(spool_files(spool_dir, endpoint)) == 1
    assert "spooled 2 span(s)" in caplog.text
    backend.mode = lambda: Response("{}", status=202)
    # right after a failure, export() sends only its own spans (replay is throttled) ...
    assert exp.export(make_spans(1, "b")) is SpanExportResult.SUCCESS
    assert backend.span_names() == ["b-0"]
    assert len(spool_files(spool_dir, endpoint)) == 1
    # ... the next export after a success replays, oldest first; force_flush replays too
    assert exp.export(make_spans(1, "c")) is SpanExportResult.SUCCESS
    assert backend.span_names() == ["b-0", "a-0", "a-1", "c-0"]
    assert spool_files(spool_dir, endpoint, "*") == []
    assert exp.force_flush() is True
    exp.shutdown()


def test_force_flush_replays_and_a_new_process_replays_the_old_spool(
    spool_dir: Path, endpoint: str, backend: Backend, make_spans: SpanFactory
) -> None:
    backend.mode = busy
    old = exporter(endpoint, compression="gzip")
    assert old.export(make_spans(2, "old")) is SpanExportResult.FAILURE
    assert old.force_flush(timeout_millis=500) is False  # still failing: stays spooled
    old.shutdown()
    assert len(spool_files(spool_dir, endpoint)) == 1
    backend.mode = lambda: Response("{}", status=202)
    # another exporter (compression changed meanwhile) picks it up in force_flush
    new = exporter(endpoint, compression="none")
    assert new.force_flush() is True
    assert backend.span_names() == ["old-0", "old-1"]
    assert "Content-Encoding" not in backend.received[0]["headers"]
    assert spool_files(spool_dir, endpoint, "*") == []
    new.shutdown()


def test_400_is_dropped_not_spooled_and_a_healthy_run_touches_no_disk(
    spool_dir: Path, endpoint: str, backend: Backend, make_spans: SpanFactory
) -> None:
    exp = exporter(endpoint)
    assert exp.export(make_spans(2, "ok")) is SpanExportResult.SUCCESS
    assert exp.force_flush() is True
    assert not spool_dir.exists()
    backend.mode = lambda: Response('{"errors":["bad"]}', status=400)
    assert exp.export(make_spans(1, "bad")) is SpanExportResult.FAILURE
    assert not spool_dir.exists()
    exp.shutdown()


def test_shutdown_during_a_retry_wait_keeps_the_body(
    spool_dir: Path, endpoint: str, backend: Backend, make_spans: SpanFactory
) -> None:
    backend.mode = lambda: Response("busy", status=503, headers={"Retry-After": "3"})
    exp = exporter(endpoint, timeout=10)
    spans = make_spans(1, "late")
    result: list[SpanExportResult] = []
    worker = threading.Thread(target=lambda: result.append(exp.export(spans)))
    start = time.monotonic()
    worker.start()
    time.sleep(0.2)
    exp.shutdown()
    worker.join(5)
    assert result == [SpanExportResult.FAILURE] and time.monotonic() - start < 1.5
    assert len(spool_files(spool_dir, endpoint)) == 1


# ----------------------------------------------------------------------------- bounds and damage


def test_max_bytes_drops_the_oldest_with_a_warning_counting_lost_spans(
    spool_dir: Path, endpoint: str, backend: Backend, make_spans: SpanFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="otel_experiments")
    backend.mode = busy
    exp = exporter(endpoint, compression="none")
    assert exp.export(make_spans(2, "b0", payload="p" * 1000)) is SpanExportResult.FAILURE
    size = spool_files(spool_dir, endpoint)[0].stat().st_size
    exp.shutdown()
    exp = exporter(endpoint, compression="none", spool_max_bytes=int(size * 2.5))
    for batch in range(1, 4):
        assert exp.export(make_spans(2, f"b{batch}", payload="p" * 1000)) is SpanExportResult.FAILURE
    total = sum(p.stat().st_size for p in spool_files(spool_dir, endpoint, "*"))
    assert total <= size * 2.5
    lost = [r for r in caplog.records if "lost" in r.getMessage()]
    assert lost[0].levelno == logging.WARNING and "2 span(s) lost" in lost[0].getMessage()
    assert "spool full" in lost[0].getMessage()
    assert [r.levelno for r in lost[1:]] == [logging.DEBUG]  # rate-limited, still counted
    backend.mode = lambda: Response("{}", status=202)
    assert exp.force_flush() is False  # spans were lost: not everything was delivered
    assert backend.span_names() == ["b2-0", "b2-1", "b3-0", "b3-1"]  # the newest survive
    report = exp.delivery_report()
    assert report.dropped_by_reason == {"spool_full": 4} and report.replayed == 4  # b0, b1
    assert exp.force_flush() is True  # nothing lost since the last flush
    exp.shutdown()


def test_corrupt_files_are_moved_aside_and_the_rest_delivered(
    spool_dir: Path, endpoint: str, backend: Backend, make_spans: SpanFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="otel_experiments")
    backend.mode = busy
    exp = exporter(endpoint, max_spans_per_request=1)  # spooled gzip'd
    assert exp.export(make_spans(3, "c")) is SpanExportResult.FAILURE
    exp.shutdown()
    files = spool_files(spool_dir, endpoint)
    assert len(files) == 3
    files[1].write_bytes(b"\x00garbage, not a spool file")
    header = json.loads(files[2].read_bytes().split(b"\n", 1)[0])
    files[2].write_bytes(json.dumps(header).encode() + b"\nnot gzip")  # a damaged body
    exp = exporter(endpoint, compression="none")  # so the replay must gunzip it
    (files[0].parent / "00000000000000000000-1-1-x.body").write_bytes(b"")  # empty
    backend.mode = lambda: Response("{}", status=202)
    caplog.clear()
    assert exp.force_flush() is False  # three bodies were lost
    assert exp.delivery_report().dropped_by_reason == {"spool_corrupt": 3}
    assert backend.span_names() == ["c-0"]
    assert len(spool_files(spool_dir, endpoint, "*.corrupt")) == 3
    assert spool_files(spool_dir, endpoint) == []
    (warning,) = cause_warnings(caplog)
    assert "unreadable spool file" in warning and ".corrupt" in warning
    exp.shutdown()


def test_spool_max_bytes_zero_keeps_nothing_on_disk(
    spool_dir: Path, make_spans: SpanFactory, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="otel_experiments")
    dead = f"http://127.0.0.1:{free_port()}"
    exp = exporter(dead, timeout=0.2, spool_max_bytes=0)
    assert exp.export(make_spans(2, "z")) is SpanExportResult.FAILURE
    assert exp.force_flush() is False  # dropped: not delivered
    assert exp.delivery_report().dropped_by_reason == {"spool_off": 2}
    monkeypatch.setenv(config.OTEL_EXPERIMENTS_SPOOL_MAX_BYTES, "0")
    from_env = exporter(dead, timeout=0.2)
    assert from_env.settings.spool_max_bytes == 0
    assert from_env.export(make_spans(1, "z")) is SpanExportResult.FAILURE
    assert not spool_dir.exists()
    assert any("2 span(s) dropped (spool_off: OTEL_EXPERIMENTS_SPOOL_MAX_BYTES=0)" in w
               for w in warnings_of(caplog))
    exp.shutdown()
    from_env.shutdown()


@pytest.mark.parametrize("kind", ["parent-is-a-file", "read-only"])
def test_unwritable_spool_dir_warns_and_never_raises(
    tmp_path: Path, make_spans: SpanFactory, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="otel_experiments")
    if kind == "parent-is-a-file":
        (tmp_path / "file").write_text("x")
        root = tmp_path / "file" / "spool"
    else:
        if os.geteuid() == 0:
            pytest.skip("root writes to read-only directories")
        root = tmp_path / "ro"
        root.mkdir()
        root.chmod(0o500)
    dead = f"http://127.0.0.1:{free_port()}"
    exp = exporter(dead, timeout=0.2, spool_dir=root)
    assert exp.export(make_spans(2, "ro")) is SpanExportResult.FAILURE
    assert exp.export(make_spans(2, "ro")) is SpanExportResult.FAILURE
    assert exp.force_flush() is False  # nothing to replay, but 4 spans were lost
    assert exp.delivery_report().dropped_by_reason == {"spool_error": 4}
    spool_warnings = [w for w in warnings_of(caplog) if "cannot write to the spool" in w]
    assert len(spool_warnings) == 1 and "2 span(s) dropped" in spool_warnings[0]
    exp.shutdown()


_DISK_FULL = """
import logging, resource, signal, sys
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from otel_experiments import ExperimentEventsExporter

logging.basicConfig(level=logging.WARNING)
mem = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(mem))
with provider.get_tracer("t").start_as_current_span("big", attributes={"experiment.id": "e"}) as s:
    s.set_attribute("output.value", "y" * 5000)
exp = ExperimentEventsExporter(endpoint=sys.argv[1], timeout=0.2, compression="none")
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (1000, resource.RLIM_INFINITY))
print("result", exp.export(mem.get_finished_spans()).name, flush=True)
exp.shutdown()
"""


def test_disk_full_while_spooling_warns_and_leaves_no_partial_file(
    spool_dir: Path, tmp_path: Path
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    script = tmp_path / "full.py"
    script.write_text(_DISK_FULL)
    done = subprocess.run([sys.executable, str(script), dead], capture_output=True, text=True,
                          timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    assert "result FAILURE" in done.stdout
    assert "cannot write to the spool directory" in done.stderr
    assert "File too large" in done.stderr and "1 span(s) dropped" in done.stderr
    assert "Traceback" not in done.stderr
    assert list((spool_dir / endpoint_key(dead)).iterdir()) == []  # no partial file left


# ----------------------------------------------------------------------------- sharing


_SENDER = """
import logging, sys, time
from pathlib import Path
from otel_experiments import ExperimentEventsExporter

logging.basicConfig(level=logging.INFO)  # "delivered N spooled span(s)" tells who sent what
exp = ExperimentEventsExporter(endpoint=sys.argv[1], timeout=20)
print("ready", flush=True)
go = Path(sys.argv[3])
while not go.exists():
    time.sleep(0.002)
print("flushed", exp.force_flush(20000), flush=True)
exp.shutdown()
"""


def test_two_processes_sharing_a_spool_never_send_a_file_twice(
    spool_dir: Path, endpoint: str, backend: Backend, make_spans: SpanFactory, tmp_path: Path
) -> None:
    backend.mode = busy
    exp = exporter(endpoint, max_spans_per_request=1)
    spans = make_spans(30, "shared")
    assert exp.export(spans) is SpanExportResult.FAILURE
    exp.shutdown()
    assert len(spool_files(spool_dir, endpoint)) == 30
    backend.mode = lambda: Response("{}", status=202)
    backend.delay = 0.01
    script = tmp_path / "sender.py"
    script.write_text(_SENDER)
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), endpoint, str(i), str(go)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for i in (1, 2)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        go.touch()
        outputs = [proc.communicate(timeout=30) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    sent = []
    for (out, err), proc in zip(outputs, procs, strict=True):
        assert proc.returncode == 0, err
        assert "flushed True" in out, (out, err)
        sent.append(sum(int(n) for n in re.findall(r"delivered (\d+) spooled span", err)))
    names = backend.span_names()
    assert sorted(names) == sorted(s.name for s in spans)  # every file sent exactly once
    # one replay per spool at a time (a flock): the other flush waited for it, then
    # found nothing left; the claims by rename keep each file single anyway
    assert sum(sent) == 30, sent
    assert spool_files(spool_dir, endpoint, "*") == []


def test_claims_stale_ones_are_reclaimed_and_endpoints_are_separate(
    tmp_path: Path, endpoint: str, backend: Backend
) -> None:
    spool = Spool(tmp_path, endpoint, 1 << 20)
    body = b'{"data":{"type":"experiment_events","attributes":{"spans":[],"metrics":[]}}}'
    path = f"{API}/experiments/e/events"
    for _ in range(3):
        assert spool.put(path, body, 0, "identity")
    first, second, third = spool.pending()
    claimed = spool.claim(first)
    assert claimed is not None and claimed.parts == (Part(path, 0, body),)
    assert spool.claim(first) is None  # already taken
    assert spool.pending() == [second, third]  # a live, fresh claim is left alone
    # a claim whose process has exited, and one too old, are both taken over
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead_pid = int(done.stdout)
    os.rename(claimed.claimed, spool.directory / f"{first}.claim-{dead_pid}-{int(time.time() * 1000)}")
    now_ms = int(time.time() * 1000)
    os.rename(spool.directory / second,
              spool.directory / f"{second}.claim-{os.getpid()}-{now_ms - 3_600_000}")
    assert spool.pending() == [first, second, third]
    # another endpoint has its own directory: nothing of this one is replayed there
    other = ExperimentEventsExporter(endpoint=f"http://127.0.0.1:{free_port()}", spool_dir=tmp_path)
    assert Spool(tmp_path, other.settings.endpoint, 1 << 20).pending() == []
    assert endpoint_key("http://u:pw@h:1/x/") == endpoint_key("http://h:1/x")
    other.shutdown()


# ----------------------------------------------------------------------------- configuration


def test_spool_settings_argument_env_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="otel_experiments")
    monkeypatch.delenv(config.OTEL_EXPERIMENTS_SPOOL_DIR)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    defaults = ExporterSettings.resolve(env={})
    assert defaults.spool_dir == str(tmp_path / "xdg" / "otel-experiments" / "spool")
    assert defaults.spool_max_bytes == 64 * 1024 * 1024
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert ExporterSettings.resolve(env={}).spool_dir == str(
        tmp_path / "home" / ".cache" / "otel-experiments" / "spool"
    )
    env = {
        config.OTEL_EXPERIMENTS_SPOOL_DIR: str(tmp_path / "from-env"),
        config.OTEL_EXPERIMENTS_SPOOL_MAX_BYTES: "1000",
    }
    from_env = ExporterSettings.resolve(env=env)
    assert (from_env.spool_dir, from_env.spool_max_bytes) == (str(tmp_path / "from-env"), 1000)
    arg = ExporterSettings.resolve(env=env, spool_dir=tmp_path / "arg", spool_max_bytes=0)
    assert (arg.spool_dir, arg.spool_max_bytes) == (str(tmp_path / "arg"), 0)
    bad = ExporterSettings.resolve(env={config.OTEL_EXPERIMENTS_SPOOL_MAX_BYTES: "lots"})
    assert bad.spool_max_bytes == config.DEFAULT_SPOOL_MAX_BYTES
    assert "OTEL_EXPERIMENTS_SPOOL_MAX_BYTES='lots'" in caplog.text
    for kwargs in ({"spool_max_bytes": -1}, {"spool_max_bytes": True}, {"spool_dir": " "}):
        with pytest.raises(ValueError, match="spool"):
            ExporterSettings.resolve(env={}, **kwargs)  # type: ignore[arg-type]
    exp = ExperimentEventsExporter(spool_dir=tmp_path / "x", spool_max_bytes=123)
    assert (exp.settings.spool_dir, exp.settings.spool_max_bytes) == (str(tmp_path / "x"), 123)
    exp.shutdown()


# ----------------------------------------------------------------------------- credentials


def test_refused_credentials_keep_the_body_for_when_they_are_accepted(
    spool_dir: Path, endpoint: str, backend: Backend, make_spans: SpanFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="otel_experiments")
    backend.mode = lambda: Response("unknown key", status=401)
    exp = exporter(endpoint, api_key=SECRET_KEY)
    assert exp.export(make_spans(2, "denied")) is SpanExportResult.FAILURE
    assert backend.attempts == 1  # not retried now: retrying cannot fix a key
    assert len(spool_files(spool_dir, endpoint, credentials=(SECRET_KEY,))) == 1
    assert "refused the credentials (HTTP 401): unknown key" in caplog.text
    assert SECRET_KEY not in caplog.text
    backend.mode = lambda: Response("{}", status=202)  # the server now accepts the key
    assert exp.force_flush() is True
    assert sorted(backend.span_names()) == ["denied-0", "denied-1"]
    exp.shutdown()


def test_a_spool_is_only_replayed_with_the_credentials_that_wrote_it(
    spool_dir: Path, endpoint: str, backend: Backend, make_spans: SpanFactory
) -> None:
    backend.mode = busy
    first = exporter(endpoint, api_key="key-of-app-a")
    assert first.export(make_spans(1, "app-a")) is SpanExportResult.FAILURE
    first.shutdown()
    backend.mode = lambda: Response("{}", status=202)
    other = exporter(endpoint, api_key="key-of-app-b")
    assert other.force_flush() is True
    assert backend.span_names() == []  # app A's spans never go out under app B's key
    other.shutdown()
    same = exporter(endpoint, api_key="key-of-app-a")
    assert same.force_flush() is True
    assert backend.span_names() == ["app-a-0"]
    assert backend.received[0]["headers"]["Authorization"] == "Bearer key-of-app-a"
    same.shutdown()


# ----------------------------------------------------------------------------- bad bodies


def test_one_span_the_server_refuses_costs_only_itself(
    spool_dir: Path, endpoint: str, httpserver: HTTPServer, make_spans: SpanFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="otel_experiments")
    spans = make_spans(8, "batch")
    poison = spans[5].name
    delivered: list[str] = []
    requests = 0

    def refuse_the_poison(request: Request) -> Response:
        nonlocal requests
        requests += 1
        raw = request.get_data()
        body = gzip.decompress(raw) if request.headers.get("Content-Encoding") == "gzip" else raw
        names = [sp["name"] for sp in json.loads(body)["data"]["attributes"]["spans"]]
        if poison in names:
            return Response('{"errors":[{"detail":"span rejected"}]}', status=400)
        delivered.extend(names)
        return Response("{}", status=202)

    httpserver.expect_request(
        re.compile(r"^/api/v2/llm-obs/v1/experiments/.+/events$"), method="POST"
    ).respond_with_handler(refuse_the_poison)
    exp = exporter(endpoint)
    try:
        assert exp.export(spans) is SpanExportResult.FAILURE
    finally:
        exp.shutdown()
    assert sorted(delivered) == sorted(sp.name for sp in spans if sp.name != poison)
    assert requests <= 1 + 2 * 3  # halving down to the one span: O(log n) requests
    assert "refused 1 span(s) of a batch of 8" in caplog.text
    assert spool_files(spool_dir, endpoint) == []  # a refused span is not spooled


def test_an_unexpected_send_error_keeps_every_body_and_counts_them(
    spool_dir: Path, backend: Backend, endpoint: str, make_spans: SpanFactory,
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # An internal error cannot be produced through the network: the one patched part.
    caplog.set_level(logging.WARNING, logger="otel_experiments")
    exp = exporter(endpoint, max_spans_per_request=2)

    def broken(*_args: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(exp._delivery, "send_encoded", broken)
    assert exp.export(make_spans(6, "u")) is SpanExportResult.FAILURE
    assert any("spooled 6 span(s)" in w for w in warnings_of(caplog))  # not 4: none discarded
    monkeypatch.undo()
    assert exp.force_flush() is True
    assert sorted(backend.span_names()) == sorted(f"u-{i}" for i in range(6))
    exp.shutdown()
