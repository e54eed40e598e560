"""Significance from the command line (subprocesses, real server): ``run --repetitions``,
``compare`` with delta [CI], p and verdict, and ``gate --confidence`` passing on noise but
failing on a real regression."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from otel_experiments.runner import ExperimentResult
from otel_experiments.runner.compare import compare
from server_process import ServerProcess

TASKS = '''
import random
import threading
from collections import Counter

_calls = Counter()
_lock = threading.Lock()


def _noisy(x, rate, seed):
    # right with probability `rate`, seeded per (input, call): reproducible
    with _lock:
        n = _calls[(seed, x)]
        _calls[(seed, x)] += 1
    return x if random.Random(f"{seed}-{x}-{n}").random() < rate else -1


def base(x):
    return _noisy(x, 0.7, 1)

def noise(x):  # the same rate, other draws
    return _noisy(x, 0.7, 2)

def worse(x):
    return _noisy(x, 0.35, 3)
'''


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "otel_experiments.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(cwd)})


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, server: ServerProcess) -> Path:
    work = tmp_path_factory.mktemp("significance")
    (work / "tasks.py").write_text(TASKS)
    with (work / "data.jsonl").open("w") as fh:
        for n in range(60):
            fh.write(json.dumps({"id": f"n{n}", "input": n, "expected_output": n}) + "\n")
    for task in ("base", "noise", "worse"):
        done = cli(work, "run", f"tasks:{task}", "--dataset", "data.jsonl", "--name", task,
                   "--evaluator", "exact_match", "--repetitions", "2", "--resume", "no",
                   "--output", f"{task}.json", "--endpoint", server.base_url)
        assert done.returncode == 0, done.stderr
        (work / f"{task}.out").write_text(done.stdout)
    return work


def test_runs_carry_repetitions_and_intervals(runs: Path) -> None:
    base = ExperimentResult.from_json(runs / "base.json")
    assert len(base.records) == 120 and {r.repetition for r in base.records} == {0, 1}
    entry = base.summary["metrics"]["exact_match"]
    assert entry["ci_low"] < entry["mean"] < entry["ci_high"] and set(entry["pass_at_k"]) \
        == {"1", "2"}
    printed = (runs / "base.out").read_text()  # what `run` printed at the end
    line = next(x for x in printed.splitlines() if x.startswith("exact_match"))
    assert f"[{entry['ci_low']:.4g}, {entry['ci_high']:.4g}]" in line
    assert f"pass@2 {entry['pass_at_k']['2']:.3g} pass^2 {entry['pass_hat_k']['2']:.3g}" in line


def test_compare_prints_interval_p_value_and_verdict(runs: Path) -> None:
    null = cli(runs, "compare", "base.json", "noise.json")
    assert null.returncode == 0, null.stderr
    assert "delta [CI]" in null.stdout and "95% confidence" in null.stdout
    line = next(x for x in null.stdout.splitlines()
                if x.startswith("exact_match") and "[" in x)
    assert line.endswith("no significant change") and "wilcoxon" in line

    real = cli(runs, "compare", "base.json", "worse.json", "--confidence", "0.9")
    assert real.returncode == 0, real.stderr
    line = next(x for x in real.stdout.splitlines()
                if x.startswith("exact_match") and "[" in x)
    assert line.endswith("regressed") and "90% confidence" in real.stdout
    # the printed numbers are those of the library call, at that level
    cmp = compare(ExperimentResult.from_json(runs / "base.json"),
                  ExperimentResult.from_json(runs / "worse.json"), confidence=0.9)
    d = next(x for x in cmp.significance if x.label == "exact_match")
    assert f"[{d.ci_low:+.3g}, {d.ci_high:+.3g}]" in line and d.ci_high < 0

    md = cli(runs, "compare", "base.json", "worse.json", "--markdown")
    assert "| exact_match |" in md.stdout and "regressed |" in md.stdout

    bad = cli(runs, "compare", "base.json", "worse.json", "--confidence", "95")
    assert bad.returncode == 2 and "between 0 and 1" in bad.stderr


def test_gate_with_confidence_passes_on_noise_and_fails_on_a_regression(runs: Path) -> None:
    values = {name: ExperimentResult.from_json(runs / f"{name}.json").value("exact_match")
              for name in ("base", "noise")}
    # two runs of the same rate: the lower one looks like a drop against the higher...
    low, high = sorted(values, key=lambda n: values[n] or 0.0)
    assert values[low] is not None and values[high] is not None and values[low] < values[high]
    plain = cli(runs, "gate", f"{low}.json", "--baseline", f"{high}.json")
    assert plain.returncode == 1  # ...which the plain baseline rule fails on
    sure = cli(runs, "gate", f"{low}.json", "--baseline", f"{high}.json", "--confidence", "0.95")
    assert sure.returncode == 0, sure.stdout
    assert "no significant regression at 95%" in sure.stdout

    alone = cli(runs, "gate", "worse.json", "--confidence", "0.95")
    assert alone.returncode == 2 and "--baseline" in alone.stderr

    real = cli(runs, "gate", "worse.json", "--baseline", "base.json", "--confidence", "0.95")
    assert real.returncode == 1, real.stdout
    failing = [x for x in real.stdout.splitlines() if x.startswith("FAIL")]
    assert any("exact_match vs baseline" in x and "regressed" in x for x in failing)
