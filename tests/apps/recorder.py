"""A tiny recording HTTP server standing in for the experiment events API."""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

APPS = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
OPENTELEMETRY_INSTRUMENT = BIN / "opentelemetry-instrument"
EVENTS_PATH = re.compile(r"^/api/v2/llm-obs/v1/experiments/(?P<exp>[^/?]+)/events$")
SUBPROCESS_TIMEOUT_S = 30


@dataclass
class Received:
    path: str
    experiment_id: str | None
    headers: dict[str, str]
    body: Any

    @property
    def spans(self) -> list[dict[str, Any]]:
        return list(self.body["data"]["attributes"]["spans"])


class Recorder:
    """Records every POST; answers 202 on the events path, 404 elsewhere."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self._lock = threading.Lock()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if self.headers.get("Content-Encoding") == "gzip":
                    raw = gzip.decompress(raw)
                match = EVENTS_PATH.match(self.path)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                with recorder._lock:
                    recorder.requests.append(
                        Received(
                            self.path,
                            match.group("exp") if match else None,
                            {k.lower(): v for k, v in self.headers.items()},
                            body,
                        )
                    )
                self.send_response(202 if match else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> Recorder:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)

    def spans(self) -> list[dict[str, Any]]:
        with self._lock:
            return [s for r in self.requests if r.body is not None for s in r.spans]

    def wait_for_spans(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            spans = self.spans()
            if len(spans) >= count:
                return spans
            time.sleep(0.05)
        return self.spans()


@contextmanager
def recording() -> Iterator[Recorder]:
    rec = Recorder().start()
    try:
        yield rec
    finally:
        rec.stop()


def clean_env(**overrides: str) -> dict[str, str]:
    """The parent's environment without any OTEL_* variable, plus ``overrides``.

    Metrics and logs exporters are off (``opentelemetry-distro`` defaults them to OTLP
    and no collector runs here); the batch span processor exports quickly.
    """
    # OTEL_EXPERIMENTS_SPOOL_DIR stays: tests/conftest.py points it at a temp directory
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("OTEL_") or k == "OTEL_EXPERIMENTS_SPOOL_DIR"
    }
    env.pop("PYTHONPATH", None)
    env.update(
        {
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_LOGS_EXPORTER": "none",
            "OTEL_BSP_SCHEDULE_DELAY": "50",
            "OTEL_SERVICE_NAME": "config-tests",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(overrides)
    return env


def run_app(
    script: str, *args: str, env: Mapping[str, str], instrument: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run ``tests/apps/<script>`` to completion (with ``opentelemetry-instrument``)."""
    cmd = [str(APPS / script), *args]
    cmd = [str(OPENTELEMETRY_INSTRUMENT), sys.executable, *cmd] if instrument else [
        sys.executable, *cmd
    ]
    return subprocess.run(
        cmd,
        env=dict(env),
        cwd=APPS,
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT_S,
        check=False,
    )


def tags_of(span: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for tag in span.get("tags", []):
        key, _, value = tag.partition(":")
        out[key] = value
    return out
