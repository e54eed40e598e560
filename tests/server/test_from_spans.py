"""Datasets from traces: ``POST /datasets/{id}/from-spans`` against the real server."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from server_helpers import API, events_body, metric, span, uid


def _experiment(client: httpx.Client, slug: str) -> str:
    exp = uid("exp")
    res = client.post(f"{API}/experiments", json={"data": {"type": "experiments", "id": exp,
                      "attributes": {"name": exp, "feature_slug": slug}}})
    assert res.status_code == 201, res.text
    return exp


def _dataset(client: httpx.Client) -> str:
    res = client.post(f"{API}/datasets", json={"data": {"attributes": {"name": uid("ds")}}})
    assert res.status_code == 201
    return str(res.json()["data"]["id"])


def _from_spans(client: httpx.Client, dataset: str, **attrs: Any) -> httpx.Response:
    return client.post(f"{API}/datasets/{dataset}/from-spans", json={"data": {
        "type": "dataset_records_from_spans", "attributes": attrs}})


def _seed(client: httpx.Client, exp: str) -> None:
    """Traces 1..5 (root span i = trace i, a child span 100 + i under each); the inputs of
    traces 2 and 4 are equal ({"q": 0}); trace 5 has none; exact_match false on 2, 3, 4."""
    spans = []
    for t in range(1, 6):
        root = span(t, trace=t, duration=10)
        root["meta"] = {"input": {"q": t % 2 if t in (2, 4) else t}, "output": f"answer {t}",
                        "expected_output": f"gold {t}"}
        if t == 5:
            root["meta"] = {"output": "no input"}
        child = span(100 + t, trace=t, parent=t)
        spans += [root, child]
    metrics = [metric(t, "exact_match", t not in (2, 3, 4), trace=t) for t in range(1, 6)]
    metrics += [metric(100 + t, "score", t / 10, trace=t) for t in range(1, 6)]  # on children
    res = client.post(f"{API}/experiments/{exp}/events", json=events_body(spans, metrics))
    assert res.status_code == 202, res.text


def _records(client: httpx.Client, dataset: str) -> list[dict[str, Any]]:
    res = client.get(f"{API}/datasets/{dataset}/records")
    assert res.status_code == 200
    return [r["attributes"] | {"id": r["id"]} for r in res.json()["data"]]


def test_records_from_failing_traces_deduplicated_and_linked(client: httpx.Client) -> None:
    exp = _experiment(client, uid("slug"))
    _seed(client, exp)
    ds = _dataset(client)
    res = _from_spans(client, ds, experiment_id=exp,
                      metric={"label": "exact_match", "equals": False})
    assert res.status_code == 200, res.text
    meta = res.json()["meta"]
    # traces 2, 3, 4 failed; 2 and 4 share an input: two records, one duplicate
    assert meta == {"dataset_version": 1, "matched_spans": 3, "added": 2, "duplicates": 1,
                    "without_input": 0}
    records = _records(client, ds)
    assert [r["input"] for r in records] == [{"q": 0}, {"q": 3}]
    assert [r["expected_output"] for r in records] == ["answer 2", "answer 3"]
    assert records[0]["metadata"]["source"] == {
        "experiment_id": exp, "trace_id": f"{2:032x}", "span_id": f"{2:016x}",
        "span_name": "task-2"}
    assert records[0]["tags"] == ["from-trace"]

    # Again, wider: every root span. Nothing already there is added twice; the trace
    # without an input is counted, not stored.
    again = _from_spans(client, ds, experiment_id=exp, expected_output="expected_output")
    assert again.json()["meta"] == {"dataset_version": 2, "matched_spans": 5, "added": 1,
                                    "duplicates": 3, "without_input": 1}
    added = again.json()["data"]
    assert [r["attributes"]["input"] for r in added] == [{"q": 1}]
    assert [r["attributes"]["expected_output"] for r in added] == ["gold 1"]
    # Nothing new: no new version.
    same = _from_spans(client, ds, experiment_id=exp)
    assert same.json()["meta"]["added"] == 0 and same.json()["meta"]["dataset_version"] == 2
    assert len(_records(client, ds)) == 3


def test_an_input_added_by_hand_is_not_added_again(client: httpx.Client) -> None:
    exp = _experiment(client, uid("slug"))
    _seed(client, exp)
    ds = _dataset(client)
    hand = client.post(f"{API}/datasets/{ds}/records", json={"data": [
        {"attributes": {"input": {"q": 3}, "expected_output": "mine"}}]})
    assert hand.status_code == 201
    res = _from_spans(client, ds, experiment_id=exp, expected_output="none")
    assert res.json()["meta"]["added"] == 2  # {"q": 1}, {"q": 0}
    inputs = [r["input"] for r in _records(client, ds)]
    assert inputs.count({"q": 3}) == 1 and len(inputs) == 3
    assert all(r["attributes"]["expected_output"] is None for r in res.json()["data"])


def test_filters_slug_metric_range_time_name_status(client: httpx.Client) -> None:
    slug = uid("slug")
    exp_a, exp_b = _experiment(client, slug), _experiment(client, slug)
    _seed(client, exp_a)
    _seed(client, exp_b)  # the same inputs in a second experiment of the slug

    def added(**attrs: Any) -> list[Any]:
        res = _from_spans(client, _dataset(client), **attrs)
        assert res.status_code == 200, res.text
        return [r["attributes"]["input"] for r in res.json()["data"]]

    assert added(feature_slug=slug) == [{"q": 1}, {"q": 0}, {"q": 3}]  # deduplicated
    # a score recorded on a child span belongs to its trace's root span
    score = {"label": "score", "min": 0.25, "max": 0.35}
    assert added(experiment_id=exp_a, metric=score) == [{"q": 3}]
    start = 1_700_000_000_000_000_000
    assert added(experiment_id=exp_a, start_after_ns=start + 3,
                 start_before_ns=start + 5) == [{"q": 3}, {"q": 0}]
    assert added(experiment_id=exp_a, span_name="task-3") == [{"q": 3}]
    assert added(experiment_id=exp_a, status="error") == []
    assert added(experiment_id=exp_a, span_name="task-101") == []  # not a record span
    assert added(experiment_id=exp_a, span_name="task-101", roots_only=False) == [{"i": 101}]
    assert len(added(experiment_id=exp_a, roots_only=False, limit=2)) == 2
    assert added(experiment_id=exp_a, metric={"label": "nothing"}) == []


@pytest.mark.parametrize("attrs, pointer", [
    ({}, "/data/attributes/experiment_id"),
    ({"experiment_id": "bad id"}, "/data/attributes/experiment_id"),
    ({"experiment_id": "e", "limit": 0}, "/data/attributes/limit"),
    ({"experiment_id": "e", "expected_output": "x"}, "/data/attributes/expected_output"),
    ({"experiment_id": "e", "metric": {"equals": 1}}, "/data/attributes/metric/label"),
    ({"experiment_id": "e", "metric": {"label": "m", "equals": [1]}},
     "/data/attributes/metric/equals"),
    ({"experiment_id": "e", "roots_only": "yes"}, "/data/attributes/roots_only"),
    ({"experiment_id": "e", "start_after_ns": -1}, "/data/attributes/start_after_ns"),
])
def test_bad_requests_name_the_field(client: httpx.Client, attrs: dict[str, Any],
                                     pointer: str) -> None:
    res = _from_spans(client, _dataset(client), **attrs)
    assert res.status_code == 400, res.text
    assert res.json()["errors"][0]["source"] == {"pointer": pointer}


def test_an_unknown_dataset_is_a_404(client: httpx.Client) -> None:
    assert _from_spans(client, "ds-nope", experiment_id="e").status_code == 404
