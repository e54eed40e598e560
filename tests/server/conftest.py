"""Fixtures: a throwaway PostgreSQL cluster and real server subprocesses."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from server_process import (
    ServerProcess,
    TempPostgres,
    create_database,
    postgres_available,
)

BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """An admin URL of a PostgreSQL server: $OTEL_EXPERIMENTS_TEST_POSTGRES_URL or a
    throwaway cluster. Skips only when no PostgreSQL binaries exist at all."""
    explicit = os.environ.get("OTEL_EXPERIMENTS_TEST_POSTGRES_URL")
    if explicit:
        yield explicit
        return
    if not postgres_available():
        pytest.skip("no PostgreSQL binaries (initdb, pg_ctl) on this machine")
    pg = TempPostgres().start()
    try:
        yield pg.url()
    finally:
        pg.stop()


@pytest.fixture
def fresh_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[str], str]:
    """``make(backend)`` -> URL of a new, empty database for that backend."""

    def make(backend: str) -> str:
        if backend == "sqlite":
            return f"sqlite:///{tmp_path / f'{uuid.uuid4().hex[:8]}.db'}"
        return create_database(request.getfixturevalue("postgres_url"))

    return make


@pytest.fixture(scope="session")
def server_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("server-logs")


@pytest.fixture(scope="session")
def sqlite_server(tmp_path_factory: pytest.TempPathFactory, server_logs: Path) -> Iterator[ServerProcess]:
    db = tmp_path_factory.mktemp("sqlite") / "experiments.db"
    with ServerProcess(f"sqlite:///{db}", log_dir=server_logs) as server:
        yield server


@pytest.fixture(scope="session")
def postgres_server(postgres_url: str, server_logs: Path) -> Iterator[ServerProcess]:
    with ServerProcess(create_database(postgres_url), log_dir=server_logs) as server:
        yield server


@pytest.fixture(params=BACKENDS)
def server(request: pytest.FixtureRequest) -> ServerProcess:
    """The shared server of each backend (tests use unique ids, so they stay independent)."""
    fixture: ServerProcess = request.getfixturevalue(f"{request.param}_server")
    return fixture


@pytest.fixture
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=30.0) as c:
        yield c
