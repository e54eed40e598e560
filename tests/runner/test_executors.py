"""Tasks on other executors: a process pool and a Dask LocalCluster; the rate limit."""

from __future__ import annotations

import os
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import pytest
from tasks_for_executors import async_square, square, value_ok

from otel_experiments.client import ExperimentsClient
from otel_experiments.runner import run_experiment

RECORDS = [{"id": f"x{x}", "input": x, "expected_output": x * x} for x in range(8)]


def _check(result: Any, client: ExperimentsClient) -> None:
    assert result.status == "COMPLETED"
    errors = {r.record_id: r.error["message"] for r in result.records if r.error}
    assert errors == {"x5": "ValueError: five is forbidden"}
    assert result.value("value_ok") == 1.0
    assert {r.output["pid"] for r in result.records if r.output} != {os.getpid()}
    rows = {r.dataset_record_id: r for r in client.experiments.records(result.experiment_id)}
    assert len(rows) == 8 and rows["x5"].status == "error"
    assert rows["x3"].output["value"] == 9 and rows["x3"].metrics == {"value_ok": True}


def test_process_pool(client: ExperimentsClient, provider: Any) -> None:
    with ProcessPoolExecutor(max_workers=2) as pool:
        result = run_experiment(f"procs-{uuid.uuid4().hex[:8]}", RECORDS, square, [value_ok],
                                client=client, executor=pool, tracer_provider=provider,
                                quiet=True)
    _check(result, client)
    assert result.metadata["runner"]["executor"] == "ProcessPoolExecutor"


@pytest.mark.timeout(180)
def test_dask_local_cluster(client: ExperimentsClient, provider: Any) -> None:
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None, host="127.0.0.1") as cluster, \
            distributed.Client(cluster) as dask_client:
        executor = dask_client.get_executor()
        result = run_experiment(f"dask-{uuid.uuid4().hex[:8]}", RECORDS, square, [value_ok],
                                client=client, executor=executor, tracer_provider=provider,
                                max_concurrency=4, quiet=True)
        _check(result, client)
        # an async task is run to completion on the worker
        records = RECORDS[:3]
        again = run_experiment(f"dask-async-{uuid.uuid4().hex[:8]}", records, async_square,
                               [value_ok], client=client, executor=executor,
                               tracer_provider=provider, quiet=True)
        assert again.value("value_ok") == 1.0 and len(again.records) == 3


def test_rate_limit_spaces_record_starts(client: ExperimentsClient, provider: Any) -> None:
    starts: list[float] = []

    def task(x: int) -> int:
        starts.append(time.monotonic())
        return x

    run_experiment(f"rate-{uuid.uuid4().hex[:8]}", [{"input": i} for i in range(6)], task,
                   client=client, max_concurrency=4, rate_limit=20, tracer_provider=provider,
                   quiet=True)
    starts.sort()
    assert starts[-1] - starts[0] >= 5 / 20 * 0.9  # 6 starts, 50 ms apart
