"""Tokens, cost and latency of a run whose task calls an LLM client instrumented the way the
OpenTelemetry GenAI instrumentations do (span ``chat {model}``, kind CLIENT, the
``gen_ai.*`` attributes): totals checked against what the fake client counted, through the
real exporter, the real server (with a price table) and the runner, gate and compare."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.trace import SpanKind

from otel_experiments.client import ExperimentsClient
from otel_experiments.runner import exact_match, run_experiment
from otel_experiments.runner.results import ExperimentResult
from server_process import ServerProcess

#: The server's table and the run's: gpt-4o (any dated version) only; "local-llama" unpriced.
PRICES_TOML = '["gpt-4o*"]\ninput = 2.5\noutput = 10\n'
PRICES = {"gpt-4o*": {"input": 2.5, "output": 10}}
ALL_PRICES_CSV = "model,input,output\ngpt-4o*,2.5,10\nlocal-llama,0.1,0.2\n"


class FakeLLM:
    """A chat client instrumented as ``opentelemetry-instrumentation-openai`` does, with
    deterministic token counts; it keeps its own tally to check the pipeline against."""

    def __init__(self, provider: Any) -> None:
        self.tracer = provider.get_tracer("fake-genai-instrumentation")
        self.lock = threading.Lock()
        self.by_model: dict[str, list[int]] = {}
        self.by_input: dict[str, list[int]] = {}

    def chat(self, model: str, prompt: str, key: str) -> str:
        answer = prompt.upper()
        tokens_in, tokens_out = 3 * len(prompt) + 11, 2 * len(answer) + 1
        served = f"{model}-2024-08-06" if model == "gpt-4o" else model
        with self.tracer.start_as_current_span(f"chat {model}", kind=SpanKind.CLIENT) as span:
            span.set_attribute("gen_ai.operation.name", "chat")
            span.set_attribute("gen_ai.system", "openai")
            span.set_attribute("gen_ai.request.model", model)
            span.set_attribute("gen_ai.response.model", served)
            span.set_attribute("gen_ai.usage.input_tokens", tokens_in)
            span.set_attribute("gen_ai.usage.output_tokens", tokens_out)
        with self.lock:
            for table, k in ((self.by_model, served), (self.by_input, key)):
                tally = table.setdefault(k, [0, 0])
                tally[0] += tokens_in
                tally[1] += tokens_out
        return answer


@pytest.fixture(scope="module")
def priced_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("priced")
    (root / "prices.toml").write_text(PRICES_TOML)
    env = {**os.environ, "OTEL_EXPERIMENTS_PRICES": str(root / "prices.toml")}
    with ServerProcess(f"sqlite:///{root / 'e.db'}", env=env, log_dir=root) as server:
        yield server


def _cost(tally: dict[str, list[int]], model: str) -> float:
    return (tally[model][0] * 2.5 + tally[model][1] * 10) / 1_000_000


def test_tokens_and_cost_match_what_the_instrumented_client_produced(
        priced_server: ServerProcess, provider: Any, tmp_path: Path) -> None:
    llm = FakeLLM(provider)
    records = [{"id": f"r{i}", "input": f"question number {i}" + "!" * i,
                "expected_output": None} for i in range(6)]

    def task(prompt: str) -> str:
        out = llm.chat("gpt-4o", prompt, prompt)
        if len(prompt) % 2:  # some records also ask a second, local model
            llm.chat("local-llama", out, prompt)
        return out

    with ExperimentsClient(endpoint=priced_server.base_url) as client:
        result = run_experiment(f"genai-{uuid.uuid4().hex[:8]}", records, task, [exact_match],
                                client=client, tracer_provider=provider, quiet=True,
                                prices=PRICES, max_concurrency=3)
        summary = client.experiments.summary(result.experiment_id).raw
        stored = ExperimentResult.from_server(client, result.experiment_id)

    want_in = sum(t[0] for t in llm.by_model.values())
    want_out = sum(t[1] for t in llm.by_model.values())
    usage = result.summary["usage"]
    assert (usage["input_tokens"], usage["output_tokens"]) == (want_in, want_out)
    assert {m["model"]: [m["input_tokens"], m["output_tokens"]] for m in usage["by_model"]} \
        == llm.by_model
    assert usage["spans"] == 6 + sum(len(r["input"]) % 2 for r in records)
    # Cost: gpt-4o priced through the glob; local-llama reported, not guessed.
    cost = result.summary["cost"]
    assert cost["total_usd"] == pytest.approx(_cost(llm.by_model, "gpt-4o-2024-08-06"))
    assert cost["unpriced"] == ["local-llama"] and cost["complete"] is False
    # The server priced it the same with its own table (OTEL_EXPERIMENTS_PRICES).
    assert summary["cost"]["total_usd"] == pytest.approx(cost["total_usd"])
    assert summary["cost"]["unpriced"] == ["local-llama"]
    # Per record: the tokens of its whole trace.
    for record in result.records:
        got = record.usage or {}
        assert [got.get("input_tokens"), got.get("output_tokens")] == \
            llm.by_input[record.input], record.record_id
        priced_only = len(record.input) % 2 == 0
        assert (got.get("cost_usd") is not None) == priced_only
    # Read back from the server: the same totals, and per-record usage with the server's cost.
    assert stored.summary["usage"]["input_tokens"] == want_in
    assert all((r.usage or {}).get("cost") for r in stored.records)

    # Latency p50 / p95 sit beside them.
    assert result.summary["latency_ms"]["p95"] >= result.summary["latency_ms"]["p50"] > 0

    # The web UI's experiment page shows them (the server's table prices gpt-4o only).
    page = httpx.get(f"{priced_server.base_url}/ui/experiment",
                     params={"id": result.experiment_id}, timeout=30).text
    assert f'id="kpi-input-tokens">{want_in:,}<' in page
    assert f'id="kpi-output-tokens">{want_out:,}<' in page
    assert 'id="kpi-cost"' in page and "+ unpriced" in page
    assert "local-llama" in page and "no price" in page and "gpt-4o-2024-08-06" in page
    assert page.count('class="usage small muted"') == len(records)

    # The gate: --max-cost fails while a model is unpriced, passes with a full table.
    (tmp_path / "all.csv").write_text(ALL_PRICES_CSV)
    env = {**os.environ, "OTEL_EXPERIMENTS_ENDPOINT": priced_server.base_url}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "otel_experiments.cli", *args],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)

    exp = result.experiment_id
    unpriced = cli("gate", exp, "--max-cost", "100")
    assert unpriced.returncode == 1 and "unpriced models: local-llama" in unpriced.stdout
    full = _cost(llm.by_model, "gpt-4o-2024-08-06") + (
        llm.by_model["local-llama"][0] * 0.1 + llm.by_model["local-llama"][1] * 0.2) / 1e6
    ok = cli("gate", exp, "--max-cost", f"{full * 1.001:.9f}", "--max-p95-ms", "60000",
             "--prices", "all.csv")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    over = cli("gate", exp, "--max-cost", f"{full * 0.999:.9f}", "--prices", "all.csv")
    assert over.returncode == 1 and "cost_usd" in over.stdout
    slow = cli("gate", exp, "--max-p95-ms", "0.000001")
    assert slow.returncode == 1 and "latency_p95_ms" in slow.stdout
    bad = cli("gate", exp, "--max-cost", "1", "--prices", "nope.json")
    assert bad.returncode == 2 and "nope.json" in bad.stderr

    # compare shows tokens and cost side by side.
    shown = cli("compare", exp, exp, "--prices", "all.csv")
    assert shown.returncode == 0, shown.stderr
    rows = {line.split()[0]: line.split()[1:] for line in shown.stdout.splitlines() if line}
    assert rows["input_tokens"][:2] == [str(want_in)] * 2
    assert float(rows["cost_usd"][0]) == pytest.approx(full, rel=1e-3)

    # run --prices prints them (a results file keeps them).
    (tmp_path / "tasks.py").write_text("def echo(x):\n    return x\n")
    (tmp_path / "d.jsonl").write_text(json.dumps({"input": "a", "expected_output": "a"}) + "\n")
    ran = cli("run", "tasks:echo", "--dataset", "d.jsonl", "--prices", "all.csv",
              "--evaluator", "exact_match", "--output", "r.json")
    assert ran.returncode == 0, ran.stderr
    assert "latency_p95_ms" in ran.stdout

    # The web UI's compare page: tokens and cost rows (the echo run used none).
    other = json.loads((tmp_path / "r.json").read_text())["experiment_id"]
    compared = httpx.get(f"{priced_server.base_url}/ui/compare",
                         params=[("id", result.experiment_id), ("id", other)], timeout=30).text
    assert "input tokens" in compared and f"{want_in:,}" in compared
    assert "cost (USD)" in compared  # unknown (a model is unpriced): shown, not summed


def test_compare_endpoint_reports_usage_and_cost(priced_server: ServerProcess,
                                                 provider: Any, server: ServerProcess) -> None:
    """GET /experiments/compare carries each run's tokens (as counted by the instrumented
    client) and, with the server's price table, their cost; without a table, no cost."""
    records = [{"id": f"u{i}", "input": f"q{i}" + "?" * i, "expected_output": None}
               for i in range(5)]
    tallies, ids = [], []
    with ExperimentsClient(endpoint=priced_server.base_url) as client:
        for calls in (1, 2):  # the second variant asks the model twice per record
            llm = FakeLLM(provider)

            def task(prompt: str, llm: FakeLLM = llm, calls: int = calls) -> str:
                out = prompt
                for _ in range(calls):
                    out = llm.chat("gpt-4o", out, prompt)
                return out

            result = run_experiment(f"cmp-usage-{uuid.uuid4().hex[:8]}", records, task,
                                    [exact_match], client=client, tracer_provider=provider,
                                    quiet=True)
            tallies.append(llm.by_model["gpt-4o-2024-08-06"])
            ids.append(result.experiment_id)
        found = client.experiments.compare(ids[0], ids[1])
    for side, tally in zip(("a", "b"), tallies, strict=True):
        assert found.tokens(side) == (tally[0], tally[1])
        assert found.usage[side]["by_model"][0]["model"] == "gpt-4o-2024-08-06"
        assert found.cost_usd(side) == pytest.approx(_cost({"m": tally}, "m"))
    assert found.tokens("b")[0] > found.tokens("a")[0]
    # The answer validates against the OpenAPI schema's required members.
    raw = httpx.get(f"{priced_server.base_url}/api/v2/llm-obs/v1/experiments/compare",
                    params={"a": ids[0], "b": ids[1]}, timeout=30).json()["data"]["attributes"]
    assert set(raw["cost"]) == {"a", "b"} and raw["cost"]["a"]["complete"] is True
    schema = httpx.get(f"{priced_server.base_url}/openapi.json", timeout=30).json()
    comparison = schema["components"]["schemas"]["ComparisonDocument"]
    attrs = comparison["properties"]["data"]["properties"]["attributes"]
    assert "usage" in attrs["required"] and "cost" in attrs["properties"]

    # A server without prices: usage (none was sent to it: zero tokens), no cost member.
    with ExperimentsClient(endpoint=server.base_url) as client:
        for _ in range(2):
            run_experiment(f"cmp-plain-{uuid.uuid4().hex[:8]}", records, lambda p: p,
                           [exact_match], client=client, tracer_provider=provider, quiet=True)
        plain = [e.id for e in client.experiments.list(page_size=1000)
                 if e.name.startswith("cmp-plain-")][:2]
        found = client.experiments.compare(plain[0], plain[1])
    assert found.cost is None and found.cost_usd("a") is None
    assert found.tokens("a") == (0, 0) and found.usage["a"]["by_model"] == []
