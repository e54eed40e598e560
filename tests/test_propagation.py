"""Across processes over real HTTP: baggage carries the experiment; hostile baggage is dropped."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from opentelemetry import propagate

from helpers import free_port
from otel_experiments import experiment_context, start_observe

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "two_services.py"


def _start_backend(env_extra: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    env = {**os.environ, **env_extra}
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLE), "backend", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    url = f"http://127.0.0.1:{port}/answer"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return proc, url
        except httpx.TransportError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("backend did not start: " + (proc.stderr.read() if proc.stderr else ""))


@pytest.fixture(scope="module")
def backend() -> Iterator[tuple[subprocess.Popen[str], str]]:
    proc, url = _start_backend({})
    yield proc, url
    proc.terminate()
    proc.wait(timeout=10)


def test_experiment_and_identity_cross_the_http_hop(backend) -> None:
    _, url = backend
    identity = {"organization": {"id": "org-1", "name": "Acme"}, "user": {"id": "u-9", "name": "Jane"}}
    with start_observe("checkout", "ask", experiment={"id": "exp-456", "name": "Prompt v3"},
                       identity=identity) as span:
        headers: dict[str, str] = {}
        propagate.inject(headers)
        reply = httpx.get(url, headers=headers, timeout=5).json()
    assert reply["trace_id"] == span.trace_id
    assert reply["attributes"] == {
        "experiment.id": "exp-456", "experiment.name": "Prompt v3",
        "experiment.feature_slug": "checkout", "organization.id": "org-1", "user.id": "u-9",
    }  # identity names are PII: not propagated by default


def test_no_baggage_no_stamping(backend) -> None:
    _, url = backend
    assert httpx.get(url, timeout=5).json()["attributes"] == {}


@pytest.mark.parametrize(
    "baggage_header",
    [
        "experiment.id=" + "x" * 1000,
        "experiment.id=" + quote("exp\n1"),
        "experiment.id=" + quote("exp 1"),
        "experiment.id=" + quote("\x00\x1b[31m"),
        "user.id=" + quote("u\r\nSet-Cookie: a=b"),
        "experiment.id=" + "y" * 9000,  # over the W3C header limit
        ",".join(f"k{i}=v" for i in range(500)) + ",experiment.id=" + quote("\t"),
        "experiment.id=" + quote("exp\u202e1"),  # bidi override: not printable
        "experiment.id",
    ],
)
def test_hostile_baggage_is_dropped_never_raised(backend, baggage_header: str) -> None:
    proc, url = backend
    reply = httpx.get(url, headers={"baggage": baggage_header}, timeout=5)
    assert reply.status_code == 200
    attrs = reply.json()["attributes"]
    assert "experiment.id" not in attrs and "user.id" not in attrs
    assert proc.poll() is None


def test_valid_values_survive_next_to_invalid_ones(backend) -> None:
    _, url = backend
    header = "experiment.id=exp-ok,user.id=" + quote("bad id") + ",organization.id=org-7"
    attrs = httpx.get(url, headers={"baggage": header}, timeout=5).json()["attributes"]
    assert attrs == {"experiment.id": "exp-ok", "organization.id": "org-7"}


def test_invalid_baggage_is_logged_rate_limited() -> None:
    proc, url = _start_backend({})
    try:
        for _ in range(5):
            httpx.get(url, headers={"baggage": "experiment.id=" + "x" * 300}, timeout=5)
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=10)
    lines = [line for line in stderr.splitlines() if "invalid inbound baggage" in line]
    assert len(lines) == 1, stderr
    assert "experiment.id" in lines[0]


def test_untrusted_baggage_is_ignored() -> None:
    proc, url = _start_backend({"OTEL_EXPERIMENTS_TRUST_BAGGAGE": "false"})
    try:
        with experiment_context("exp-1"):
            headers: dict[str, str] = {}
            propagate.inject(headers)
        assert "experiment.id" in headers["baggage"]
        assert httpx.get(url, headers=headers, timeout=5).json()["attributes"] == {}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_example_runs_end_to_end() -> None:
    out = subprocess.run([sys.executable, str(EXAMPLE)], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert '"experiment.id": "exp-456"' in out
    assert "same trace: True" in out
