"""The CLI as a user runs it (subprocesses): run -> results.json, gate (thresholds,
failures, baseline regression, Markdown, JUnit), compare, and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from server_process import ServerProcess, free_port

TASKS = '''
def base(input):
    if input["n"] == 3:
        raise ValueError("three is not supported")
    return input["n"] * 2 if input["n"] != 4 else 0

def better(input):
    return input["n"] * 2

def worse(input):
    return input["n"] * 2 if input["n"] < 2 else -1

def close_enough(output, expected_output):
    return 1.0 - min(1.0, abs(output - expected_output) / 10)
'''


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "otel_experiments.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(cwd)})


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "tasks.py").write_text(TASKS)
    with (tmp_path / "data.jsonl").open("w") as fh:
        for n in range(6):
            fh.write(json.dumps({"id": f"n{n}", "input": {"n": n}, "expected_output": 2 * n})
                     + "\n")
    return tmp_path


def _run(workdir: Path, endpoint: str, task: str, name: str, out: str) -> dict:
    done = cli(workdir, "run", f"tasks:{task}", "--dataset", "data.jsonl", "--name", name,
               "--evaluator", "exact_match", "--evaluator", "tasks:close_enough",
               "--summary-evaluator", "accuracy", "--config", "model=m1",
               "--config", "temperature=0", "--output", out, "--endpoint", endpoint)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    data = json.loads((workdir / out).read_text())
    assert data["config"] == {"model": "m1", "temperature": 0}
    return data


def test_run_gate_compare(workdir: Path, server: ServerProcess) -> None:
    url = server.base_url
    base = _run(workdir, url, "base", "cli-base", "base.json")
    assert base["summary"]["failed_count"] == 1 and len(base["records"]) == 6
    assert base["summary"]["evaluations"]["accuracy"] == 4 / 6
    cand = _run(workdir, url, "better", "cli-better", "cand.json")
    _run(workdir, url, "worse", "cli-worse", "worse.json")

    ok = cli(workdir, "gate", "cand.json", "--min", "exact_match=0.9", "--max-failures", "0",
             "--baseline", "base.json", "--tolerance", "0.02", "--junit", "ok.xml")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "PASSED" in ok.stdout and "PASS  exact_match >= 0.9" in ok.stdout
    suite = ET.parse(workdir / "ok.xml").getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "0"

    # failures and thresholds
    bad = cli(workdir, "gate", "base.json", "--min", "exact_match=0.9", "--max-failures", "0",
              "--junit", "bad.xml", "--markdown", "comment.md")
    assert bad.returncode == 1
    assert "FAIL  failures <= 0" in bad.stdout and "FAILED: 2 of 2 checks" in bad.stdout
    cases = {c.get("name"): c for c in ET.parse(workdir / "bad.xml").getroot().iter("testcase")}
    assert set(cases) == {"exact_match >= 0.9", "failures <= 0"}
    failure = cases["failures <= 0"].find("failure")
    assert failure is not None and failure.text == "n3"
    markdown = (workdir / "comment.md").read_text()
    assert markdown.startswith("### ❌ Quality gate failed: `cli-base`")
    assert "| ❌ | failures <= 0 | 1 | <= 0 | n3 |" in markdown

    # regression against a baseline, judged on the server's copy of both runs
    regressed = cli(workdir, "gate", "worse.json", "--baseline", cand["experiment_id"],
                    "--tolerance", "0.02", "--endpoint", url, "--markdown")
    assert regressed.returncode == 1
    assert "| ❌ | exact_match vs baseline |" in regressed.stdout
    assert "| ✅ | error_rate vs baseline |" in regressed.stdout
    same = cli(workdir, "gate", cand["experiment_id"], "--min", "exact_match=1",
               "--max", "latency_p95_ms=60000", "--endpoint", url)
    assert same.returncode == 0, same.stdout + same.stderr
    assert "PASS  latency_p95_ms <= 60000" in same.stdout
    slow = cli(workdir, "gate", "cand.json", "--max", "latency_p50_ms=0")
    assert slow.returncode == 1 and "FAIL  latency_p50_ms <= 0" in slow.stdout

    cmp = cli(workdir, "compare", "cand.json", "worse.json")
    assert cmp.returncode == 0, cmp.stderr
    assert "winner: cli-better" in cmp.stdout
    assert "4 of 6 common records changed outcome (4 regressions)" in cmp.stdout
    by_id = cli(workdir, "compare", base["experiment_id"], cand["experiment_id"],
                "--endpoint", url, "--markdown")
    assert by_id.returncode == 0, by_id.stderr
    assert "winner **cli-better**" in by_id.stdout
    assert "| improvement | `n3` | task no longer fails |" in by_id.stdout


def test_errors_are_one_line(workdir: Path) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    for args, needle, code in [
        (("gate", "missing.json"), "missing.json: no such file", 1),
        (("run", "tasks.nope:base", "--dataset", "data.jsonl"), "cannot import tasks.nope", 1),
        (("run", "tasks:nope", "--dataset", "data.jsonl"), "has no attribute 'nope'", 1),
        (("run", "tasks:base", "--dataset", "nope.csv"), "nope.csv: no such file", 1),
        (("run", "tasks:base", "--dataset", "data.jsonl", "--evaluator", "fuzzy"),
         "not a built-in", 2),
        (("gate", "exp-123", "--endpoint", down), "cannot reach", 1),
        (("compare", "a.json", "b.json"), "a.json: no such file", 1),
    ]:
        done = cli(workdir, *args)
        assert done.returncode == code, (args, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0], (args, done.stderr)
        assert lines[0].startswith("otel-experiments: error: ")

    (workdir / "r.json").write_text(json.dumps({"format": "otel-experiments/results@1",
                                                "experiment_id": "e", "name": "n",
                                                "status": "COMPLETED", "records": [],
                                                "summary": {"metrics": {}}}))
    unknown = cli(workdir, "gate", "r.json", "--min", "acc=0.5")
    assert unknown.returncode == 2 and "unknown metric label 'acc'" in unknown.stderr
    assert "Traceback" not in unknown.stderr


SLOW = '''
import os, time

def slow(input):
    with open(os.environ["CALLS_FILE"], "a") as fh:
        fh.write(f"{input['n']}\\n")
    time.sleep(0.15)
    return input["n"] * 2
'''


def test_ctrl_c_then_resume_stores_each_record_once(workdir: Path, server: ServerProcess
                                                    ) -> None:
    import signal
    import time

    from otel_experiments.client import ExperimentsClient

    (workdir / "slowtasks.py").write_text(SLOW)
    with (workdir / "many.jsonl").open("w") as fh:
        for n in range(30):
            fh.write(json.dumps({"id": f"m{n}", "input": {"n": n}, "expected_output": 2 * n})
                     + "\n")
    calls = workdir / "calls.txt"
    args = [sys.executable, "-m", "otel_experiments.cli", "run", "slowtasks:slow",
            "--dataset", "many.jsonl", "--name", "sigint-run", "--evaluator", "exact_match",
            "--max-concurrency", "2", "--output", "partial.json",
            "--endpoint", server.base_url]
    env = {**os.environ, "PYTHONPATH": str(workdir), "CALLS_FILE": str(calls)}
    proc = subprocess.Popen(args, cwd=workdir, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (
            not calls.exists() or len(calls.read_text().split()) < 6):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted:" in err
    partial = json.loads((workdir / "partial.json").read_text())
    assert partial["status"] == "INTERRUPTED" and 0 < len(partial["records"]) < 30

    with ExperimentsClient(endpoint=server.base_url) as client:
        exp_id = partial["experiment_id"]
        assert client.experiments.retrieve(exp_id).status == "INTERRUPTED"
        stored = {r.dataset_record_id for r in client.experiments.records(exp_id)}
        assert stored == {r["record_id"] for r in partial["records"]}

        calls.unlink()
        args[args.index("partial.json")] = "full.json"
        done = subprocess.run(args, cwd=workdir, env=env, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stderr
        assert f"resuming experiment {exp_id}" in done.stderr
        rerun = [int(n) for n in calls.read_text().split()]
        assert not {f"m{n}" for n in rerun} & stored  # finished records were not run again
        rows = list(client.experiments.records(exp_id))
        assert len(rows) == 30 and len({r.dataset_record_id for r in rows}) == 30
        assert client.experiments.retrieve(exp_id).status == "COMPLETED"
    full = json.loads((workdir / "full.json").read_text())
    assert full["experiment_id"] == exp_id and len(full["records"]) == 30
