"""OTLP/HTTP receiver, fed by the real OTLPSpanExporter (protobuf, gzip) and by OTLP/JSON."""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any

import httpx
import pytest
from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode
from server_helpers import API, uid

from otel_experiments import attributes as A
from otel_experiments.events import spans_to_event_bodies
from server_process import ServerProcess


def _make_spans(exp_id: str, slug: str) -> list[ReadableSpan]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "otlp-test"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("test-scope", "1.0")
    stamp = {A.EXPERIMENT_ID: exp_id, A.EXPERIMENT_NAME: "From OTLP",
             A.EXPERIMENT_FEATURE_SLUG: slug, A.USER_ID: "u-1", A.ORGANIZATION_ID: "o-1"}
    for i in range(3):
        with tracer.start_as_current_span("task", attributes=stamp) as root:
            root.set_attribute(A.INPUT_VALUE, json.dumps({"i": i}))
            root.set_attribute(A.INPUT_MIME_TYPE, A.MIME_JSON)
            root.set_attribute(A.OUTPUT_VALUE, f"out-{i}")
            root.set_attribute(A.METADATA, json.dumps({"k": [1, 2]}))
            root.add_event(A.METRIC_EVENT_NAME, {A.METRIC_LABEL: "acc", A.METRIC_TYPE: "score",
                                                 A.METRIC_VALUE: i / 2})
            root.add_event(A.METRIC_EVENT_NAME, {A.METRIC_LABEL: "ok",
                                                 A.METRIC_VALUE: i != 1})
            with tracer.start_as_current_span("llm-call", attributes=stamp) as child:
                if i == 2:
                    child.record_exception(ValueError("bad output"))
                    child.set_status(Status(StatusCode.ERROR, "bad output"))
            with tracer.start_as_current_span("no-experiment"):
                pass
    provider.shutdown()
    return list(memory.get_finished_spans())


def _events(client: httpx.Client, exp_id: str) -> list[dict[str, Any]]:
    r = client.get(f"{API}/experiments/{exp_id}/events?page[size]=1000")
    assert r.status_code == 200, r.text
    return [s["attributes"] for s in r.json()["data"]]


def test_real_exporter_protobuf_gzip(server: ServerProcess, client: httpx.Client) -> None:
    exp_id, slug = uid("exp"), uid("slug")
    spans = _make_spans(exp_id, slug)
    assert len(spans) == 9
    exporter = OTLPSpanExporter(endpoint=f"{server.base_url}/v1/traces",
                                compression=Compression.Gzip, timeout=10)
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    assert exporter.export(spans) is SpanExportResult.SUCCESS  # a retry: stored once
    exporter.shutdown()

    exp = client.get(f"{API}/experiments/{exp_id}").json()["data"]["attributes"]
    assert (exp["name"], exp["feature_slug"]) == ("From OTLP", slug)
    stored = _events(client, exp_id)
    assert len(stored) == 6  # 3 roots + 3 children; the 3 spans without experiment.id ignored
    # Stored exactly as the package's converter renders the original spans.
    (expected_body,) = spans_to_event_bodies(spans).values()
    expected = {s["span_id"]: s for s in expected_body["data"]["attributes"]["spans"]}
    expected_metrics = expected_body["data"]["attributes"]["metrics"]
    for doc in stored:
        metrics = doc.pop("metrics")
        assert doc == expected[doc["span_id"]]
        own = [m for m in expected_metrics if m["span_id"] == doc["span_id"]]
        assert sorted(metrics, key=lambda m: m["label"]) == sorted(own, key=lambda m: m["label"])
    summary = client.get(f"{API}/experiments/{exp_id}/summary").json()["data"]["attributes"]
    assert summary["span_count"] == 6 and summary["error_count"] == 1
    assert summary["root_spans"]["span_count"] == 3
    by_label = {m["label"]: m for m in summary["metrics"]}
    assert by_label["acc"]["count"] == 3 and by_label["acc"]["mean"] == pytest.approx(0.5)
    assert by_label["ok"]["value_counts"] == {"true": 2, "false": 1}
    assert [d["name"] for d in _events(client, exp_id) if d["status"] == "error"] == ["llm-call"]
    filtered = client.get(f"{API}/experiments/{exp_id}/events?filter[user_id]=u-1").json()["data"]
    assert len(filtered) == 6


def _otlp_json(spans: list[ReadableSpan]) -> dict[str, Any]:
    """OTLP/JSON as the specification spells it: hex ids, lowerCamelCase."""
    doc = json_format.MessageToDict(encode_spans(spans))

    def hexify(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: base64.b64decode(v).hex() if k in ("traceId", "spanId", "parentSpanId")
                    else hexify(v) for k, v in node.items()}
        if isinstance(node, list):
            return [hexify(v) for v in node]
        return node

    return hexify(doc)


