"""The documented zero-code recipe: OTLP over HTTP *and* experiment events, one server.

``OTEL_TRACES_EXPORTER=otlp,experiments`` with ``OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf``
under ``opentelemetry-instrument``, as docs/configuration.md shows;
both exporters point at the real local server (its OTLP receiver and its events API),
which must end up with every span exactly once.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from apps.recorder import clean_env, run_app
from server_process import ServerProcess

pytestmark = pytest.mark.timeout(90)


def test_otlp_http_and_experiments_exporters_side_by_side(tmp_path: Path) -> None:
    with ServerProcess(f"sqlite:///{tmp_path / 'x.db'}", log_dir=tmp_path,
                       extra_args=["--log-level", "info", "--access-log"]) as server:
        env = clean_env(
            OTEL_TRACES_EXPORTER="otlp,experiments",
            OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
            OTEL_METRICS_EXPORTER="none",
            OTEL_LOGS_EXPORTER="none",
            OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=f"{server.base_url}/v1/traces",
            OTEL_EXPERIMENTS_ENDPOINT=server.base_url,
            OTEL_EXPERIMENTS_ID="exp-otlp-side-by-side",
        )
        proc = run_app("batch_job.py", "--spans", "3", env=env, instrument=True)
        assert proc.returncode == 0, proc.stderr
        assert "not found" not in proc.stderr, proc.stderr
        assert "Conflicting values" not in proc.stderr, proc.stderr
        reply = httpx.get(
            f"{server.base_url}/api/v2/llm-obs/v1/experiments/exp-otlp-side-by-side/events",
            timeout=10,
        )
        reply.raise_for_status()
        log = server.log()
    names = sorted(item["attributes"]["name"] for item in reply.json()["data"])
    assert names == ["item-0", "item-1", "job"]
    # both exporters really delivered: the OTLP receiver and the events API were both hit
    assert '"POST /v1/traces HTTP/1.1" 200' in log, log
    assert '"POST /api/v2/llm-obs/v1/experiments/exp-otlp-side-by-side/events HTTP/1.1"' in log
