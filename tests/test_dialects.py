"""events/dialects.py: ddtrace's wire dialect to and from ours (pure functions)."""

from __future__ import annotations

import json

from otel_experiments.events import dialects as D
from otel_experiments.events.bodies import encode_bodies


def test_ids() -> None:
    assert D.span_id_from_ddtrace("5429891217724444563") == "4b5ad94b317a8f93"
    assert D.span_id_to_ddtrace("4b5ad94b317a8f93") == "5429891217724444563"
    assert D.span_id_from_ddtrace(1) == "0000000000000001"
    for bad in ("0", str(2**64), "-1", "12ab", True, None):
        assert D.span_id_from_ddtrace(bad) == bad  # left for the schema to refuse
    hex_trace = "6b07dc850000000015fc3b30bf4db68c"
    assert D.trace_id_from_ddtrace(hex_trace.upper()) == hex_trace
    assert D.trace_id_from_ddtrace("255") == "0" * 30 + "ff"


def test_reference_span_and_metrics() -> None:
    span = {"span_id": "5429891217724444563", "trace_id": "6b07dc850000000015fc3b30bf4db68c",
            "parent_id": "undefined", "name": "task", "start_ns": 1, "duration": 2,
            "status": "ok", "metrics": {}, "config": {"model": "m"},
            "meta": {"input": {"q": "2+2"}, "output": "4", "expected_output": "4",
                     "metadata": {"m": 1}, "span": {"kind": "experiment"}},
            "tags": ["dataset_record_id:r1", "experiment_id:exp-1", "env:", "bad"]}
    out = D.span_from_ddtrace(span)
    assert out == {
        "trace_id": "6b07dc850000000015fc3b30bf4db68c", "span_id": "4b5ad94b317a8f93",
        "name": "task", "start_ns": 1, "duration": 2, "status": "ok",
        "meta": {"input": {"q": "2+2"}, "output": "4", "expected_output": "4",
                 "metadata": {"m": 1}},
        "tags": ["dataset_record_id:r1", "experiment_id:exp-1", "env:", "span_kind:experiment"],
        "dataset_record_id": "r1"}
    child = D.span_from_ddtrace({**span, "parent_id": "1", "status": "error",
                                 "meta": {"error": {"message": "", "type": "E"}},
                                 "tags": ["dataset_record_canonical_id:c1",
                                          "dataset_record_id:r9"]})
    assert child["parent_id"] == "0000000000000001"
    assert child["meta"]["error"] == {"type": "E", "message": "E", "stack": None}
    assert child["dataset_record_id"] == "c1"


def test_events_body_split_into_ours_and_summary() -> None:
    body = {"data": {"type": "experiments", "attributes": {"scope": "experiments", "metrics": [
        {"metric_source": "custom", "span_id": "1", "trace_id": "a" * 32, "timestamp_ms": 5,
         "metric_type": "categorical", "label": "c", "categorical_value": "x", "error": None,
         "tags": [], "experiment_id": "e", "assessment": "pass"},
        {"metric_source": "summary", "span_id": "", "trace_id": "", "timestamp_ms": 6,
         "metric_type": "json", "label": "s", "json_value": [1], "error": None, "tags": []},
    ], "tags": ["t:1"]}}}
    assert D.is_ddtrace_events(body) and not D.is_ddtrace_events({"data": {"type": "x"}})
    events = D.from_ddtrace_events(body)
    assert events.body == {"data": {"type": "experiment_events", "attributes": {
        "spans": [], "metrics": [{
            "span_id": "0000000000000001", "trace_id": "a" * 32, "metric_type": "categorical",
            "label": "c", "categorical_value": "x", "timestamp_ms": 5,
            "metadata": {"_dd": {"metric_source": "custom", "assessment": "pass"}}}]}}}
    (summary,) = events.summary_metrics
    assert summary["categorical_value"] == "[1]" and "span_id" not in summary
    assert D.metric_value(summary) == [1]


def test_exporter_items_round_trip() -> None:
    event = {"trace_id": "ab" * 16, "span_id": "00000000000000ff", "name": "n", "start_ns": 1,
             "duration": 2, "status": "ok", "meta": {"input": "q"},
             "tags": ["experiment.id:e1", "service.name:svc"], "dataset_record_id": "r1"}
    child = {**event, "span_id": "0000000000000100", "parent_id": "00000000000000ff"}
    metric = {"span_id": "00000000000000ff", "trace_id": "ab" * 16, "metric_type": "score",
              "label": "acc", "score_value": 1.0, "timestamp_ms": 3}
    items = D.ddtrace_items("e1", [(event, [metric]), (child, [])])
    (dd_root, (dd_metric,)), (dd_child, _) = items
    assert (dd_root["span_id"], dd_root["parent_id"], dd_child["parent_id"]) == (
        "255", "undefined", "255")
    assert {"experiment_id:e1", "service:svc", "dataset_record_id:r1"} <= set(dd_root["tags"])
    assert dd_metric["metric_source"] == "custom" and dd_metric["span_id"] == "255"
    ((body, _),), _ = encode_bodies(items, 10**6, 100)
    wire = json.loads(D.ddtrace_envelope(body))
    assert wire["data"]["type"] == "experiments"
    back = D.from_ddtrace_events(wire).body["data"]["attributes"]
    assert [s["span_id"] for s in back["spans"]] == [event["span_id"], child["span_id"]]
    assert "parent_id" not in back["spans"][0]
    assert back["spans"][1]["parent_id"] == event["span_id"]
    assert back["metrics"][0]["span_id"] == metric["span_id"]
    assert back["spans"][0]["dataset_record_id"] == "r1"


def test_genai_usage_travels_as_ddtrace_llm_metrics_and_back() -> None:
    event = {
        "trace_id": "0" * 31 + "1", "span_id": "0" * 15 + "2", "parent_id": "0" * 15 + "3",
        "name": "chat gpt-4o", "start_ns": 1, "duration": 2, "status": "ok", "meta": {},
        "tags": [], "attributes": {"gen_ai.request.model": "gpt-4o",
                                   "gen_ai.usage.input_tokens": 120,
                                   "gen_ai.usage.output_tokens": 33},
    }
    dd = D.span_to_ddtrace(event)
    assert dd["metrics"] == {"input_tokens": 120, "output_tokens": 33, "total_tokens": 153}
    assert dd["meta"]["model_name"] == "gpt-4o"
    back = D.span_from_ddtrace(dd)
    assert back["attributes"] == event["attributes"]
    # odd values from a foreign client are left out, not guessed
    dd["metrics"] = {"input_tokens": -1, "output_tokens": "many", "total_tokens": 3.5}
    assert "attributes" not in D.span_from_ddtrace(
        {**dd, "metrics": {"input_tokens": float("inf"), "output_tokens": float("nan")},
         "meta": {}})
    dd["meta"]["model_name"] = ""
    assert "attributes" not in D.span_from_ddtrace(dd)
    plain = {k: v for k, v in event.items() if k != "attributes"}
    assert "metrics" not in D.span_to_ddtrace(plain)
