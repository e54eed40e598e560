"""The pure converter: finished spans to experiment events bodies."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

from otel_experiments import attributes as A
from otel_experiments.events import (
    EVENTS_SCHEMA_PATH,
    _json,
    dumps,
    load_events_schema,
    loads,
    spans_to_event_bodies,
)
from otel_experiments.observation.metrics import record_metric

VALIDATOR = jsonschema.Draft202012Validator(load_events_schema())


def validate_bodies(bodies: dict[str, dict[str, Any]]) -> None:
    for body in bodies.values():
        VALIDATOR.validate(body)
        # and it survives the wire: both encoders produce the same document
        assert json.loads(dumps(body)) == json.loads(_json.stdlib_dumps(body))
        VALIDATOR.validate(json.loads(dumps(body)))


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracer(exporter: InMemorySpanExporter) -> Iterator[Tracer]:
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: "svc-test"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider.get_tracer("test")
    provider.shutdown()


EXP = {
    A.EXPERIMENT_ID: "exp-1",
    A.EXPERIMENT_NAME: "My experiment",
    A.EXPERIMENT_FEATURE_SLUG: "summarize",
    A.USER_ID: "u-1",
    A.ORGANIZATION_ID: "org-1",
}


def finished(exporter: InMemorySpanExporter) -> tuple[ReadableSpan, ...]:
    return exporter.get_finished_spans()


def test_schema_file_is_valid_draft_2020_12() -> None:
    assert EVENTS_SCHEMA_PATH.is_file()
    assert EVENTS_SCHEMA_PATH.suffix == ".json"
    schema = load_events_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)
    schema["mutated"] = True
    assert "mutated" not in load_events_schema()


def test_spans_without_experiment_are_skipped(
    tracer: Tracer, exporter: InMemorySpanExporter
) -> None:
    with tracer.start_as_current_span("plain"):
        pass
    with tracer.start_as_current_span("bad", attributes={A.EXPERIMENT_ID: ""}):
        pass
    assert spans_to_event_bodies(finished(exporter)) == {}
    assert spans_to_event_bodies([]) == {}


def test_groups_by_experiment_in_first_seen_order(
    tracer: Tracer, exporter: InMemorySpanExporter
) -> None:
    for exp in ("b", "a", "b", "c", "a"):
        with tracer.start_as_current_span(f"task-{exp}", attributes={A.EXPERIMENT_ID: exp}):
            pass
    with tracer.start_as_current_span("other"):
        pass
    bodies = spans_to_event_bodies(finished(exporter))
    assert list(bodies) == ["b", "a", "c"]
    assert [len(b["data"]["attributes"]["spans"]) for b in bodies.values()] == [2, 2, 1]
    for body in bodies.values():
        assert body["data"]["type"] == "experiment_events"
        assert body["data"]["attributes"]["metrics"] == []
    validate_bodies(bodies)


def test_exact_field_mapping(tracer: Tracer, exporter: InMemorySpanExporter) -> None:
    with tracer.start_as_current_span("root", attributes=EXP, kind=SpanKind.SERVER) as root:
        root.set_attribute(A.OBSERVE_FEATURE_SLUG, "summarize")
        with tracer.start_as_current_span("child", attributes=EXP) as child:
            child.set_attributes(
                {
                    A.INPUT_VALUE: json.dumps({"q": "2+2", "n": [1, 2]}),
                    A.INPUT_MIME_TYPE: A.MIME_JSON,
                    A.OUTPUT_VALUE: "4",
                    A.OUTPUT_MIME_TYPE: A.MIME_TEXT,
                    A.EXPECTED_OUTPUT_VALUE: "4",
                    A.METADATA: json.dumps({"model": "m", "temperature": 0.0}),
                    A.DATASET_RECORD_ID: "rec-7",
                }
            )
    child_span, root_span = finished(exporter)
    bodies = spans_to_event_bodies(finished(exporter))
    validate_bodies(bodies)
    assert list(bodies) == ["exp-1"]
    child_ev, root_ev = bodies["exp-1"]["data"]["attributes"]["spans"]

    assert child_span.context is not None and root_span.context is not None
    assert child_span.start_time is not None and child_span.end_time is not None
    assert child_ev == {
        "trace_id": f"{child_span.context.trace_id:032x}",
        "span_id": f"{child_span.context.span_id:016x}",
        "parent_id": f"{root_span.context.span_id:016x}",
        "name": "child",
        "start_ns": child_span.start_time,
        "duration": child_span.end_time - child_span.start_time,
        "status": "ok",
        "meta": {
            "input": {"q": "2+2", "n": [1, 2]},
            "output": "4",
            "expected_output": "4",
            "metadata": {"model": "m", "temperature": 0.0},
        },
        "tags": [
            "service.name:svc-test",
            "experiment.id:exp-1",
            "experiment.name:My experiment",
            "experiment.feature_slug:summarize",
            "organization.id:org-1",
            "user.id:u-1",
            "span.kind:internal",
        ],
        "dataset_record_id": "rec-7",
    }
    assert "parent_id" not in root_ev  # roots omit parent_id
    assert root_ev["trace_id"] == child_ev["trace_id"]
    assert len(root_ev["trace_id"]) == 32 and len(root_ev["span_id"]) == 16
    assert root_ev["meta"] == {}
    assert root_ev["tags"][-2:] == ["observe.feature_slug:summarize", "span.kind:server"]


def test_payload_decoding_rules(tracer: Tracer, exporter: InMemorySpanExporter) -> None:
    with tracer.start_as_current_span("s", attributes=EXP) as span:
        span.set_attributes(
            {
                A.INPUT_VALUE: "{not json",
                A.INPUT_MIME_TYPE: A.MIME_JSON,
                A.OUTPUT_VALUE: '{"kept": "as text"}',  # no mime type: stays a string
                A.EXPECTED_OUTPUT_VALUE: '{"answer": 4}',
                A.METADATA: "[1, 2]",
            }
        )
    (ev,) = spans_to_event_bodies(finished(exporter))["exp-1"]["data"]["attributes"]["spans"]
    assert ev["meta"] == {
        "input": "{not json",
        "output": '{"kept": "as text"}',
        "expected_output": {"answer": 4},
        "metadata": {"value": [1, 2]},
    }


def test_error_with_exception_and_stack(tracer: Tracer, exporter: InMemorySpanExporter) -> None:
    def explode() -> None:
        raise KeyError("missing")

    with pytest.raises(KeyError), tracer.start_as_current_span("fails", attributes=EXP):
        explode()
    bodies = spans_to_event_bodies(finished(exporter))
    validate_bodies(bodies)
    (ev,) = bodies["exp-1"]["data"]["attributes"]["spans"]
    assert ev["status"] == "error"
    err = ev["meta"]["error"]
    assert err["type"] == "KeyError"
    assert err["message"] == "'missing'"
    assert "Traceback" in err["stack"] and "explode" in err["stack"]


def test_error_from_status_only(tracer: Tracer, exporter: InMemorySpanExporter) -> None:
    with tracer.start_as_current_span("bad", attributes=EXP) as span:
        span.set_status(Status(StatusCode.ERROR, "upstream said no"))
    with tracer.start_as_current_span("bad2", attributes=EXP) as span:
        span.set_status(Status(StatusCode.ERROR))
    with tracer.start_as_current_span("handled", attributes=EXP) as span:
        span.record_exception(ValueError("handled"))  # status stays unset -> ok, no error
    bodies = spans_to_event_bodies(finished(exporter))
    validate_bodies(bodies)
    bad, bad2, handled = bodies["exp-1"]["data"]["attributes"]["spans"]
    assert bad["meta"]["error"] == {"type": None, "message": "upstream said no", "stack": None}
    assert bad2["meta"]["error"] == {"type": None, "message": "error", "stack": None}
    assert handled["status"] == "ok" and "error" not in handled["meta"]


def test_metrics_travel_with_their_span(tracer: Tracer, exporter: InMemorySpanExporter) -> None:
    with tracer.start_as_current_span("task", attributes=EXP) as span:
        record_metric(span, "accuracy", 0.95, metadata={"judge": "exact"})
        record_metric(span, "verdict", "correct")
        record_metric(span, "exact_match", True)
        record_metric(span, "tokens", 12, metric_type="score")
    (sp,) = finished(exporter)
    bodies = spans_to_event_bodies([sp])
    validate_bodies(bodies)
    attrs = bodies["exp-1"]["data"]["attributes"]
    (ev,) = attrs["spans"]
    metrics = attrs["metrics"]
    assert [m["label"] for m in metrics] == ["accuracy", "verdict", "exact_match", "tokens"]
    for m in metrics:
        assert m["span_id"] == ev["span_id"] and m["trace_id"] == ev["trace_id"]
        assert isinstance(m["timestamp_ms"], int)
        assert ev["start_ns"] // 1_000_000 <= m["timestamp_ms"]
        assert m["timestamp_ms"] <= (ev["start_ns"] + ev["duration"]) // 1_000_000 + 1
    accuracy, verdict, exact, tokens = metrics
    assert {k: v for k, v in accuracy.items() if k not in ("timestamp_ms",)} == {
        "span_id": ev["span_id"],
        "trace_id": ev["trace_id"],
        "metric_type": "score",
        "label": "accuracy",
        "score_value": 0.95,
        "metadata": {"judge": "exact"},
    }
    assert verdict["metric_type"] == "categorical" and verdict["categorical_value"] == "correct"
    assert exact["metric_type"] == "boolean" and exact["boolean_value"] is True
    assert tokens["metric_type"] == "score" and tokens["score_value"] == 12
    assert "metadata" not in verdict


def test_malformed_metric_events_are_dropped(
    tracer: Tracer, exporter: InMemorySpanExporter
) -> None:
    with tracer.start_as_current_span("task", attributes=EXP) as span:
        span.add_event(A.METRIC_EVENT_NAME, {A.METRIC_LABEL: "x", A.METRIC_VALUE: float("nan")})
        span.add_event(A.METRIC_EVENT_NAME, {A.METRIC_LABEL: "", A.METRIC_VALUE: 1})
        span.add_event(
            A.METRIC_EVENT_NAME,
            {A.METRIC_LABEL: "y", A.METRIC_VALUE: "a", A.METRIC_TYPE: "score"},
        )
        span.add_event(A.METRIC_EVENT_NAME, {A.METRIC_LABEL: "z", A.METRIC_TYPE: "weird"})
        span.add_event(A.METRIC_EVENT_NAME)
        # hand-made but valid: type inferred, timestamp from the event
        span.add_event(A.METRIC_EVENT_NAME, {A.METRIC_LABEL: "ok", A.METRIC_VALUE: False})
    bodies = spans_to_event_bodies(finished(exporter))
    validate_bodies(bodies)
    (m,) = bodies["exp-1"]["data"]["attributes"]["metrics"]
    assert m["label"] == "ok" and m["boolean_value"] is False and m["timestamp_ms"] > 0


def test_nested_spans_across_traces_and_experiments(
    tracer: Tracer, exporter: InMemorySpanExporter
) -> None:
    for i, exp in enumerate(("e1", "e2")):
        with tracer.start_as_current_span("root", attributes={A.EXPERIMENT_ID: exp}) as root:
            record_metric(root, "score", i)
            with tracer.start_as_current_span("mid", attributes={A.EXPERIMENT_ID: exp}):
                with tracer.start_as_current_span("leaf", attributes={A.EXPERIMENT_ID: exp}):
                    pass
                with tracer.start_as_current_span("unstamped"):
                    pass
    bodies = spans_to_event_bodies(finished(exporter))
    validate_bodies(bodies)
    for body in bodies.values():
        spans = {s["name"]: s for s in body["data"]["attributes"]["spans"]}
        assert set(spans) == {"root", "mid", "leaf"}
        assert spans["leaf"]["parent_id"] == spans["mid"]["span_id"]
        assert spans["mid"]["parent_id"] == spans["root"]["span_id"]
        assert "parent_id" not in spans["root"]
        assert len({s["trace_id"] for s in spans.values()}) == 1
        (metric,) = body["data"]["attributes"]["metrics"]
        assert metric["span_id"] == spans["root"]["span_id"]
    assert (
        bodies["e1"]["data"]["attributes"]["spans"][0]["trace_id"]
        != bodies["e2"]["data"]["attributes"]["spans"][0]["trace_id"]
    )


def test_dumps_and_loads_round_trip() -> None:
    obj = {"a": [1, 2.5, True, None], "s": "héllo \u2603", "t": (1, 2)}
    assert isinstance(dumps(obj), bytes)
    assert loads(dumps(obj)) == {"a": [1, 2.5, True, None], "s": "héllo \u2603", "t": [1, 2]}
    assert _json.stdlib_dumps({"a": 1, "b": [1]}) == b'{"a":1,"b":[1]}'
    assert json.loads(_json.stdlib_dumps(obj)) == loads(dumps(obj))
    with pytest.raises(ValueError):
        loads("{nope")


def test_every_body_validates_on_a_large_mixed_batch(
    tracer: Tracer, exporter: InMemorySpanExporter
) -> None:
    for i in range(50):
        attrs = {**EXP, A.EXPERIMENT_ID: f"exp-{i % 3}"}
        try:
            with tracer.start_as_current_span(f"t{i}", attributes=attrs) as span:
                span.set_attribute(A.INPUT_VALUE, json.dumps({"i": i}))
                span.set_attribute(A.INPUT_MIME_TYPE, A.MIME_JSON)
                record_metric(span, "i", i)
                if i % 7 == 0:
                    raise RuntimeError(f"boom {i}")
        except RuntimeError:
            pass
    bodies = spans_to_event_bodies(finished(exporter))
    assert sorted(bodies) == ["exp-0", "exp-1", "exp-2"]
    assert sum(len(b["data"]["attributes"]["spans"]) for b in bodies.values()) == 50
    assert sum(len(b["data"]["attributes"]["metrics"]) for b in bodies.values()) == 50
    validate_bodies(bodies)


def test_hand_built_readable_spans_with_plain_dicts() -> None:
    """The server's OTLP receiver builds ReadableSpans from protobuf with plain dicts."""
    from opentelemetry.sdk.trace import Event
    from opentelemetry.trace import SpanContext, TraceFlags

    ctx = SpanContext(0xABC, 0x1, is_remote=False, trace_flags=TraceFlags(1))
    parent = SpanContext(0xABC, 0x2, is_remote=True)
    span = ReadableSpan(
        name="remote",
        context=ctx,
        parent=parent,
        resource=None,
        attributes={A.EXPERIMENT_ID: "exp-x", A.USER_ID: "u", A.OUTPUT_VALUE: "out"},
        events=[
            Event(
                A.METRIC_EVENT_NAME,
                {A.METRIC_LABEL: "s", A.METRIC_TYPE: "score", A.METRIC_VALUE: 2},
                timestamp=5_000_000,
            ),
            Event("exception", {"exception.type": "E", "exception.message": "m"}),
        ],
        kind=SpanKind.CLIENT,
        status=Status(StatusCode.ERROR),
        start_time=10,
        end_time=5,  # clock skew: duration clamps to 0
    )
    bodies = spans_to_event_bodies([span])
    validate_bodies(bodies)
    (ev,) = bodies["exp-x"]["data"]["attributes"]["spans"]
    assert ev["trace_id"] == f"{0xABC:032x}" and ev["span_id"] == f"{1:016x}"
    assert ev["parent_id"] == f"{2:016x}"
    assert ev["duration"] == 0 and ev["status"] == "error"
    assert ev["meta"] == {"output": "out", "error": {"type": "E", "message": "m", "stack": None}}
    assert [t for t in ev["tags"] if not t.startswith("service.")] == [
        "experiment.id:exp-x",
        "user.id:u",
        "span.kind:client",
    ]
    (m,) = bodies["exp-x"]["data"]["attributes"]["metrics"]
    assert m["score_value"] == 2 and m["timestamp_ms"] == 5



