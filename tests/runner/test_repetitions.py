"""run_experiment(..., repetitions=k) against the real server: one span per run tagged with
its repetition, intervals and pass@k in the summary (the same read back from the server),
and a resumed run that stores every run exactly once."""

from __future__ import annotations

import random
import threading
import uuid
from collections import Counter
from typing import Any

import pytest

from otel_experiments import stats
from otel_experiments.client import ExperimentsClient
from otel_experiments.runner import ExperimentResult, RunInterrupted, run_experiment
from otel_experiments.runner.intervals import metric_values


class NoisyTask:
    """Answers right with probability ``rate``; seeded per (input, call), so the set of
    outcomes of each input is the same whatever order the threads run in."""

    def __init__(self, rate: float, seed: int = 0) -> None:
        self.rate, self.seed = rate, seed
        self.calls: Counter[int] = Counter()
        self._lock = threading.Lock()

    def __call__(self, x: int) -> int:
        with self._lock:
            n = self.calls[x]
            self.calls[x] += 1
        right = random.Random(f"{self.seed}-{x}-{n}").random() < self.rate
        return x if right else -1


def correct(output: int, expected_output: int) -> bool:
    return output == expected_output


RECORDS = [{"id": f"q{i}", "input": i, "expected_output": i} for i in range(12)]


def test_each_record_runs_k_times_tagged_and_summarised(client: ExperimentsClient,
                                                       provider: Any) -> None:
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    seen = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(seen))
    task = NoisyTask(0.6, seed=1)
    result = run_experiment(f"reps-{uuid.uuid4().hex[:8]}", RECORDS, task, [correct],
                            client=client, tracer_provider=provider, quiet=True,
                            repetitions=3, max_concurrency=4)
    assert result.status == "COMPLETED" and len(result.records) == 36
    assert set(task.calls.values()) == {3}
    assert Counter((r.record_id, r.repetition) for r in result.records) == Counter(
        {(f"q{i}", j): 1 for i in range(12) for j in range(3)})
    assert all(r.metadata == {} for r in result.records)  # the index is not user metadata
    spans = [s for s in seen.get_finished_spans() if s.attributes
             and "experiment.dataset_record_id" in s.attributes]
    assert Counter((s.attributes["experiment.dataset_record_id"],
                    s.attributes["experiment.repetition"]) for s in spans) == Counter(
        {(f"q{i}", j): 1 for i in range(12) for j in range(3)})

    entry = result.summary["metrics"]["correct"]
    expected = stats.describe(metric_values(result.records, "correct"))
    assert expected is not None and expected["trials"] == 36 and expected["records"] == 12
    for key in ("std", "ci_low", "ci_high", "pass_at_k", "pass_hat_k", "confidence"):
        assert entry[key] == expected[key], key
    assert set(entry["pass_at_k"]) == {"1", "2", "3"}
    assert entry["ci_low"] < entry["mean"] < entry["ci_high"]
    assert entry["pass_at_k"]["1"] == pytest.approx(entry["mean"])
    assert result.metadata["runner"]["repetitions"] == 3

    # on the server: one span per run, its index in the span's metadata
    rows = list(client.experiments.records(result.experiment_id))
    assert len(rows) == 36
    assert Counter(r.metadata["experiment.repetition"] for r in rows) == {0: 12, 1: 12, 2: 12}
    stored = ExperimentResult.from_server(client, result.experiment_id)
    assert sorted(r.key for r in stored.records) == sorted(r.key for r in result.records)
    assert stored.summary["metrics"]["correct"]["pass_at_k"] == entry["pass_at_k"]
    assert stored.summary["metrics"]["correct"]["ci_low"] == entry["ci_low"]


def test_without_repetitions_spans_carry_no_index(client: ExperimentsClient,
                                                  provider: Any) -> None:
    result = run_experiment(f"once-{uuid.uuid4().hex[:8]}", RECORDS[:3], NoisyTask(1.0),
                            [correct], client=client, tracer_provider=provider, quiet=True)
    assert [r.repetition for r in result.records] == [None] * 3
    assert "pass_at_k" not in result.summary["metrics"]["correct"]
    rows = list(client.experiments.records(result.experiment_id))
    assert all(not r.metadata for r in rows)


def test_interrupted_run_with_repetitions_resumes_without_duplicates(
        client: ExperimentsClient, provider: Any) -> None:
    ran: list[int] = []
    stop = {"after": 7}

    def task(x: int) -> int:
        if len(ran) == stop["after"]:
            raise KeyboardInterrupt
        ran.append(x)
        return x

    name = f"reps-resume-{uuid.uuid4().hex[:8]}"
    records = RECORDS[:5]
    with pytest.raises(RunInterrupted) as info:
        run_experiment(name, records, task, [correct], client=client, max_concurrency=1,
                       tracer_provider=provider, quiet=True, repetitions=3)
    exp_id = info.value.result.experiment_id
    assert len(info.value.result.records) == 7
    stop["after"] = -1
    ran.clear()
    result = run_experiment(name, records, task, [correct], client=client, max_concurrency=2,
                            tracer_provider=provider, quiet=True, repetitions=3)
    assert result.experiment_id == exp_id and len(ran) == 15 - 7
    rows = list(client.experiments.records(exp_id))
    pairs = [(r.dataset_record_id, r.metadata["experiment.repetition"]) for r in rows]
    assert len(pairs) == 15 and len(set(pairs)) == 15
    assert len(result.records) == 15 and result.value("correct") == 1.0


def test_repetitions_are_checked() -> None:
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="repetitions"):
            run_experiment("x", RECORDS, NoisyTask(1.0), repetitions=bad)  # type: ignore[arg-type]
