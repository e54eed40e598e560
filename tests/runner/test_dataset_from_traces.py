"""Datasets from traces, end to end: a real run's spans -> a dataset of its failures (client
and CLI), deduplicated, each record linked to its span, and runnable as a dataset."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from otel_experiments.client import AsyncExperimentsClient, ExperimentsClient
from otel_experiments.runner import exact_match, run_experiment

#: Inputs 0..7, twice each (records a/b): the task is wrong on multiples of 3.
RECORDS = [{"id": f"{k}{i}", "input": {"n": i}, "expected_output": 2 * i}
           for k in "ab" for i in range(8)]


def _task(x: dict[str, int]) -> int:
    return 2 * x["n"] + (1 if x["n"] % 3 == 0 else 0)


def test_a_dataset_of_a_runs_failures(client: ExperimentsClient, provider: Any,
                                      endpoint: str, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    run = run_experiment(f"ft-{tag}", RECORDS, _task, [exact_match], config={"tag": tag},
                         client=client, tracer_provider=provider, quiet=True)
    failing = {r.record_id for r in run.records if r.metrics["exact_match"] is False}
    assert len(failing) == 6  # n = 0, 3, 6 in a and b

    ds = client.datasets.create(f"failures-{uuid.uuid4().hex[:6]}")
    done = client.datasets.records.from_spans(ds.id, experiment_id=run.experiment_id,
                                              metric="exact_match", equals=False)
    assert done.matched_spans == 6 and done.duplicates == 3 and len(done.records) == 3
    assert sorted(r.input["n"] for r in done.records) == [0, 3, 6]
    assert {r.input["n"]: r.expected_output for r in done.records} == {0: 1, 3: 7, 6: 13}
    spans = {e["span_id"]: e for e in client.experiments.events(run.experiment_id)}
    for record in done.records:
        source = record.metadata["source"]
        assert source["experiment_id"] == run.experiment_id
        span = spans[source["span_id"]]  # the link leads back to the span it came from
        assert span["trace_id"] == source["trace_id"] and span["meta"]["input"] == record.input

    # A time window that ended before the run: nothing; running again adds nothing.
    before = datetime.now(timezone.utc) - timedelta(days=1)
    assert client.datasets.records.from_spans(
        ds.id, experiment_id=run.experiment_id, start_before=before).matched_spans == 0
    again = client.datasets.records.from_spans(ds.id, experiment_id=run.experiment_id)
    assert len(again.records) == 5 and again.duplicates == 11  # 8 distinct inputs in all
    with pytest.raises(ValueError, match="metric"):
        client.datasets.records.from_spans(ds.id, experiment_id="e", equals=True)

    async def from_async() -> Any:
        async with AsyncExperimentsClient(endpoint=endpoint) as aclient:
            fresh = await aclient.datasets.create(f"async-{uuid.uuid4().hex[:6]}")
            return await aclient.datasets.records.from_spans(
                fresh.id, experiment_id=run.experiment_id, metric="exact_match", equals=True)

    passing = asyncio.run(from_async())
    assert sorted(r.input["n"] for r in passing.records) == [1, 2, 4, 5, 7]

    # The dataset runs like any other: its expected outputs are the recorded outputs, so
    # the same task matches all of them and the corrected one only the five it got right.
    replay = run_experiment(f"ft-replay-{uuid.uuid4().hex[:8]}", ds.id, _task, [exact_match],
                            client=client, tracer_provider=provider, quiet=True)
    assert len(replay.records) == 8 and all(r.metrics["exact_match"] for r in replay.records)
    fixed = run_experiment(f"ft-fixed-{uuid.uuid4().hex[:8]}", ds.id, lambda x: 2 * x["n"],
                           [exact_match], client=client, tracer_provider=provider, quiet=True)
    assert sum(bool(r.metrics["exact_match"]) for r in fixed.records) == 5

    # The CLI: a new dataset from the same failures.
    env = {**os.environ, "OTEL_EXPERIMENTS_ENDPOINT": endpoint}
    out = subprocess.run(
        [sys.executable, "-m", "otel_experiments.cli", "dataset-from-traces", "--experiment",
         run.experiment_id, "--metric", "exact_match=false", "--name", "cli-failures"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "added 3 records" in out.stdout and "6 spans matched" in out.stdout
    new_id = out.stdout.split()[1].rstrip(":")
    assert sorted(r.input["n"] for r in client.datasets.records.list(new_id)) == [0, 3, 6]
    by_metadata = subprocess.run(
        [sys.executable, "-m", "otel_experiments.cli", "dataset-from-traces", "--experiment",
         f"where:config.tag={tag}", "--metric", "exact_match=false", "--dataset", new_id],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert by_metadata.returncode == 0, by_metadata.stderr
    assert "added 0 records" in by_metadata.stdout and "6 duplicate inputs" in \
        by_metadata.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "otel_experiments.cli", "dataset-from-traces", "--name", "x"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "--experiment" in bad.stderr