@pytest.mark.parametrize("value", [4, "4", [1, 2], {"a": None}, True])
def test_expected_output_round_trips_its_type(value: Any) -> None:
    from otel_experiments import ObservedSpan

    provider, memory = TracerProvider(), InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with provider.get_tracer("t").start_as_current_span("n") as raw:
        raw.set_attribute("experiment.id", "exp-x")
        ObservedSpan(raw, 1000).set_expected_output(value)
    body = spans_to_event_bodies(memory.get_finished_spans())["exp-x"]
    assert body["data"]["attributes"]["spans"][0]["meta"]["expected_output"] == value


# --------------------------------------------------------------------------- attributes


GENAI = {
    "gen_ai.operation.name": "chat",
    "gen_ai.request.model": "gpt-4o",
    "gen_ai.response.model": "gpt-4o-2024-08-06",
    "gen_ai.usage.input_tokens": 120,
    "gen_ai.usage.output_tokens": 33,
    "gen_ai.response.finish_reasons": ("stop",),
}


def test_genai_attributes_travel_on_the_event(
    tracer: Tracer, exporter: InMemorySpanExporter
) -> None:
    with tracer.start_as_current_span("chat gpt-4o", attributes={**EXP, **GENAI,
                                                                  "http.route": "/x"}):
        pass
    with tracer.start_as_current_span("plain", attributes=EXP):
        pass
    bodies = spans_to_event_bodies(exporter.get_finished_spans())
    validate_bodies(bodies)
    chat, plain = bodies["exp-1"]["data"]["attributes"]["spans"]
    assert chat["attributes"] == {**GENAI, "gen_ai.response.finish_reasons": ["stop"]}
    assert "attributes" not in plain  # the bytes of spans without any stay as they were


