"""Every JSON:API endpoint against a real server subprocess, on SQLite and PostgreSQL."""

from __future__ import annotations

import httpx
import pytest
from server_helpers import API, events_body, metric, span, uid

from otel_experiments.server.db import head_revision


def _create_project(client: httpx.Client, name: str | None = None) -> dict:
    r = client.post(f"{API}/projects", json={"data": {"type": "project", "attributes": {
        "name": name or uid("proj"), "description": "d"}}})
    assert r.status_code in (200, 201), r.text
    return r.json()["data"]


def _create_dataset(client: httpx.Client, project_id: str | None = None) -> dict:
    attrs = {"name": uid("ds"), "description": "dd", "metadata": {"k": 1}}
    if project_id:
        attrs["project_id"] = project_id
    r = client.post(f"{API}/datasets", json={"data": {"type": "dataset", "attributes": attrs}})
    assert r.status_code == 201, r.text
    return r.json()["data"]


def test_health_and_openapi(client: httpx.Client) -> None:
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["schema_revision"] == head_revision()
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    for path in ("/projects", "/datasets/{dataset_id}/records", "/experiments/{experiment_id}",
                 "/experiments/{experiment_id}/events", "/experiments/{experiment_id}/summary"):
        assert API + path in paths
    assert "/v1/traces" in paths and "/health" in paths
    # the documented request examples are accepted as they stand
    events = paths[f"{API}/experiments/{{experiment_id}}/events"]["post"]
    example = events["requestBody"]["content"]["application/json"]["example"]
    r = client.post(f"{API}/experiments/{uid('exp')}/events", json=example)
    assert r.status_code == 202, r.text
    project = paths[f"{API}/projects"]["post"]["requestBody"]["content"]["application/json"]
    assert client.post(f"{API}/projects", json=project["example"]).status_code in (200, 201)


def test_projects_create_list_get(client: httpx.Client) -> None:
    name = uid("proj")
    r = client.post(f"{API}/projects", json={"data": {"type": "project", "attributes": {
        "name": name, "description": "Testing"}}})
    assert r.status_code == 201
    assert r.headers["content-type"].startswith("application/vnd.api+json")
    project = r.json()["data"]
    assert project["type"] == "projects" and project["attributes"]["name"] == name
    assert project["attributes"]["created_at"].endswith("Z")
    # Creating the same name again returns the existing project (get-or-create).
    again = client.post(f"{API}/projects", json={"data": {"type": "projects", "attributes": {
        "name": name}}})
    assert again.status_code == 200 and again.json()["data"]["id"] == project["id"]
    got = client.get(f"{API}/projects/{project['id']}").json()["data"]
    assert got == project
    ids = []
    url: str | None = f"{API}/projects?page[size]=1"
    while url:
        page = client.get(url).json()
        assert len(page["data"]) <= 1
        ids += [p["id"] for p in page["data"]]
        url = page["links"]["next"]
    assert project["id"] in ids and len(ids) == len(set(ids))
    assert client.get(f"{API}/projects/{uid('missing')}").status_code == 404


