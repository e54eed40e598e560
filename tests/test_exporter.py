"""ExperimentEventsExporter against a real HTTP server on 127.0.0.1 (pytest-httpserver)."""

from __future__ import annotations

import gzip
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any

import jsonschema
import pytest
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExportResult,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Tracer
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from helpers import cause_warnings, free_port, warnings_of
from otel_experiments import attributes as A
from otel_experiments import settings as config
from otel_experiments._runtime.env import redact_url
from otel_experiments.events import dumps, load_events_schema, spans_to_event_bodies
from otel_experiments.export.exporter import ExperimentEventsExporter
from otel_experiments.export.rules import parse_retry_after
from otel_experiments.observation.metrics import record_metric

VALIDATOR = jsonschema.Draft202012Validator(load_events_schema())
SECRET_KEY = "sk-super-secret-0123456789"
SECRET_HEADER = "dd-secret-abcdef"

ENV_VARS = [
    config.OTEL_EXPERIMENTS_ENDPOINT,
    config.OTEL_EXPERIMENTS_API_KEY,
    config.OTEL_EXPERIMENTS_HEADERS,
    config.OTEL_EXPERIMENTS_TIMEOUT,
    config.OTEL_EXPERIMENTS_COMPRESSION,
    config.OTEL_EXPERIMENTS_MAX_BODY_BYTES,
    config.OTEL_EXPERIMENTS_MAX_SPANS_PER_REQUEST,
]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)


class Recorder:
    """A handler that records every request and answers from a script (then 200)."""

    def __init__(self, script: list[Response] | None = None) -> None:
        self.script = list(script or [])
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def __call__(self, request: Request) -> Response:
        raw = request.get_data()
        body = gzip.decompress(raw) if request.headers.get("Content-Encoding") == "gzip" else raw
        with self.lock:
            self.requests.append(
                {
                    "path": request.environ.get("RAW_URI") or request.path,
                    "headers": dict(request.headers),
                    "raw": raw,
                    "body_bytes": body,
                    "body": json.loads(body),
                    "at": time.monotonic(),
                }
            )
            if self.script:
                return self.script.pop(0)
        return Response('{"data":{}}', status=202, content_type="application/json")

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [r["body"] for r in self.requests]


@pytest.fixture
def recorder(httpserver: HTTPServer) -> Callable[..., Recorder]:
    def make(script: list[Response] | None = None) -> Recorder:
        rec = Recorder(script)
        httpserver.expect_request(
            re.compile(r"^/api/v2/llm-obs/v1/experiments/.+/events$"), method="POST"
        ).respond_with_handler(rec)
        return rec

    return make


@pytest.fixture
def endpoint(httpserver: HTTPServer) -> str:
    return httpserver.url_for("").rstrip("/")


@pytest.fixture
def mem() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracer(mem: InMemorySpanExporter) -> Iterator[Tracer]:
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: "svc"}))
    provider.add_span_processor(SimpleSpanProcessor(mem))
    yield provider.get_tracer("test")
    provider.shutdown()


def make_spans(
    tracer: Tracer,
    mem: InMemorySpanExporter,
    n: int,
    experiments: tuple[str, ...] = ("exp-1",),
    payload: str = "x" * 200,
) -> list[ReadableSpan]:
    mem.clear()
    for i in range(n):
        exp = experiments[i % len(experiments)]
        with tracer.start_as_current_span(f"task-{i}", attributes={A.EXPERIMENT_ID: exp}) as s:
            s.set_attribute(A.INPUT_VALUE, json.dumps({"i": i, "p": payload}))
            s.set_attribute(A.INPUT_MIME_TYPE, A.MIME_JSON)
            s.set_attribute(A.OUTPUT_VALUE, payload)
            record_metric(s, "accuracy", i / max(1, n))
    return list(mem.get_finished_spans())


