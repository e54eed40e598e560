"""Bounded shutdown and flush, whatever the backend does (127.0.0.1 only, real processes).

A backend that refuses connections, one that accepts and never answers, one that
trickles header bytes forever: with ``OTEL_EXPERIMENTS_TIMEOUT=30`` the interpreter's exit
used to take 30 s; it must take ``OTEL_EXPERIMENTS_SHUTDOWN_TIMEOUT``, and the span must
be in the spool (or counted as dropped when the spool is off).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider

import otel_experiments
from helpers import free_port
from otel_experiments.export.spool import endpoint_key

BUDGET = 1.5
SLACK = 1.5  # scheduling on a loaded machine; the old behaviour took 30 s


class BadBackend:
    """``hang``: read the request, never answer; ``trickle``: a header line every 50 ms."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.stop = threading.Event()
        self.requests = 0
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.1)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()
        self._sock.close()

    def _handle(self, conn: socket.socket) -> None:
        try:
            conn.recv(65536)
            self.requests += 1
            if self.mode == "trickle":
                conn.sendall(b"HTTP/1.1 200 OK\r\n")
            while not self.stop.wait(0.05):
                if self.mode == "trickle":
                    conn.sendall(b"X-Pad: y\r\n")
        except OSError:
            pass
        finally:
            conn.close()


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "refuse":
        yield f"http://127.0.0.1:{free_port()}"
        return
    server = BadBackend(request.param)
    yield server.url
    server.stop.set()


APP = textwrap.dedent(
    """
    import sys, time
    import otel_experiments as oe
    handle = oe.configure(default_experiment=None)
    with oe.start_observe("slug", "job", experiment="exp-1"):
        pass
    print(time.monotonic(), flush=True)  # the work is done: the rest is shutting down
    if sys.argv[1] == "explicit":
        handle.shutdown()
        print(handle.delivery_report().summary(), flush=True)
    """
)


def run_app(endpoint: str, spool_dir: Path, how: str, **env: str) -> tuple[float, str, str]:
    """Seconds from the end of the work to the process's exit, stdout, stderr."""
    environ = dict(
        os.environ,
        OTEL_EXPERIMENTS_ENDPOINT=endpoint,
        OTEL_EXPERIMENTS_TIMEOUT="30",
        OTEL_EXPERIMENTS_SHUTDOWN_TIMEOUT=str(BUDGET),
        OTEL_EXPERIMENTS_SPOOL_DIR=str(spool_dir),
        **env,
    )
    proc = subprocess.run([sys.executable, "-c", APP, how], env=environ, timeout=60,
                          capture_output=True, text=True)
    ended = time.monotonic()  # CLOCK_MONOTONIC is system-wide
    assert proc.returncode == 0, proc.stderr
    return ended - float(proc.stdout.split()[0]), proc.stdout, proc.stderr


@pytest.mark.parametrize("backend", ["refuse", "hang", "trickle"], indirect=True)
@pytest.mark.parametrize("how", ["exit", "explicit"])
def test_exit_takes_the_shutdown_budget_not_the_export_timeout(
    backend: str, how: str, spool_dir: Path
) -> None:
    elapsed, out, err = run_app(backend, spool_dir, how)
    assert elapsed < BUDGET + SLACK, (elapsed, err)
    bodies = list((spool_dir / endpoint_key(backend)).glob("*.body"))
    assert len(bodies) == 1, err  # the span was kept for the next process, not lost
    if how == "explicit":
        assert "spooled=1" in out and "dropped=0" in out


@pytest.mark.parametrize("backend", ["hang"], indirect=True)
def test_without_a_spool_what_is_left_is_counted_and_warned(backend: str, spool_dir: Path) -> None:
    elapsed, out, err = run_app(backend, spool_dir, "explicit",
                                OTEL_EXPERIMENTS_SPOOL_MAX_BYTES="0")
    assert elapsed < BUDGET + SLACK
    assert "dropped=1 (spool_off=1)" in out
    assert "1 span(s) dropped (spool_off" in err  # a warning, not silence
    assert not spool_dir.exists()


@pytest.mark.parametrize("backend", ["hang"], indirect=True)
def test_force_flush_and_handle_shutdown_honour_their_timeouts(
    backend: str, spool_dir: Path
) -> None:
    provider = TracerProvider()
    handle = otel_experiments.configure(
        tracer_provider=provider, endpoint=backend, timeout=30, shutdown_timeout=1.0,
        default_experiment=None,
    )
    tracer = provider.get_tracer("t")
    with otel_experiments.start_observe("slug", "job", experiment="exp-flush"):
        tracer.start_span("child").end()
    start = time.monotonic()
    assert handle.force_flush(timeout_millis=500) is False  # not delivered: honest
    assert 0.4 < time.monotonic() - start < 0.5 + SLACK
    start = time.monotonic()
    handle.shutdown()
    assert time.monotonic() - start < 1.0 + SLACK
    report = handle.delivery_report()
    assert report.spooled == 1 and report.delivered == 0 and report.dropped == 0
    assert report.last_error is not None


@pytest.mark.parametrize("backend", ["trickle"], indirect=True)
def test_the_sdk_batch_processor_at_exit_is_bounded_too(backend: str, spool_dir: Path) -> None:
    """Our exporter under the SDK's own BatchSpanProcessor (configuration by hand)."""
    code = textwrap.dedent(
        f"""
        import time
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from otel_experiments import ExperimentEventsExporter, ExperimentSpanProcessor
        provider = TracerProvider()
        provider.add_span_processor(ExperimentSpanProcessor(default_experiment=None))
        provider.add_span_processor(BatchSpanProcessor(ExperimentEventsExporter(
            endpoint={backend!r}, timeout=30, shutdown_timeout={BUDGET})))
        provider.get_tracer("t").start_span("s", attributes={{"experiment.id": "e"}}).end()
        print(time.monotonic(), flush=True)
        """
    )
    env = dict(os.environ, OTEL_EXPERIMENTS_SPOOL_DIR=str(spool_dir))
    proc = subprocess.run([sys.executable, "-c", code], env=env, timeout=60,
                          capture_output=True, text=True)
    elapsed = time.monotonic() - float(proc.stdout.split()[0])
    assert proc.returncode == 0, proc.stderr
    assert elapsed < BUDGET + SLACK, proc.stderr
    assert len(list((spool_dir / endpoint_key(backend)).glob("*.body"))) == 1
