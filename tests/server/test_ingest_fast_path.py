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
from ingest_cases import (
    METRIC_MEMBERS,
    mutate,
    mutated_envelope,
    mutated_span,
    valid_metrics,
    valid_spans,
)
from server_helpers import events_body, metric, span

from otel_experiments.server import ingest, plain_body
from otel_experiments.server.jsonapi import ApiErrors


def _schema_accepts(spans: list[Any], metrics: list[Any]) -> bool:
    try:
        ingest.validate_schema(events_body(spans, metrics))
    except ApiErrors:
        return False
    return True


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_an_accepted_span_is_one_the_schema_accepts(data: st.DataObject) -> None:
    mutated = mutated_span(data)
    row = ingest._span_fast(mutated)
    if row is not None:
        assert _schema_accepts([mutated], []), mutated
        assert row == ingest._span(copy.deepcopy(mutated), "/s")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_an_accepted_metric_is_one_the_schema_accepts(data: st.DataObject) -> None:
    mutated = mutate(data, data.draw(st.sampled_from(valid_metrics())), METRIC_MEMBERS)
    row = ingest._metric_fast(mutated)
    if row is not None:
        assert _schema_accepts([], [mutated]), mutated
        assert row == ingest._metric(copy.deepcopy(mutated), "/m")


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_an_accepted_envelope_is_one_the_schema_accepts(data: st.DataObject) -> None:
    body = mutated_envelope(data)
    if plain_body.plain_envelope(body):  # (then both lists are lists)
        spans, metrics = body["data"]["attributes"]["spans"], body["data"]["attributes"]["metrics"]
        if all(ingest._span_fast(s) for s in spans) and all(
                ingest._metric_fast(m) for m in metrics):
            assert _schema_accepts(spans, metrics)


def test_the_fast_path_takes_plain_items_and_declines_odd_ones() -> None:
    """Not vacuous: every valid example goes the fast way; typical mistakes do not."""
    assert all(ingest._span_fast(s) is not None for s in valid_spans())
    assert all(ingest._metric_fast(m) is not None for m in valid_metrics())
    assert plain_body.plain_envelope(events_body(valid_spans(), valid_metrics()))
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