def exporter(endpoint: str, **kwargs: Any) -> ExperimentEventsExporter:
    kwargs.setdefault("timeout", 5.0)
    kwargs.setdefault("backoff_initial", 0.01)
    kwargs.setdefault("backoff_max", 0.05)
    # scripted answers are consumed in order: no background replay (tests/test_replay.py)
    kwargs.setdefault("background_replay", False)
    return ExperimentEventsExporter(endpoint=endpoint, **kwargs)


def flatten(bodies: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    spans = [s for b in bodies for s in b["data"]["attributes"]["spans"]]
    metrics = [m for b in bodies for m in b["data"]["attributes"]["metrics"]]
    return spans, metrics


# ----------------------------------------------------------------------------- basics


def test_constructible_with_no_arguments_and_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    exp = ExperimentEventsExporter()
    assert exp.settings.endpoint == config.DEFAULT_ENDPOINT
    assert exp.settings.compression == "gzip"
    assert exp.settings.max_body_bytes == 4 * 1024 * 1024
    exp.shutdown()
    monkeypatch.setenv(config.OTEL_EXPERIMENTS_ENDPOINT, "http://127.0.0.1:9/base/")
    monkeypatch.setenv(config.OTEL_EXPERIMENTS_COMPRESSION, "none")
    monkeypatch.setenv(config.OTEL_EXPERIMENTS_TIMEOUT, "2.5")
    monkeypatch.setenv(config.OTEL_EXPERIMENTS_MAX_SPANS_PER_REQUEST, "7")
    exp = ExperimentEventsExporter()
    assert exp.settings.endpoint == "http://127.0.0.1:9/base"
    assert exp.settings.compression == "none" and exp.settings.timeout == 2.5 and exp.settings.max_spans_per_request == 7
    assert exp.events_url("a/b c") == (
        "http://127.0.0.1:9/base/api/v2/llm-obs/v1/experiments/a%2Fb%20c/events"
    )
    from opentelemetry.exporter.otlp.proto.http import Compression

    assert ExperimentEventsExporter(compression=Compression.NoCompression).settings.compression == "none"  # type: ignore[arg-type]
    # constructor arguments win over the environment
    exp = ExperimentEventsExporter(compression="gzip", timeout=1, max_spans_per_request=3)
    assert exp.settings.compression == "gzip" and exp.settings.timeout == 1 and exp.settings.max_spans_per_request == 3
    exp.shutdown()


def test_entry_point_is_registered() -> None:
    from importlib.metadata import entry_points

    (ep,) = [
        e for e in entry_points(group="opentelemetry_traces_exporter") if e.name == "experiments"
    ]
    assert ep.load() is ExperimentEventsExporter


@pytest.mark.parametrize(
    "kwargs",
    [
        {"endpoint": "ftp://nope"},
        {"compression": "brotli"},
        {"timeout": -1},
        {"max_body_bytes": 0},
        {"headers": {"bad header": "x"}},
        {"api_key": "line\nbreak"},
    ],
)
def test_bad_constructor_values_raise_a_clear_error(kwargs: dict[str, Any]) -> None:
    # Arguments are the developer's own code: fail at construction, naming the argument.
    with pytest.raises(ValueError) as info:
        ExperimentEventsExporter(**kwargs)
    name = next(iter(kwargs))
    assert name.rstrip("s").replace("_", " ") in str(info.value).replace("_", " ") or (
        "header" in str(info.value)
    )
    assert "line\nbreak" not in str(info.value)


def test_bad_env_values_warn_and_fall_back(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="otel_experiments")
    monkeypatch.setenv("OTEL_EXPERIMENTS_ENDPOINT", "ftp://nope-env")
    monkeypatch.setenv("OTEL_EXPERIMENTS_COMPRESSION", "brotli-env")
    exp = ExperimentEventsExporter()
    assert exp.settings.endpoint == ""  # refused: never the default server instead
    assert exp.settings.compression == "gzip"
    text = caplog.text
    assert "OTEL_EXPERIMENTS_ENDPOINT" in text and "OTEL_EXPERIMENTS_COMPRESSION" in text


def test_disabled_sends_nothing(
    monkeypatch: pytest.MonkeyPatch, endpoint: str, recorder: Callable[..., Recorder],
    tracer: Tracer, mem: InMemorySpanExporter,
) -> None:
    rec = recorder()
    spans = make_spans(tracer, mem, 2, experiments=("exp-a",))
    for var, value in (("OTEL_EXPERIMENTS_ENABLED", "false"), ("OTEL_SDK_DISABLED", "true")):
        with monkeypatch.context() as m:
            m.setenv(var, value)
            exp = exporter(endpoint)
            assert exp.export(spans) is SpanExportResult.SUCCESS
    assert rec.requests == []


def test_groups_by_experiment_and_matches_converter(
    endpoint: str, recorder: Callable[..., Recorder], tracer: Tracer, mem: InMemorySpanExporter
) -> None:
    rec = recorder()
    spans = make_spans(tracer, mem, 9, experiments=("exp-a", "exp/b"))
    with tracer.start_as_current_span("no experiment"):
        pass
    spans = list(mem.get_finished_spans())
    exp = exporter(endpoint, compression="none")
    assert exp.export(spans) is SpanExportResult.SUCCESS
    assert [r["path"] for r in rec.requests] == [
        "/api/v2/llm-obs/v1/experiments/exp-a/events",
        "/api/v2/llm-obs/v1/experiments/exp%2Fb/events",
    ]
    expected = spans_to_event_bodies(spans)
    assert rec.bodies == [
        json.loads(dumps(expected["exp-a"])),
        json.loads(dumps(expected["exp/b"])),
    ]
    # the exporter assembles the envelope by hand: byte-identical to dumps(body)
    assert rec.requests[0]["body_bytes"] == dumps(expected["exp-a"])
    for body in rec.bodies:
        VALIDATOR.validate(body)
    headers = rec.requests[0]["headers"]
    assert headers["Content-Type"] == "application/json"
    assert "Content-Encoding" not in headers
    assert headers["User-Agent"].startswith("otel-experiments")
    exp.shutdown()


def test_nothing_to_send_is_success_without_requests(
    endpoint: str, recorder: Callable[..., Recorder], tracer: Tracer, mem: InMemorySpanExporter
) -> None:
    rec = recorder()
    with tracer.start_as_current_span("plain"):
        pass
    exp = exporter(endpoint)
    assert exp.export(mem.get_finished_spans()) is SpanExportResult.SUCCESS
    assert exp.export([]) is SpanExportResult.SUCCESS
    assert rec.requests == []
    exp.shutdown()


def test_gzip(
    endpoint: str, recorder: Callable[..., Recorder], tracer: Tracer, mem: InMemorySpanExporter
) -> None:
    rec = recorder()
    spans = make_spans(tracer, mem, 20)
    exp = exporter(endpoint, compression="gzip")
    assert exp.export(spans) is SpanExportResult.SUCCESS
    (req,) = rec.requests
    assert req["headers"]["Content-Encoding"] == "gzip"
    assert req["raw"][:2] == b"\x1f\x8b"
    assert len(req["raw"]) < len(req["body_bytes"]) / 3
    VALIDATOR.validate(req["body"])
    assert len(req["body"]["data"]["attributes"]["spans"]) == 20
    exp.shutdown()


def test_headers_api_key_and_secrets_never_leak(
    endpoint: str,
    recorder: Callable[..., Recorder],
    tracer: Tracer,
    mem: InMemorySpanExporter,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv(
        config.OTEL_EXPERIMENTS_HEADERS,
        f"DD-API-KEY={SECRET_HEADER},DD-APPLICATION-KEY=app%20key",
    )
    monkeypatch.setenv(config.OTEL_EXPERIMENTS_API_KEY, SECRET_KEY)
    rec = recorder([Response("bad key " + "nope", status=403), Response("x", status=503)])
    spans = make_spans(tracer, mem, 2)
    exp = exporter(endpoint, timeout=0.5)
    assert exp.export(spans) is SpanExportResult.FAILURE  # 403: not retried
    assert exp.export(spans) is SpanExportResult.SUCCESS  # 503 then 202
    headers = rec.requests[0]["headers"]
    assert headers["Authorization"] == f"Bearer {SECRET_KEY}"
    assert headers["Dd-Api-Key"] == SECRET_HEADER
    assert headers["Dd-Application-Key"] == "app key"
    text = repr(exp) + str(exp) + caplog.text
    assert SECRET_KEY not in text and SECRET_HEADER not in text
    assert "dd-api-key" in repr(exp) and "<redacted>" in repr(exp)
    assert "403" in caplog.text and "bad key nope" in caplog.text
    exp.shutdown()
    assert SECRET_KEY not in repr(exp) + caplog.text


# ----------------------------------------------------------------------------- splitting


def test_split_by_size_keeps_metrics_with_their_span(
    endpoint: str, recorder: Callable[..., Recorder], tracer: Tracer, mem: InMemorySpanExporter
) -> None:
    rec = recorder()
    spans = make_spans(tracer, mem, 40)
    limit = 4096
    exp = exporter(endpoint, compression="none", max_body_bytes=limit)
    assert exp.export(spans) is SpanExportResult.SUCCESS
    assert len(rec.requests) > 3
    for req in rec.requests:
        assert len(req["body_bytes"]) <= limit
        assert req["body_bytes"] == dumps(req["body"])  # hand-assembled envelope is exact
        VALIDATOR.validate(req["body"])
        attrs = req["body"]["data"]["attributes"]
        assert {m["span_id"] for m in attrs["metrics"]} == {s["span_id"] for s in attrs["spans"]}
    sent_spans, sent_metrics = flatten(rec.bodies)
    expected_spans, expected_metrics = flatten(list(spans_to_event_bodies(spans).values()))
    assert sent_spans == expected_spans and sent_metrics == expected_metrics
    exp.shutdown()


def test_split_by_span_count(
    endpoint: str, recorder: Callable[..., Recorder], tracer: Tracer, mem: InMemorySpanExporter
) -> None:
    rec = recorder()
    spans = make_spans(tracer, mem, 10)
    exp = exporter(endpoint, max_spans_per_request=3)
    assert exp.export(spans) is SpanExportResult.SUCCESS
    assert [len(b["data"]["attributes"]["spans"]) for b in rec.bodies] == [3, 3, 3, 1]
    assert [len(b["data"]["attributes"]["metrics"]) for b in rec.bodies] == [3, 3, 3, 1]
    exp.shutdown()


def test_oversized_single_span_is_sent_alone(
    endpoint: str,
    recorder: Callable[..., Recorder],
    tracer: Tracer,
    mem: InMemorySpanExporter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="otel_experiments")
    rec = recorder()
    spans = make_spans(tracer, mem, 3, payload="y" * 3000)
    exp = exporter(endpoint, compression="none", max_body_bytes=1024)
    assert exp.export(spans) is SpanExportResult.SUCCESS
    assert [len(b["data"]["attributes"]["spans"]) for b in rec.bodies] == [1, 1, 1]
    assert len([r for r in caplog.records if "max_body_bytes" in r.getMessage()]) == 1
    exp.shutdown()


# ----------------------------------------------------------------------------- retries


@pytest.mark.parametrize(
    "first",
    [
        Response("busy", status=503, headers={"Retry-After": "0"}),
        Response("slow down", status=429, headers={"Retry-After": "0.05"}),
        Response("slow down", status=429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}),
        Response("timeout", status=408),
        Response("oops", status=500),
        Response("bad gateway", status=502),
    ],
    ids=["503-retry-after-0", "429-retry-after-s", "429-http-date", "408", "500", "502"],
)
def test_retries_then_succeeds(
    endpoint: str,
    recorder: Callable[..., Recorder],
    tracer: Tracer,
    mem: InMemorySpanExporter,
    first: Response,
) -> None:
    rec = recorder([first, Response("again", status=first.status_code, headers=first.headers)])
    spans = make_spans(tracer, mem, 2)
    exp = exporter(endpoint)
    assert exp.export(spans) is SpanExportResult.SUCCESS
    assert len(rec.requests) == 3
    assert rec.bodies[0] == rec.bodies[1] == rec.bodies[2]
    if first.headers.get("Retry-After") == "0.05":
        assert rec.requests[1]["at"] - rec.requests[0]["at"] >= 0.045
    exp.shutdown()


def test_retry_after_beyond_timeout_gives_up_without_waiting(
    endpoint: str, recorder: Callable[..., Recorder], tracer: Tracer, mem: InMemorySpanExporter
) -> None:
    rec = recorder([Response("busy", status=429, headers={"Retry-After": "30"})])
    exp = exporter(endpoint, timeout=5.0)
    start = time.monotonic()
    assert exp.export(make_spans(tracer, mem, 1)) is SpanExportResult.FAILURE
    assert time.monotonic() - start < 2.5  # neither the 30 s asked for nor the 5 s timeout
    assert len(rec.requests) == 1
    exp.shutdown()


def test_retries_stop_at_the_export_timeout(
    endpoint: str, recorder: Callable[..., Recorder], tracer: Tracer, mem: InMemorySpanExporter
) -> None:
    rec = recorder([Response("down", status=503) for _ in range(1000)])
    exp = exporter(endpoint, timeout=0.4, backoff_initial=0.02, backoff_max=0.1)
    start = time.monotonic()
    assert exp.export(make_spans(tracer, mem, 1)) is SpanExportResult.FAILURE
    elapsed = time.monotonic() - start
    assert elapsed < 1.5  # 0.4 s of timeout; generous for a loaded machine
    assert 3 <= len(rec.requests) < 30  # backoff grew: not a hot loop
    exp.shutdown()


def test_4xx_not_retried_and_logged_once_per_status(
    endpoint: str,
    recorder: Callable[..., Recorder],
    tracer: Tracer,
    mem: InMemorySpanExporter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="otel_experiments")
    message = '{"errors":[{"detail":"spans[0].trace_id is invalid"}]}'
    rec = recorder([Response(message, status=400)] * 3 + [Response("gone", status=404)])
    spans = make_spans(tracer, mem, 1)
    exp = exporter(endpoint)
    for _ in range(3):
        assert exp.export(spans) is SpanExportResult.FAILURE
    assert exp.export(spans) is SpanExportResult.FAILURE
    assert len(rec.requests) == 4
    warnings = cause_warnings(caplog)
    assert len(warnings) == 2
    # and the tally of what was lost, rate-limited: once in these milliseconds
    assert [m for m in warnings_of(caplog) if "dropped in all" in m] == [
        "otel-experiments: 1 span(s) dropped (rejected); 1 dropped in all"
    ]
    assert exp.delivery_report().dropped_by_reason == {"rejected": 4}
    assert "HTTP 400" in warnings[0] and "spans[0].trace_id is invalid" in warnings[0]
    assert "HTTP 404" in warnings[1] and "gone" in warnings[1]
    exp.shutdown()


def test_dead_endpoint_never_raises(tracer: Tracer, mem: InMemorySpanExporter) -> None:
    exp = exporter(f"http://127.0.0.1:{free_port()}", timeout=0.3)
    start = time.monotonic()
    assert exp.export(make_spans(tracer, mem, 3)) is SpanExportResult.FAILURE
    assert time.monotonic() - start < 2.0  # 0.3 s of timeout, plus spooling on a loaded machine
    exp.shutdown()


def test_garbage_input_never_raises() -> None:
    exp = exporter("http://127.0.0.1:9")
    assert exp.export([object()]) is SpanExportResult.FAILURE  # type: ignore[list-item]
    exp.shutdown()


def test_parse_retry_after() -> None:
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    later = format_datetime(now + timedelta(seconds=7), usegmt=True)
    assert parse_retry_after(later, now=now.timestamp()) == pytest.approx(7.0)
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("-4") == 0.0
    for bad in (None, "", "soon", "nan", "inf"):
        assert parse_retry_after(bad) is None


# ----------------------------------------------------------------------------- lifecycle


def test_shutdown_is_idempotent_and_export_after_fails_with_one_warning(
    endpoint: str,
    recorder: Callable[..., Recorder],
    tracer: Tracer,
    mem: InMemorySpanExporter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="otel_experiments")
    rec = recorder()
    spans = make_spans(tracer, mem, 1)
    exp = exporter(endpoint)
    assert exp.export(spans) is SpanExportResult.SUCCESS
    assert exp.force_flush() is True
    exp.shutdown()
    exp.shutdown()
    assert exp.export(spans) is SpanExportResult.FAILURE
    assert exp.export(spans) is SpanExportResult.FAILURE
    assert len(rec.requests) == 1
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "after shutdown" in warnings[0].getMessage()
    # spans were dropped since the last flush: not everything was delivered
    assert exp.force_flush(timeout_millis=10) is False
    assert exp.delivery_report().dropped_by_reason == {"shutdown": 2}


def test_shutdown_interrupts_a_retry_wait(
    endpoint: str, recorder: Callable[..., Recorder], tracer: Tracer, mem: InMemorySpanExporter
) -> None:
    recorder([Response("busy", status=503, headers={"Retry-After": "3"})])
    exp = exporter(endpoint, timeout=10)
    result: list[SpanExportResult] = []
    spans = make_spans(tracer, mem, 1)
    worker = threading.Thread(target=lambda: result.append(exp.export(spans)))
    start = time.monotonic()
    worker.start()
    time.sleep(0.2)
    exp.shutdown()
    worker.join(5)
    assert result == [SpanExportResult.FAILURE]
    assert time.monotonic() - start < 1.5


# ----------------------------------------------------------------------------- SDK wiring


def _pipeline_provider(
    processor_factory: Callable[[ExperimentEventsExporter], Any], exp: ExperimentEventsExporter
) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: "svc"}))
    provider.add_span_processor(processor_factory(exp))
    return provider


