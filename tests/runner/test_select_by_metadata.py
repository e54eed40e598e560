"""Run metadata (config keys, git state) stored by ``run_experiment`` and used to pick
experiments: ``experiments.list(where=...)`` and the CLI's ``where:PATH=VALUE`` references."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from otel_experiments.client import AsyncExperimentsClient, ExperimentsClient
from otel_experiments.runner import exact_match, run_experiment
from otel_experiments.runner.reproducibility import git_state

RECORDS = [{"id": f"r{i}", "input": i, "expected_output": 2 * i} for i in range(4)]


def _double(x: int) -> int:
    return 2 * x


def _off_by_one(x: int) -> int:
    return 2 * x if x < 2 else 2 * x + 1


def _run(client: ExperimentsClient, provider: Any, suite: str, version: str, task: Any) -> str:
    result = run_experiment(f"{suite}-{version}", RECORDS, task, [exact_match],
                            feature_slug=suite, config={"suite": suite, "prompt_version": version,
                                                        "model": "adder"},
                            client=client, tracer_provider=provider, quiet=True)
    return result.experiment_id


def test_list_and_cli_select_experiments_by_run_metadata(
        client: ExperimentsClient, provider: Any, endpoint: str, tmp_path: Path) -> None:
    suite = f"suite-{uuid.uuid4().hex[:8]}"
    v1 = _run(client, provider, suite, "v1", _double)
    v2 = _run(client, provider, suite, "v2", _off_by_one)
    v1_again = _run(client, provider, suite, "v1", _double)

    def ids(**kwargs: Any) -> list[str]:
        return [e.id for e in client.experiments.list(**kwargs)]

    assert ids(where={"config.suite": suite}) == [v1, v2, v1_again]
    assert ids(where={"config.suite": suite, "prompt_version": "v2"}) == [v2]
    assert ids(where=[f"config.suite={suite}", "model=adder"], page_size=1) == [v1, v2, v1_again]
    assert ids(where={"config.suite": suite, "model": "other"}) == []
    git = git_state()  # the tests run inside the repository: its commit is stored
    if git is not None:
        assert ids(where={"config.suite": suite, "git.commit": git["commit"][:12],
                          "git.dirty": git["dirty"]}) == [v1, v2, v1_again]
        assert ids(where={"config.suite": suite, "git.dirty": not git["dirty"]}) == []

    async def async_ids() -> list[str]:
        async with AsyncExperimentsClient(endpoint=endpoint) as aclient:
            return [e.id async for e in aclient.experiments.list(
                where={"config.suite": suite, "prompt_version": "v1"})]

    import asyncio

    assert asyncio.run(async_ids()) == [v1, v1_again]

    # The CLI: `where:` picks the newest match, for compare (and gate, baseline).
    env = {**os.environ, "OTEL_EXPERIMENTS_ENDPOINT": endpoint}
    done = subprocess.run(
        [sys.executable, "-m", "otel_experiments.cli", "compare",
         f"where:config.suite={suite},prompt_version=v2",
         f"where:config.suite={suite},prompt_version=v1", "--markdown", "out.md"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "out.md").read_text()
    assert f"{suite}-v2" in text and f"{suite}-v1" in text and v1_again in text + done.stdout
    none = subprocess.run(
        [sys.executable, "-m", "otel_experiments.cli", "gate", f"where:config.suite={suite},"
         "model=nothing", "--min", "exact_match=0"], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=120)
    assert none.returncode == 1 and "no experiment matches" in none.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "otel_experiments.cli", "gate", "where:model", "--min",
         "exact_match=0"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "expected where:PATH=VALUE" in bad.stderr
    json.dumps(text)  # the report is plain text
