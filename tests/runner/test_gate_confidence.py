"""gate(..., confidence=): paired checks replace the plain baseline rule for per-record
metrics and the error rate; --tolerance still bounds the size of a significant drop;
summary evaluations keep the plain rule. Results built from seeded outcomes."""

from __future__ import annotations

import random

import pytest

from otel_experiments.runner.gate import gate
from otel_experiments.runner.report import gate_junit, gate_markdown
from otel_experiments.runner.results import ExperimentResult, RecordOutcome, summarize


def run(name: str, rate: float, seed: int, records: int = 300, fail_every: int = 0,
        accuracy: float | None = None) -> ExperimentResult:
    rng = random.Random(seed)
    rows = []
    for i in range(records):
        failed = bool(fail_every) and i % fail_every == 0
        error = {"type": "ValueError", "message": "boom"} if failed else None
        metrics = {} if failed else {"correct": rng.random() < rate}
        rows.append(RecordOutcome(f"r{i}", i, i, None if failed else i, error, 1.0, metrics))
    summary = summarize(rows)
    if accuracy is not None:
        summary["evaluations"] = {"accuracy": accuracy}
    return ExperimentResult(f"exp-{name}", name, "COMPLETED", rows, summary)


def test_a_significant_drop_fails_and_tolerance_bounds_its_size() -> None:
    base, worse = run("base", 0.8, 1), run("worse", 0.7, 2)
    verdict = gate(worse, baseline=base, confidence=0.95)
    failed = {c.name for c in verdict.failures}
    assert failed == {"correct vs baseline"}, [c.detail for c in verdict.checks]
    drop = base.value("correct") - worse.value("correct")  # type: ignore[operator]
    assert gate(worse, baseline=base, confidence=0.95, tolerance=drop + 0.01).passed
    assert not gate(worse, baseline=base, confidence=0.95, tolerance=drop - 0.01).passed
    assert "regressed" in gate_markdown(verdict) and "<failure" in gate_junit(verdict)


def test_errors_are_paired_and_summary_evaluations_keep_the_plain_rule() -> None:
    base = run("base", 0.8, 1, accuracy=0.9)
    failing = run("failing", 0.8, 1, fail_every=4, accuracy=0.9)
    checks = {c.name: c for c in gate(failing, baseline=base, confidence=0.95).checks}
    assert not checks["error_rate vs baseline"].passed
    assert "mcnemar" in checks["error_rate vs baseline"].detail
    assert checks["accuracy vs baseline"].passed and "significant" not in \
        checks["accuracy vs baseline"].limit
    lower = run("lower", 0.8, 1, accuracy=0.85)
    checks = {c.name: c for c in gate(lower, baseline=base, confidence=0.95).checks}
    assert not checks["accuracy vs baseline"].passed  # one number per run: no test to run
    assert checks["correct vs baseline"].passed


def test_a_summary_survives_values_the_statistics_cannot_take(
        caplog: pytest.LogCaptureFixture) -> None:
    rows = [RecordOutcome(f"r{i}", i, metrics={"huge": (-1) ** i * 1e308, "ok": i % 2 == 0})
            for i in range(6)]
    summary = summarize(rows)  # (1e308) ** 2 overflows in the standard deviation
    assert "ci_low" not in summary["metrics"]["huge"]
    assert summary["metrics"]["huge"]["mean"] == 0.0
    assert summary["metrics"]["ok"]["ci_low"] is not None  # the other metrics keep theirs
    assert "no interval for metric 'huge'" in caplog.text