def test_datasets_and_versioned_records(client: httpx.Client) -> None:
    project = _create_project(client)
    ds = _create_dataset(client, project["id"])
    assert ds["attributes"]["current_version"] == 0
    assert ds["attributes"]["project_id"] == project["id"]
    base = f"{API}/datasets/{ds['id']}"
    # single record (reference shape) then a batch of three, one with a client-chosen id
    r = client.post(f"{base}/records", json={"data": {"type": "dataset_record", "attributes": {
        "input": {"image_url": "s3://b/1.jpg"}, "expected_output": {"total_votes": 1250}}}})
    assert r.status_code == 201, r.text
    first = r.json()["data"]
    assert r.json()["meta"]["dataset_version"] == 1 and first["attributes"]["version"] == 1
    r = client.post(f"{base}/records", json={"data": [
        {"type": "dataset_record", "id": "rec-mine", "attributes": {"input": "a", "tags": ["k:v"]}},
        {"type": "dataset_record", "attributes": {"input": "b", "metadata": {"m": 1}}},
        {"type": "dataset_record", "attributes": {"input": "c", "expected_output": None}},
    ]})
    assert r.status_code == 201 and r.json()["meta"]["dataset_version"] == 2
    assert r.json()["data"][0]["id"] == "rec-mine"
    # duplicate client id -> 409
    dup = client.post(f"{base}/records", json={"data": {"id": "rec-mine", "attributes": {"input": 1}}})
    assert dup.status_code == 409
    # update and delete make new versions
    r = client.patch(f"{base}/records/rec-mine", json={"data": {"type": "dataset_record",
                                                                "attributes": {"expected_output": "A"}}})
    assert r.status_code == 200 and r.json()["meta"]["dataset_version"] == 3
    assert r.json()["data"]["attributes"] == {**r.json()["data"]["attributes"], "input": "a",
                                              "expected_output": "A", "tags": ["k:v"]}
    r = client.delete(f"{base}/records/{first['id']}")
    assert r.status_code == 200 and r.json()["meta"]["dataset_version"] == 4
    assert client.delete(f"{base}/records/{first['id']}").status_code == 404
    assert client.patch(f"{base}/records/nope", json={"data": {"attributes": {"input": 1}}}).status_code == 404

    def records(query: str = "") -> tuple[int, list[dict]]:
        out, url = [], f"{base}/records?page[size]=2{query}"
        version = -1
        while url:
            page = client.get(url).json()
            version = page["meta"]["dataset_version"]
            out += page["data"]
            url = page["links"]["next"]
        return version, out

    version, current = records()
    assert version == 4 and sorted(r["attributes"]["input"] for r in current) == ["a", "b", "c"]
    assert next(r for r in current if r["id"] == "rec-mine")["attributes"]["expected_output"] == "A"
    _, v1 = records("&version=1")
    assert [r["id"] for r in v1] == [first["id"]]
    _, v2 = records("&version=2")
    assert len(v2) == 4
    assert next(r for r in v2 if r["id"] == "rec-mine")["attributes"]["expected_output"] is None
    assert client.get(f"{base}/records?version=99").status_code == 404

    got = client.get(base).json()["data"]["attributes"]
    assert got["current_version"] == 4 and got["record_count"] == 3
    listed = client.get(f"{API}/datasets?filter[project_id]={project['id']}").json()["data"]
    assert [d["id"] for d in listed] == [ds["id"]]
    assert client.get(f"{API}/datasets/{uid('ds')}").status_code == 404
    assert client.get(f"{API}/datasets/{uid('ds')}/records").status_code == 404
    missing_project = client.post(f"{API}/datasets", json={"data": {"attributes": {
        "name": "x", "project_id": uid("proj")}}})
    assert missing_project.status_code == 404
    assert missing_project.json()["errors"][0]["source"]["pointer"] == "/data/attributes/project_id"


