"""Real processes for the fault scenarios: the server on a fixed port, the application,
and reading back what the server stored."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from apps.recorder import clean_env
from server_process import free_port

HERE = Path(__file__).resolve().parent
API = "/api/v2/llm-obs/v1"


def new_experiment(prefix: str = "fault") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


class PinnedServer:
    """``otel-experiments serve`` on one port for its whole life, so it can be killed
    (SIGKILL, no goodbye) and started again where the application expects it."""

    def __init__(self, database_url: str, log_dir: Path, port: int | None = None) -> None:
        self.database_url = database_url
        self.port = port or free_port()
        self.log_path = log_dir / f"server-{self.port}-{uuid.uuid4().hex[:6]}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> PinnedServer:
        cmd = [sys.executable, "-m", "otel_experiments.cli", "serve", "--host", "127.0.0.1",
               "--port", str(self.port), "--database-url", self.database_url,
               "--log-level", "warning", "--no-access-log"]
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited ({self.proc.returncode}):\n{self.log()}")
            try:
                if httpx.get(f"{self.base_url}/health", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"server not healthy in {timeout}s:\n{self.log()}")

    def kill(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def __enter__(self) -> PinnedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class App:
    """``tests/faults/fault_app.py`` as a real subprocess."""

    def __init__(self, script: str, endpoint: str, experiment: str, *, spans: int,
                 workdir: Path, rate: float = 0.0, then: str = "idle",
                 env: dict[str, str] | None = None, args: tuple[str, ...] = ()) -> None:
        self.ids_path = workdir / f"ids-{uuid.uuid4().hex[:8]}.txt"
        self.stdout_path = self.ids_path.with_suffix(".out")
        self.stderr_path = self.ids_path.with_suffix(".err")
        self.spans = spans
        self.experiment = experiment
        cmd = [sys.executable, str(HERE / script), endpoint, experiment, "--spans", str(spans),
               "--ids", str(self.ids_path), "--rate", str(rate), "--then", then, *args]
        full_env = clean_env(OTEL_BSP_SCHEDULE_DELAY="100", **(env or {}))
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=out, stderr=err,
                                         env=full_env, cwd=HERE)

    def output(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def errors(self) -> str:
        return self.stderr_path.read_text(errors="replace")[-6000:]

    def wait_output(self, text: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = self.output()
            if text in out:
                return out
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"app never printed {text!r} (rc={self.proc.poll()}):\n"
                             f"{self.output()}\n{self.errors()}")

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((command + "\n").encode())
        self.proc.stdin.flush()

    def report(self, timeout: float = 15.0) -> dict[str, Any] | None:
        """The app's delivery report (``then="stdin"`` apps), as parsed JSON."""
        before = self.output().count("report ")
        self.send("report")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines = [line for line in self.output().splitlines() if line.startswith("report ")]
            if len(lines) > before:
                parsed: dict[str, Any] | None = json.loads(lines[-1][len("report "):])
                return parsed
            time.sleep(0.05)
        raise AssertionError(f"no report from the app:\n{self.errors()}")

    def produced_ids(self) -> list[str]:
        try:
            return self.ids_path.read_text().split()
        except FileNotFoundError:  # not started producing yet
            return []

    def sigkill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)  # reaped: a zombie would still look alive to the spool

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.sigkill()
        if self.proc.stdin is not None:
            self.proc.stdin.close()


@dataclass
class Stored:
    span_ids: list[str]
    metrics: list[tuple[str, str]]  # (span id, label) of each stored metric

    @property
    def duplicate_spans(self) -> int:
        return len(self.span_ids) - len(set(self.span_ids))

    @property
    def duplicate_metrics(self) -> int:
        return sum(n - 1 for n in Counter(self.metrics).values())


def stored(base_url: str, experiment: str) -> Stored:
    """Every span (and its metrics) the server stored for ``experiment``, all pages."""
    ids: list[str] = []
    metrics: list[tuple[str, str]] = []
    url: str | None = f"{base_url}{API}/experiments/{experiment}/events?page[size]=1000"
    with httpx.Client(timeout=30.0) as client:
        while url is not None:
            answer = client.get(url)
            if answer.status_code == 404:
                break
            answer.raise_for_status()
            doc: dict[str, Any] = answer.json()
            for item in doc["data"]:
                ids.append(item["id"])
                metrics += [(item["id"], m["label"]) for m in item["attributes"].get("metrics", [])]
            url = doc["links"]["next"]
    return Stored(ids, metrics)


def wait_stored(base_url: str, experiment: str, expected: int, timeout: float) -> Stored:
    """What the server holds once it holds ``expected`` spans (or when ``timeout`` ends)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            got = stored(base_url, experiment)
        except httpx.TransportError:  # the server is being restarted
            got = Stored([], [])
        if len(set(got.span_ids)) >= expected and len(got.metrics) >= expected:
            return got
        if time.monotonic() >= deadline:
            return got
        time.sleep(0.2)


def assert_exactly_once(got: Stored, produced: list[str], *, metrics_per_span: int = 1) -> None:
    """Every produced span and metric stored, once, and nothing else."""
    assert len(produced) == len(set(produced)), "the app produced duplicate span ids"
    missing = set(produced) - set(got.span_ids)
    extra = set(got.span_ids) - set(produced)
    assert not missing and not extra, (
        f"produced {len(produced)}, stored {len(set(got.span_ids))} "
        f"({len(missing)} missing, {len(extra)} unexpected)")
    assert got.duplicate_spans == 0 and got.duplicate_metrics == 0
    assert len(got.metrics) == metrics_per_span * len(produced)
    assert {span for span, _ in got.metrics} == set(produced)


def spooled_spans(spool_root: Path) -> int:
    """Spans in the bodies waiting in a spool root (from the file names, claimed or not)."""
    if not spool_root.exists():
        return 0
    total = 0
    for path in spool_root.rglob("*.body*"):
        name = path.name
        if ".tmp-" in name or name.endswith(".corrupt"):
            continue
        parts = name.split("-")
        if len(parts) >= 2 and parts[1].isdigit():
            total += int(parts[1])
    return total


def app_env(**extra: str) -> dict[str, str]:
    """Exporter settings shared by the scenarios (``OTEL_EXPERIMENTS_SPOOL_DIR`` is the
    test's own, from ``tests/conftest.py``)."""
    env = {"OTEL_EXPERIMENTS_MAX_SPANS_PER_REQUEST": "10",
           "OTEL_EXPERIMENTS_SPOOL_DIR": os.environ["OTEL_EXPERIMENTS_SPOOL_DIR"]}
    env.update(extra)
    return env