@pytest.mark.parametrize(
    "factory",
    [
        SimpleSpanProcessor,
        lambda e: BatchSpanProcessor(e, schedule_delay_millis=50, max_export_batch_size=16),
    ],
    ids=["simple", "batch"],
)
def test_behind_sdk_processors(
    endpoint: str, recorder: Callable[..., Recorder], factory: Callable[[Any], Any]
) -> None:
    rec = recorder()
    exp = exporter(endpoint)
    provider = _pipeline_provider(factory, exp)
    tracer = provider.get_tracer("test")
    for i in range(20):
        with tracer.start_as_current_span("root", attributes={A.EXPERIMENT_ID: f"e{i % 2}"}) as s:
            record_metric(s, "ok", True)
            with tracer.start_as_current_span("child", attributes={A.EXPERIMENT_ID: f"e{i % 2}"}):
                pass
        with tracer.start_as_current_span("unrelated"):
            pass
    assert provider.force_flush(5000)
    provider.shutdown()
    spans, metrics = flatten(rec.bodies)
    assert len(spans) == 40 and len(metrics) == 20
    assert {r["path"].split("/")[-2] for r in rec.requests} == {"e0", "e1"}
    for body in rec.bodies:
        VALIDATOR.validate(body)
    # the provider shut the exporter down: later exports fail cleanly
    assert exp.export([]) is SpanExportResult.FAILURE


