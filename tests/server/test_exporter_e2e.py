"""The package's own ExperimentEventsExporter delivering to the real server."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from server_helpers import API, uid

from otel_experiments import attributes as A
from server_process import ServerProcess

exporter_mod = pytest.importorskip("otel_experiments.export.exporter")


def _spans(exp_id: str, n: int) -> list:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "e2e"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("e2e")
    for i in range(n):
        with tracer.start_as_current_span("task", attributes={
                A.EXPERIMENT_ID: exp_id, A.EXPERIMENT_NAME: "E2E", A.USER_ID: f"u{i % 3}"}) as s:
            s.add_event(A.METRIC_EVENT_NAME, {A.METRIC_LABEL: "acc", A.METRIC_VALUE: i / n})
    provider.shutdown()
    return list(memory.get_finished_spans())


@pytest.mark.parametrize("compression", ["gzip", "none"])
def test_exporter_to_server(server: ServerProcess, client: httpx.Client, compression: str) -> None:
    exp_id = uid("exp")
    spans = _spans(exp_id, 25)
    exporter = exporter_mod.ExperimentEventsExporter(
        endpoint=server.base_url, compression=compression, max_spans_per_request=10, timeout=30)
    try:
        assert exporter.export(spans) is SpanExportResult.SUCCESS
        assert exporter.export(spans) is SpanExportResult.SUCCESS  # retried batch: deduplicated
    finally:
        exporter.shutdown()
    summary = client.get(f"{API}/experiments/{exp_id}/summary").json()["data"]["attributes"]
    assert summary["span_count"] == 25 and summary["metrics"][0]["count"] == 25
    exp = client.get(f"{API}/experiments/{exp_id}").json()["data"]["attributes"]
    assert exp["name"] == "E2E"
    users = client.get(f"{API}/experiments/{exp_id}/events?filter[user_id]=u0").json()["data"]
    assert len(users) == 9


def test_exporter_with_api_key(tmp_path: Path) -> None:
    key = "e2e-key-123"
    with ServerProcess(f"sqlite:///{tmp_path / 'k.db'}", api_keys=[key]) as server:
        exp_id = uid("exp")
        good = exporter_mod.ExperimentEventsExporter(endpoint=server.base_url, api_key=key,
                                                     timeout=10)
        bad = exporter_mod.ExperimentEventsExporter(endpoint=server.base_url, api_key="nope",
                                                    timeout=2)
        try:
            assert bad.export(_spans(exp_id, 2)) is SpanExportResult.FAILURE
            assert good.export(_spans(exp_id, 2)) is SpanExportResult.SUCCESS
        finally:
            good.shutdown()
            bad.shutdown()
        r = httpx.get(f"{server.base_url}{API}/experiments/{exp_id}/summary",
                      headers={"Authorization": f"Bearer {key}"})
        assert r.json()["data"]["attributes"]["span_count"] == 2
