"""The ingest fast path checks a plain body in one pass and skips the schema validator: it
must never accept what the schema refuses, and must build the rows the checked path builds.

Hypothesis mutates valid spans, metrics and envelopes (members removed, added, replaced
by any JSON value, at every depth) and checks: whenever the fast path accepts, the JSON
Schema accepts too and the field-by-field path builds the same row.
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from server_helpers import events_body, metric, span

from otel_experiments.server import ingest, plain_body
from otel_experiments.server.jsonapi import ApiErrors

JSON_SCALARS = st.one_of(  # (integers: the range the server's JSON parser produces)
    st.none(), st.booleans(), st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False), st.text(max_size=40),
    st.sampled_from(["", "ok", "error", "score", "boolean", "categorical", "a:b", ":x", "x:",
                     "0" * 16, "0" * 32, "A" * 16, "g" * 32, "0" * 15, "\x00", "x" * 300]),
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(max_size=10), inner, max_size=3)),
    max_leaves=6,
)

SPAN_MEMBERS = ["trace_id", "span_id", "parent_id", "name", "start_ns", "duration", "status",
                "meta", "tags", "dataset_record_id", "attributes", "extra"]
META_MEMBERS = ["input", "output", "expected_output", "error", "metadata", "extra"]
METRIC_MEMBERS = ["span_id", "trace_id", "metric_type", "label", "score_value",
                  "categorical_value", "boolean_value", "timestamp_ms", "metadata", "extra"]


def _valid_spans() -> list[dict[str, Any]]:
    return [
        span(1, tags=["user.id:u1", "organization.id:o1", "experiment.name:N"]),
        span(2, parent=1, status="error", dataset_record_id="rec-2",
             attributes={"gen_ai.usage.input_tokens": 3, "gen_ai.request.model": "m",
                         "list": [1, 2.5, "x", True]}),
        span(3, tags=["dataset_record_id:r3"], meta={"metadata": {"k": 1}}),
    ]


def _valid_metrics() -> list[dict[str, Any]]:
    with_metadata = metric(1, "acc", 0.5)
    with_metadata["metadata"] = {"why": "x"}
    return [metric(1, "acc", 0.5), metric(1, "n", 3), metric(2, "ok", True),
            metric(3, "grade", "A"), with_metadata]


def _mutate(data: st.DataObject, item: dict[str, Any], members: list[str]) -> dict[str, Any]:
    item = copy.deepcopy(item)
    for _ in range(data.draw(st.integers(1, 3))):
        key = data.draw(st.sampled_from(members))
        action = data.draw(st.sampled_from(["delete", "replace"]))
        if action == "delete":
            item.pop(key, None)
        else:
            item[key] = data.draw(JSON_VALUES)
    return item


def _schema_accepts(spans: list[Any], metrics: list[Any]) -> bool:
    try:
        ingest.validate_schema(events_body(spans, metrics))
    except ApiErrors:
        return False
    return True


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_an_accepted_span_is_one_the_schema_accepts(data: st.DataObject) -> None:
    base = data.draw(st.sampled_from(_valid_spans()))
    where = data.draw(st.sampled_from(["span", "meta", "error", "tags", "attributes"]))
    if where == "span":
        mutated = _mutate(data, base, SPAN_MEMBERS)
    else:
        mutated = copy.deepcopy(base)
        if where == "meta":
            mutated["meta"] = _mutate(data, mutated["meta"], META_MEMBERS)
        elif where == "error":
            mutated["meta"]["error"] = _mutate(
                data, {"type": "E", "message": "m", "stack": None},
                ["type", "message", "stack", "extra"])
        elif where == "tags":
            mutated["tags"] = [*mutated["tags"], data.draw(JSON_VALUES)]
        else:
            mutated["attributes"] = {"k": data.draw(JSON_VALUES)}
    row = ingest._span_fast(mutated)
    if row is not None:
        assert _schema_accepts([mutated], []), mutated
        assert row == ingest._span(copy.deepcopy(mutated), "/s")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_an_accepted_metric_is_one_the_schema_accepts(data: st.DataObject) -> None:
    mutated = _mutate(data, data.draw(st.sampled_from(_valid_metrics())), METRIC_MEMBERS)
    row = ingest._metric_fast(mutated)
    if row is not None:
        assert _schema_accepts([], [mutated]), mutated
        assert row == ingest._metric(copy.deepcopy(mutated), "/m")


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_an_accepted_envelope_is_one_the_schema_accepts(data: st.DataObject) -> None:
    body: dict[str, Any] = events_body([span(1)], [metric(1, "acc", 0.5)])
    target = data.draw(st.sampled_from(["body", "data", "attributes"]))
    node = {"body": body, "data": body["data"],
            "attributes": body["data"]["attributes"]}[target]
    members = {"body": ["data", "extra"], "data": ["type", "attributes", "extra"],
               "attributes": ["spans", "metrics", "extra"]}[target]
    key = data.draw(st.sampled_from(members))
    if data.draw(st.booleans()):
        node.pop(key, None)
    else:
        node[key] = data.draw(JSON_VALUES)
    if plain_body.plain_envelope(body):  # (then both lists are lists)
        spans, metrics = body["data"]["attributes"]["spans"], body["data"]["attributes"]["metrics"]
        if all(ingest._span_fast(s) for s in spans) and all(
                ingest._metric_fast(m) for m in metrics):
            assert _schema_accepts(spans, metrics)


def test_the_fast_path_takes_plain_items_and_declines_odd_ones() -> None:
    """Not vacuous: every valid example goes the fast way; typical mistakes do not."""
    assert all(ingest._span_fast(s) is not None for s in _valid_spans())
    assert all(ingest._metric_fast(m) is not None for m in _valid_metrics())
    assert plain_body.plain_envelope(events_body(_valid_spans(), _valid_metrics()))
    odd_spans = [
        {**span(1), "parent_id": None},  # null is not "omitted"
        {**span(1), "span_id": "ABCDEF0123456789"},  # uppercase
        {**span(1), "start_ns": -1},
        {**span(1), "duration": 1.5},
        {**span(1), "status": "OK"},
        {**span(1), "tags": ["no-colon"]},
        {**span(1), "tags": [":empty-key"]},
        {**span(1), "meta": {"error": {"type": None, "message": "", "stack": None}}},
        {**span(1), "meta": {"metadata": [1]}},
        {**span(1), "dataset_record_id": ""},
        {**span(1), "attributes": {"k": {"nested": 1}}},
        {**span(1), "unknown": 1},
        "not a span",
    ]
    for odd in odd_spans:
        assert ingest._span_fast(odd) is None, odd
        assert not _schema_accepts([odd], []), odd
    odd_metrics = [
        {**metric(1, "acc", 0.5), "categorical_value": "x"},  # two values
        {**metric(1, "ok", True), "boolean_value": 1},
        {**metric(1, "acc", 0.5), "score_value": True},
        {**metric(1, "acc", 0.5), "label": ""},
        {**metric(1, "acc", 0.5), "metric_type": "other"},
        {**metric(1, "acc", 0.5), "timestamp_ms": -5},
    ]
    for odd in odd_metrics:
        assert ingest._metric_fast(odd) is None, odd
        assert not _schema_accepts([], [odd]), odd
