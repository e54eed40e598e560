"""Fixtures of the fault scenarios: one real server per module, a fault proxy per test,
and the application subprocesses (always ended at teardown)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fault_helpers import App
from fault_proxy import FaultProxy

from server_process import ServerProcess


@pytest.fixture(scope="module")
def fault_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("fault-server")
    with ServerProcess(f"sqlite:///{root / 'experiments.db'}", log_dir=root) as server:
        yield server


@pytest.fixture
def proxy(fault_server: ServerProcess) -> Iterator[FaultProxy]:
    with FaultProxy(fault_server.port) as running:
        yield running


@pytest.fixture
def start_app(tmp_path: Path) -> Iterator[Callable[..., App]]:
    started: list[App] = []

    def start(endpoint: str, experiment: str, **kwargs: Any) -> App:
        app = App("fault_app.py", endpoint, experiment, workdir=tmp_path, **kwargs)
        started.append(app)
        return app

    yield start
    for app in started:
        app.close()
