"""Two server processes over one PostgreSQL database: dedupe is enforced by the database."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from server_helpers import API, events_body, metric, span, uid

from server_process import ServerProcess


def test_two_replicas_store_each_span_once(fresh_database_url: Callable[[str], str],
                                           server_logs: Path) -> None:
    url = fresh_database_url("postgres")
    servers = [ServerProcess(url, log_dir=server_logs) for _ in range(2)]
    # start both at once: their migrations race and must serialise on the advisory lock
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda s: s.start(), servers))
    try:
        exp_id = uid("exp")
        n_spans, batch = 600, 50
        bodies = [
            events_body([span(i, tags=["experiment.name:replicated"]) for i in range(lo, lo + batch)],
                        [metric(i, "acc", i / n_spans) for i in range(lo, lo + batch)])
            for lo in range(1, n_spans + 1, batch)
        ]
        # every body goes to both replicas, twice, all concurrently
        jobs = [(s.base_url, b) for b in bodies for s in servers for _ in range(2)]

        def send(job: tuple[str, dict]) -> dict:
            base, body = job
            r = httpx.post(f"{base}{API}/experiments/{exp_id}/events", json=body, timeout=60)
            assert r.status_code == 202, r.text
            return r.json()["data"]["attributes"]

        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(send, jobs))
        assert sum(r["accepted_spans"] for r in results) == n_spans
        assert sum(r["duplicate_spans"] for r in results) == 3 * n_spans
        assert sum(r["accepted_metrics"] for r in results) == n_spans
        assert sum(r["experiment_created"] for r in results) == 1
        for server in servers:
            summary = httpx.get(f"{server.base_url}{API}/experiments/{exp_id}/summary").json()
            attrs = summary["data"]["attributes"]
            assert attrs["span_count"] == n_spans
            assert attrs["metrics"][0]["count"] == n_spans
            listed = httpx.get(f"{server.base_url}{API}/experiments/{exp_id}/events?page[size]=1000").json()
            ids = [s["id"] for s in listed["data"]]
            assert len(ids) == len(set(ids)) == n_spans
    finally:
        for server in servers:
            server.stop()
