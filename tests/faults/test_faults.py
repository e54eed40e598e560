"""Fault injection with real processes: the application (``fault_app.py``, using
``configure()``), the real server, and a fault proxy on 127.0.0.1 between them.

Each scenario asserts that exactly the spans and metrics the application produced are
stored (read back through the server's API), none twice, and that delivery completes
while the application is idle: no further span, no flush, no shutdown.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fault_helpers import (
    App,
    PinnedServer,
    app_env,
    assert_exactly_once,
    new_experiment,
    spooled_spans,
    wait_stored,
)
from fault_proxy import Action, FaultProxy

from server_process import ServerProcess

pytestmark = pytest.mark.timeout(120)

SPANS = 40  # 4+ bodies of 10 spans: a fault hits one body, not the whole batch
#: how long a scenario waits for delivery once the fault is over and the app is idle
DELIVERY_WAIT_S = 15.0

def _report(name: str, produced: int, got_ids: list[str], proxy: FaultProxy | None,
            app: App | None = None) -> dict[str, Any] | None:
    """Print the scenario's counts; return the app's own delivery report, when it has one.

    The server stores a body before its answer reaches the app, so the report is read
    until it has caught up with what was stored (or for a few seconds).
    """
    report = None
    if app is not None:
        deadline = time.monotonic() + 5
        report = app.report()
        while (report is not None and report["delivered"] < len(set(got_ids))
               and time.monotonic() < deadline):
            time.sleep(0.1)
            report = app.report()
    extra = proxy.summary() if proxy is not None else {}
    print(f"\nSCENARIO {name}: produced={produced} stored={len(set(got_ids))} "
          f"stored_duplicates={len(got_ids) - len(set(got_ids))} {extra} report={report}")
    return report


def _assert_report(report: dict[str, Any] | None, *, delivered: int, replayed: int | None = None,
                   ) -> None:
    """The app's delivery report agrees with what the server stored; nothing dropped."""
    assert report is not None, "the exporter has no delivery_report()"
    assert report["delivered"] == delivered and report["dropped"] == 0, report
    if replayed is not None:
        assert report["replayed"] == replayed, report


def _run_idle(start_app: Callable[..., App], endpoint: str, *, spans: int = SPANS,
              **env: str) -> App:
    """The app produces ``spans`` spans, then stays idle (it only answers ``report``)."""
    app = start_app(endpoint, new_experiment(), spans=spans, then="stdin", env=app_env(**env))
    app.wait_output(f"produced {spans}")
    return app


def test_503_burst(fault_server: ServerProcess, proxy: FaultProxy,
                   start_app: Callable[..., App]) -> None:
    proxy.plan(*[Action.reply(503)] * 3, default=Action.forward())
    app = _run_idle(start_app, proxy.url, OTEL_EXPERIMENTS_TIMEOUT="15")
    got = wait_stored(fault_server.base_url, app.experiment, SPANS, DELIVERY_WAIT_S)
    report = _report("503-burst", SPANS, got.span_ids, proxy, app)
    assert [r.answered for r in proxy.events()[:3]] == [503, 503, 503]
    assert_exactly_once(got, app.produced_ids())
    _assert_report(report, delivered=SPANS)
    assert report is not None and report["retried"] >= 3 * len(proxy.events()[0].span_ids)


def test_429_with_retry_after_is_honoured(fault_server: ServerProcess, proxy: FaultProxy,
                                          start_app: Callable[..., App]) -> None:
    proxy.plan(*[Action.reply(429, [("Retry-After", "2")])] * 2, default=Action.forward())
    app = _run_idle(start_app, proxy.url, OTEL_EXPERIMENTS_TIMEOUT="15")
    got = wait_stored(fault_server.base_url, app.experiment, SPANS, DELIVERY_WAIT_S)
    report = _report("429-retry-after", SPANS, got.span_ids, proxy, app)
    events = proxy.events()
    assert [r.answered for r in events[:2]] == [429, 429]
    # the same body comes back no sooner than the server asked
    assert events[1].at - events[0].at >= 1.9 and events[2].at - events[1].at >= 1.9
    assert events[1].span_ids == events[0].span_ids == events[2].span_ids
    assert_exactly_once(got, app.produced_ids())
    _assert_report(report, delivered=SPANS)


