"""ddtrace's dialect on the real server (SQLite and PostgreSQL): both dialects land on one
record, the exporter's ``dialect="ddtrace"``, batch_update, the span intake, the keys."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from server_helpers import API, events_body, metric, span, uid

from otel_experiments import attributes as A
from otel_experiments.export.exporter import ExperimentEventsExporter
from server_process import ServerProcess

UNSTABLE = "/api/unstable/llm-obs/v1"


def ddtrace_body(spans: list[dict[str, Any]], metrics: list[dict[str, Any]]) -> dict[str, Any]:
    return {"data": {"type": "experiments", "attributes": {
        "scope": "experiments", "spans": spans, "metrics": metrics, "tags": ["team:t"]}}}


def dd_span(i: int, **extra: Any) -> dict[str, Any]:
    """``span(i)`` as ddtrace spells it: decimal ids, parent "undefined"."""
    doc = span(i)
    return {**doc, "span_id": str(int(doc["span_id"], 16)), "parent_id": "undefined",
            "meta": {**doc["meta"], "span": {"kind": "experiment"}}, **extra}


def dd_metric(i: int, label: str, mtype: str, value: Any, **extra: Any) -> dict[str, Any]:
    return {"metric_source": "custom", "span_id": str(i), "trace_id": f"{1:032x}",
            "timestamp_ms": 1_700_000_000_000, "metric_type": mtype, "label": label,
            f"{mtype}_value": value, "error": None, "tags": [], "status": "OK", **extra}


def records(client: httpx.Client, exp_id: str) -> list[dict[str, Any]]:
    response = client.get(f"{API}/experiments/{exp_id}/records")
    assert response.status_code == 200, response.text
    return [r["attributes"] for r in response.json()["data"]]


def test_one_span_whichever_dialect_carried_it(client: httpx.Client) -> None:
    exp_id = uid("exp")
    ours = client.post(f"{API}/experiments/{exp_id}/events",
                       json=events_body([span(7)], [metric(7, "acc", 0.5)]))
    assert ours.status_code == 202, ours.text
    theirs = client.post(f"{API}/experiments/{exp_id}/events", json=ddtrace_body(
        [dd_span(7)], [dd_metric(7, "acc", "score", 0.5)]))
    assert theirs.status_code == 202, theirs.text
    counts = theirs.json()["data"]["attributes"]
    assert (counts["duplicate_spans"], counts["duplicate_metrics"]) == (1, 1)
    (record,) = records(client, exp_id)
    assert record["span_id"] == f"{7:016x}" and record["metrics"][0]["value"] == 0.5


def test_ddtrace_metric_shapes_and_summary_metrics(client: httpx.Client) -> None:
    exp_id = uid("exp")
    body = ddtrace_body([dd_span(3, status="error")], [
        dd_metric(3, "ok", "boolean", True, reasoning="exact", metadata={"judge": "x"}),
        dd_metric(3, "shape", "json", {"a": [1, 2]}),
        dd_metric(3, "broken", "score", None, error={"message": "boom", "type": "KeyError"}),
        {**dd_metric(0, "acc", "score", 0.75), "metric_source": "summary", "span_id": "",
         "trace_id": ""},
    ])
    response = client.post(f"{UNSTABLE}/experiments/{exp_id}/events", json=body)
    assert response.status_code == 202, response.text
    assert response.json()["data"]["attributes"]["summary_metrics"] == 1
    (record,) = records(client, exp_id)
    # an error status without ddtrace's error fields still carries our required error
    assert (record["status"], record["error"]) == (
        "error", {"type": None, "message": "error", "stack": None})
    got = {m["label"]: m for m in record["metrics"]}
    assert got["ok"]["value"] is True
    assert got["ok"]["metadata"] == {"judge": "x", "_dd": {
        "metric_source": "custom", "status": "OK", "reasoning": "exact"}}
    assert got["shape"]["metric_type"] == "categorical"
    assert got["shape"]["value"] == '{"a":[1,2]}'
    assert got["shape"]["metadata"]["_dd"]["json_value"] == {"a": [1, 2]}
    assert got["broken"]["value"] == ""
    assert got["broken"]["metadata"]["_dd"]["error"] == {"message": "boom", "type": "KeyError"}
    exp = client.get(f"{API}/experiments/{exp_id}").json()["data"]["attributes"]
    assert exp["metadata"]["summary"]["evaluations"] == {"acc": 0.75}
    # ddtrace's read-back restores its own shapes
    pulled = client.get(f"{UNSTABLE}/experiments/{exp_id}/events").json()["data"]["attributes"]
    (dd,) = pulled["spans"]
    assert dd["span_id"] == "3"
    shapes = {m["label"]: m for m in dd["eval_metrics"]}
    assert shapes["shape"]["json_value"] == {"a": [1, 2]}
    assert shapes["broken"]["score_value"] is None
    assert shapes["broken"]["error"]["message"] == "boom"
    assert pulled["summary_metrics"][0]["score_value"] == 0.75


def test_an_invalid_ddtrace_body_is_refused_naming_the_field(client: httpx.Client) -> None:
    response = client.post(f"{API}/experiments/{uid('exp')}/events", json=ddtrace_body(
        [dd_span(1, span_id="not-a-number")], []))
    assert response.status_code == 400
    assert response.json()["errors"][0]["source"]["pointer"] == "/data/attributes/spans/0/span_id"


def test_span_intake_groups_by_experiment(client: httpx.Client) -> None:
    a, b = uid("exp"), uid("exp")
    envelopes = [{"event_type": "span", "spans": [dd_span(1, tags=[f"experiment_id:{a}"])]},
                 {"event_type": "span", "spans": [dd_span(2, tags=[f"experiment_id:{b}"]),
                                                  dd_span(3, tags=["ml_app:x"])]}]
    response = client.post("/api/v2/llmobs", json=envelopes)
    assert response.status_code == 202, response.text
    assert response.json()["data"]["attributes"] == {
        "accepted_spans": 2, "duplicate_spans": 0, "ignored_spans": 1, "experiments": 2}
    assert [r["span_id"] for r in records(client, a)] == [f"{1:016x}"]
    assert [r["span_id"] for r in records(client, b)] == [f"{2:016x}"]


def test_batch_update_is_one_version(client: httpx.Client) -> None:
    project = client.post(f"{UNSTABLE}/projects", json={"data": {"type": "projects",
                          "attributes": {"name": uid("proj")}}}).json()["data"]["id"]
    created = client.post(f"{UNSTABLE}/{project}/datasets", json={"data": {
        "type": "datasets", "attributes": {"name": "ds", "description": "d"}}})
    assert created.status_code == 200
    dataset = created.json()["data"]
    again = client.post(f"{UNSTABLE}/{project}/datasets", json={"data": {
        "type": "datasets", "attributes": {"name": "ds"}}}).json()["data"]
    assert again["id"] == dataset["id"]  # get-or-create by (project, name)
    url = f"/api/v2/llm-obs/v1/{project}/datasets/{dataset['id']}/batch_update"

    def batch(**attrs: Any) -> list[dict[str, Any]]:
        response = client.post(url, json={"data": {"type": "datasets", "attributes": attrs}})
        assert response.status_code == 200, response.text
        return list(response.json()["data"])

    first = batch(insert_records=[{"id": "r1", "input": {"q": 1}, "expected_output": 1},
                                  {"id": "r2", "input": {"q": 2}, "tags": ["k:v"]}],
                  deduplicate=True, create_new_version=True)
    assert [(d["id"], d["attributes"]["version"]) for d in first] == [("r1", 1), ("r2", 1)]
    dup = batch(insert_records=[{"id": "fresh", "input": {"q": 1}, "expected_output": 1}])
    assert dup[0]["attributes"] == {"version": 1, "canonical_id": "r1",
                                    "dataset_id": dataset["id"]}
    changed = batch(update_records=[{"id": "r2", "input": None, "expected_output": 22,
                                     "metadata": None, "tag_operations": {"add": ["n:1"]}}],
                    delete_records=["r1"], create_new_version=True)
    assert changed[0]["attributes"]["version"] == 2
    batch(insert_records=[{"id": "r3", "input": {"q": 3}}], create_new_version=False)
    listed = client.get(f"{API}/datasets/{dataset['id']}/records").json()
    assert listed["meta"]["dataset_version"] == 2
    got = {r["id"]: r["attributes"] for r in listed["data"]}
    assert set(got) == {"r2", "r3"}
    assert (got["r2"]["input"], got["r2"]["expected_output"], got["r2"]["tags"]) == (
        {"q": 2}, 22, ["k:v", "n:1"])
    v1 = client.get(f"{API}/datasets/{dataset['id']}/records?version=1").json()["data"]
    assert {r["id"] for r in v1} == {"r1", "r2"}


def _spans(exp_id: str) -> list[ReadableSpan]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "dialects"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("dialects")
    for i in range(3):
        with tracer.start_as_current_span("task", attributes={
                A.EXPERIMENT_ID: exp_id, A.EXPERIMENT_NAME: "Dialects",
                "input.value": f"q{i}"}) as root:
            root.add_event(A.METRIC_EVENT_NAME, {A.METRIC_LABEL: "acc", A.METRIC_VALUE: i / 2})
            with tracer.start_as_current_span("llm", attributes={A.EXPERIMENT_ID: exp_id}):
                pass
    provider.shutdown()
    return list(memory.get_finished_spans())


def test_exporter_speaks_ddtrace(server: ServerProcess, client: httpx.Client) -> None:
    exp_id = uid("exp")
    spans = _spans(exp_id)
    dd = ExperimentEventsExporter(endpoint=server.base_url, dialect="ddtrace", timeout=30,
                                  spool_max_bytes=0)
    ours = ExperimentEventsExporter(endpoint=server.base_url, timeout=30, spool_max_bytes=0)
    try:
        assert dd.settings.dialect == "ddtrace"
        assert dd.export(spans) is SpanExportResult.SUCCESS
        summary = client.get(f"{API}/experiments/{exp_id}/summary").json()["data"]["attributes"]
        assert (summary["span_count"], summary["root_spans"]["span_count"]) == (6, 3)
        assert summary["metrics"][0]["count"] == 3
        assert ours.export(spans) is SpanExportResult.SUCCESS  # the same spans: no new record
    finally:
        dd.shutdown()
        ours.shutdown()
    rows = records(client, exp_id)
    assert sorted(r["input"] for r in rows) == ["q0", "q1", "q2"]
    assert {r["span_id"] for r in rows} == {
        format(s.context.span_id, "016x") for s in spans if s.parent is None}
    assert "span_kind:experiment" in rows[0]["tags"]
    exp = client.get(f"{API}/experiments/{exp_id}").json()["data"]["attributes"]
    assert exp["name"] == "Dialects"
    events = client.get(f"{API}/experiments/{exp_id}/events").json()["data"]
    assert len(events) == 6


def test_dd_application_key_is_accepted(tmp_path: Any) -> None:
    with ServerProcess(f"sqlite:///{tmp_path / 'k.db'}", api_keys=["k-123"]) as server:
        url = f"{server.base_url}{UNSTABLE}/projects"
        body = {"data": {"type": "projects", "attributes": {"name": "p"}}}
        assert httpx.post(url, json=body).status_code == 401
        assert httpx.post(url, json=body, headers={"DD-API-KEY": "nope"}).status_code == 401
        for header in ("DD-API-KEY", "DD-APPLICATION-KEY"):
            assert httpx.post(url, json=body, headers={header: "k-123"}).status_code == 200


@pytest.mark.parametrize("query", ["filter[id]={id}", "page[limit]=5&filter[project_id]={p}"])
def test_ddtrace_queries_on_our_experiments_list(client: httpx.Client, query: str) -> None:
    project = client.post(f"{API}/projects", json={"data": {"type": "project", "attributes": {
        "name": uid("proj")}}}).json()["data"]["id"]
    made = client.post(f"{UNSTABLE}/experiments", json={"data": {"type": "experiments",
                       "attributes": {"name": "e", "project_id": project, "run_count": 2,
                                      "metadata": {"tags": ["a:b"]}}}})
    assert made.status_code == 200, made.text
    exp_id = made.json()["data"]["id"]
    client.patch(f"{UNSTABLE}/experiments/{exp_id}", json={"data": {"type": "experiments",
                 "attributes": {"status": "running"}}}).raise_for_status()
    response = client.get(f"{API}/experiments?" + query.format(id=exp_id, p=project))
    assert response.status_code == 200, response.text
    (item,) = response.json()["data"]
    assert item["id"] == exp_id and "after" in response.json()["meta"]
    assert (item["attributes"]["experiment"], item["attributes"]["run_count"],
            item["attributes"]["status"]) == ("e", 2, "running")
    ours = client.get(f"{API}/experiments?filter[project_id]={project}").json()
    assert ours["meta"]["page"]["size"] == 100  # our own query keeps our answer
    assert ours["data"][0]["attributes"]["status"] == "RUNNING"


def test_ddtrace_list_is_newest_first_with_its_filters(client: httpx.Client) -> None:
    project = client.post(f"{UNSTABLE}/projects", json={"data": {"type": "projects",
                          "attributes": {"name": uid("proj")}}}).json()["data"]["id"]

    def make(name: str, tags: list[str], parent: str | None = None) -> str:
        attrs: dict[str, Any] = {"name": name, "project_id": project,
                                 "metadata": {"tags": tags}}
        if parent:
            attrs["parent_experiment_id"] = parent
        made = client.post(f"{UNSTABLE}/experiments",
                           json={"data": {"type": "experiments", "attributes": attrs}})
        assert made.status_code == 200, made.text
        return str(made.json()["data"]["id"])

    first = make("a", ["git.commit.sha:1"])
    second = make("a", ["git.commit.sha:2"], parent=first)
    third = make("b", ["git.commit.sha:1"])

    def listed(**params: str) -> list[str]:
        ids: list[str] = []
        cursor = None
        while True:  # one per page: the paging is walked too
            query = {"filter[project_id]": project, "page[limit]": "1", **params}
            if cursor:
                query["page[cursor]"] = cursor
            body = client.get(f"{API}/experiments", params=query).json()
            ids += [d["id"] for d in body["data"]]
            cursor = body["meta"]["after"]
            if not cursor:
                return ids

    assert listed() == [third, second, first]
    assert listed(**{"filter[experiment]": "a"}) == [second, first]
    assert listed(**{"filter[metadata]": '{"tags": ["git.commit.sha:1"]}'}) == [third, first]
    assert listed(**{"filter[parent_experiment_id]": first}) == [second]
    assert listed(**{"filter[is_deleted]": "true"}) == []