def test_experiments_crud_and_filters(client: httpx.Client) -> None:
    project = _create_project(client)
    ds = _create_dataset(client, project["id"])
    slug = uid("slug")
    attrs = {"project_id": project["id"], "dataset_id": ds["id"], "name": "Gemini 2.0 Flash Test",
             "description": "enhanced prompt", "config": {"model": "gemini", "temperature": 0.0},
             "metadata": {"owner": "me"}, "feature_slug": slug}
    r = client.post(f"{API}/experiments", json={"data": {"type": "experiment", "attributes": attrs}})
    assert r.status_code == 201, r.text
    exp = r.json()["data"]
    assert exp["attributes"]["status"] == "PENDING"
    assert exp["attributes"]["config"] == attrs["config"]
    assert exp["attributes"]["dataset_version"] == 0
    second = client.post(f"{API}/experiments", json={"data": {"type": "experiments", "id": uid("exp"),
                                                              "attributes": {"name": "two", "project_id": project["id"]}}})
    assert second.status_code == 201
    # explicit id collision -> 409
    assert client.post(f"{API}/experiments", json={"data": {"id": second.json()["data"]["id"],
                                                            "attributes": {"name": "x"}}}).status_code == 409

    r = client.patch(f"{API}/experiments/{exp['id']}", json={"data": {"type": "experiment", "attributes": {
        "name": "renamed", "metadata": {"version": 2}, "status": "EVALUATING"}}})
    assert r.status_code == 200
    updated = r.json()["data"]["attributes"]
    assert (updated["name"], updated["metadata"], updated["status"]) == ("renamed", {"version": 2}, "EVALUATING")
    assert client.get(f"{API}/experiments/{exp['id']}").json()["data"]["attributes"]["name"] == "renamed"

    def ids(query: str) -> list[str]:
        return [e["id"] for e in client.get(f"{API}/experiments?{query}").json()["data"]]

    assert ids(f"filter[project_id]={project['id']}") == [exp["id"], second.json()["data"]["id"]]
    assert ids(f"filter[feature_slug]={slug}") == [exp["id"]]
    assert ids(f"filter[project_id]={project['id']}&filter[status]=evaluating") == [exp["id"]]
    client.patch(f"{API}/experiments/{exp['id']}", json={"data": {"attributes": {"status": "completed"}}})
    assert ids(f"filter[project_id]={project['id']}&filter[status]=COMPLETED") == [exp["id"]]
    assert client.get(f"{API}/experiments?filter[status]=bogus").status_code == 400
    assert client.get(f"{API}/experiments/{uid('exp')}").status_code == 404
    assert client.patch(f"{API}/experiments/{uid('exp')}", json={"data": {"attributes": {"name": "x"}}}).status_code == 404
    bad = client.patch(f"{API}/experiments/{exp['id']}", json={"data": {"attributes": {"status": "DONE"}}})
    assert bad.status_code == 400 and bad.json()["errors"][0]["source"]["pointer"] == "/data/attributes/status"
    unknown_ds = client.post(f"{API}/experiments", json={"data": {"attributes": {"name": "x", "dataset_id": "nope"}}})
    assert unknown_ds.status_code == 404


def test_events_ingest_dedupe_autocreate_readback(client: httpx.Client) -> None:
    exp_id = uid("exp")
    slug = uid("slug")
    tags = [f"experiment.id:{exp_id}", "experiment.name:Auto Named", f"experiment.feature_slug:{slug}"]
    spans = [span(i, tags=[*tags, f"user.id:u{i % 2}", f"organization.id:o{i % 3}"],
                  status="error" if i % 5 == 0 else "ok", parent=None if i <= 10 else 1)
             for i in range(1, 21)]
    metrics = [metric(i, "accuracy", i / 20) for i in range(1, 21)]
    metrics += [metric(i, "format", "valid" if i % 4 else "invalid") for i in range(1, 21)]
    metrics += [metric(i, "exact", i % 2 == 0) for i in range(1, 21)]
    body = events_body(spans, metrics)
    r = client.post(f"{API}/experiments/{exp_id}/events", json=body)
    assert r.status_code == 202, r.text
    assert r.json()["data"]["attributes"] == {
        "accepted_spans": 20, "duplicate_spans": 0, "accepted_metrics": 60,
        "duplicate_metrics": 0, "experiment_created": True}
    # the same body again, and a body mixing old and new spans
    again = client.post(f"{API}/experiments/{exp_id}/events", json=body).json()["data"]["attributes"]
    assert again == {"accepted_spans": 0, "duplicate_spans": 20, "accepted_metrics": 0,
                     "duplicate_metrics": 60, "experiment_created": False}
    mixed = client.post(f"{API}/experiments/{exp_id}/events",
                        json=events_body([spans[0], span(21, tags=tags, parent=1), span(21, tags=tags, parent=1)]))
    assert mixed.json()["data"]["attributes"]["accepted_spans"] == 1
    assert mixed.json()["data"]["attributes"]["duplicate_spans"] == 2

    exp = client.get(f"{API}/experiments/{exp_id}").json()["data"]["attributes"]
    assert (exp["name"], exp["feature_slug"], exp["status"]) == ("Auto Named", slug, "RUNNING")
    assert exp_id in [e["id"] for e in client.get(f"{API}/experiments?filter[feature_slug]={slug}").json()["data"]]

    # read back: paginated, metrics attached, filters
    seen, url = [], f"{API}/experiments/{exp_id}/events?page[size]=7"
    while url:
        page = client.get(url).json()
        seen += page["data"]
        url = page["links"]["next"]
    assert [s["id"] for s in seen] == [f"{i:016x}" for i in range(1, 22)]
    first = seen[0]["attributes"]
    assert first["meta"] == spans[0]["meta"] and first["tags"] == spans[0]["tags"]
    assert sorted(m["label"] for m in first["metrics"]) == ["accuracy", "exact", "format"]

    def filtered(query: str) -> list[str]:
        return [s["id"] for s in client.get(f"{API}/experiments/{exp_id}/events?{query}").json()["data"]]

    assert filtered("filter[user_id]=u1") == [f"{i:016x}" for i in range(1, 21) if i % 2 == 1]
    assert filtered("filter[organization_id]=o0") == [f"{i:016x}" for i in range(1, 21) if i % 3 == 0]
    assert filtered("filter[status]=error") == [f"{i:016x}" for i in (5, 10, 15, 20)]
    assert filtered("filter[status]=error&filter[user_id]=u1") == [f"{i:016x}" for i in (5, 15)]
    assert client.get(f"{API}/experiments/{exp_id}/events?filter[status]=meh").status_code == 400
    assert client.get(f"{API}/experiments/{uid('exp')}/events").status_code == 404


