"""Per-record results (span + metrics + dataset record) and experiment deletion, on a real
server subprocess, SQLite and PostgreSQL."""

from __future__ import annotations

import httpx
from server_helpers import API, events_body, metric, span, uid


def _dataset_with_records(client: httpx.Client) -> tuple[str, list[str]]:
    ds = client.post(f"{API}/datasets", json={"data": {"type": "dataset", "attributes": {
        "name": uid("ds")}}}).json()["data"]["id"]
    ids = [uid("rec") for _ in range(3)]
    body = {"data": [{"type": "dataset_record", "id": rid, "attributes": {
        "input": {"q": i}, "expected_output": str(i), "metadata": {"n": i}}}
        for i, rid in enumerate(ids)]}
    assert client.post(f"{API}/datasets/{ds}/records", json=body).status_code == 201
    return ds, ids


def _all(client: httpx.Client, url: str) -> list[dict]:
    out: list[dict] = []
    next_url: str | None = url
    while next_url:
        page = client.get(next_url)
        assert page.status_code == 200, page.text
        out += page.json()["data"]
        next_url = page.json()["links"]["next"]
    return out


def test_records_join_span_metrics_and_pinned_dataset_record(client: httpx.Client) -> None:
    ds, ids = _dataset_with_records(client)
    exp = client.post(f"{API}/experiments", json={"data": {"type": "experiment", "attributes": {
        "name": uid("exp"), "dataset_id": ds}}}).json()["data"]
    assert exp["attributes"]["dataset_version"] == 1
    # a later edit of record 0 must not change what this experiment ran against
    patch = {"data": {"type": "dataset_record", "attributes": {"expected_output": "changed"}}}
    assert client.patch(f"{API}/datasets/{ds}/records/{ids[0]}", json=patch).status_code == 200
    spans = [
        span(1, trace=1, dataset_record_id=ids[0], tags=["user.id:u-1"]),
        span(2, trace=1, parent=1),  # a child span: not a record
        span(3, trace=2, dataset_record_id=ids[1], status="error"),
        span(4, trace=3),  # a root span with no dataset record (plain start_observe)
    ]
    metrics = [metric(1, "exact", True, trace=1), metric(1, "score", 0.5, trace=1),
               metric(2, "child", 1.0, trace=1), metric(3, "exact", False, trace=2)]
    r = client.post(f"{API}/experiments/{exp['id']}/events", json=events_body(spans, metrics))
    assert r.status_code == 202, r.text

    rows = _all(client, f"{API}/experiments/{exp['id']}/records?page[size]=1")
    assert [row["id"] for row in rows] == [f"{i:016x}" for i in (1, 3, 4)]
    first, failed, plain = (row["attributes"] for row in rows)
    assert first["dataset_record_id"] == ids[0] and first["status"] == "ok"
    assert first["input"] == {"i": 1} and first["output"] == "1" and first["error"] is None
    assert first["user_id"] == "u-1"
    assert {m["label"]: m["value"] for m in first["metrics"]} == {"exact": True, "score": 0.5}
    assert first["record"] == {"id": ids[0], "input": {"q": 0}, "expected_output": "0",
                               "metadata": {"n": 0}, "tags": [], "version": 1}
    assert failed["status"] == "error" and failed["error"]["message"] == "boom"
    assert failed["record"]["expected_output"] == "1"
    assert [m["value"] for m in failed["metrics"]] == [False]
    assert plain["record"] is None and plain["metrics"] == []

    errors = client.get(f"{API}/experiments/{exp['id']}/records?filter[status]=error").json()
    assert [row["id"] for row in errors["data"]] == [f"{3:016x}"]
    by_record = client.get(f"{API}/experiments/{exp['id']}/records",
                           params={"filter[dataset_record_id]": ids[0]}).json()
    assert [row["id"] for row in by_record["data"]] == [f"{1:016x}"]
    assert client.get(f"{API}/experiments/{exp['id']}/records?filter[status]=x").status_code == 400


def test_records_of_unknown_experiment_and_delete(client: httpx.Client) -> None:
    assert client.get(f"{API}/experiments/{uid('missing')}/records").status_code == 404
    exp_id = uid("exp")
    body = events_body([span(1), span(2, parent=1)], [metric(1, "m", 1.0)])
    assert client.post(f"{API}/experiments/{exp_id}/events", json=body).status_code == 202
    gone = client.delete(f"{API}/experiments/{exp_id}")
    assert gone.status_code == 200 and gone.json()["meta"]["deleted_spans"] == 2
    assert client.get(f"{API}/experiments/{exp_id}").status_code == 404
    assert client.get(f"{API}/experiments/{exp_id}/records").status_code == 404
    assert client.delete(f"{API}/experiments/{exp_id}").status_code == 404
    # the same id can be used again, with none of the old spans
    assert client.post(f"{API}/experiments/{exp_id}/events",
                       json=events_body([span(7)])).status_code == 202
    assert len(client.get(f"{API}/experiments/{exp_id}/records").json()["data"]) == 1


def test_interrupted_status_is_accepted(client: httpx.Client) -> None:
    exp = client.post(f"{API}/experiments", json={"data": {"type": "experiment", "attributes": {
        "name": uid("exp"), "status": "RUNNING"}}}).json()["data"]
    r = client.patch(f"{API}/experiments/{exp['id']}", json={"data": {
        "type": "experiment", "attributes": {"status": "interrupted"}}})
    assert r.status_code == 200 and r.json()["data"]["attributes"]["status"] == "INTERRUPTED"
