"""API keys, the loopback-only default, and the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from server_helpers import API, events_body, span, uid

from otel_experiments.cli import build_parser
from otel_experiments.server.auth import key_matches
from otel_experiments.server.db import head_revision
from otel_experiments.server.settings import (
    api_keys_from_env,
    default_data_dir,
    default_database_url,
    is_loopback,
)
from server_process import ServerProcess

KEY_A = "key-a-0123456789"
KEY_B = "key-b-9876543210"


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    db = tmp_path_factory.mktemp("auth") / "auth.db"
    with ServerProcess(f"sqlite:///{db}", api_keys=[KEY_A, KEY_B]) as server:
        yield server


def test_keys_required_and_both_headers_accepted(auth_server: ServerProcess) -> None:
    url = f"{auth_server.base_url}{API}/experiments/{uid('exp')}/events"
    body = events_body([span(1)])
    r = httpx.post(url, json=body)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert r.json()["errors"][0]["status"] == "401"
    for headers in ({"Authorization": "Bearer wrong"}, {"DD-API-KEY": "wrong"},
                    {"Authorization": f"Basic {KEY_A}"}, {"Authorization": "Bearer"},
                    {"DD-API-KEY": KEY_A + "x"}, {"DD-API-KEY": KEY_A[:-1]}):
        assert httpx.post(url, json=body, headers=headers).status_code == 401, headers
    assert httpx.post(url, json=body, headers={"Authorization": f"Bearer {KEY_A}"}).status_code == 202
    assert httpx.post(url, json=body, headers={"authorization": f"bearer {KEY_B}"}).status_code == 202
    assert httpx.post(url, json=body, headers={"DD-API-KEY": KEY_B}).status_code == 202
    assert httpx.get(f"{auth_server.base_url}{API}/projects").status_code == 401
    assert httpx.post(f"{auth_server.base_url}/v1/traces", content=b"").status_code == 401
    # liveness and the API description stay public
    assert httpx.get(f"{auth_server.base_url}/health").status_code == 200
    assert httpx.get(f"{auth_server.base_url}/openapi.json").status_code == 200


def test_env_keys_used_when_no_flag(tmp_path: Path) -> None:
    env = {**os.environ, "OTEL_EXPERIMENTS_SERVER_API_KEYS": f"{KEY_A},{KEY_B}"}
    with ServerProcess(f"sqlite:///{tmp_path / 'e.db'}", env=env) as server:
        assert httpx.get(f"{server.base_url}{API}/projects").status_code == 401
        ok = httpx.get(f"{server.base_url}{API}/projects", headers={"DD-API-KEY": KEY_B})
        assert ok.status_code == 200


def _serve(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "otel_experiments.cli", "serve", *args],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


def test_refuses_non_loopback_without_key(tmp_path: Path) -> None:
    env = {"OTEL_EXPERIMENTS_SERVER_API_KEYS": ""}
    for host in ("0.0.0.0", "::", "192.0.2.1", "example.com"):
        result = _serve("--host", host, "--database-url", f"sqlite:///{tmp_path / 'x.db'}", env=env)
        assert result.returncode == 2, result.stderr
        assert "refusing" in result.stderr
    assert not (tmp_path / "x.db").exists()  # refused before touching storage


def test_unsupported_database_url_fails_cleanly(tmp_path: Path) -> None:
    result = _serve("--database-url", "mysql://x/y", "--port", "1")
    assert result.returncode != 0 and "unsupported database URL" in result.stderr


def test_settings_helpers() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert is_loopback("127.1.2.3") and is_loopback("[::1]")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.0.0.1") and not is_loopback("host")
    assert key_matches(b"k1", [b"k0", b"k1"]) and not key_matches(b"k2", [b"k0", b"k1"])
    assert not key_matches(b"", [b"k0"])
    assert api_keys_from_env({"OTEL_EXPERIMENTS_SERVER_API_KEYS": " a, b ,,c "}) == ("a", "b", "c")
    assert default_data_dir({"OTEL_EXPERIMENTS_DATA_DIR": "/d"}) == Path("/d")
    assert default_data_dir({"XDG_DATA_HOME": "/x"}) == Path("/x/otel-experiments")
    assert default_data_dir({}) == Path.home() / ".local/share/otel-experiments"
    for ignored in ("relative/x", "  ", "~/x"):  # XDG: a relative $XDG_DATA_HOME is ignored
        assert default_data_dir({"XDG_DATA_HOME": ignored}) \
            == Path.home() / ".local/share/otel-experiments"
    assert default_data_dir({"OTEL_EXPERIMENTS_DATA_DIR": " /d ", "XDG_DATA_HOME": "/x"}) \
        == Path("/d")
    assert default_database_url({"OTEL_EXPERIMENTS_DATA_DIR": "/d"}) == "sqlite:////d/experiments.db"
    assert default_database_url({"OTEL_EXPERIMENTS_DATABASE_URL": "postgresql+psycopg://h/db"}) \
        == "postgresql+psycopg://h/db"
    args = build_parser().parse_args(["serve"])
    assert (args.host, args.port, args.database_url, args.insecure) == ("127.0.0.1", 8642, None, False)


def test_default_data_dir_is_created_on_first_start(tmp_path: Path) -> None:
    data_dir = tmp_path / "nested" / "data"
    env = {**os.environ, "OTEL_EXPERIMENTS_DATA_DIR": str(data_dir)}
    env.pop("OTEL_EXPERIMENTS_DATABASE_URL", None)
    result = subprocess.run([sys.executable, "-m", "otel_experiments.cli", "migrate"],
                            capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    assert f"revision {head_revision()}" in result.stdout
    assert (data_dir / "experiments.db").is_file()


def test_keyless_loopback_server_rejects_foreign_host_and_non_json(
        sqlite_server: ServerProcess) -> None:
    base = sqlite_server.base_url
    port = sqlite_server.port
    body = b'{"data": {"attributes": {"name": "n"}}}'
    r = httpx.get(f"{base}{API}/projects", headers={"Host": f"attacker.example:{port}"})
    assert r.status_code == 400 and "Host" in r.json()["errors"][0]["detail"]
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", "localhost"):
        assert httpx.get(f"{base}{API}/projects", headers={"Host": host}).status_code == 200
    # browsers post text/plain and forms cross-site without a preflight: refused
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
        r = httpx.post(f"{base}{API}/projects", content=body, headers={"content-type": ctype})
        assert r.status_code == 415, ctype
    assert httpx.post(f"{base}{API}/projects", content=body).status_code == 415
    ok = httpx.post(f"{base}{API}/projects", content=body,
                    headers={"content-type": "application/vnd.api+json"})
    assert ok.status_code in (200, 201)


def test_console_script_runs_serve_help() -> None:
    script = Path(sys.executable).with_name("otel-experiments")
    if not script.exists():
        pytest.skip("console script not installed next to the interpreter")
    result = subprocess.run([str(script), "serve", "--help"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0 and "--database-url" in result.stdout
    assert "--api-key" in result.stdout and "--insecure" in result.stdout
