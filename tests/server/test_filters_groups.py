"""Strict query parameters, span filters and grouped summaries (units of work per group)."""

from __future__ import annotations

import httpx
import pytest
from server_helpers import API, events_body, metric, span, uid


def _seed(client: httpx.Client) -> str:
    """Two variants (entry span names) x users; each request: an entry span, a child, a
    metric recorded on the child (it belongs to the unit through the trace)."""
    exp = uid("exp")
    spans, metrics = [], []
    requests = [("variant_a", "u-1", True), ("variant_a", "u-2", False),
                ("variant_b", "u-1", True), ("variant_a", "u-1", True), ("variant_b", "u-3", False)]
    for n, (variant, user, ok) in enumerate(requests, start=1):
        entry, child = n * 10, n * 10 + 1
        tags = [f"user.id:{user}", "experiment.entry:true"]
        # the entry span's parent lives in another service: a unit by its tag
        spans.append(span(entry, trace=n, parent=999_000 + n, tags=tags, name=f"experiment.{variant}",
                          status="ok" if ok else "error", duration=100 * n))
        spans.append(span(child, trace=n, parent=entry, tags=[f"user.id:{user}"], name="llm-call"))
        metrics.append(metric(child, "correct", ok, trace=n))
        metrics.append(metric(child, "score", float(n), trace=n))
    r = client.post(f"{API}/experiments/{exp}/events", json=events_body(spans, metrics))
    assert r.status_code == 202, r.text
    return exp


def _summary(client: httpx.Client, exp: str, **params: str) -> dict:
    r = client.get(f"{API}/experiments/{exp}/summary", params=params)
    assert r.status_code == 200, r.text
    return r.json()["data"]["attributes"]


def test_units_are_counted_by_entry_span(client: httpx.Client) -> None:
    exp = _seed(client)
    plain = _summary(client, exp)
    assert plain["span_count"] == 10 and plain["root_spans"]["span_count"] == 5
    assert plain["root_spans"]["error_count"] == 2


def test_group_by_variant_and_user(client: httpx.Client) -> None:
    exp = _seed(client)
    by_name = _summary(client, exp, group_by="name")
    groups = {g["key"]: g for g in by_name["groups"]}
    assert set(groups) == {"experiment.variant_a", "experiment.variant_b"}
    a, b = groups["experiment.variant_a"], groups["experiment.variant_b"]
    assert a["root_spans"]["span_count"] == 3 and b["root_spans"]["span_count"] == 2
    metrics_a = {m["label"]: m for m in a["metrics"]}
    assert metrics_a["correct"]["value_counts"] == {"true": 2, "false": 1}
    assert metrics_a["score"]["mean"] == pytest.approx((1 + 2 + 4) / 3)
    assert {m["label"]: m for m in b["metrics"]}["score"]["mean"] == pytest.approx(4.0)
    by_user = _summary(client, exp, group_by="user_id")
    users = {g["key"]: g["root_spans"]["span_count"] for g in by_user["groups"]}
    assert users == {"u-1": 3, "u-2": 1, "u-3": 1}
    assert by_user["groups"][0]["key"] == "u-1"  # largest group first


def test_filters_on_summary_and_events(client: httpx.Client) -> None:
    exp = _seed(client)
    u1 = _summary(client, exp, **{"filter[user_id]": "u-1"})
    assert u1["root_spans"]["span_count"] == 3
    assert {m["label"]: m["count"] for m in u1["metrics"]} == {"correct": 3, "score": 3}
    errors = _summary(client, exp, **{"filter[status]": "error"})
    assert errors["span_count"] == 2 and errors["root_spans"]["span_count"] == 2
    named = client.get(f"{API}/experiments/{exp}/events",
                       params={"filter[name]": "llm-call", "page[size]": "100"}).json()["data"]
    assert len(named) == 5 and {s["attributes"]["name"] for s in named} == {"llm-call"}
    start = 1_700_000_000_000_000_000
    late = client.get(f"{API}/experiments/{exp}/events",
                      params={"filter[start_after]": str(start + 32)}).json()["data"]
    # spans start at base + their id: requests 4 (variant a) and 5 (variant b) are later
    assert sorted(s["attributes"]["name"] for s in late) == sorted(
        ["experiment.variant_a", "llm-call", "experiment.variant_b", "llm-call"])
    iso = client.get(f"{API}/experiments/{exp}/events",
                     params={"filter[start_before]": "2000-01-01T00:00:00Z"}).json()["data"]
    assert iso == []


@pytest.mark.parametrize(
    ("path", "params", "named"),
    [
        ("/summary", {"filter[user]": "u-1"}, "filter[user]"),  # a typo of filter[user_id]
        ("/events", {"filter[foo]": "x"}, "filter[foo]"),
        ("/summary", {"group_by": "model"}, "group_by"),
        ("/events", {"filter[start_after]": "yesterday"}, "filter[start_after]"),
        ("", {"include": "everything"}, "include"),
    ],
)
def test_an_unknown_or_bad_parameter_is_a_400_naming_it(
    client: httpx.Client, path: str, params: dict[str, str], named: str
) -> None:
    exp = _seed(client)
    r = client.get(f"{API}/experiments/{exp}{path}", params=params)
    assert r.status_code == 400, r.text
    (error,) = r.json()["errors"]
    assert error["source"]["parameter"] == named
    assert named in error["detail"] or error["source"]["parameter"] == named


def test_an_unknown_parameter_on_the_events_post_is_a_400_naming_it(client: httpx.Client) -> None:
    """(the ingest route checks its query string itself, not through a dependency)"""
    body = {"data": {"type": "experiment_events", "attributes": {"spans": [], "metrics": []}}}
    r = client.post(f"{API}/experiments/exp-strict/events", params={"dry_run": "1"}, json=body)
    assert r.status_code == 400, r.text
    (error,) = r.json()["errors"]
    assert error["source"]["parameter"] == "dry_run"
    assert client.post(f"{API}/experiments/exp-strict/events", json=body).status_code == 202