def test_next_to_otlp_exporter(httpserver: HTTPServer, recorder: Callable[..., Recorder]) -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    rec = recorder()
    otlp_hits: list[int] = []

    def otlp_handler(request: Request) -> Response:
        otlp_hits.append(len(request.get_data()))
        return Response(b"", status=200, content_type="application/x-protobuf")

    httpserver.expect_request("/v1/traces", method="POST").respond_with_handler(otlp_handler)
    endpoint = httpserver.url_for("").rstrip("/")
    provider = TracerProvider()
    provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces"))
    )
    provider.add_span_processor(BatchSpanProcessor(exporter(endpoint)))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("task", attributes={A.EXPERIMENT_ID: "exp-1"}):
        pass
    with tracer.start_as_current_span("other"):
        pass
    assert provider.force_flush(5000)
    provider.shutdown()
    assert otlp_hits and len(rec.requests) == 1
    assert [s["name"] for s in flatten(rec.bodies)[0]] == ["task"]


def test_with_the_context_layer(endpoint: str, recorder: Callable[..., Recorder]) -> None:
    """start_observe + the global ExperimentSpanProcessor (tests/conftest.py) + this exporter."""
    from opentelemetry import trace

    from otel_experiments import observe, start_observe

    rec = recorder()
    mem = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    provider.add_span_processor(SimpleSpanProcessor(mem))
    try:
        with start_observe(
            "summarize",
            "answer",
            experiment={"id": "exp-ctx", "name": "Context"},
            identity={"user": {"id": "u-9"}, "organization": {"id": "o-9"}},
        ) as span:
            span.set_input({"question": "2+2"})
            span.set_output("4")
            span.set_expected_output("4")
            observe.add_metric("exact_match", True)
            with trace.get_tracer("inner").start_as_current_span("llm-call"):
                pass
    finally:
        mem.shutdown()
    spans = [s for s in mem.get_finished_spans() if s.name in ("answer", "llm-call")]
    exp = exporter(endpoint)
    assert exp.export(spans) is SpanExportResult.SUCCESS
    (body,) = rec.bodies
    VALIDATOR.validate(body)
    by_name = {s["name"]: s for s in body["data"]["attributes"]["spans"]}
    answer = by_name["answer"]
    assert answer["meta"]["input"] == {"question": "2+2"}
    assert answer["meta"]["output"] == "4"
    assert "experiment.feature_slug:summarize" in answer["tags"]
    assert "user.id:u-9" in answer["tags"] and "organization.id:o-9" in answer["tags"]
    assert by_name["llm-call"]["parent_id"] == answer["span_id"]
    (metric,) = body["data"]["attributes"]["metrics"]
    assert metric["label"] == "exact_match" and metric["boolean_value"] is True
    exp.shutdown()


