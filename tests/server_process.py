"""Helpers for tests and benchmarks: a throwaway PostgreSQL cluster and a server subprocess.

Kept out of the package: it may run ``useradd``. ``initdb`` refuses to run as root, so when
running as root the cluster is created and run as the ``postgres`` OS user (created if missing).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import httpx

PG_SEARCH_DIRS = ("/usr/local/bin", "/usr/local/pgsql/bin", *sorted(
    glob.glob("/usr/lib/postgresql/*/bin"), reverse=True))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def find_pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for directory in PG_SEARCH_DIRS:
        candidate = Path(directory) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def postgres_available() -> bool:
    return find_pg_bin("initdb") is not None and find_pg_bin("pg_ctl") is not None


class TempPostgres:
    """A PostgreSQL cluster in a temporary directory, listening on 127.0.0.1 only."""

    def __init__(self, *, durable: bool = False) -> None:
        initdb, pg_ctl = find_pg_bin("initdb"), find_pg_bin("pg_ctl")
        if initdb is None or pg_ctl is None:
            raise RuntimeError("PostgreSQL binaries (initdb, pg_ctl) not found")
        self.initdb, self.pg_ctl = initdb, pg_ctl
        self.durable = durable
        self.port = 0
        self.dir = Path(tempfile.mkdtemp(prefix="otel-exp-pg-"))
        self._as_postgres = os.geteuid() == 0

    def _run(self, *args: str) -> None:
        cmd = list(args)
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=120, cwd=self.dir)  # a directory postgres may enter
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n"
                               f"{done.stdout.decode(errors='replace')[-3000:]}")

    def start(self) -> TempPostgres:
        if self._as_postgres:
            if subprocess.run(["id", "-u", "postgres"], capture_output=True).returncode != 0:
                subprocess.run(["useradd", "--system", "--no-create-home", "postgres"],
                               check=True, capture_output=True)
            shutil.chown(self.dir, "postgres")
        data = self.dir / "data"
        self._run(self.initdb, "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                  "--no-sync")
        self.port = free_port()
        opts = [f"-p {self.port}", f"-k {self.dir}", "-c listen_addresses=127.0.0.1",
                "-c max_connections=200"]
        if not self.durable:
            opts += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        self._run(self.pg_ctl, "-D", str(data), "-l", str(self.dir / "postgres.log"),
                  "-o", " ".join(opts), "-w", "-t", "60", "start")
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._run(self.pg_ctl, "-D", str(self.dir / "data"), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> TempPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def create_database(admin_url: str, name: str | None = None) -> str:
    """Create a fresh database on the server of ``admin_url``; return its URL."""
    import psycopg
    import sqlalchemy as sa

    name = name or f"t_{uuid.uuid4().hex[:16]}"
    if not name.replace("_", "").isalnum():
        raise ValueError(f"unsafe database name {name!r}")
    url = sa.make_url(admin_url)
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')  # name checked above; DDL cannot bind it
    return url.set(database=name).render_as_string(hide_password=False)


class ServerProcess:
    """``python -m otel_experiments.cli serve`` on a free loopback port."""

    def __init__(self, database_url: str, *, api_keys: Sequence[str] = (),
                 extra_args: Sequence[str] = (), env: dict[str, str] | None = None,
                 log_dir: Path | None = None) -> None:
        self.database_url = database_url
        self.api_keys = list(api_keys)
        self.extra_args = list(extra_args)
        self.env = env
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = (log_dir or Path(tempfile.gettempdir())) / f"server-{uuid.uuid4().hex[:8]}.log"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> ServerProcess:
        self.port = free_port()
        cmd = [sys.executable, "-m", "otel_experiments.cli", "serve", "--host", "127.0.0.1",
               "--port", str(self.port), "--database-url", self.database_url,
               "--log-level", "warning", "--no-access-log", *self.extra_args]
        for key in self.api_keys:
            cmd += ["--api-key", key]
        env = dict(os.environ if self.env is None else self.env)
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.base_url}/health", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not become healthy in {timeout}s:\n{self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-5000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