def test_otlp_json_and_counts(server: ServerProcess, client: httpx.Client) -> None:
    exp_id = uid("exp")
    spans = _make_spans(exp_id, uid("slug"))
    body = json.dumps(_otlp_json(spans)).encode()
    r = client.post("/v1/traces", content=gzip.compress(body),
                    headers={"content-type": "application/json", "content-encoding": "gzip"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.headers["x-otel-experiments-accepted-spans"] == "6"
    assert r.headers["x-otel-experiments-ignored-spans"] == "3"
    assert r.headers["x-otel-experiments-accepted-metrics"] == "6"
    assert "rejectedSpans" not in r.text
    # the same spans over protobuf are recognised as duplicates
    pb = encode_spans(spans).SerializeToString()
    r = client.post("/v1/traces", content=pb, headers={"content-type": "application/x-protobuf"})
    assert r.status_code == 200
    assert r.headers["x-otel-experiments-accepted-spans"] == "0"
    assert r.headers["x-otel-experiments-duplicate-spans"] == "6"
    assert len(_events(client, exp_id)) == 6


def test_otlp_bad_requests(client: httpx.Client) -> None:
    assert client.post("/v1/traces", content=b"\xff\x00garbage",
                       headers={"content-type": "application/x-protobuf"}).status_code == 400
    assert client.post("/v1/traces", content=b"{bad",
                       headers={"content-type": "application/json"}).status_code == 400
    assert client.post("/v1/traces", content=b'{"resourceSpans": [{"scopeSpans": [{"spans": '
                       b'[{"traceId": "zz"}]}]}]}',
                       headers={"content-type": "application/json"}).status_code == 400
    assert client.post("/v1/traces", content=b"x",
                       headers={"content-type": "text/plain"}).status_code == 415
    # an empty request is a valid (empty) export
    r = client.post("/v1/traces", content=b"", headers={"content-type": "application/x-protobuf"})
    assert r.status_code == 200
    # spans with invalid ids are reported as rejected through partial_success
    doc = {"resourceSpans": [{"scopeSpans": [{"spans": [
        {"traceId": "00" * 16, "spanId": "00" * 8, "name": "x",
         "attributes": [{"key": "experiment.id", "value": {"stringValue": uid("exp")}}]}]}]}]}
    r = client.post("/v1/traces", json=doc)
    assert r.status_code == 200 and r.json()["partialSuccess"]["rejectedSpans"] == "1"


def test_otlp_odd_attribute_values_never_500(client: httpx.Client) -> None:
    exp_id = uid("exp")

    def attr(key: str, value: dict[str, Any]) -> dict[str, Any]:
        return {"key": key, "value": value}

    spans = []
    odd_values = [{"bytesValue": base64.b64encode(b"\x00\xff").decode()},
                  {"kvlistValue": {"values": [attr("a", {"intValue": "1"})]}},
                  {"arrayValue": {"values": [{"stringValue": "x"}, {"intValue": "2"}]}},
                  {"doubleValue": 1.5}, {}]
    for i, odd in enumerate(odd_values, start=1):
        spans.append({
            "traceId": f"{i:032x}", "spanId": f"{i:016x}", "name": f"odd-{i}",
            "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000000000001000",
            "attributes": [attr("experiment.id", {"stringValue": exp_id}),
                           attr("experiment.name", {"stringValue": "bad\u0000name"}),
                           attr("input.value", odd), attr("metadata", odd),
                           attr("user.id", odd)],
            "events": [{"name": "experiment.metric", "timeUnixNano": "1700000000000000500",
                        "attributes": [attr("metric.label", {"stringValue": "acc"}),
                                       attr("metric.value", odd)]}],
        })
    doc = {"resourceSpans": [{"resource": {"attributes": [attr("service.name", odd_values[0])]},
                              "scopeSpans": [{"spans": spans}]}]}
    r = client.post("/v1/traces", json=doc)
    assert r.status_code == 200, r.text
    stored = int(r.headers["x-otel-experiments-accepted-spans"])
    rejected = int(r.headers["x-otel-experiments-rejected-spans"])
    assert stored + rejected == len(spans)
    assert stored >= 4  # odd values are stored as the converter renders them
    if stored:
        exp = client.get(f"{API}/experiments/{exp_id}").json()["data"]["attributes"]
        assert exp["name"] == exp_id  # the NUL-bearing name was not usable
