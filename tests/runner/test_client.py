"""ExperimentsClient / AsyncExperimentsClient against the real server process."""

from __future__ import annotations

import time
import uuid

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from otel_experiments import Experiment
from otel_experiments.client import (
    APIConnectionError,
    APITimeoutError,
    AsyncExperimentsClient,
    AuthenticationError,
    BadRequestError,
    ExperimentsClient,
    InternalServerError,
    NotFoundError,
    RateLimitError,
)
from server_process import ServerProcess, free_port


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def test_projects_datasets_and_versioned_records(client: ExperimentsClient) -> None:
    name = uid("proj")
    proj = client.projects.create(name=name, description="support")
    assert client.projects.create(name=name).id == proj.id  # get-or-create
    assert client.projects.retrieve(proj.id) == proj
    assert proj.id in {p.id for p in client.projects.list(page_size=1)}

    records = [{"input": {"q": f"q{i}"}, "expected_output": f"a{i}", "metadata": {"i": i}}
               for i in range(5)]
    ds = client.datasets.create(project_id=proj.id, name="faq-v1", records=records)
    assert ds.current_version == 1 and ds.record_count == 5 and ds.project_id == proj.id
    got = list(client.datasets.records.list(ds.id, page_size=2))  # three pages
    assert [r.input for r in got] == [r["input"] for r in records]
    assert got[0].expected_output == "a0" and got[0].metadata == {"i": 0}

    added = client.datasets.records.append(ds.id, [{"id": "extra", "input": "x"}])
    assert [r.id for r in added] == ["extra"]
    client.datasets.records.update(ds.id, "extra", expected_output="y")
    client.datasets.records.delete(ds.id, got[0].id)
    now = client.datasets.retrieve(ds.id)
    assert now.current_version == 4 and now.record_count == 5
    assert client.datasets.versions(ds.id) == [1, 2, 3, 4]
    v1 = client.datasets.records.list(ds.id, version=1).data
    assert [r.id for r in v1] == [r.id for r in got]
    latest = {r.id: r for r in client.datasets.records.list(ds.id)}
    assert got[0].id not in latest and latest["extra"].expected_output == "y"
    assert ds.id in {d.id for d in client.datasets.list(project_id=proj.id)}
    with pytest.raises(NotFoundError, match="not found"):
        client.datasets.records.delete(ds.id, "missing")
    with pytest.raises(ValueError, match="input"):
        client.datasets.records.append(ds.id, [{"expected_output": 1}])


def test_experiments_crud_basalt_and_gentrace_shapes(client: ExperimentsClient) -> None:
    slug = uid("support-ticket")
    exp = client.create_sync(feature_slug=slug, name="Ticket Analysis")
    assert isinstance(exp, Experiment) and exp.feature_slug == slug and exp.created_at
    exp2 = client.experiments.create_sync(feature_slug=slug, name="Other",
                                          config={"model": "m"})
    updated = client.experiments.update(exp.id, status="EVALUATING", metadata={"version": 2})
    assert updated.status == "EVALUATING" and updated.metadata == {"version": 2}
    assert client.experiments.retrieve(exp.id).name == "Ticket Analysis"
    listed = client.experiments.list(feature_slug=slug).data
    assert [e.id for e in listed] == [exp.id, exp2.id]
    assert [e.id for e in client.experiments.list(feature_slug=slug, status="EVALUATING")] \
        == [exp.id]
    assert listed[1].config == {"model": "m"}
    assert listed[0].experiment.id == exp.id  # what start_observe takes
    client.experiments.delete(exp2.id)
    with pytest.raises(NotFoundError) as info:
        client.experiments.retrieve(exp2.id)
    assert info.value.status == 404 and exp2.id in info.value.message
    with pytest.raises(BadRequestError, match="status"):
        client.experiments.update(exp.id, status="NOPE")


