"""The exporter against hostile or broken backends and spool directories (127.0.0.1 only).

Raw-socket servers trickle bytes, send huge bodies, redirect; the export timeout must
bound every ``export()``; one bad experiment or span must not cost the others; garbage
in the spool directory must never block or exhaust the exporter; a fork while another
thread holds the exporter's locks must not hang the child.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from helpers import cause_warnings, warnings_of
from otel_experiments import ExperimentEventsExporter
from otel_experiments import attributes as A
from otel_experiments.export.spool import Spool, endpoint_key

SLACK = 0.35  # seconds allowed past the export timeout
SECRET_KEY = "sk-robust-secret-0123456789"

Handler = Callable[[socket.socket, threading.Event], None]


class RawServer:
    """A tiny HTTP/1.1 server on 127.0.0.1: ``handler(conn, stop)`` per connection."""

    def __init__(self, handler: Handler, max_conns: int = 200) -> None:
        self.handler = handler
        self.stop = threading.Event()
        self.requests: list[bytes] = []  # request bodies, in arrival order
        self.connections = 0
        self.lock = threading.Lock()
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(32)
        self._sock.settimeout(0.1)
        self.port = int(self._sock.getsockname()[1])
        self._max_conns = max_conns
        self._threads: list[threading.Thread] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        deadline = time.monotonic() + 120  # bounded, whatever happens
        while not self.stop.is_set() and self.connections < self._max_conns \
                and time.monotonic() < deadline:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            with self.lock:
                self.connections += 1
            thread = threading.Thread(target=self._run, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()
        self._sock.close()

    def _run(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(5)
            self.handler(conn, self.stop)
        except OSError:
            pass
        finally:
            conn.close()

    def read_request(self, conn: socket.socket) -> bool:
        """Read one request (headers and Content-Length body); ``False`` on EOF."""
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return False
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        while len(body) < length:
            chunk = conn.recv(65536)
            if not chunk:
                return False
            body += chunk
        with self.lock:
            self.requests.append(body)
        return True

    def close(self) -> None:
        self.stop.set()
        self._thread.join(5)
        for thread in self._threads:
            thread.join(5)


@pytest.fixture
def serve() -> Iterator[Callable[[Handler], RawServer]]:
    servers: list[RawServer] = []

    def make(handler: Handler) -> RawServer:
        server = RawServer(handler)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


def accepted(server: RawServer, keep_alive: bool = True) -> Handler:
    """Answer every request on the connection with 202."""

    def handler(conn: socket.socket, stop: threading.Event) -> None:
        while not stop.is_set() and server.read_request(conn):
            conn.sendall(b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n{}")
            if not keep_alive:
                return

    return handler


@pytest.fixture
def make_spans() -> Iterator[Callable[..., list[ReadableSpan]]]:
    mem = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(mem))
    tracer = provider.get_tracer("robustness")

    def make(n: int = 1, exp_id: str = "exp-1", **attrs: Any) -> list[ReadableSpan]:
        mem.clear()
        for i in range(n):
            with tracer.start_as_current_span(f"task-{i}", attributes={A.EXPERIMENT_ID: exp_id}) as s:
                for key, value in attrs.items():
                    s.set_attribute(key, value)
        return list(mem.get_finished_spans())

    yield make
    provider.shutdown()


def exporter(endpoint: str, **kwargs: Any) -> ExperimentEventsExporter:
    kwargs.setdefault("timeout", 1.0)
    kwargs.setdefault("backoff_initial", 0.01)
    kwargs.setdefault("backoff_max", 0.05)
    kwargs.setdefault("compression", "none")
    # request counts are asserted: no background replay (tests/test_replay.py covers it)
    kwargs.setdefault("background_replay", False)
    return ExperimentEventsExporter(endpoint=endpoint, **kwargs)


def spooled(spool_dir: Path, endpoint: str, *credentials: str) -> list[Path]:
    return sorted((spool_dir / endpoint_key(endpoint, credentials)).glob("*.body"))


def span_count(bodies: list[bytes]) -> int:
    total = 0
    for body in bodies:
        body.decode("utf-8")  # strict: valid UTF-8
        total += len(orjson.loads(body)["data"]["attributes"]["spans"])
    return total


# ----------------------------------------------------------------------------- deadline


def trickle(server: RawServer, what: str, release: threading.Event | None = None) -> Handler:
    """Trickle the first response (its body or its headers) one piece every 0.05 s."""

    def handler(conn: socket.socket, stop: threading.Event) -> None:
        if not server.read_request(conn):
            return
        if server.connections > 1 and release is not None:
            conn.sendall(b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n{}")
            accepted(server)(conn, stop)
            return
        if what == "body":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
        else:
            conn.sendall(b"HTTP/1.1 200 OK\r\n")
        end = time.monotonic() + 20
        while not stop.is_set() and time.monotonic() < end:
            if release is not None and release.is_set():
                return
            conn.sendall(b"x" if what == "body" else b"X-Pad: y\r\n")
            time.sleep(0.05)

    return handler


@pytest.mark.parametrize("what", ["body", "headers"])
def test_a_trickling_backend_cannot_hold_export_past_its_timeout(
    serve: Callable[[Handler], RawServer],
    make_spans: Callable[..., list[ReadableSpan]],
    spool_dir: Path,
    what: str,
) -> None:
    server = serve(lambda conn, stop: trickle(server, what)(conn, stop))
    exp = exporter(server.url, timeout=0.6)
    start = time.monotonic()
    assert exp.export(make_spans(2)) is SpanExportResult.FAILURE
    assert time.monotonic() - start < 0.6 + SLACK
    assert len(spooled(spool_dir, server.url)) == 1  # kept for later, not lost
    exp.shutdown()


def test_an_abandoned_request_blocks_new_ones_until_it_ends(
    serve: Callable[[Handler], RawServer],
    make_spans: Callable[..., list[ReadableSpan]],
    spool_dir: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="otel_experiments")
    release = threading.Event()
    server = serve(lambda conn, stop: trickle(server, "headers", release)(conn, stop))
    exp = exporter(server.url, timeout=0.5)
    assert exp.export(make_spans(1)) is SpanExportResult.FAILURE
    # the first request still hangs: no second thread, the body goes to the spool at once
    start = time.monotonic()
    assert exp.export(make_spans(2)) is SpanExportResult.FAILURE
    assert time.monotonic() - start < 0.3
    assert server.connections == 1
    assert len(spooled(spool_dir, server.url)) == 2
    assert any("still running" in w for w in warnings_of(caplog))
    release.set()  # the backend gives up: the abandoned request ends
    result = SpanExportResult.FAILURE
    for _ in range(50):  # bounded
        time.sleep(0.1)
        exp._replayer.last_ok = True  # replay now, not REPLAY_INTERVAL_S later
        result = exp.export(make_spans(1))
        if result is SpanExportResult.SUCCESS:
            break
    assert result is SpanExportResult.SUCCESS
    assert spooled(spool_dir, server.url) == []  # the spooled bodies were replayed
    assert span_count(server.requests[1:]) == 1 + 2 + 1
    exp.shutdown()


def test_application_exit_is_bounded_by_the_export_timeout(
    serve: Callable[[Handler], RawServer], spool_dir: Path
) -> None:
    """configure() + BatchSpanProcessor: the SDK's exit flush runs export() unbounded."""
    server = serve(lambda conn, stop: trickle(server, "body")(conn, stop))
    code = textwrap.dedent(
        f"""
        import otel_experiments as oe
        oe.configure(endpoint={server.url!r}, timeout=1.0, default_experiment=None)
        with oe.start_observe("slug", "job", experiment="exp-1"):
            pass
        """
    )
    env = dict(os.environ, OTEL_EXPERIMENTS_SPOOL_DIR=str(spool_dir))
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", code], env=env, timeout=60, capture_output=True)
    elapsed = time.monotonic() - start
    assert proc.returncode == 0, proc.stderr.decode()
    assert elapsed < 8.0  # interpreter start-up + 1 s export timeout; was ~20 s
    assert server.connections == 1
    assert len(spooled(spool_dir, server.url)) == 1