def test_response_lost_after_the_server_stored_the_body(
        fault_server: ServerProcess, proxy: FaultProxy, start_app: Callable[..., App]) -> None:
    proxy.plan(Action.lose(), Action.lose(), default=Action.forward())
    app = _run_idle(start_app, proxy.url, OTEL_EXPERIMENTS_TIMEOUT="15")
    got = wait_stored(fault_server.base_url, app.experiment, SPANS, DELIVERY_WAIT_S)
    report = _report("answer-lost", SPANS, got.span_ids, proxy, app)
    events = proxy.events()
    lost = [r for r in events if r.action == "lose"]
    assert len(lost) == 2
    # the server stored the first copy (its answer never reached the app) ...
    assert lost[0].accepted_spans == len(lost[0].span_ids) > 0
    # ... so the app sent it again, and the server counted the copy as a duplicate
    again = [r for r in events[1:] if set(lost[0].span_ids) <= set(r.span_ids)]
    assert again and sum(r.duplicate_spans or 0 for r in again) >= len(lost[0].span_ids)
    assert_exactly_once(got, app.produced_ids())
    _assert_report(report, delivered=SPANS)


@pytest.mark.parametrize("then", ["drop", "forward"])
def test_responses_slower_than_the_timeout(fault_server: ServerProcess, proxy: FaultProxy,
                                           start_app: Callable[..., App], then: str) -> None:
    """The first request outlives the export timeout: dropped unanswered (never stored)
    or forwarded late (stored after the client gave up); the rest is kept for later."""
    slow = Action.delay_drop(4.0) if then == "drop" else Action.delay_forward(4.0)
    proxy.plan(slow, default=Action.forward())
    app = _run_idle(start_app, proxy.url, OTEL_EXPERIMENTS_TIMEOUT="2")
    got = wait_stored(fault_server.base_url, app.experiment, SPANS, DELIVERY_WAIT_S)
    first = proxy.events()[0]
    assert first.action == slow.kind
    if then == "forward":  # the late copy reaches the server too: stored once, not twice
        assert proxy.wait_for(lambda rs: rs[0].upstream_status is not None, 10)
        copies = [r for r in proxy.events() if set(first.span_ids) <= set(r.span_ids)]
        assert len(copies) >= 2 and first.upstream_status == 202
        assert sum(r.accepted_spans or 0 for r in copies) == len(first.span_ids)
        assert sum(r.duplicate_spans or 0 for r in copies) >= len(first.span_ids)
        got = wait_stored(fault_server.base_url, app.experiment, SPANS, 1)
    report = _report(f"slow-{then}", SPANS, got.span_ids, proxy, app)
    assert_exactly_once(got, app.produced_ids())
    _assert_report(report, delivered=SPANS)
    assert report is not None and report["replayed"] > 0  # not by a later export: none came


def test_queue_overflow_under_a_slow_backend_is_spooled_not_lost(
        fault_server: ServerProcess, proxy: FaultProxy, start_app: Callable[..., App]) -> None:
    """Back-pressure: spans come faster than a stalled backend takes them and overflow
    the queue (2,048); the overflow goes to the spool (never dropped) and span.end() never
    waits for the network."""
    spans = 5000
    proxy.plan(*[Action.delay_forward(2.0)] * 4, default=Action.forward())
    # a steady 1,500 spans/s: faster than the stalled backend, well within what the spill
    # thread writes to disk (benchmarks/bench_load.py measures the as-fast-as-it-can case)
    app = start_app(proxy.url, new_experiment(), spans=spans, rate=1500, then="stdin", env=app_env(
        OTEL_EXPERIMENTS_TIMEOUT="5", OTEL_EXPERIMENTS_MAX_SPANS_PER_REQUEST="500"))
    out = app.wait_output(f"produced {spans} ")
    slowest = float(out.split("slowest ")[1].split("s")[0])
    got = wait_stored(fault_server.base_url, app.experiment, spans, DELIVERY_WAIT_S + 15)
    report = _report("queue-overflow", spans, got.span_ids, proxy, app)
    assert_exactly_once(got, app.produced_ids())
    _assert_report(report, delivered=spans)
    assert report is not None and report["spooled"] > 0  # the queue did overflow
    # requests were held 2 s each: a span.end() waiting on the network would show
    assert slowest < 1.0, slowest


