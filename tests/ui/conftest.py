"""Fixtures for the browser tests: Debian's chromium driven by Playwright, real servers."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from ui_seed import API_KEY

from server_process import (
    ServerProcess,
    TempPostgres,
    create_database,
    postgres_available,
)

#: Playwright's own browser download is not used: CI installs Debian's chromium.
CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "/usr/bin/chromium",
                       "/usr/lib/chromium/chromium")
#: Without the background-networking flags Chromium keeps trying to reach Google.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "ui"


def chromium_path() -> str | None:
    explicit = os.environ.get("OTEL_EXPERIMENTS_CHROMIUM")
    for candidate in ((explicit,) if explicit else CHROMIUM_CANDIDATES):
        found = shutil.which(candidate)
        if found:
            return found
    return None


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium per UI test module, closed after it: Playwright's sync API keeps its
    event loop marked running in the main thread while it is open, so an async test
    collected after the UI tests (pytest-asyncio) could not start its own loop."""
    path = chromium_path()
    if path is None:
        pytest.skip("no chromium executable (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest, artifacts: Path) -> Iterator[Any]:
    """A fresh browser context (no cookies) at a laptop size; JS errors and dialogs are
    recorded so a test can assert that none happened."""
    context = browser.new_context(viewport={"width": 1366, "height": 800})
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    tab.dialogs = []
    tab.page_errors = []
    tab.on("dialog", lambda d: (tab.dialogs.append(d.message), d.dismiss()))
    tab.on("pageerror", lambda e: tab.page_errors.append(str(e)))
    yield tab
    context.close()


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    db = tmp_path_factory.mktemp("ui") / "ui.db"
    with ServerProcess(f"sqlite:///{db}") as server:
        yield server


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    db = tmp_path_factory.mktemp("ui-keyed") / "ui.db"
    with ServerProcess(f"sqlite:///{db}", api_keys=[API_KEY]) as server:
        yield server


@pytest.fixture
def api(ui_server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=ui_server.base_url, timeout=30.0) as client:
        yield client


@pytest.fixture(scope="module")
def postgres_ui_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The same server over PostgreSQL: $OTEL_EXPERIMENTS_TEST_POSTGRES_URL (CI) or a
    throwaway cluster; skipped only when no PostgreSQL binaries exist."""
    explicit = os.environ.get("OTEL_EXPERIMENTS_TEST_POSTGRES_URL")
    if explicit:
        with ServerProcess(create_database(explicit)) as server:
            yield server
        return
    if not postgres_available():
        pytest.skip("no PostgreSQL binaries (initdb, pg_ctl) on this machine")
    with TempPostgres() as pg, ServerProcess(create_database(pg.url())) as server:
        yield server
