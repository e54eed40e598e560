"""Data survives restarts and schema upgrades (SQLite file and PostgreSQL)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from server_helpers import API, events_body, metric, span, uid

from otel_experiments.server.db import create_engine, current_revision, head_revision, migrate
from server_process import ServerProcess

BACKENDS = ["sqlite", "postgres"]


def _snapshot(client: httpx.Client, exp_id: str, ds_id: str) -> dict:
    return {
        "experiment": client.get(f"{API}/experiments/{exp_id}").json(),
        "events": client.get(f"{API}/experiments/{exp_id}/events").json(),
        "summary": client.get(f"{API}/experiments/{exp_id}/summary").json(),
        "dataset": client.get(f"{API}/datasets/{ds_id}").json(),
        "records": client.get(f"{API}/datasets/{ds_id}/records").json(),
        "projects": client.get(f"{API}/projects").json(),
    }


@pytest.mark.parametrize("backend", BACKENDS)
def test_restart_keeps_all_data(backend: str, fresh_database_url: Callable[[str], str],
                                server_logs: Path) -> None:
    url = fresh_database_url(backend)
    exp_id = uid("exp")
    with ServerProcess(url, log_dir=server_logs) as server, \
            httpx.Client(base_url=server.base_url) as client:
        pid = client.post(f"{API}/projects", json={"data": {"attributes": {"name": "p"}}}).json()["data"]["id"]
        ds = client.post(f"{API}/datasets", json={"data": {"attributes": {
            "name": "d", "project_id": pid}}}).json()["data"]["id"]
        client.post(f"{API}/datasets/{ds}/records", json={"data": [
            {"attributes": {"input": i, "expected_output": i * 2}} for i in range(5)]})
        client.post(f"{API}/experiments", json={"data": {"id": exp_id, "attributes": {
            "name": "e", "project_id": pid, "dataset_id": ds, "config": {"m": 1}}}})
        client.post(f"{API}/experiments/{exp_id}/events", json=events_body(
            [span(i) for i in range(1, 11)], [metric(i, "acc", i / 10) for i in range(1, 11)]))
        client.patch(f"{API}/experiments/{exp_id}", json={"data": {"attributes": {"status": "COMPLETED"}}})
        before = _snapshot(client, exp_id, ds)
    with ServerProcess(url, log_dir=server_logs) as server, \
            httpx.Client(base_url=server.base_url) as client:
        after = _snapshot(client, exp_id, ds)
        # ingest after a restart still deduplicates against what was stored before it
        again = client.post(f"{API}/experiments/{exp_id}/events",
                            json=events_body([span(i) for i in range(1, 11)])).json()
    assert after == before
    assert before["summary"]["data"]["attributes"]["span_count"] == 10
    assert len(before["records"]["data"]) == 5
    assert again["data"]["attributes"]["duplicate_spans"] == 10


@pytest.mark.parametrize("backend", BACKENDS)
def test_upgrade_from_first_revision_keeps_data(backend: str,
                                                fresh_database_url: Callable[[str], str],
                                                server_logs: Path) -> None:
    url = fresh_database_url(backend)
    engine = create_engine(url)
    migrate(engine, "0001")
    assert current_revision(engine) == "0001"
    exp_id = uid("exp")
    now = "2026-01-01T00:00:00.000000Z"
    with engine.begin() as conn:  # rows written by a revision-0001 server
        conn.execute(sa.text(
            "INSERT INTO experiments (id, project_id, dataset_id, dataset_version, name, "
            "description, feature_slug, status, config, metadata, created_at, updated_at) "
            "VALUES (:id, NULL, NULL, NULL, 'old', '', 'slug', 'RUNNING', '{}', '{}', :now, :now)"),
            {"id": exp_id, "now": now})
        for i in range(1, 5):
            doc = span(i, tags=[f"user.id:u{i % 2}", f"organization.id:org{i}"])
            conn.execute(sa.text(
                "INSERT INTO spans (experiment_id, span_id, trace_id, parent_id, name, start_ns, "
                "duration, status, is_root, dataset_record_id, doc, received_at) VALUES "
                "(:e, :sid, :tid, NULL, :name, :start, :dur, 'ok', :root, NULL, :doc, :now)"),
                {"e": exp_id, "sid": doc["span_id"], "tid": doc["trace_id"], "name": doc["name"],
                 "start": doc["start_ns"], "dur": doc["duration"], "root": True,
                 "doc": json.dumps(doc), "now": now})
        conn.execute(sa.text(
            "INSERT INTO metrics (experiment_id, span_id, trace_id, metric_type, label, "
            "score_value, categorical_value, boolean_value, timestamp_ms, doc) VALUES "
            "(:e, :sid, :tid, 'score', 'acc', 0.75, NULL, NULL, 1, :doc)"),
            {"e": exp_id, "sid": f"{1:016x}", "tid": f"{1:032x}",
             "doc": json.dumps(metric(1, "acc", 0.75))})
    engine.dispose()

    with ServerProcess(url, log_dir=server_logs) as server, \
            httpx.Client(base_url=server.base_url) as client:
        assert client.get("/health").json()["schema_revision"] == head_revision() == "0010"
        exp = client.get(f"{API}/experiments/{exp_id}").json()["data"]["attributes"]
        assert (exp["name"], exp["feature_slug"]) == ("old", "slug")
        events = client.get(f"{API}/experiments/{exp_id}/events").json()["data"]
        assert [e["id"] for e in events] == [f"{i:016x}" for i in range(1, 5)]
        assert events[0]["attributes"]["metrics"][0]["score_value"] == 0.75
        # revision 0002 backfilled the identity columns from the stored tags
        users = client.get(f"{API}/experiments/{exp_id}/events?filter[user_id]=u1").json()["data"]
        assert [e["id"] for e in users] == [f"{i:016x}" for i in (1, 3)]
        orgs = client.get(f"{API}/experiments/{exp_id}/events?filter[organization_id]=org4").json()
        assert [e["id"] for e in orgs["data"]] == [f"{4:016x}"]
        summary = client.get(f"{API}/experiments/{exp_id}/summary").json()["data"]["attributes"]
        assert summary["span_count"] == 4 and summary["metrics"][0]["mean"] == 0.75
        r = client.post(f"{API}/experiments/{exp_id}/events",
                        json=events_body([span(1), span(5, tags=["user.id:u1"])]))
        assert r.json()["data"]["attributes"]["accepted_spans"] == 1
    engine = create_engine(url)
    assert current_revision(engine) == head_revision()
    migrate(engine)  # idempotent at head
    engine.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
def test_migrations_match_the_tables_the_code_uses(backend: str,
                                                   fresh_database_url: Callable[[str], str]) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from otel_experiments.server.schema import metadata

    engine = create_engine(fresh_database_url(backend))
    migrate(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
        if backend == "postgres":
            options = conn.execute(sa.text(
                "SELECT reloptions FROM pg_class WHERE relname = 'spans'")).scalar_one()
            assert "autovacuum_vacuum_insert_threshold=20000" in options
    engine.dispose()
    assert diff == []
