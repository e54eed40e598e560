"""``configure()``: idempotent, flushes only what it added, never the user's provider."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from apps.recorder import Recorder, clean_env, recording, run_app, tags_of
from otel_experiments import (
    ExperimentEventsExporter,
    ExperimentsHandle,
    ExperimentSpanProcessor,
    configure,
    experiment_context,
)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def rec() -> Iterator[Recorder]:
    with recording() as recorder:
        yield recorder


@pytest.fixture(autouse=True)
def _no_experiment_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OTEL_EXPERIMENTS_ID", "OTEL_EXPERIMENTS_ENABLED", "OTEL_SDK_DISABLED"):
        monkeypatch.delenv(name, raising=False)


def _processors(provider: TracerProvider) -> tuple[object, ...]:
    return tuple(provider._active_span_processor._span_processors)


def _count(provider: TracerProvider, kind: type) -> int:
    return sum(isinstance(p, kind) for p in _processors(provider))


def _emit(provider: TracerProvider, name: str = "work", experiment: str | None = "exp-c") -> None:
    tracer = provider.get_tracer("test")
    if experiment is None:
        with tracer.start_as_current_span(name):
            return
    with experiment_context(experiment), tracer.start_as_current_span(name):
        pass


def test_configure_twice_exports_each_span_once() -> None:
    provider = TracerProvider()
    mem = InMemorySpanExporter()
    first = configure(tracer_provider=provider, exporter=mem, batch=False)
    second = configure(tracer_provider=provider, exporter=mem, batch=False)
    assert first is second and first.enabled
    assert _count(provider, ExperimentSpanProcessor) == 1
    assert _count(provider, SimpleSpanProcessor) == 1
    _emit(provider)
    (span,) = mem.get_finished_spans()
    assert span.attributes is not None and span.attributes["experiment.id"] == "exp-c"
    first.shutdown()


def test_processor_already_added_by_hand_is_reused() -> None:
    provider = TracerProvider()
    mine = ExperimentSpanProcessor(default_experiment="exp-hand")
    provider.add_span_processor(mine)
    mem = InMemorySpanExporter()
    handle = configure(tracer_provider=provider, exporter=mem, batch=False)
    assert handle.processor is mine
    assert _count(provider, ExperimentSpanProcessor) == 1
    _emit(provider, experiment=None)
    (span,) = mem.get_finished_spans()
    assert span.attributes is not None and span.attributes["experiment.id"] == "exp-hand"
    handle.shutdown()


def test_existing_experiments_exporter_is_not_doubled(rec: Recorder) -> None:
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(ExperimentEventsExporter(endpoint=rec.url)))
    handle = configure(tracer_provider=provider)
    assert handle.exporter is None and handle.enabled
    assert _count(provider, BatchSpanProcessor) == 1
    _emit(provider)
    provider.force_flush()
    assert len(rec.wait_for_spans(1)) == 1
    handle.shutdown()
    provider.shutdown()
    assert len(rec.spans()) == 1


def test_real_http_export_and_shutdown_flushes_only_ours(rec: Recorder) -> None:
    provider = TracerProvider()
    users = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(users))
    handle = configure(tracer_provider=provider, endpoint=rec.url, compression="none")
    assert isinstance(handle.exporter, ExperimentEventsExporter)
    _emit(provider, "before")
    assert handle.shutdown()  # force_flush + shutdown of our batch processor
    assert [s["name"] for s in rec.spans()] == ["before"]
    assert tags_of(rec.spans()[0])["experiment.id"] == "exp-c"
    assert rec.requests[0].headers.get("content-encoding") is None
    # The user's provider and processors still work; stamping continues.
    _emit(provider, "after")
    assert [s.name for s in users.get_finished_spans()] == ["before", "after"]
    attrs = users.get_finished_spans()[1].attributes
    assert attrs is not None and attrs["experiment.id"] == "exp-c"
    assert len(rec.spans()) == 1  # our exporter is shut down
    assert handle.shutdown()  # idempotent
    # configure() again after shutdown: a new handle, one exporter, one processor.
    again = configure(tracer_provider=provider, endpoint=rec.url)
    assert again is not handle and again.exporter is not None
    assert _count(provider, ExperimentSpanProcessor) == 1
    _emit(provider, "again")
    again.shutdown()
    assert sorted(s["name"] for s in rec.spans()) == ["again", "before"]


@pytest.mark.parametrize("exporter_first", [True, False])
def test_processor_order_does_not_matter(exporter_first: bool) -> None:
    provider = TracerProvider()
    mem = InMemorySpanExporter()
    batch = BatchSpanProcessor(mem, schedule_delay_millis=10)
    stamp = ExperimentSpanProcessor(default_experiment="exp-order")
    for proc in (batch, stamp) if exporter_first else (stamp, batch):
        provider.add_span_processor(proc)
    _emit(provider, experiment=None)
    with experiment_context("exp-scope"):
        _emit(provider, "scoped", experiment=None)
    provider.force_flush()
    got = {s.name: dict(s.attributes or {}) for s in mem.get_finished_spans()}
    assert got["work"]["experiment.id"] == "exp-order"
    assert got["scoped"]["experiment.id"] == "exp-scope"
    provider.shutdown()


@pytest.mark.parametrize(
    ("name", "value"), [("OTEL_SDK_DISABLED", "true"), ("OTEL_EXPERIMENTS_ENABLED", "false")]
)
def test_disabled_configure_adds_nothing(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    provider = TracerProvider()
    handle = configure(tracer_provider=provider)
    assert not handle.enabled and handle.exporter is None
    assert _processors(provider) == ()
    assert handle.shutdown()


def test_non_sdk_provider_is_refused_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="otel_experiments"):
        handle = configure(tracer_provider=trace.NoOpTracerProvider())
    assert isinstance(handle, ExperimentsHandle) and not handle.enabled
    assert "not an SDK TracerProvider" in caplog.text


def test_bad_arguments_raise_without_echoing_secrets() -> None:
    provider = TracerProvider()
    with pytest.raises(ValueError, match="endpoint"):
        configure(tracer_provider=provider, endpoint="ftp://nope")
    with pytest.raises(ValueError) as info:
        configure(tracer_provider=provider, headers={"x-key": "s3cr3t\nInjected: 1"})
    assert "s3cr3t" not in str(info.value)


# ----------------------------------------------------------------- real subprocesses


def _env(rec: Recorder, **extra: str) -> dict[str, str]:
    values = {"OTEL_EXPERIMENTS_ENDPOINT": rec.url, "OTEL_EXPERIMENTS_ID": "exp-sub"}
    return clean_env(**{**values, **extra})


def test_subprocess_configure_twice_creates_provider_and_delivers_once(rec: Recorder) -> None:
    env = _env(rec, OTEL_RESOURCE_ATTRIBUTES="deployment.environment=ci")
    proc = run_app("batch_job.py", "--configure", "2", "--spans", "4", env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("handle enabled=True exporter=ExperimentEventsExporter") == 2
    spans = rec.spans()  # handle.shutdown() flushed before exit
    assert len(spans) == 4 and len({s["span_id"] for s in spans}) == 4
    for span in spans:
        tags = tags_of(span)
        assert tags["experiment.id"] == "exp-sub"
        assert tags["service.name"] == "config-tests"
        assert tags["deployment.environment"] == "ci"


def test_subprocess_flushes_at_exit_without_shutdown(rec: Recorder) -> None:
    proc = run_app("batch_job.py", "--configure", "1", "--no-shutdown", env=_env(rec))
    assert proc.returncode == 0, proc.stderr
    assert len(rec.spans()) == 3


@pytest.mark.parametrize(
    "switch", [{"OTEL_SDK_DISABLED": "true"}, {"OTEL_EXPERIMENTS_ENABLED": "false"}]
)
def test_subprocess_disabled_sends_nothing(rec: Recorder, switch: dict[str, str]) -> None:
    proc = run_app("batch_job.py", "--configure", "1", env=_env(rec, **switch))
    assert proc.returncode == 0, proc.stderr
    assert "handle enabled=False" in proc.stdout and "done" in proc.stdout
    assert rec.requests == []


def test_subprocess_bad_values_warn_once_and_still_deliver(rec: Recorder) -> None:
    env = _env(
        rec,
        OTEL_EXPERIMENTS_TIMEOUT="ten",
        OTEL_EXPERIMENTS_COMPRESSION="brotli",
        OTEL_EXPERIMENTS_HEADERS="authorization=Bearer%20hunter2,broken",
        OTEL_EXPERIMENTS_API_KEY="hunter2",
        OTEL_EXPERIMENTS_ENABLED="perhaps",
        OTEL_EXPERIMENTS_NAME="bad\x01name",
    )
    proc = run_app("batch_job.py", "--configure", "2", env=env)
    assert proc.returncode == 0, proc.stderr
    assert len(rec.spans()) == 3
    err = proc.stderr
    for needle in (
        "OTEL_EXPERIMENTS_TIMEOUT='ten'",
        "OTEL_EXPERIMENTS_COMPRESSION='brotli'",
        "OTEL_EXPERIMENTS_HEADERS=<redacted>",
        "OTEL_EXPERIMENTS_ENABLED='perhaps'",
        "OTEL_EXPERIMENTS_NAME=",
    ):
        assert sum(needle in line for line in err.splitlines()) == 1, err
    assert "hunter2" not in err
    assert rec.requests[0].headers["authorization"] == "Bearer hunter2"  # the API key
    tags = tags_of(rec.spans()[0])
    assert tags["experiment.id"] == "exp-sub" and "experiment.name" not in tags


def test_second_configure_with_other_arguments_warns(caplog: pytest.LogCaptureFixture) -> None:
    from opentelemetry.sdk.trace import TracerProvider

    import otel_experiments

    provider = TracerProvider()
    first = otel_experiments.configure(tracer_provider=provider, endpoint="http://127.0.0.1:9")
    caplog.set_level(logging.WARNING, logger="otel_experiments")
    try:
        assert otel_experiments.configure(tracer_provider=provider) is first
        assert "already called" not in caplog.text  # same (no) arguments: quiet
        again = otel_experiments.configure(tracer_provider=provider, endpoint="http://127.0.0.1:8")
        assert again is first
        assert "already called for this provider with other arguments (endpoint)" in caplog.text
    finally:
        first.shutdown()
