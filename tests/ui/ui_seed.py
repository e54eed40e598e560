"""Real experiment data for the UI tests, sent through the server's JSON:API.

Two variants of one task over one dataset: ``baseline`` and ``candidate``. Each record is
a root span (``dataset_record_id`` set) with a child "llm" span, an ``exact_match``
boolean, a ``similarity`` score (both follow :func:`outcome`) and a ``tokens`` score (the
same in both variants). Outcomes differ per record so the
comparison has regressions and improvements; the candidate carries hostile text in its
name and in one output.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

API = "/api/v2/llm-obs/v1"
HOSTILE = "<script>window.__pwned = 1</script><img src=x onerror=\"window.__pwned = 2\">"
RECORDS = 12
API_KEY = "ui-test-key-0123456789"  # the keyed server's only key


@dataclass
class Seeded:
    project_id: str
    dataset_id: str
    record_ids: list[str]
    baseline: str
    candidate: str
    baseline_name: str
    candidate_name: str
    trace_of: dict[tuple[str, str], str] = field(default_factory=dict)  # (exp, rec) -> trace


def _post(client: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(API + path, json=body)
    assert response.status_code in (200, 201, 202), response.text
    data: dict[str, Any] = response.json()
    return data


def outcome(variant: int, i: int) -> bool:
    """exact_match of record ``i``: the candidate fixes records 0-3, breaks 8 and 9."""
    if variant == 0:
        return i >= 4
    return i not in (8, 9)


def accuracy(variant: int) -> float:
    """What a summary evaluator would report: the share of records that match and ran."""
    return sum(outcome(variant, i) and not failed(variant, i) for i in range(RECORDS)) / RECORDS


def failed(variant: int, i: int) -> bool:
    """The candidate's task fails (times out) on the last record."""
    return variant == 1 and i == RECORDS - 1


def seed(client: httpx.Client, suffix: str | None = None) -> Seeded:
    tag = suffix or uuid.uuid4().hex[:8]
    project = _post(client, "/projects", {"data": {"type": "projects", "attributes": {
        "name": f"support-{tag}"}}})["data"]["id"]
    dataset = _post(client, "/datasets", {"data": {"type": "datasets", "attributes": {
        "project_id": project, "name": f"faq-{tag}"}}})["data"]["id"]
    records = _post(client, f"/datasets/{dataset}/records", {"data": [
        {"type": "dataset_records", "attributes": {
            "input": {"question": f"question {i}"}, "expected_output": f"answer {i}"}}
        for i in range(RECORDS)]})["data"]
    record_ids = [r["id"] for r in records]
    names = [f"prompt-v1 {tag}", f"prompt-v2 {HOSTILE} {tag}"]
    exp_ids = []
    for name in names:
        exp_ids.append(_post(client, "/experiments", {"data": {"type": "experiments", "attributes": {
            "name": name, "project_id": project, "dataset_id": dataset,
            "feature_slug": f"support-{tag}", "status": "COMPLETED",
            "config": {"model": "m-small" if name == names[0] else "m-large", "temperature": 0},
            "metadata": {"git": {"commit": "0123abc", "dirty": False},
                         "summary": {"evaluations": {"accuracy": accuracy(len(exp_ids))}}},
        }}})["data"]["id"])
    seeded = Seeded(project, dataset, record_ids, exp_ids[0], exp_ids[1], names[0], names[1])
    for variant, exp in enumerate(exp_ids):
        spans, metrics = [], []
        for i, rec in enumerate(record_ids):
            trace = uuid.uuid4().hex
            root, child = uuid.uuid4().hex[:16], uuid.uuid4().hex[:16]
            seeded.trace_of[(exp, rec)] = trace
            start = 1_790_000_000_000_000_000 + i * 10_000_000_000
            ok = outcome(variant, i)
            failing = failed(variant, i)
            output = f"answer {i}" if ok else f"wrong {i}"
            if variant == 1 and i == 5:
                output = HOSTILE  # hostile text in an output (the record still matches)
            root_span = {
                "trace_id": trace, "span_id": root, "name": "answer", "start_ns": start,
                "duration": (20 + 5 * i + 30 * variant) * 1_000_000,
                "status": "error" if failing else "ok",
                "meta": {"input": {"question": f"question {i}"}, "output": output,
                         "expected_output": f"answer {i}"},
                "tags": [f"experiment.id:{exp}", f"user.id:u{i % 3}", "organization.id:acme",
                         "observe.feature_slug:support"],
                "dataset_record_id": rec,
            }
            if failing:
                root_span["meta"]["error"] = {"type": "TimeoutError", "message": "too slow",
                                              "stack": None}
            spans.append(root_span)
            spans.append({
                "trace_id": trace, "span_id": child, "parent_id": root, "name": "llm-call",
                "start_ns": start + 1_000_000, "duration": (15 + 5 * i) * 1_000_000,
                "status": "ok", "meta": {"input": f"prompt {i}", "output": output},
                "tags": [f"experiment.id:{exp}", "span.kind:client"],
            })
            base = {"trace_id": trace, "span_id": root, "timestamp_ms": 1_790_000_000_000}
            metrics += [
                {**base, "metric_type": "boolean", "label": "exact_match", "boolean_value": ok},
                {**base, "metric_type": "score", "label": "similarity",
                 "score_value": round((0.9 if ok else 0.4) + 0.01 * i, 4)},
                {**base, "metric_type": "score", "label": "tokens", "score_value": 100 + 10 * i},
            ]
        _post(client, f"/experiments/{exp}/events", {"data": {
            "type": "experiment_events", "attributes": {"spans": spans, "metrics": metrics}}})
    return seeded
