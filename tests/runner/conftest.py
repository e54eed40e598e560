"""Fixtures: one real server subprocess (SQLite) for the client, runner and CLI tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from otel_experiments.client import ExperimentsClient
from server_process import ServerProcess


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    db = tmp_path_factory.mktemp("runner-db") / "experiments.db"
    with ServerProcess(f"sqlite:///{db}", log_dir=tmp_path_factory.mktemp("logs")) as proc:
        yield proc


@pytest.fixture
def endpoint(server: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> str:
    """The server's URL, also set as ``OTEL_EXPERIMENTS_ENDPOINT`` (as a user would)."""
    monkeypatch.setenv("OTEL_EXPERIMENTS_ENDPOINT", server.base_url)
    return server.base_url


@pytest.fixture
def client(endpoint: str) -> Iterator[ExperimentsClient]:
    with ExperimentsClient(endpoint=endpoint) as c:
        yield c


@pytest.fixture
def provider() -> Iterator[object]:
    """A TracerProvider of the test's own: the run's exporter never outlives the test's
    spans into another test."""
    from opentelemetry.sdk.trace import TracerProvider

    tp = TracerProvider()
    yield tp
    tp.shutdown()
