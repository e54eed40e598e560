"""Zero-code path: ``opentelemetry-instrument`` + entry points, as real subprocesses."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from importlib.metadata import entry_points

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from apps.recorder import (
    APPS,
    OPENTELEMETRY_INSTRUMENT,
    SUBPROCESS_TIMEOUT_S,
    Recorder,
    clean_env,
    recording,
    run_app,
    tags_of,
)
from otel_experiments import ExperimentEventsExporter, ExperimentSpanProcessor
from otel_experiments.sdk.configure import find_experiment_processor
from otel_experiments.sdk.instrument import ExperimentsInstrumentor

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def rec() -> Iterator[Recorder]:
    with recording() as recorder:
        yield recorder


def _batch_env(rec: Recorder, **extra: str) -> dict[str, str]:
    values = {
        "OTEL_TRACES_EXPORTER": "experiments",
        "OTEL_EXPERIMENTS_ENDPOINT": rec.url,
        "OTEL_EXPERIMENTS_ID": "exp-batch",
        "OTEL_EXPERIMENTS_NAME": "Nightly batch",
        "OTEL_EXPERIMENTS_FEATURE_SLUG": "batch-eval",
    }
    return clean_env(**{**values, **extra})


# ----------------------------------------------------------------------- entry points


def test_entry_points_are_registered() -> None:
    (exp,) = entry_points(group="opentelemetry_traces_exporter", name="experiments")
    assert exp.load() is ExperimentEventsExporter
    (ins,) = entry_points(group="opentelemetry_instrumentor", name="otel_experiments")
    assert ins.load() is ExperimentsInstrumentor
    assert OPENTELEMETRY_INSTRUMENT.exists()


# ------------------------------------------------------------------ in-process instrumentor


@pytest.fixture
def instrumentor() -> Iterator[ExperimentsInstrumentor]:
    inst = ExperimentsInstrumentor()
    yield inst
    inst.uninstrument()


def test_instrumentor_adds_processor_once(
    instrumentor: ExperimentsInstrumentor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPERIMENTS_ID", "exp-inst")
    assert list(instrumentor.instrumentation_dependencies()) == []
    provider = TracerProvider()
    mem = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(mem))  # exporter first, like the distro
    instrumentor.instrument(tracer_provider=provider)
    instrumentor.uninstrument()
    instrumentor.instrument(tracer_provider=provider)  # again: still one processor
    procs = provider._active_span_processor._span_processors
    assert sum(isinstance(p, ExperimentSpanProcessor) for p in procs) == 1
    assert find_experiment_processor(provider) is instrumentor.processor
    with provider.get_tracer("t").start_as_current_span("s"):
        pass
    (span,) = mem.get_finished_spans()
    assert span.attributes is not None and span.attributes["experiment.id"] == "exp-inst"


def test_instrumentor_without_sdk_provider_logs_and_continues(
    instrumentor: ExperimentsInstrumentor,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(trace, "get_tracer_provider", trace.ProxyTracerProvider)
    with caplog.at_level(logging.WARNING, logger="otel_experiments"):
        instrumentor.instrument()
    assert "ProxyTracerProvider" in caplog.text
    assert instrumentor.processor is None


def test_instrumentor_disabled_adds_nothing(
    instrumentor: ExperimentsInstrumentor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPERIMENTS_ENABLED", "false")
    provider = TracerProvider()
    instrumentor.instrument(tracer_provider=provider)
    assert find_experiment_processor(provider) is None


# ------------------------------------------------------------ opentelemetry-instrument runs


def test_batch_job_env_only_delivers_tagged_events(rec: Recorder) -> None:
    proc = run_app("batch_job.py", "--spans", "3", env=_batch_env(rec), instrument=True)
    assert proc.returncode == 0, proc.stderr
    spans = rec.wait_for_spans(3)
    assert sorted(s["name"] for s in spans) == ["item-0", "item-1", "job"]
    assert {r.path for r in rec.requests} == {"/api/v2/llm-obs/v1/experiments/exp-batch/events"}
    for span in spans:
        tags = tags_of(span)
        assert tags["experiment.id"] == "exp-batch"
        assert tags["experiment.name"] == "Nightly batch"
        assert tags["experiment.feature_slug"] == "batch-eval"
        assert tags["service.name"] == "config-tests"  # OTEL_SERVICE_NAME -> resource


def test_console_and_experiments_exporters_together(rec: Recorder) -> None:
    env = _batch_env(rec, OTEL_TRACES_EXPORTER="console,experiments")
    proc = run_app("batch_job.py", "--spans", "2", env=env, instrument=True)
    assert proc.returncode == 0, proc.stderr
    assert '"experiment.id": "exp-batch"' in proc.stdout  # console exporter saw the stamp
    assert len(rec.wait_for_spans(2)) == 2


def test_configure_under_opentelemetry_instrument_does_not_double_export(rec: Recorder) -> None:
    proc = run_app(
        "batch_job.py", "--configure", "2", "--spans", "3", env=_batch_env(rec), instrument=True
    )
    assert proc.returncode == 0, proc.stderr
    # the distro already exports through OTEL_TRACES_EXPORTER=experiments
    assert "handle enabled=True exporter=NoneType" in proc.stdout
    spans = rec.wait_for_spans(3)
    time.sleep(0.3)
    spans = rec.spans()
    assert len(spans) == 3
    assert len({s["span_id"] for s in spans}) == 3


@pytest.mark.parametrize(
    "switch", [{"OTEL_SDK_DISABLED": "true"}, {"OTEL_EXPERIMENTS_ENABLED": "false"}]
)
def test_disabled_sends_nothing(rec: Recorder, switch: dict[str, str]) -> None:
    proc = run_app("batch_job.py", env=_batch_env(rec, **switch), instrument=True)
    assert proc.returncode == 0, proc.stderr
    assert "done" in proc.stdout
    time.sleep(0.3)
    assert rec.requests == []


def test_no_configurator_means_proxy_provider_logged_not_fatal(rec: Recorder) -> None:
    # The distro's configurator is skipped: no SDK provider exists when we instrument.
    env = _batch_env(rec, OTEL_PYTHON_CONFIGURATOR="someone-else")
    proc = run_app("batch_job.py", env=env, instrument=True)
    assert proc.returncode == 0, proc.stderr
    assert "done" in proc.stdout
    assert "ProxyTracerProvider" in proc.stderr
    assert rec.requests == []


def test_bad_values_warn_and_app_keeps_working(rec: Recorder) -> None:
    env = _batch_env(
        rec,
        OTEL_EXPERIMENTS_TIMEOUT="soon",
        OTEL_EXPERIMENTS_TRUST_BAGGAGE="maybe",
        OTEL_EXPERIMENTS_HEADERS="x-secret-token",
        OTEL_EXPERIMENTS_MAX_SPANS_PER_REQUEST="lots",
    )
    proc = run_app("batch_job.py", env=env, instrument=True)
    assert proc.returncode == 0, proc.stderr
    assert len(rec.wait_for_spans(3)) == 3
    for var, value in (
        ("OTEL_EXPERIMENTS_TIMEOUT", "'soon'"),
        ("OTEL_EXPERIMENTS_TRUST_BAGGAGE", "'maybe'"),
        ("OTEL_EXPERIMENTS_MAX_SPANS_PER_REQUEST", "'lots'"),
    ):
        lines = [ln for ln in proc.stderr.splitlines() if f"{var}={value}" in ln]
        assert len(lines) == 1, proc.stderr
    assert "OTEL_EXPERIMENTS_HEADERS=<redacted>" in proc.stderr
    assert "x-secret-token" not in proc.stderr


# ----------------------------------------------------------------------------- Flask app


class _FlaskApp:
    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [str(OPENTELEMETRY_INSTRUMENT), sys.executable, str(APPS / "flask_app.py")],
            env=env,
            cwd=APPS,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.port = self._read_port()

    def _read_port(self) -> int:
        found: list[int] = []

        def reader() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                if line.startswith("PORT "):
                    found.append(int(line.split()[1]))
                    return

        thread = threading.Thread(target=reader, daemon=True)
        thread.start()
        thread.join(SUBPROCESS_TIMEOUT_S)
        if not found:
            self.close()
            raise AssertionError("flask app did not start")
        return found[0]

    def get(self, path: str, headers: dict[str, str]) -> str:
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", headers=headers)
        with urllib.request.urlopen(req, timeout=10) as resp:
            return str(resp.read().decode())

    def stop(self) -> tuple[int, str]:
        self.proc.terminate()
        try:
            _, err = self.proc.communicate(timeout=SUBPROCESS_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return self.proc.returncode, err

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate()


def test_flask_app_inbound_baggage_delivers_events(rec: Recorder) -> None:
    env = clean_env(OTEL_TRACES_EXPORTER="experiments", OTEL_EXPERIMENTS_ENDPOINT=rec.url)
    app = _FlaskApp(env)
    try:
        baggage = "experiment.id=exp-bag,experiment.name=Via%20baggage,user.id=u-7"
        assert app.get("/work", {"baggage": baggage}) == "ok"
        assert app.get("/work", {}) == "ok"  # no experiment: not exported
        spans = rec.wait_for_spans(2)
        code, err = app.stop()
    finally:
        app.close()
    assert code == 0, err
    time.sleep(0.2)
    spans = rec.spans()
    assert sorted(s["name"] for s in spans) == ["GET /work", "inner-work"], err
    assert {r.experiment_id for r in rec.requests} == {"exp-bag"}
    for span in spans:
        tags = tags_of(span)
        assert tags["experiment.id"] == "exp-bag"
        assert tags["experiment.name"] == "Via baggage"
        assert tags["user.id"] == "u-7"
    server = next(s for s in spans if s["name"] == "GET /work")
    inner = next(s for s in spans if s["name"] == "inner-work")
    assert inner["parent_id"] == server["span_id"]
    assert "span.kind:server" in server["tags"]


def test_flask_app_baggage_ignored_when_not_trusted(rec: Recorder) -> None:
    env = clean_env(
        OTEL_TRACES_EXPORTER="experiments",
        OTEL_EXPERIMENTS_ENDPOINT=rec.url,
        OTEL_EXPERIMENTS_TRUST_BAGGAGE="false",
        OTEL_EXPERIMENTS_ID="exp-default",
    )
    app = _FlaskApp(env)
    try:
        assert app.get("/work", {"baggage": "experiment.id=exp-bag"}) == "ok"
        code, err = app.stop()
    finally:
        app.close()
    assert code == 0, err
    spans = rec.wait_for_spans(2)
    assert {r.experiment_id for r in rec.requests} == {"exp-default"}
    assert len(spans) == 2
