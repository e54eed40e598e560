"""GenAI usage (span ``attributes`` -> token totals by model) on a real server subprocess,
SQLite and PostgreSQL: summary totals, per-record usage, dedupe, bad values ignored."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from server_helpers import API, events_body, span, uid


def _llm(i: int, *, trace: int, parent: int | None = None, **attributes: Any) -> dict[str, Any]:
    return span(i, trace=trace, parent=parent, attributes=attributes)


def _usage(client: httpx.Client, exp: str, **params: str) -> dict[str, Any]:
    r = client.get(f"{API}/experiments/{exp}/summary", params=params)
    assert r.status_code == 200, r.text
    usage: dict[str, Any] = r.json()["data"]["attributes"]["usage"]
    return usage


def _post(client: httpx.Client, exp: str, spans: list[dict[str, Any]]) -> dict[str, Any]:
    r = client.post(f"{API}/experiments/{exp}/events", json=events_body(spans))
    assert r.status_code == 202, r.text
    counts: dict[str, Any] = r.json()["data"]["attributes"]
    return counts


def test_usage_totals_by_model_and_per_record(client: httpx.Client) -> None:
    exp = uid("exp")
    spans = [
        span(1, trace=1),  # the record span of trace 1, no usage of its own
        _llm(2, trace=1, parent=1, **{"gen_ai.request.model": "gpt-4o",
                                      "gen_ai.response.model": "gpt-4o-2024-08-06",
                                      "gen_ai.usage.input_tokens": 120,
                                      "gen_ai.usage.output_tokens": 33}),
        _llm(3, trace=1, parent=1, **{"gen_ai.request.model": "claude",
                                      "gen_ai.usage.prompt_tokens": 10,  # legacy names
                                      "gen_ai.usage.completion_tokens": 5}),
        _llm(4, trace=2, **{"gen_ai.usage.input_tokens": 7}),  # a record span, no model
        # not usage: a model alone, wrong types, negatives; other attributes pass through
        _llm(5, trace=2, parent=4, **{"gen_ai.request.model": "gpt-4o", "http.route": "/x"}),
        _llm(6, trace=2, parent=4, **{"gen_ai.usage.input_tokens": 1.5,
                                      "gen_ai.usage.output_tokens": "9",
                                      "gen_ai.response.model": "bad"}),
        _llm(7, trace=2, parent=4, **{"gen_ai.usage.input_tokens": -3,
                                      "gen_ai.usage.output_tokens": True}),
        _llm(8, trace=3, **{"gen_ai.usage.input_tokens": 2**40,  # absurd: ignored
                            "gen_ai.usage.output_tokens": 4, "gen_ai.request.model": "claude",
                            "gen_ai.tags": ["a", "b"]}),
    ]
    assert _post(client, exp, spans)["accepted_spans"] == 8
    assert _usage(client, exp) == {
        "input_tokens": 137, "output_tokens": 42, "spans": 4,
        "by_model": [
            {"model": "gpt-4o-2024-08-06", "input_tokens": 120, "output_tokens": 33, "spans": 1},
            {"model": "claude", "input_tokens": 10, "output_tokens": 9, "spans": 2},
            {"model": None, "input_tokens": 7, "output_tokens": 0, "spans": 1},
        ]}

    rows = client.get(f"{API}/experiments/{exp}/records").json()["data"]
    by_id = {row["id"]: row["attributes"]["usage"] for row in rows}
    assert by_id[f"{1:016x}"] == {"input_tokens": 130, "output_tokens": 38, "by_model": [
        {"model": "gpt-4o-2024-08-06", "input_tokens": 120, "output_tokens": 33, "spans": 1},
        {"model": "claude", "input_tokens": 10, "output_tokens": 5, "spans": 1}]}
    assert by_id[f"{4:016x}"] == {"input_tokens": 7, "output_tokens": 0, "by_model": [
        {"model": None, "input_tokens": 7, "output_tokens": 0, "spans": 1}]}
    assert by_id[f"{8:016x}"]["output_tokens"] == 4

    # the attributes object is kept as sent, for display
    events = client.get(f"{API}/experiments/{exp}/events").json()["data"]
    docs = {e["id"]: e["attributes"] for e in events}
    assert docs[f"{5:016x}"]["attributes"] == {"gen_ai.request.model": "gpt-4o",
                                               "http.route": "/x"}
    # a filtered summary adds up the matching spans
    assert _usage(client, exp, **{"filter[name]": "task-2"})["input_tokens"] == 120


def test_resent_spans_do_not_double_usage(client: httpx.Client) -> None:
    exp = uid("exp")
    first = [_llm(i, trace=i, **{"gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 1,
                                 "gen_ai.request.model": "m"}) for i in (1, 2)]
    assert _post(client, exp, first)["accepted_spans"] == 2
    # a retry of both, plus one new span and the same new span twice in the body
    new = _llm(3, trace=3, **{"gen_ai.usage.input_tokens": 100, "gen_ai.request.model": "m"})
    twin = _llm(3, trace=3, **{"gen_ai.usage.input_tokens": 999, "gen_ai.request.model": "m"})
    counts = _post(client, exp, [*first, new, twin])
    assert (counts["accepted_spans"], counts["duplicate_spans"]) == (1, 3)
    assert _usage(client, exp) == {"input_tokens": 120, "output_tokens": 2, "spans": 3,
                                   "by_model": [{"model": "m", "input_tokens": 120,
                                                 "output_tokens": 2, "spans": 3}]}


def test_no_usage_and_bad_attributes(client: httpx.Client) -> None:
    exp = uid("exp")
    _post(client, exp, [span(1)])
    assert _usage(client, exp) == {"input_tokens": 0, "output_tokens": 0, "spans": 0,
                                   "by_model": []}
    row = client.get(f"{API}/experiments/{exp}/records").json()["data"][0]["attributes"]
    assert row["usage"] == {"input_tokens": 0, "output_tokens": 0, "by_model": []}
    # attribute values must be scalars or arrays of scalars: a clear 400 otherwise
    r = client.post(f"{API}/experiments/{exp}/events",
                    json=events_body([_llm(2, trace=2, **{"gen_ai.x": {"nested": 1}})]))
    assert r.status_code == 400
    assert r.json()["errors"][0]["source"]["pointer"].startswith(
        "/data/attributes/spans/0/attributes")


def test_concurrent_posters_lose_no_tokens(client: httpx.Client) -> None:
    exp = uid("exp")

    def body(k: int) -> list[dict[str, Any]]:  # 4 posters share each span, so most are dupes
        return [_llm(i, trace=i, **{"gen_ai.usage.input_tokens": i, "gen_ai.usage.output_tokens": 1,
                                    "gen_ai.request.model": f"m{i % 3}"})
                for i in range(1 + 50 * (k // 4), 51 + 50 * (k // 4))]

    def post(k: int) -> int:
        with httpx.Client(base_url=str(client.base_url), timeout=60) as own:
            return int(_post(own, exp, body(k))["accepted_spans"])

    with ThreadPoolExecutor(8) as pool:
        accepted = sum(pool.map(post, range(16)))
    assert accepted == 200
    usage = _usage(client, exp)
    assert usage["input_tokens"] == sum(range(1, 201)) and usage["spans"] == 200
    assert usage["output_tokens"] == 200
    assert sorted(m["model"] for m in usage["by_model"]) == ["m0", "m1", "m2"]