def test_url_credentials_and_bad_headers_never_logged(
    endpoint: str,
    recorder: Callable[..., Recorder],
    tracer: Tracer,
    mem: InMemorySpanExporter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    assert redact_url("https://bob:hunter2@h.example:8443/p?q=1") == (
        "https://bob:<redacted>@h.example:8443/p?q=1"
    )
    assert redact_url("http://127.0.0.1:1/x") == "http://127.0.0.1:1/x"
    with pytest.raises(ValueError) as info:
        ExperimentEventsExporter(headers={"x-bad": "line\r\nbreak-" + SECRET_HEADER})
    assert SECRET_HEADER not in str(info.value)
    with pytest.raises(ValueError) as info:
        ExperimentEventsExporter(api_key="key\nwith-newline-" + SECRET_KEY)
    assert SECRET_KEY not in str(info.value)
    creds = ExperimentEventsExporter(
        endpoint="https://bob:hunter2@h.example/", headers={"x-ok": "fine"}, api_key=SECRET_KEY
    )
    assert "hunter2" not in repr(creds) and "bob:<redacted>@h.example" in repr(creds)
    assert "x-ok" in repr(creds) and "fine" not in repr(creds)
    assert SECRET_KEY not in repr(creds) and "api_key=<redacted>" in repr(creds)
    creds.shutdown()
    # a server echoing our credentials back: scrubbed from the logged message
    rec = recorder([Response(f"denied for key {SECRET_KEY} / {SECRET_HEADER}", status=401)])
    exp = exporter(endpoint, api_key=SECRET_KEY, headers={"dd-api-key": SECRET_HEADER})
    assert exp.export(make_spans(tracer, mem, 1)) is SpanExportResult.FAILURE
    assert len(rec.requests) == 1
    assert "denied for key <redacted> / <redacted>" in caplog.text
    assert SECRET_KEY not in caplog.text and SECRET_HEADER not in caplog.text
    assert "hunter2" not in caplog.text
    exp.shutdown()


def test_nothing_listening_gives_up_fast_within_a_long_timeout(
    tracer: Tracer, mem: InMemorySpanExporter, caplog: pytest.LogCaptureFixture
) -> None:
    # The default 10 s timeout must not hold the export (or the app's exit) hostage
    # when nothing listens: a few quick attempts, then the body goes to the spool.
    caplog.set_level(logging.WARNING, logger="otel_experiments")
    exp = ExperimentEventsExporter(endpoint=f"http://127.0.0.1:{free_port()}", timeout=10.0,
                                   backoff_initial=0.05)
    start = time.monotonic()
    assert exp.export(make_spans(tracer, mem, 3)) is SpanExportResult.FAILURE
    assert time.monotonic() - start < 2.0
    assert "unreachable (ConnectError) after 3 attempts" in caplog.text
    assert "spooled 3 span(s)" in caplog.text
    exp.shutdown()


def test_https_to_a_plain_http_server_is_hinted_and_names_the_url(
    tracer: Tracer, mem: InMemorySpanExporter, caplog: pytest.LogCaptureFixture,
    endpoint: str,
) -> None:
    caplog.set_level(logging.WARNING, logger="otel_experiments")
    tls_endpoint = endpoint.replace("http://", "https://")
    exp = ExperimentEventsExporter(endpoint=tls_endpoint, timeout=5.0, backoff_initial=0.05)
    assert exp.export(make_spans(tracer, mem, 2)) is SpanExportResult.FAILURE
    assert f"POST {tls_endpoint}/api/v2/llm-obs/v1/experiments/" in caplog.text
    assert "does the server speak plain http://?" in caplog.text
    assert "spooled 2 span(s)" in caplog.text
    exp.shutdown()


def test_span_attributes_setting_and_redaction_reach_the_wire(
    monkeypatch: pytest.MonkeyPatch, endpoint: str, recorder: Callable[..., Recorder],
    tracer: Tracer, mem: InMemorySpanExporter,
) -> None:
    rec = recorder()
    mem.clear()
    with tracer.start_as_current_span("chat", attributes={
        A.EXPERIMENT_ID: "exp-a", "gen_ai.usage.input_tokens": 7, "gen_ai.prompt": "secret",
        "http.route": "/chat", "db.system": "sqlite",
    }):
        pass
    monkeypatch.setenv("OTEL_EXPERIMENTS_SPAN_ATTRIBUTES", "http.*, nope")
    monkeypatch.setenv("OTEL_EXPERIMENTS_REDACT", "gen_ai.prompt")
    exp = exporter(endpoint, compression="none")
    assert exp.settings.span_attributes == ("http.*", "nope")
    assert "span_attributes=['http.*', 'nope']" in repr(exp.settings)
    assert exp.export(mem.get_finished_spans()) is SpanExportResult.SUCCESS
    exp.shutdown()
    (span,) = rec.bodies[0]["data"]["attributes"]["spans"]
    assert span["attributes"] == {"gen_ai.usage.input_tokens": 7, "gen_ai.prompt": "[REDACTED]",
                                  "http.route": "/chat"}
    # the argument wins over the variable
    exp2 = exporter(endpoint, span_attributes=["db.system"])
    assert exp2.settings.span_attributes == ("db.system",)
    exp2.shutdown()
    with pytest.raises(ValueError):
        exporter(endpoint, span_attributes="db.system")
