"""Experiments in web apps: each request is one unit of work, every metric is kept.

Runs examples/web_fastapi.py and examples/web_flask.py as a newcomer would.

Real FastAPI (uvicorn) and Flask apps under the official OpenTelemetry
instrumentations, exporting through ``configure()`` to the real server process.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.apps.recorder import clean_env, tags_of

from server_process import ServerProcess

pytest.importorskip("opentelemetry.instrumentation.fastapi")
pytest.importorskip("opentelemetry.instrumentation.flask")

API = "/api/v2/llm-obs/v1"
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
REQUESTS = [("a", "u-1"), ("b", "u-2"), ("a", "u-2"), ("a", "u-3"), ("b", "u-1"), ("a", "u-1")]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    db = tmp_path_factory.mktemp("web") / "web.db"
    proc = ServerProcess(f"sqlite:///{db}").start()
    yield proc
    proc.stop()


def _run_app(script: str, server: ServerProcess, **env: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLES / script)], cwd=EXAMPLES, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
        env=clean_env(OTEL_EXPERIMENTS_ENDPOINT=server.base_url, **env),
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("PORT "), line + (proc.stderr.read() if proc.stderr else "")
        base = f"http://127.0.0.1:{int(line.split()[1])}"
        with httpx.Client(base_url=base, timeout=10) as client:
            for _ in range(100):  # uvicorn may print the port before it accepts
                try:
                    client.get("/health")
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            for variant, user in REQUESTS:
                response = client.get("/answer", headers={"x-variant": variant, "x-user": user})
                assert response.status_code == 200, response.text
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode in (0, -signal.SIGTERM), err
    assert "Traceback" not in err, err


def _events(server: ServerProcess, experiment_id: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    url: str | None = f"{server.base_url}{API}/experiments/{experiment_id}/events?page[size]=500"
    while url:
        doc = httpx.get(url, timeout=10).json()
        out.extend(item["attributes"] for item in doc["data"])
        url = doc.get("links", {}).get("next")
        if url and url.startswith("/"):
            url = server.base_url + url
    return out


def _check_units(server: ServerProcess, prefix: str) -> None:
    expected = Counter(variant for variant, _ in REQUESTS)
    for variant, count in expected.items():
        spans = _events(server, f"{prefix}-{variant}")
        entries = [s for s in spans if tags_of(s).get("experiment.entry") == "true"]
        assert len(entries) == count, [s["name"] for s in spans]
        stored = {s["span_id"] for s in spans}
        # the unit is whole: every stored span's parent is stored too, or it is the entry
        for span in spans:
            if span not in entries:
                assert span.get("parent_id") in stored, span["name"]
        metrics = [m for s in spans for m in s.get("metrics", [])]
        assert [m["label"] for m in metrics] == ["helpful"] * count
        assert {m["span_id"] for m in metrics} <= stored
        users = Counter(tags_of(s)["user.id"] for s in entries)
        assert users == Counter(u for v, u in REQUESTS if v == variant)
        summary = httpx.get(f"{server.base_url}{API}/experiments/{prefix}-{variant}/summary",
                            timeout=10).json()["data"]["attributes"]
        assert summary["root_spans"]["span_count"] == count  # units, not trace roots
        (helpful,) = summary["metrics"]
        assert helpful["count"] == count and helpful["value_counts"] == {"true": count}


@pytest.mark.parametrize("mode", ["middleware", "handler"])
def test_fastapi_each_request_is_one_unit_with_its_metric(
    server: ServerProcess, mode: str, tmp_path: Path
) -> None:
    _run_app("web_fastapi.py", server, WEB_MODE=mode, WEB_PREFIX=f"fastapi-{mode}",
             OTEL_EXPERIMENTS_SPOOL_DIR=str(tmp_path / "spool"))
    _check_units(server, f"fastapi-{mode}")


def test_flask_each_request_is_one_unit_with_its_metric(
    server: ServerProcess, tmp_path: Path
) -> None:
    _run_app("web_flask.py", server, WEB_PREFIX="flask",
             OTEL_EXPERIMENTS_SPOOL_DIR=str(tmp_path / "spool"))
    _check_units(server, "flask")