def test_summary_statistics(client: httpx.Client) -> None:
    exp_id = uid("exp")
    spans = [span(i, duration=i * 1000, status="error" if i > 90 else "ok",
                  parent=None if i <= 50 else 1) for i in range(1, 101)]
    metrics = [metric(i, "acc", float(i)) for i in range(1, 101)]
    metrics += [metric(i, "grade", "A" if i <= 70 else "B") for i in range(1, 101)]
    metrics += [metric(i, "pass", i <= 25) for i in range(1, 101)]
    assert client.post(f"{API}/experiments/{exp_id}/events",
                       json=events_body(spans, metrics)).status_code == 202
    s = client.get(f"{API}/experiments/{exp_id}/summary").json()["data"]
    assert s["id"] == exp_id
    a = s["attributes"]
    assert a["span_count"] == 100 and a["error_count"] == 10 and a["error_rate"] == pytest.approx(0.1)
    lat = a["latency_ns"]
    assert lat["min"] == 1000 and lat["max"] == 100_000 and lat["mean"] == pytest.approx(50_500)
    # percentiles come from log buckets (1 % relative accuracy, server.sketch)
    assert lat["p50"] == pytest.approx(50_500, rel=0.01)
    assert lat["p95"] == pytest.approx(95_050, rel=0.01)
    root = a["root_spans"]
    assert root["span_count"] == 50 and root["error_count"] == 0
    assert root["latency_ns"]["p50"] == pytest.approx(25_500, rel=0.01)
    by_label = {m["label"]: m for m in a["metrics"]}
    acc = by_label["acc"]
    assert acc["metric_type"] == "score" and acc["count"] == 100
    assert (acc["min"], acc["max"]) == (1.0, 100.0)
    assert acc["mean"] == pytest.approx(50.5) and acc["p50"] == pytest.approx(50.5, rel=0.01)
    assert acc["p95"] == pytest.approx(95.05, rel=0.01)
    assert by_label["grade"]["value_counts"] == {"A": 70, "B": 30}
    assert by_label["pass"]["value_counts"] == {"true": 25, "false": 75}
    empty = uid("exp")
    client.post(f"{API}/experiments", json={"data": {"id": empty, "attributes": {"name": "e"}}})
    e = client.get(f"{API}/experiments/{empty}/summary").json()["data"]["attributes"]
    assert e["span_count"] == 0 and e["error_rate"] is None and e["latency_ns"]["p95"] is None
    assert e["metrics"] == []
    assert client.get(f"{API}/experiments/{uid('exp')}/summary").status_code == 404


def test_metrics_may_arrive_before_their_spans(client: httpx.Client) -> None:
    exp_id = uid("exp")
    r = client.post(f"{API}/experiments/{exp_id}/events", json=events_body([], [metric(1, "acc", 0.5)]))
    assert r.json()["data"]["attributes"]["experiment_created"] is True
    assert client.get(f"{API}/experiments/{exp_id}").json()["data"]["attributes"]["name"] == exp_id
    client.post(f"{API}/experiments/{exp_id}/events", json=events_body([span(1)]))
    (s,) = client.get(f"{API}/experiments/{exp_id}/events").json()["data"]
    assert [m["score_value"] for m in s["attributes"]["metrics"]] == [0.5]
