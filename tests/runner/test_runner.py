"""run_experiment against the real server: sync and async tasks, failures, timeouts,
evaluators, results read back through the API, resume after an interruption."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from otel_experiments.client import ExperimentsClient
from otel_experiments.runner import (
    ExperimentResult,
    Metric,
    RunInterrupted,
    accuracy,
    error_rate,
    exact_match,
    run_experiment,
)

RECORDS = [{"input": {"q": f"{i}+{i}"}, "expected_output": str(2 * i), "metadata": {"i": i}}
           for i in range(6)]


def answer(input: dict[str, str]) -> str:
    a, b = input["q"].split("+")
    if a == "3":
        raise ValueError("cannot add threes")
    return str(int(a) + int(b)) if a != "5" else "wrong"


def judge(output: str, expected_output: str) -> Metric:
    return Metric(1.0 if output == expected_output else 0.25, reasoning=f"{output} vs "
                  f"{expected_output}", metadata={"judge": "exact"})


def test_sync_run_with_failure_read_back(client: ExperimentsClient, provider: Any,
                                         tmp_path: Path) -> None:
    proj = client.projects.create(name=f"p-{uuid.uuid4().hex[:8]}")
    ds = client.datasets.create(project_id=proj.id, name="sums", records=RECORDS)
    name = f"sums-{uuid.uuid4().hex[:8]}"
    result = run_experiment(
        name, ds, answer, [exact_match, judge], [accuracy(), error_rate],
        config={"model": "adder", "temperature": 0}, project_id=proj.id, client=client,
        max_concurrency=4, tracer_provider=provider, quiet=True)

    assert result.status == "COMPLETED" and len(result.records) == 6
    failed = [r for r in result.records if r.failed]
    assert [r.input for r in failed] == [{"q": "3+3"}]
    assert failed[0].error == {"type": "ValueError", "message": "ValueError: cannot add threes"}
    assert failed[0].metrics == {}  # no evaluation of a failed record
    assert result.summary["evaluations"] == {"accuracy": 4 / 6, "error_rate": 1 / 6}
    assert result.summary["metrics"]["exact_match"]["pass_rate"] == 4 / 5
    assert result.delivery is not None and result.delivery["flushed"]
    assert (result.delivery["delivered"], result.delivery["spooled"],
            result.delivery["dropped"]) == (6, 0, 0)  # one span per record, all delivered

    stored = client.experiments.retrieve(result.experiment_id)
    assert stored.status == "COMPLETED" and stored.name == name
    assert stored.config == {"model": "adder", "temperature": 0}
    assert stored.dataset_id == ds.id and stored.dataset_version == 1
    repro = stored.metadata["reproducibility"]
    assert repro["python"] and repro["packages"]["opentelemetry-sdk"]
    assert len(repro["git"]["commit"]) == 40 and isinstance(repro["git"]["dirty"], bool)
    assert stored.metadata["dataset"]["record_count"] == 6
    assert stored.metadata["summary"]["evaluations"]["accuracy"] == 4 / 6

    rows = list(client.experiments.records(result.experiment_id, page_size=2))
    assert len(rows) == 6
    by_record = {r.dataset_record_id: r for r in rows}
    local = {r.record_id: r for r in result.records}
    assert set(by_record) == set(local)
    for rid, row in by_record.items():
        assert row.record is not None and row.record["input"] == row.input == local[rid].input
        assert row.output == local[rid].output
        assert row.metrics == local[rid].metrics
        assert row.status == ("error" if local[rid].failed else "ok")
    summary = client.experiments.summary(result.experiment_id)
    assert summary.root_spans["span_count"] == 6 and summary.root_spans["error_count"] == 1
    exact = summary.metric("exact_match")
    assert exact is not None and exact.value_counts == {"true": 4, "false": 1}
    events = list(client.experiments.events(result.experiment_id, status="error"))
    assert len(events) == 1 and events[0]["meta"]["error"]["message"] == "cannot add threes"

    # to_json / from_json round trip, and the same numbers rebuilt from the server
    path = tmp_path / "results.json"
    result.to_json(path)
    again = ExperimentResult.from_json(path)
    assert again.summary == json.loads(json.dumps(result.summary))
    assert [r.record_id for r in again.records] == [r.record_id for r in result.records]
    served = ExperimentResult.from_server(client, result.experiment_id)
    assert served.value("exact_match") == result.value("exact_match") == 0.8
    assert served.value("accuracy") == result.value("accuracy")


async def slow_double(x: int) -> int:
    await asyncio.sleep(2.0 if x == 3 else 0.001)
    if x == 4:
        raise RuntimeError("four is unlucky")
    return 2 * x


async def is_even(output: int) -> bool:
    await asyncio.sleep(0)
    return output % 2 == 0


def test_async_task_timeout_and_async_evaluator(client: ExperimentsClient,
                                                provider: Any) -> None:
    records = [{"id": f"r{x}", "input": x, "expected_output": 2 * x} for x in range(6)]
    result = run_experiment(f"async-{uuid.uuid4().hex[:8]}", records, slow_double,
                            [exact_match, is_even], client=client, task_timeout=0.5,
                            max_concurrency=3, tracer_provider=provider, quiet=True)
    errors = {r.record_id: r.error["type"] for r in result.records if r.error}
    assert errors == {"r3": "TimeoutError", "r4": "RuntimeError"}
    assert result.metadata["runner"]["executor"] == "asyncio"
    rows = {r.dataset_record_id: r for r in client.experiments.records(result.experiment_id)}
    assert set(rows) == {f"r{x}" for x in range(6)}
    assert rows["r3"].status == "error" and "timed out" in rows["r3"].error["message"]
    assert rows["r1"].metrics == {"exact_match": True, "is_even": True}
    assert rows["r1"].record is None  # a local dataset: nothing to join


def test_interrupted_run_resumes_without_duplicates(client: ExperimentsClient,
                                                    provider: Any) -> None:
    calls: list[int] = []
    stop_at = {"n": 4}

    def flaky(x: int) -> int:
        if x == stop_at["n"]:
            raise KeyboardInterrupt  # as Ctrl-C would, mid-run
        calls.append(x)
        return x

    records = [{"input": x, "expected_output": x} for x in range(10)]
    name = f"resume-{uuid.uuid4().hex[:8]}"
    with pytest.raises(RunInterrupted) as info:
        run_experiment(name, records, flaky, [exact_match], client=client, max_concurrency=1,
                       tracer_provider=provider, quiet=True)
    partial = info.value.result
    assert partial.status == "INTERRUPTED" and len(partial.records) == 4
    exp_id = partial.experiment_id
    assert client.experiments.retrieve(exp_id).status == "INTERRUPTED"
    assert len(list(client.experiments.records(exp_id))) == 4

    stop_at["n"] = -1
    calls.clear()
    result = run_experiment(name, records, flaky, [exact_match], client=client,
                            max_concurrency=3, tracer_provider=provider, quiet=True)
    assert result.experiment_id == exp_id and result.status == "COMPLETED"
    assert sorted(calls) == list(range(4, 10))  # finished records were not run again
    rows = list(client.experiments.records(exp_id))
    ids = [r.dataset_record_id for r in rows]
    assert len(rows) == 10 and len(set(ids)) == 10
    assert result.value("exact_match") == 1.0 and len(result.records) == 10
    assert client.experiments.retrieve(exp_id).metadata["resumed"] == 4

    # a completed experiment is not resumed by default: a new one starts
    again = run_experiment(name, records[:2], flaky, client=client, tracer_provider=provider,
                           quiet=True)
    assert again.experiment_id != exp_id


def test_gentrace_style_decorator_and_lazy_exports(client: ExperimentsClient,
                                                   provider: Any) -> None:
    import sys

    import otel_experiments

    exported = {n: getattr(otel_experiments, n) for n in (
        "ExperimentsClient", "AsyncExperimentsClient", "run_experiment", "Metric",
        "experiment", "eval_dataset")}
    assert exported["run_experiment"] is run_experiment and "otel_experiments.runner" in sys.modules

    name = f"decorated-{uuid.uuid4().hex[:8]}"

    @otel_experiments.experiment(name=name, config={"v": 2}, client=client,
                                 tracer_provider=provider, quiet=True)
    def evaluate() -> list[ExperimentResult]:
        first = otel_experiments.eval_dataset(
            data=[{"input": 1, "expected_output": 1}], interaction=lambda x: x,
            evaluators=[exact_match])
        second = otel_experiments.eval_dataset(
            data=[{"input": 2, "expected_output": 3}], interaction=lambda x: x,
            evaluators=[exact_match])
        return [first, second]

    first, second = evaluate()
    assert first.experiment_id == second.experiment_id
    stored = client.experiments.retrieve(first.experiment_id)
    assert stored.name == name and stored.config == {"v": 2}
    assert sorted(r.metrics["exact_match"] for r in client.experiments.records(stored.id)) \
        == [False, True]
    # each call of the decorated function is a new experiment
    assert evaluate()[0].experiment_id != first.experiment_id


def test_interrupted_async_run_stores_what_it_reports(client: ExperimentsClient,
                                                      provider: Any) -> None:
    async def task(x: int) -> int:
        await asyncio.sleep(0.01 * (x % 3))
        if x == 6:
            raise KeyboardInterrupt
        return x

    records = [{"input": x, "expected_output": x} for x in range(12)]
    with pytest.raises(RunInterrupted) as info:
        run_experiment(f"async-stop-{uuid.uuid4().hex[:8]}", records, task, [exact_match],
                       client=client, max_concurrency=3, tracer_provider=provider,
                       quiet=True)
    partial = info.value.result
    assert 0 < len(partial.records) < 12
    stored = {r.dataset_record_id for r in client.experiments.records(partial.experiment_id)}
    assert stored == {r.record_id for r in partial.records}


def test_server_down_runs_offline_and_says_so(provider: Any,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from server_process import free_port

    with ExperimentsClient(endpoint=f"http://127.0.0.1:{free_port()}", max_retries=0) as down:
        result = run_experiment("offline", [{"input": i, "expected_output": i} for i in range(3)],
                                lambda x: x, [exact_match], client=down,
                                tracer_provider=provider)
    assert result.status == "COMPLETED" and result.value("exact_match") == 1.0
    assert result.delivery is not None and result.delivery["offline"] is True
    assert result.endpoint is None
    # the exporter's delivery report says what became of the spans (spooled, not lost)
    err = capsys.readouterr().err
    assert "spans: 0 delivered, 3 spooled (sent later), 0 dropped" in err
    assert "last error: ConnectError" in err


def test_evaluator_timeout_and_all_failed(client: ExperimentsClient, provider: Any) -> None:
    import time as _time

    def slow_judge(output: int) -> float:
        _time.sleep(1.0 if output == 2 else 0)
        return 1.0

    result = run_experiment(f"evals-{uuid.uuid4().hex[:8]}",
                            [{"id": f"e{i}", "input": i} for i in range(3)], lambda x: x,
                            [slow_judge, exact_match], client=client, evaluator_timeout=0.3,
                            tracer_provider=provider, quiet=True)
    by_id = {r.record_id: r for r in result.records}
    assert by_id["e2"].evaluator_errors == {"slow_judge": "TimeoutError: evaluator timed out after 0.3 s"}
    assert by_id["e2"].metrics == {"exact_match": False}  # the other evaluator still ran
    assert by_id["e1"].metrics == {"slow_judge": 1.0, "exact_match": False}
    assert result.summary["evaluator_error_count"] == 1

    def broken(x: int) -> int:
        raise RuntimeError("always")

    failed = run_experiment(f"broken-{uuid.uuid4().hex[:8]}", [{"input": 1}, {"input": 2}],
                            broken, client=client, tracer_provider=provider, quiet=True)
    assert failed.status == "FAILED"
    assert client.experiments.retrieve(failed.experiment_id).status == "FAILED"


async def test_async_decorator_with_pipeline_id(client: ExperimentsClient,
                                                provider: Any) -> None:
    from otel_experiments.runner import aeval_dataset, experiment

    proj = client.projects.create(name=f"pipe-{uuid.uuid4().hex[:8]}")

    @experiment(pipeline_id=proj.id, client=client, tracer_provider=provider, quiet=True)
    async def nightly() -> ExperimentResult:
        return await aeval_dataset([{"input": 2, "expected_output": 4}], slow_double,
                                   [exact_match])

    result = await nightly()
    stored = client.experiments.retrieve(result.experiment_id)
    assert stored.name == "nightly" and stored.project_id == proj.id
    assert result.value("exact_match") == 1.0


def test_sync_task_timeout(client: ExperimentsClient, provider: Any) -> None:
    import time as _time

    def sleepy(x: int) -> int:
        _time.sleep(2.0 if x == 1 else 0)
        return x

    started = _time.monotonic()
    result = run_experiment(f"sleepy-{uuid.uuid4().hex[:8]}", [{"id": f"s{i}", "input": i}
                                                                for i in range(3)],
                            sleepy, client=client, task_timeout=0.3, max_concurrency=3,
                            tracer_provider=provider, quiet=True)
    assert _time.monotonic() - started < 1.8  # the run did not wait for the slow record
    errors = {r.record_id: r.error for r in result.records if r.error}
    assert errors == {"s1": {"type": "TimeoutError",
                             "message": "TimeoutError: task timed out after 0.3 s"}}
    rows = {r.dataset_record_id: r for r in client.experiments.records(result.experiment_id)}
    assert rows["s1"].status == "error" and rows["s0"].status == "ok"


def test_application_exporter_is_reused_and_flushed(client: ExperimentsClient,
                                                    endpoint: str) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from otel_experiments import ExperimentEventsExporter, ExperimentSpanProcessor

    provider = TracerProvider()  # set up by the application, the README's way
    provider.add_span_processor(ExperimentSpanProcessor())
    exporter = ExperimentEventsExporter(endpoint=endpoint)
    # a long delay: only an explicit flush gets the spans out before the test reads them
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=60_000))
    try:
        result = run_experiment(f"app-{uuid.uuid4().hex[:8]}", [{"input": i} for i in range(4)],
                                lambda x: x, client=client, tracer_provider=provider,
                                quiet=True)
        assert result.delivery is not None and result.delivery["flushed"]
        assert len(list(client.experiments.records(result.experiment_id))) == 4
    finally:
        provider.shutdown()