async def test_async_twin(endpoint: str) -> None:
    async with AsyncExperimentsClient() as client:  # endpoint from the environment
        slug = uid("async")
        exp = await client.experiments.create(feature_slug=slug, name="async one")
        exp2 = await client.create(feature_slug=slug, name="async two")
        assert isinstance(exp, Experiment)
        listed = await client.experiments.list(feature_slug=slug, page_size=1)
        assert [e.id for e in listed.data] == [exp.id, exp2.id]
        ds = await client.datasets.create(name="a", records=[{"input": 1}, {"input": 2}])
        assert [r.input async for r in client.datasets.records.list(ds.id, page_size=1)] == [1, 2]
        await client.experiments.update(exp.id, status="COMPLETED")
        assert (await client.experiments.retrieve(exp.id)).status == "COMPLETED"
        summary = await client.experiments.summary(exp.id)
        assert summary.span_count == 0 and summary.metrics == []
        await client.experiments.delete(exp.id)
        with pytest.raises(NotFoundError):
            await client.experiments.retrieve(exp.id)


def test_authentication_error(tmp_path_factory: pytest.TempPathFactory) -> None:
    db = tmp_path_factory.mktemp("auth") / "e.db"
    with ServerProcess(f"sqlite:///{db}", api_keys=["sekret-key"]) as server:
        with ExperimentsClient(endpoint=server.base_url, api_key="wrong-key") as bad, \
                pytest.raises(AuthenticationError, match="invalid API key"):
            list(bad.projects.list())
        with ExperimentsClient(endpoint=server.base_url, api_key="sekret-key") as good:
            assert good.projects.create("p").name == "p"
        assert "sekret" not in repr(good)


def _project(id_: str) -> dict[str, object]:
    return {"data": {"type": "projects", "id": id_, "attributes": {"name": id_}}}


def test_retries_idempotent_calls_only(httpserver: HTTPServer) -> None:
    httpserver.clear()
    base = httpserver.url_for("/").rstrip("/")
    path = "/api/v2/llm-obs/v1/projects/p"
    for _ in range(2):
        httpserver.expect_ordered_request(path).respond_with_json(
            {"errors": [{"detail": "busy"}]}, status=503)
    httpserver.expect_ordered_request(path).respond_with_json(_project("p"))
    with ExperimentsClient(endpoint=base, max_retries=2) as client:
        assert client.projects.retrieve("p").id == "p"
    assert len(httpserver.log) == 3

    # a dataset create is not idempotent: a 503 is not repeated
    httpserver.clear()
    httpserver.expect_request("/api/v2/llm-obs/v1/datasets", method="POST").respond_with_json(
        {"errors": [{"detail": "database down"}]}, status=503)
    with ExperimentsClient(endpoint=base) as client, \
            pytest.raises(InternalServerError, match="database down"):
        client.datasets.create(name="d")
    assert len(httpserver.log) == 1

    # 429 is retried (nothing was processed) and the last one surfaces with its hint
    httpserver.clear()
    httpserver.expect_request(path).respond_with_json(
        {"errors": [{"detail": "slow down"}]}, status=429, headers={"Retry-After": "0"})
    with ExperimentsClient(endpoint=base, max_retries=2) as client, \
            pytest.raises(RateLimitError) as info:
        client.projects.retrieve("p")
    assert info.value.retry_after == 0 and info.value.status == 429
    assert len(httpserver.log) == 3


def test_connection_error_and_timeout(httpserver: HTTPServer) -> None:
    with ExperimentsClient(endpoint=f"http://127.0.0.1:{free_port()}", max_retries=1) as client, \
            pytest.raises(APIConnectionError, match="cannot reach"):
        client.experiments.retrieve("x")

    def slow(_request: Request) -> Response:
        time.sleep(0.5)
        return Response("{}", content_type="application/json")

    httpserver.expect_request("/api/v2/llm-obs/v1/projects/p").respond_with_handler(slow)
    with ExperimentsClient(endpoint=httpserver.url_for("/").rstrip("/"), timeout=0.1,
                           max_retries=0) as client, pytest.raises(APITimeoutError):
        client.projects.retrieve("p")