def test_a_huge_2xx_body_is_not_read(
    serve: Callable[[Handler], RawServer], make_spans: Callable[..., list[ReadableSpan]]
) -> None:
    sent = [0]

    def handler(conn: socket.socket, stop: threading.Event) -> None:
        if not server.read_request(conn):
            return
        size = 1 << 30
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
        chunk = b"x" * (1 << 16)
        conn.settimeout(1.0)
        while sent[0] < size and not stop.is_set():
            try:
                conn.sendall(chunk)
            except OSError:  # the client closed the connection, or stopped reading
                return
            sent[0] += len(chunk)

    server = serve(handler)
    exp = exporter(server.url, timeout=5.0)
    start = time.monotonic()
    assert exp.export(make_spans(1)) is SpanExportResult.SUCCESS
    assert time.monotonic() - start < 2.0
    exp.shutdown()
    # what the server managed to send: socket buffers, not a gigabyte
    assert sent[0] < 64 << 20


def test_an_error_body_is_read_bounded_for_the_message(
    serve: Callable[[Handler], RawServer],
    make_spans: Callable[..., list[ReadableSpan]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="otel_experiments")

    def handler(conn: socket.socket, stop: threading.Event) -> None:
        if not server.read_request(conn):
            return
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: %d\r\n\r\n" % (1 << 30))
        conn.sendall(b"span 0 is invalid " + b"y" * 200_000)
        conn.settimeout(1.0)
        while not stop.is_set():
            try:
                conn.sendall(b"z" * 65536)
            except OSError:
                return

    server = serve(handler)
    exp = exporter(server.url, timeout=5.0)
    start = time.monotonic()
    assert exp.export(make_spans(1)) is SpanExportResult.FAILURE
    assert time.monotonic() - start < 2.0
    (warning,) = cause_warnings(caplog)
    assert "HTTP 400" in warning and "span 0 is invalid" in warning and len(warning) < 1000
    exp.shutdown()


# ----------------------------------------------------------------------------- retries, redirects


def test_retry_after_zero_still_backs_off(
    serve: Callable[[Handler], RawServer],
    make_spans: Callable[..., list[ReadableSpan]],
    spool_dir: Path,
) -> None:
    def handler(conn: socket.socket, stop: threading.Event) -> None:
        while not stop.is_set() and server.read_request(conn):
            conn.sendall(b"HTTP/1.1 503 Busy\r\nRetry-After: 0\r\nContent-Length: 0\r\n\r\n")

    server = serve(handler)
    exp = exporter(server.url, timeout=1.0, backoff_initial=0.1, backoff_max=0.2)
    assert exp.export(make_spans(1)) is SpanExportResult.FAILURE
    assert 2 <= len(server.requests) <= 15  # was thousands: a hot loop
    assert len(spooled(spool_dir, server.url)) == 1
    exp.shutdown()


def test_a_redirect_keeps_the_body_and_warns_once_with_the_location(
    serve: Callable[[Handler], RawServer],
    make_spans: Callable[..., list[ReadableSpan]],
    spool_dir: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="otel_experiments")
    location = f"https://user:pa55word@127.0.0.1:9/moved?token={SECRET_KEY}"

    def handler(conn: socket.socket, stop: threading.Event) -> None:
        while not stop.is_set() and server.read_request(conn):
            conn.sendall(
                b"HTTP/1.1 308 Permanent Redirect\r\nLocation: "
                + location.encode()
                + b"\r\nContent-Length: 0\r\n\r\n"
            )

    server = serve(handler)
    exp = exporter(server.url, api_key=SECRET_KEY)
    for _ in range(2):
        assert exp.export(make_spans(1)) is SpanExportResult.FAILURE
    assert len(server.requests) == 2  # not retried within an export
    assert len(spooled(spool_dir, server.url, SECRET_KEY)) == 2  # kept, not dropped
    redirect = [w for w in warnings_of(caplog) if "HTTP 308" in w]
    assert len(redirect) == 1
    assert "127.0.0.1:9/moved" in redirect[0]
    assert SECRET_KEY not in redirect[0] and "pa55word" not in redirect[0]
    exp.shutdown()


# ----------------------------------------------------------------------------- bad input


def test_invalid_experiment_ids_cost_only_their_own_spans(
    serve: Callable[[Handler], RawServer],
    make_spans: Callable[..., list[ReadableSpan]],
    spool_dir: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="otel_experiments")
    server = serve(lambda conn, stop: accepted(server)(conn, stop))
    exp = exporter(server.url)
    batch = (
        make_spans(3, "exp-good-1")
        + make_spans(1, "exp-\ud800")
        + make_spans(1, "e" * 70_000)
        + make_spans(2, "exp-good-2")
    )
    assert exp.export(batch) is SpanExportResult.FAILURE
    assert span_count(server.requests) == 5
    assert spooled(spool_dir, server.url) == []
    warnings = [w for w in warnings_of(caplog) if "invalid experiment.id" in w]
    assert len(warnings) == 1 and len(warnings[0]) < 400
    exp.shutdown()


def test_an_error_in_one_experiment_does_not_affect_the_others(
    serve: Callable[[Handler], RawServer],
    make_spans: Callable[..., list[ReadableSpan]],
    spool_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = serve(lambda conn, stop: accepted(server)(conn, stop))
    exp = exporter(server.url)
    real_send = exp._delivery.send_encoded

    def send(url: str, content: bytes, count: int, deadline: float) -> Any:
        if "exp-boom" in url:
            raise RuntimeError("boom")
        return real_send(url, content, count, deadline)

    monkeypatch.setattr(exp._delivery, "send_encoded", send)
    batch = make_spans(2, "exp-a") + make_spans(1, "exp-boom") + make_spans(2, "exp-b")
    assert exp.export(batch) is SpanExportResult.FAILURE
    assert span_count(server.requests) == 4
    assert len(spooled(spool_dir, server.url)) == 1  # the failed body is kept
    exp.shutdown()


def test_spans_orjson_refuses_fall_back_to_the_stdlib(
    serve: Callable[[Handler], RawServer], make_spans: Callable[..., list[ReadableSpan]]
) -> None:
    server = serve(lambda conn, stop: accepted(server)(conn, stop))
    exp = exporter(server.url)
    filename = b"caf\xe9.txt".decode("utf-8", "surrogateescape")
    batch = (
        make_spans(1, **{A.INPUT_VALUE: json.dumps({"file": "ok"}), "extra": 1})
        + make_spans(1, **{A.OUTPUT_VALUE: filename})
        + make_spans(1, **{A.METADATA: 2**70})
    )
    assert exp.export(batch) is SpanExportResult.SUCCESS
    assert span_count(server.requests) == 3  # valid UTF-8, strict JSON (orjson parses it)
    spans = [s for b in server.requests for s in orjson.loads(b)["data"]["attributes"]["spans"]]
    assert "caf\ufffd.txt" in json.dumps(spans, ensure_ascii=False)
    exp.shutdown()


# ----------------------------------------------------------------------------- spool garbage


def _garbage_spool(spool_dir: Path, endpoint: str) -> Path:
    directory = spool_dir / endpoint_key(endpoint)
    directory.mkdir(parents=True)
    return directory


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_or_symlink_in_the_spool_never_blocks_export(
    serve: Callable[[Handler], RawServer],
    make_spans: Callable[..., list[ReadableSpan]],
    spool_dir: Path,
    tmp_path: Path,
) -> None:
    server = serve(lambda conn, stop: accepted(server)(conn, stop))
    directory = _garbage_spool(spool_dir, server.url)
    os.mkfifo(directory / "00000000000000000001-5-1-fifo.body")
    big = tmp_path / "big"
    big.write_bytes(b"x" * 10_000)
    os.symlink(big, directory / "00000000000000000002-5-1-link.body")
    os.symlink("/dev/zero", directory / "00000000000000000003-5-1-zero.body")
    (directory / "00000000000000000004-5-1-huge.body").write_bytes(b"y" * 20_000)
    exp = exporter(server.url, spool_max_bytes=15_000)
    result: list[SpanExportResult] = []
    worker = threading.Thread(target=lambda: result.append(exp.export(make_spans(1))), daemon=True)
    worker.start()
    worker.join(5)
    assert result == [SpanExportResult.SUCCESS]
    assert span_count(server.requests) == 1
    assert spooled(spool_dir, server.url) == []  # all moved aside as .corrupt
    assert big.read_bytes() == b"x" * 10_000  # a symlink's target is never touched
    exp.shutdown()


def test_a_directory_named_like_a_body_never_fails_put(spool_dir: Path) -> None:
    endpoint = "http://127.0.0.1:9"
    directory = _garbage_spool(spool_dir, endpoint)
    (directory / "00000000000000000000-9-1-dir.body").mkdir()
    (directory / "00000000000000000000-9-1-dir.body.corrupt").mkdir()
    for i in range(1, 40):
        (directory / f"{i:020d}-3-1-zz.body").write_bytes(os.urandom(500))
    spool = Spool(spool_dir, endpoint, 20_000)
    for _ in range(5):  # the spool is full: the oldest bodies make room, not the dirs
        assert spool.put("/x", b"y" * 5000, 1, "identity")
    assert (directory / "00000000000000000000-9-1-dir.body").is_dir()
    names = spool.pending()
    assert "00000000000000000000-9-1-dir.body" not in names
    assert spool.claim(names[-1]) is not None


# ----------------------------------------------------------------------------- fork


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_fork_while_the_locks_are_held_does_not_hang_the_child(
    serve: Callable[[Handler], RawServer], make_spans: Callable[..., list[ReadableSpan]]
) -> None:
    server = serve(lambda conn, stop: accepted(server)(conn, stop))
    exp = exporter(server.url, timeout=2.0)
    spans = make_spans(1)
    assert exp.export(spans) is SpanExportResult.SUCCESS  # a pooled connection exists
    spool = exp._spool
    assert spool is not None
    locks = [exp._delivery._lock, exp._warn_once._lock, spool._lock, exp._replayer.lock]
    for lock in locks:  # as if other threads were inside them at fork time
        lock.acquire()
    try:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            code = 1
            try:
                signal.alarm(10)
                if exp.export(spans) is SpanExportResult.SUCCESS:
                    code = 0
            finally:
                os._exit(code)
    finally:
        for lock in locks:
            lock.release()
    status = None
    for _ in range(150):  # bounded: 15 s
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.1)
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        pytest.fail("the child's export() hung")
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    # the parent's client still works (the child did not close its connections)
    assert exp.export(spans) is SpanExportResult.SUCCESS
    assert span_count(server.requests) == 3
    exp.shutdown()


def test_gzip_error_body_message_is_decoded(
    serve: Callable[[Handler], RawServer],
    make_spans: Callable[..., list[ReadableSpan]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="otel_experiments")
    body = gzip.compress(b'{"errors":[{"detail":"bad span"}]}')

    def handler(conn: socket.socket, stop: threading.Event) -> None:
        while not stop.is_set() and server.read_request(conn):
            conn.sendall(
                b"HTTP/1.1 422 Unprocessable\r\nContent-Encoding: gzip\r\n"
                b"Content-Length: %d\r\n\r\n" % len(body) + body
            )

    server = serve(handler)
    exp = exporter(server.url)
    assert exp.export(make_spans(1)) is SpanExportResult.FAILURE
    (warning,) = cause_warnings(caplog)
    assert "HTTP 422" in warning and "bad span" in warning
    exp.shutdown()
