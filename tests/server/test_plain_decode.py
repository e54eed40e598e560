"""The typed decode of a plain events body (``server.plain_decode``) must never accept what
the JSON Schema refuses, and must build the rows the checked path (JSON decode +
``ingest.parse_events``) builds from the same text.

Hypothesis mutates valid spans, metrics and envelopes (members removed, added, replaced by
any JSON value, at every depth), writes the body as JSON text, and checks: whenever the
typed decode accepts, the schema accepts too and the rows equal the checked path's (stored
documents compared as JSON: the typed path writes members in the exporter's order).
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
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

from otel_experiments.server import ingest
from otel_experiments.server.jsonapi import ApiErrors, parse_json
from otel_experiments.server.plain_body import hex_ids
from otel_experiments.server.plain_decode import plain_rows

MAX_ITEMS = 1000
_VALUE_KEYS = {"score": "score_value", "categorical": "categorical_value",
               "boolean": "boolean_value"}


def _text(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False).encode("utf-8", "surrogatepass")


def _checked(text: bytes) -> tuple[list[Any], list[Any]] | None:
    """The checked path's rows (``None`` where it refuses the body)."""
    try:
        body = parse_json(text)
        ingest.validate_schema(body)
        return ingest.parse_events(body, MAX_ITEMS)
    except ApiErrors:
        return None
    except Exception as exc:  # an ApiError (one field)
        if type(exc).__name__ == "ApiError":
            return None
        raise


def _metric_doc(row: tuple[Any, ...]) -> dict[str, Any]:
    """What a metric row reads back as: its document, or rebuilt from its columns."""
    if row[8] is not None:
        return json.loads(row[8])  # type: ignore[no-any-return]
    value = {"score": row[4], "categorical": row[5], "boolean": row[6]}[row[2]]
    return {"span_id": row[0], "trace_id": row[1], "metric_type": row[2], "label": row[3],
            _VALUE_KEYS[row[2]]: value, "timestamp_ms": row[7]}


def _same_rows(fast: tuple[list[Any], list[Any]], checked: tuple[list[Any], list[Any]]) -> None:
    assert len(fast[0]) == len(checked[0]) and len(fast[1]) == len(checked[1])
    for a, b in zip(fast[0], checked[0], strict=True):
        assert a.values[:-1] == b.values[:-1]
        assert json.loads(a.values[-1]) == json.loads(b.values[-1])
        assert (a.experiment_name, a.feature_slug) == (b.experiment_name, b.feature_slug)
    for m, n in zip(fast[1], checked[1], strict=True):
        assert m[:8] == n[:8]
        assert _metric_doc(m) == _metric_doc(n)


def _check(body: Any) -> None:
    text = _text(body)
    fast = plain_rows(text, MAX_ITEMS)
    if fast is not None:
        checked = _checked(text)
        assert checked is not None, body
        _same_rows(fast, checked)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_an_accepted_span_is_one_the_schema_accepts(data: st.DataObject) -> None:
    mutated = mutated_span(data)
    _check(events_body([mutated], []))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_an_accepted_metric_is_one_the_schema_accepts(data: st.DataObject) -> None:
    mutated = mutate(data, data.draw(st.sampled_from(valid_metrics())), METRIC_MEMBERS)
    _check(events_body([], [mutated]))


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_an_accepted_envelope_is_one_the_schema_accepts(data: st.DataObject) -> None:
    body = mutated_envelope(data)
    _check(body)


def test_plain_bodies_take_the_typed_path_with_the_checked_rows() -> None:
    """Not vacuous: every valid example goes the typed way, with the checked path's rows."""
    text = _text(events_body(valid_spans(), valid_metrics()))
    fast = plain_rows(text, MAX_ITEMS)
    assert fast is not None
    checked = _checked(text)
    assert checked is not None
    _same_rows(fast, checked)


def _with(item: dict[str, Any], **members: Any) -> dict[str, Any]:
    return {**copy.deepcopy(item), **members}