def test_listed_attributes_exact_and_glob(tracer: Tracer, exporter: InMemorySpanExporter) -> None:
    from otel_experiments.events.shapes import KeptAttributes

    with tracer.start_as_current_span("s", attributes={
        **EXP, "http.route": "/chat", "llm.vendor": "acme", "llm.temperature": 0.2,
        "other": "no", "gen_ai.request.model": "m",
    }):
        pass
    kept = KeptAttributes(["http.route", "llm.*", " "])
    (event,) = spans_to_event_bodies(exporter.get_finished_spans(), kept)["exp-1"]["data"][
        "attributes"]["spans"]
    assert event["attributes"] == {"http.route": "/chat", "llm.vendor": "acme",
                                   "llm.temperature": 0.2, "gen_ai.request.model": "m"}
    assert "KeptAttributes" in repr(kept) and "llm.*" in repr(kept)


def test_hostile_attribute_values_are_bounded_and_never_raise(
    tracer: Tracer, exporter: InMemorySpanExporter
) -> None:
    from otel_experiments.events.shapes import MAX_KEPT_ITEMS, MAX_KEPT_VALUE_CHARS

    with tracer.start_as_current_span("s", attributes={
        **EXP, "gen_ai.prompt": "p" * 100_000, "gen_ai.temperature": float("nan"),
        "gen_ai.top_p": float("inf"), "gen_ai.stop": ("a", "b"),
        "gen_ai.weird": "\ud800 lone surrogate", "gen_ai.many": tuple(range(100_000)),
    }):
        pass
    bodies = spans_to_event_bodies(exporter.get_finished_spans())
    validate_bodies(bodies)
    (event,) = bodies["exp-1"]["data"]["attributes"]["spans"]
    kept = event["attributes"]
    assert len(kept["gen_ai.prompt"]) == MAX_KEPT_VALUE_CHARS
    assert kept["gen_ai.prompt"].endswith(A.TRUNCATION_MARKER)
    assert "gen_ai.temperature" not in kept and "gen_ai.top_p" not in kept
    assert kept["gen_ai.stop"] == ["a", "b"]
    assert kept["gen_ai.many"] == list(range(MAX_KEPT_ITEMS))
    assert dumps(bodies["exp-1"])  # encodable, surrogate and all


def test_many_distinct_attribute_key_sets_stay_bounded(
    tracer: Tracer, exporter: InMemorySpanExporter
) -> None:
    from otel_experiments.events.shapes import _MAX_SHAPES, KeptAttributes

    kept = KeptAttributes()
    for i in range(_MAX_SHAPES + 50):
        with tracer.start_as_current_span("s", attributes={**EXP, f"k{i}": 1}):
            pass
    bodies = spans_to_event_bodies(exporter.get_finished_spans(), kept)
    assert len(bodies["exp-1"]["data"]["attributes"]["spans"]) == _MAX_SHAPES + 50
    assert len(kept.shapes) <= _MAX_SHAPES
