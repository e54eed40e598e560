"""Valid events items and Hypothesis mutations of them, shared by the tests of the two
ingest fast paths (``test_ingest_fast_path``: decoded JSON; ``test_plain_decode``: text)."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import strategies as st
from server_helpers import events_body, metric, span

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


def valid_spans() -> list[dict[str, Any]]:
    return [
        span(1, tags=["user.id:u1", "organization.id:o1", "experiment.name:N"]),
        span(2, parent=1, status="error", dataset_record_id="rec-2",
             attributes={"gen_ai.usage.input_tokens": 3, "gen_ai.request.model": "m",
                         "list": [1, 2.5, "x", True]}),
        span(3, tags=["dataset_record_id:r3"], meta={"metadata": {"k": 1}}),
    ]


def valid_metrics() -> list[dict[str, Any]]:
    with_metadata = metric(1, "acc", 0.5)
    with_metadata["metadata"] = {"why": "x"}
    return [metric(1, "acc", 0.5), metric(1, "n", 3), metric(2, "ok", True),
            metric(3, "grade", "A"), with_metadata]


def mutate(data: st.DataObject, item: dict[str, Any], members: list[str]) -> dict[str, Any]:
    item = copy.deepcopy(item)
    for _ in range(data.draw(st.integers(1, 3))):
        key = data.draw(st.sampled_from(members))
        action = data.draw(st.sampled_from(["delete", "replace"]))
        if action == "delete":
            item.pop(key, None)
        else:
            item[key] = data.draw(JSON_VALUES)
    return item


def mutated_span(data: st.DataObject) -> dict[str, Any]:
    """A valid span with members removed, added or replaced, in the span or one level in."""
    base = data.draw(st.sampled_from(valid_spans()))
    where = data.draw(st.sampled_from(["span", "meta", "error", "tags", "attributes"]))
    if where == "span":
        mutated = mutate(data, base, SPAN_MEMBERS)
    else:
        mutated = copy.deepcopy(base)
        if where == "meta":
            mutated["meta"] = mutate(data, mutated["meta"], META_MEMBERS)
        elif where == "error":
            mutated["meta"]["error"] = mutate(
                data, {"type": "E", "message": "m", "stack": None},
                ["type", "message", "stack", "extra"])
        elif where == "tags":
            mutated["tags"] = [*mutated["tags"], data.draw(JSON_VALUES)]
        else:
            mutated["attributes"] = {"k": data.draw(JSON_VALUES)}
    return mutated


def mutated_envelope(data: st.DataObject) -> dict[str, Any]:
    """A valid body (one span, one metric) with an envelope member removed or replaced."""
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
    return body