@pytest.mark.parametrize("body", [
    events_body([_with(span(1), parent_id=None)]),  # null is not "omitted"
    events_body([_with(span(1), parent_id="")]),
    events_body([_with(span(1), span_id="ABCDEF0123456789")]),  # uppercase
    # (a body's ids are checked all at once: lengths that add up, a bad id among good ones)
    events_body([_with(span(1), span_id="0" * 15), _with(span(2), span_id="0" * 17)]),
    events_body([span(1), _with(span(2), trace_id="0" * 31 + "g"), span(3)]),
    events_body([span(1), _with(span(2), parent_id="000000000000000\n")]),
    events_body([_with(span(1), span_id="000000000000000\u0660")]),  # a non-ASCII digit
    events_body([_with(span(1), span_id="000000000000000\uff10")]),  # fullwidth zero
    events_body([_with(span(1), span_id="000000000000000\ud800")]),  # a lone surrogate
    events_body([span(1)], [metric(1, "acc", 0.5), _with(metric(1, "ok", True),
                                                        trace_id="0" * 32 + "0")]),
    events_body([span(1)], [_with(metric(1, "acc", 0.5), span_id="0" * 15 + "-")]),
    events_body([_with(span(1), start_ns=-1)]),
    events_body([_with(span(1), start_ns=2**63)]),  # past int64
    events_body([_with(span(1), duration=1.5)]),
    events_body([_with(span(1), duration=5.0)]),  # a whole float: the checked path's job
    events_body([_with(span(1), status="OK")]),
    events_body([_with(span(1), tags=["no-colon"])]),
    events_body([_with(span(1), tags=[":empty-key"])]),
    events_body([_with(span(1), name="nul\x00")]),
    events_body([_with(span(1), meta={"error": {"type": None, "message": "", "stack": None}})]),
    events_body([_with(span(1), meta={"metadata": [1]})]),
    events_body([_with(span(1), meta={"input": 2**70})]),  # past 64 bits
    events_body([_with(span(1), meta={"output": [2**63]})]),  # (uint64: the checked path's)
    events_body([_with(span(1), meta={"metadata": {"k": -(2**63) - 1}})]),
    events_body([_with(span(1), meta={"input": [[[[[[[[[1]]]]]]]]]})]),  # 9 deep
    events_body([_with(span(1), attributes={"k": 2**64})]),
    events_body([_with(span(1), dataset_record_id="")]),
    events_body([_with(span(1), attributes={"k": {"nested": 1}})]),
    events_body([_with(span(1), unknown=1)]),
    events_body([], [_with(metric(1, "acc", 0.5), categorical_value="x")]),  # two values
    events_body([], [_with(metric(1, "ok", True), boolean_value=1)]),
    events_body([], [_with(metric(1, "acc", 0.5), score_value=True)]),
    events_body([], [_with(metric(1, "acc", 0.5), score_value=2**70)]),
    events_body([], [_with(metric(1, "acc", 0.5), label="")]),
    events_body([], [_with(metric(1, "acc", 0.5), label="é")]),  # the byte limit: checked
    events_body([], [_with(metric(1, "acc", 0.5), metric_type="other")]),
    events_body([], [_with(metric(1, "acc", 0.5), timestamp_ms=-5)]),
    {"data": {"type": "experiments", "attributes": {"spans": [], "metrics": []}}},  # ddtrace
    {"data": {"type": "experiment_events", "attributes": {"spans": []}}},
    [1, 2],
])
def test_odd_bodies_go_to_the_checked_path(body: Any) -> None:
    assert plain_rows(_text(body), MAX_ITEMS) is None


@pytest.mark.parametrize("text", [
    b'{"data": {"type": "experiment_events", "attributes": {"spans": [], "metrics": []}}',
    b'"\\ud800"', b"\xff", b"[" * 5000 + b"]" * 5000, b"", b"NaN",
])
def test_malformed_text_goes_to_the_checked_path(text: bytes) -> None:
    assert plain_rows(text, MAX_ITEMS) is None


def test_hex_ids_refuses_what_encodes_badly() -> None:
    """(msgspec refuses a lone surrogate while decoding: the guard is checked directly)"""
    assert hex_ids(["0" * 16, "0" * 16], 16)
    assert not hex_ids(["0" * 15 + "\ud800"], 16)
    assert not hex_ids(["0" * 15 + "\u00e9"], 16)


def test_too_many_items_go_to_the_checked_path() -> None:
    """(which answers 413 naming the list)"""
    text = _text(events_body([span(i) for i in range(1, 4)]))
    assert plain_rows(text, 3) is not None
    assert plain_rows(text, 2) is None


def test_a_repeated_member_counts_once_its_last_value() -> None:
    """As in the checked path (the JSON parser keeps the last value)."""
    text = _text(events_body([span(1)]))
    text = text.replace(b'"name": "task-1"', b'"name": "first", "name": "task-1"')
    fast = plain_rows(text, MAX_ITEMS)
    checked = _checked(text)
    assert fast is not None and checked is not None
    assert fast[0][0].values[3] == "task-1"
    _same_rows(fast, checked)
