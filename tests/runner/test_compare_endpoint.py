"""GET /experiments/compare on a real server: the numbers of the runner's ``compare`` for
the same experiments (sync and async clients), strict parameters, 404s."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import httpx
import pytest
from test_repetitions import NoisyTask, correct

from otel_experiments.client import AsyncExperimentsClient, ExperimentsClient
from otel_experiments.runner import ExperimentResult, run_experiment
from otel_experiments.runner.compare import compare

API = "/api/v2/llm-obs/v1"
RECORDS = [{"id": f"c{i}", "input": i, "expected_output": i} for i in range(40)]


def score(output: int, expected_output: int) -> float:
    return 1.0 if output == expected_output else 0.1 * (expected_output % 5)


@pytest.fixture(scope="module")
def experiments(server: Any) -> dict[str, ExperimentResult]:
    from opentelemetry.sdk.trace import TracerProvider

    out: dict[str, ExperimentResult] = {}
    provider = TracerProvider()
    with ExperimentsClient(endpoint=server.base_url) as client:
        for name, rate, seed, reps in (("base", 0.75, 1, 2), ("same", 0.75, 2, 2),
                                       ("worse", 0.3, 3, 2), ("once", 0.75, 4, 1)):
            run_experiment(f"{name}-{uuid.uuid4().hex[:6]}", RECORDS, NoisyTask(rate, seed),
                           [correct, score], client=client, tracer_provider=provider,
                           quiet=True, repetitions=reps)
        provider.shutdown()
        for exp in client.experiments.list(page_size=1000):
            key = exp.name.rsplit("-", 1)[0]
            if exp.name.startswith(("base-", "same-", "worse-", "once-")):
                out[key] = ExperimentResult.from_server(client, exp.id)
    return out


def _same(server_side: Any, local: Any) -> None:
    assert server_side.label == local.label and server_side.verdict == local.verdict
    for key in ("pairs", "a", "b", "delta", "ci_low", "ci_high", "p_value"):
        assert getattr(server_side, key) == pytest.approx(getattr(local, key)), key


def test_endpoint_matches_the_runner_compare(client: ExperimentsClient,
                                             experiments: dict[str, ExperimentResult]) -> None:
    base, worse = experiments["base"], experiments["worse"]
    found = client.experiments.compare(base.experiment_id, worse.experiment_id)
    assert found.a == base.experiment_id and found.common_records == 40
    assert [m.label for m in found.metrics] == ["correct", "score", "error_rate"]
    local = compare(base, worse).significance
    assert [m.label for m in local] == ["correct", "score", "error_rate"]
    for remote, mine in zip(found.metrics, local, strict=True):
        _same(remote, mine)
    correct_delta = found.metric("correct")
    assert correct_delta is not None and correct_delta.verdict == "regressed"
    assert correct_delta.test == "wilcoxon"  # two runs per record: per-record pass rates

    null = client.experiments.compare(base.experiment_id, experiments["same"].experiment_id)
    assert {m.label: m.verdict for m in null.metrics}["correct"] == "no significant change"
    wider = client.experiments.compare(base.experiment_id, worse.experiment_id,
                                       confidence=0.99)
    assert wider.confidence == 0.99
    w, n = wider.metric("correct"), correct_delta
    assert w is not None and w.ci_low < n.ci_low and w.ci_high > n.ci_high


async def test_async_client_and_mcnemar(endpoint: str,
                                        experiments: dict[str, ExperimentResult]) -> None:
    once, base = experiments["once"], experiments["base"]
    async with AsyncExperimentsClient(endpoint=endpoint) as aclient:
        found = await aclient.experiments.compare(once.experiment_id, once.experiment_id)
        mixed = await aclient.experiments.compare(once.experiment_id, base.experiment_id)
    same = found.metric("correct")
    assert same is not None and same.test == "mcnemar" and same.delta == 0
    assert same.p_value == 1.0 and same.verdict == "no significant change"
    local = compare(once, base).significance
    for remote, mine in zip(mixed.metrics, local, strict=True):
        _same(remote, mine)


def test_parameters_are_strict(endpoint: str, experiments: dict[str, ExperimentResult]) -> None:
    a = experiments["base"].experiment_id
    url = f"{endpoint}{API}/experiments/compare"
    with httpx.Client() as http:
        for params, name in (({"a": a}, "b"), ({"a": a, "b": a, "confidence": "1.5"},
                                                "confidence"),
                             ({"a": a, "b": a, "confidence": "nan"}, "confidence"),
                             ({"a": a, "b": a, "c": "x"}, "c")):
            answer = http.get(url, params=params)
            assert answer.status_code == 400, (params, answer.text)
            assert answer.json()["errors"][0]["source"] == {"parameter": name}
        missing = http.get(url, params={"a": a, "b": "exp-nope"})
        assert missing.status_code == 404 and "exp-nope" in missing.text
        spec = http.get(f"{endpoint}/openapi.json").json()
        op = spec["paths"][f"{API}/experiments/compare"]["get"]
        params = {p["name"]: p["schema"] for p in op["parameters"]}
        assert set(params) == {"a", "b", "confidence"}
        assert params["confidence"]["type"] == "number"
    with ExperimentsClient(endpoint=endpoint) as c, pytest.raises(ValueError, match="confidence"):
        c.experiments.compare(a, a, confidence=95)


def test_ui_compare_page_shows_interval_and_verdict(
        endpoint: str, client: ExperimentsClient,
        experiments: dict[str, ExperimentResult]) -> None:
    base, worse = experiments["base"].experiment_id, experiments["worse"].experiment_id
    expected = client.experiments.compare(base, worse).metric("correct")
    assert expected is not None
    deadline = time.monotonic() + 60
    with httpx.Client(base_url=endpoint, timeout=60) as http:
        while True:
            page = http.get("/ui/compare", params=[("id", base), ("id", worse)])
            assert page.status_code == 200
            if "data-pending" not in page.text or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        row = re.search(r'<tr data-label="correct" class="regressed">(.*?)</tr>', page.text,
                        re.DOTALL)
        assert row is not None, page.text[-3000:]
        assert expected.interval_text() in row.group(1) and ">regressed<" in row.group(1)
        # ticking "lower is better" for a metric flips its verdict
        flipped = http.get("/ui/compare", params=[("id", base), ("id", worse),
                                                  ("lower", "correct")])
        for _ in range(300):
            if "data-pending" not in flipped.text:
                break
            time.sleep(0.2)
            flipped = http.get("/ui/compare", params=[("id", base), ("id", worse),
                                                      ("lower", "correct")])
        assert '<tr data-label="correct" class="improved">' in flipped.text


def test_experiments_longer_than_one_page_are_compared_whole(server: Any) -> None:
    """More records than the store reads in one page (1,000): every one is paired."""
    n = 1_205
    tag = uuid.uuid4().hex[:6]

    def body(flip: int) -> dict[str, Any]:
        spans, metrics = [], []
        for i in range(n):
            trace, span = f"{i + 1:032x}", f"{flip:08x}{i + 1:08x}"
            spans.append({"trace_id": trace, "span_id": span, "name": "record", "start_ns": i,
                          "duration": 1_000, "status": "ok", "meta": {}, "tags": [],
                          "dataset_record_id": f"r{i}"})
            metrics.append({"span_id": span, "trace_id": trace, "metric_type": "boolean",
                            "label": "correct", "boolean_value": (i % 10) < 5 + 3 * flip,
                            "timestamp_ms": 1})
        return {"data": {"type": "experiment_events",
                         "attributes": {"spans": spans, "metrics": metrics}}}

    a, b = f"page-a-{tag}", f"page-b-{tag}"
    with httpx.Client(base_url=server.base_url + API, timeout=60) as http:
        for exp, flip in ((a, 0), (b, 1)):
            http.post(f"/experiments/{exp}/events", json=body(flip)).raise_for_status()
        found = http.get("/experiments/compare", params={"a": a, "b": b})
    assert found.status_code == 200, found.text
    attrs = found.json()["data"]["attributes"]
    assert attrs["common_records"] == n
    (correct_row,) = [m for m in attrs["metrics"] if m["label"] == "correct"]
    assert correct_row["pairs"] == n and correct_row["verdict"] == "improved"
    assert correct_row["a"] == pytest.approx(0.5, abs=0.01)
    assert correct_row["b"] == pytest.approx(0.8, abs=0.01)
