"""A real pre-fork server (issue 13): gunicorn ``--preload`` with several workers, sync
and gthread. ``configure()`` runs in the master; each worker must deliver every span of
its requests exactly once, and a spool left by an earlier process must be replayed once,
never by the master and the workers alike."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fault_helpers import (
    HERE,
    App,
    app_env,
    assert_exactly_once,
    new_experiment,
    spooled_spans,
    wait_stored,
)
from fault_proxy import Action, FaultProxy

from apps.recorder import clean_env
from server_process import ServerProcess, free_port

pytestmark = pytest.mark.timeout(150)

SPOOLED = 30
REQUESTS = 60
WORKERS = 3


def _spool_some(proxy: FaultProxy, start_app: Callable[..., App], spool_dir: Path) -> App:
    """An earlier process that could not deliver SPOOLED spans to this endpoint."""
    proxy.plan(default=Action.reply(503))
    earlier = start_app(proxy.url, new_experiment("spooled"), spans=SPOOLED, then="stdin",
                        env=app_env(OTEL_EXPERIMENTS_TIMEOUT="1"))
    earlier.wait_output(f"produced {SPOOLED}")
    deadline = time.monotonic() + 20
    while spooled_spans(spool_dir) < SPOOLED and time.monotonic() < deadline:
        time.sleep(0.1)
    assert spooled_spans(spool_dir) == SPOOLED, earlier.errors()
    earlier.sigkill()
    proxy.plan(default=Action.forward())
    return earlier


@pytest.mark.parametrize("worker_class", ["sync", "gthread"])
def test_gunicorn_preload_workers_deliver_every_span_once(
        fault_server: ServerProcess, proxy: FaultProxy, start_app: Callable[..., App],
        spool_dir: Path, tmp_path: Path, worker_class: str) -> None:
    earlier = _spool_some(proxy, start_app, spool_dir)
    spooled_ids = earlier.produced_ids()
    sent_before = len(proxy.events())

    experiment = new_experiment("prefork")
    port = free_port()
    cmd = [sys.executable, "-m", "gunicorn", "--preload", "--workers", str(WORKERS),
           "--worker-class", worker_class, "--bind", f"127.0.0.1:{port}",
           "--graceful-timeout", "10", "--log-level", "warning"]
    if worker_class == "gthread":
        cmd += ["--threads", "2"]
    cmd.append("prefork_app:app")
    env = clean_env(OTEL_BSP_SCHEDULE_DELAY="100", PREFORK_ENDPOINT=proxy.url,
                    PREFORK_EXPERIMENT=experiment, **app_env(OTEL_EXPERIMENTS_TIMEOUT="5"))
    log = tmp_path / "gunicorn.log"
    with log.open("wb") as out:
        server = subprocess.Popen(cmd, cwd=HERE, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        answers = _requests(f"http://127.0.0.1:{port}/", server, log)
        produced = [a["span_id"] for a in answers]
        pids = {a["pid"] for a in answers}
        assert {a["master"] for a in answers} == {server.pid}  # configure() ran in the master
        assert server.pid not in pids and len(pids) >= 2, pids

        # delivered while gunicorn idles: no shutdown, no flush
        got = wait_stored(fault_server.base_url, experiment, REQUESTS, 20)
        assert_exactly_once(got, produced)
        replayed = wait_stored(fault_server.base_url, earlier.experiment, SPOOLED, 20)
        assert_exactly_once(replayed, spooled_ids)

        # graceful stop: workers and master exit promptly, nothing is sent again
        started = time.monotonic()
        server.send_signal(signal.SIGTERM)
        server.wait(30)
        stop_s = time.monotonic() - started
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(10)
    after = proxy.events()[sent_before:]
    copies = {span: 0 for span in spooled_ids}
    for record in after:
        for span in record.span_ids:
            if span in copies:
                copies[span] += 1
    print(f"\nSCENARIO gunicorn-{worker_class}: workers={len(pids)} requests={REQUESTS} "
          f"stored={len(set(got.span_ids))} spooled={SPOOLED} replayed={len(set(replayed.span_ids))} "
          f"copies_sent={sorted(set(copies.values()))} stop_s={stop_s:.1f} {proxy.summary()}")
    assert set(copies.values()) == {1}, "a spooled body was replayed more than once"
    assert sum(r.duplicate_spans or 0 for r in after) == 0
    assert server.returncode == 0, log.read_text(errors="replace")[-3000:]
    assert spooled_spans(spool_dir) == 0


def _requests(url: str, server: subprocess.Popen[bytes], log: Path) -> list[dict[str, object]]:
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(url + "health", timeout=2).raise_for_status()
            break
        except httpx.HTTPError:
            assert server.poll() is None, log.read_text(errors="replace")
            assert time.monotonic() < deadline, "gunicorn did not start"
            time.sleep(0.1)
    answers = []
    for i in range(REQUESTS):
        # a new connection per request, so the workers share them
        reply = httpx.get(f"{url}r/{i}", headers={"Connection": "close"}, timeout=10)
        reply.raise_for_status()
        answers.append(reply.json())
    return answers