def test_connection_refused_for_a_while(fault_server: ServerProcess, proxy: FaultProxy,
                                        start_app: Callable[..., App], spool_dir: Path) -> None:
    proxy.refusing()
    app = _run_idle(start_app, proxy.url, OTEL_EXPERIMENTS_TIMEOUT="5")
    deadline = time.monotonic() + 20
    while spooled_spans(spool_dir) < SPANS and time.monotonic() < deadline:
        time.sleep(0.1)
    assert spooled_spans(spool_dir) == SPANS, app.errors()
    time.sleep(1.0)
    proxy.listen()
    got = wait_stored(fault_server.base_url, app.experiment, SPANS, DELIVERY_WAIT_S)
    report = _report("refused-for-a-while", SPANS, got.span_ids, proxy, app)
    assert_exactly_once(got, app.produced_ids())
    assert spooled_spans(spool_dir) == 0
    _assert_report(report, delivered=SPANS, replayed=SPANS)


def test_server_killed_and_restarted_mid_stream(tmp_path: Path,
                                                start_app: Callable[..., App]) -> None:
    """SIGKILL the server while the app streams spans; start it again (same port, same
    database) while the stream goes on; then the app goes idle."""
    stop = tmp_path / "stop-producing"
    with PinnedServer(f"sqlite:///{tmp_path / 'restart.db'}", tmp_path) as server:
        app = start_app(server.base_url, new_experiment(), spans=10_000, rate=25.0,
                        then="stdin", args=("--until", str(stop)),
                        env=app_env(OTEL_EXPERIMENTS_TIMEOUT="3"))
        _wait_count(app, 25)
        server.kill()
        killed_at = len(app.produced_ids())
        time.sleep(1.0)
        server.start()
        restarted_at = len(app.produced_ids())
        _wait_count(app, restarted_at + 40)  # the stream goes on against the new server
        stop.touch()
        app.wait_output("produced ")
        produced = app.produced_ids()
        got = wait_stored(server.base_url, app.experiment, len(produced), DELIVERY_WAIT_S)
        report = _report("server-killed-restarted", len(produced), got.span_ids, None, app)
        assert restarted_at - killed_at >= 10, "no spans were produced during the outage"
        assert_exactly_once(got, produced)
        _assert_report(report, delivered=len(produced))


def _wait_count(app: App, count: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while len(app.produced_ids()) < count:
        assert time.monotonic() < deadline and app.proc.poll() is None, app.errors()
        time.sleep(0.05)


def test_app_sigkilled_mid_export_then_restarted(
        fault_server: ServerProcess, proxy: FaultProxy, start_app: Callable[..., App],
        spool_dir: Path) -> None:
    """The first process spools everything (503s), then is SIGKILLed while it replays (the
    server stored the body in flight, the answer never came back); the next process with
    the same spool delivers the rest without producing a single span."""
    experiment = new_experiment()
    proxy.plan(default=Action.reply(503))
    first = start_app(proxy.url, experiment, spans=SPANS, then="stdin",
                      env=app_env(OTEL_EXPERIMENTS_TIMEOUT="1"))
    first.wait_output(f"produced {SPANS}")
    deadline = time.monotonic() + 20
    while spooled_spans(spool_dir) < SPANS and time.monotonic() < deadline:
        time.sleep(0.1)
    assert spooled_spans(spool_dir) == SPANS, first.errors()
    proxy.plan(Action.hold(), default=Action.forward())
    first.send("replay")
    assert proxy.wait_for(lambda rs: any(r.action == "hold" and r.upstream_status for r in rs),
                          15), "the replay never reached the server"
    first.sigkill()
    produced = first.produced_ids()

    second = start_app(proxy.url, experiment, spans=0, then="stdin",
                       env=app_env(OTEL_EXPERIMENTS_TIMEOUT="5"))
    second.wait_output("produced 0")
    got = wait_stored(fault_server.base_url, experiment, SPANS, DELIVERY_WAIT_S)
    report = _report("app-sigkilled-restarted", SPANS, got.span_ids, proxy, second)
    assert_exactly_once(got, produced)
    assert spooled_spans(spool_dir) == 0
    # the second process replayed every spooled body, the one stored before the kill too
    _assert_report(report, delivered=SPANS, replayed=SPANS)
