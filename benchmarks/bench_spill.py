"""Overflow capacity: how many spans/s the batch processor sets aside in the spool, lossless.

Run: ``python benchmarks/bench_spill.py [--before SRC] [--seconds 4]``

The backend hangs (accepts, never answers), so the batch worker is stuck on its first
batch and every span past the queue goes the overflow path: ``span.end()`` →
``ExperimentBatchSpanProcessor.on_end`` → spill → spool on disk. Spans of the load
benchmark's shape (``start_observe`` with an input and a metric) are made beforehand and
ended at a paced offered rate, for ``--seconds`` each, from 2,500 to 40,000 spans/s —
the load benchmark's application produces ~3,000-18,000 spans/s on this VM depending
on its load — and, first, the application's own loop (``start_observe`` as fast as it
can, "app" below): the rate the application really produces, with the whole overflow
path competing with it for the interpreter. Reported per rate: spans offered, spooled, dropped (``queue_full``: the
overflow's bounds were hit), how long the spool took to hold them all after the last
one (the spill's lag) and the process's CPU. With ``--before SRC`` the same runs use the
package of another source tree (e.g. a ``git archive`` of an earlier commit), side by
side, with ratios. Each run is its own process, on a real disk (fsync included).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

#: offered spans/s; 0: the load benchmark's application loop, as fast as it can
RATES = (0, 2_500, 5_000, 10_000, 20_000, 40_000)
POOL = 20_000  # spans made beforehand, ended again and again (each end is one span)


def _hanging_backend() -> str:
    """A socket that accepts and never answers: the batch worker waits, all overflows."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []

    def serve() -> None:
        while True:
            conn, _ = server.accept()
            held.append(conn)

    threading.Thread(target=serve, daemon=True).start()
    return f"http://127.0.0.1:{server.getsockname()[1]}"


def child(rate: int, seconds: float, spool: str) -> dict[str, Any]:
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from otel_experiments import ExperimentEventsExporter, ExperimentSpanProcessor, start_observe
    from otel_experiments.sdk.batch import ExperimentBatchSpanProcessor

    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(ExperimentSpanProcessor(default_experiment=None))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    from opentelemetry import trace

    trace.set_tracer_provider(provider)
    for i in range(POOL):
        with start_observe("load", "unit", experiment="spill-bench") as span:
            span.set_input({"i": i, "prompt": "summarize the ticket"})
            span.add_metric("score", 0.5)
    pool: list[ReadableSpan] = list(memory.get_finished_spans())
    memory.clear()
    exporter = ExperimentEventsExporter(endpoint=_hanging_backend(), timeout=600,
                                        spool_dir=spool, background_replay=False)
    processor = ExperimentBatchSpanProcessor(exporter)
    cpu0, start = time.process_time(), time.monotonic()
    offered = 0
    chunk = 50
    if rate == 0:  # the application itself, as fast as it can: spans made as it goes
        provider.add_span_processor(processor)
        while time.monotonic() - start < seconds:
            for _ in range(100):
                with start_observe("load", "unit", experiment="spill-bench") as span:
                    span.set_input({"i": offered, "prompt": "summarize the ticket"})
                    span.add_metric("score", 0.5)
                offered += 1
            memory.clear()
    while rate:
        now = time.monotonic() - start
        if now >= seconds:
            break
        due = int(now * rate)
        while offered < due:
            for _ in range(min(chunk, due - offered)):
                processor.on_end(pool[offered % len(pool)])
                offered += 1
        time.sleep(chunk / rate)
    produced_in = time.monotonic() - start
    ended = time.monotonic()
    # the worker holds its first batch (the backend never answers) and the queue is full:
    # everything else must reach the spool or be counted as dropped
    report = exporter.delivery_report()
    last, settled = (report.spooled, report.dropped), ended
    while time.monotonic() - settled < 2.0:
        time.sleep(0.05)
        report = exporter.delivery_report()
        if (report.spooled, report.dropped) != last:
            last, settled = (report.spooled, report.dropped), time.monotonic()
    return {"rate": rate, "offered": offered, "offered_s": produced_in,
            "spooled": report.spooled, "dropped": report.dropped,
            "reasons": dict(report.dropped_by_reason), "lag_s": max(0.0, settled - ended),
            "cpu_s": time.process_time() - cpu0,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run(rate: int, seconds: float, source: str | None, work: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    if source is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(Path(source) / "src"), env.get("PYTHONPATH", "")])
    spool = tempfile.mkdtemp(dir=work)
    out = subprocess.run([sys.executable, __file__, "--child", str(rate), str(seconds), spool],
                         env=env, capture_output=True, text=True, timeout=300, check=True)
    stats: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return stats


def line(stats: dict[str, Any]) -> str:
    return (f"{stats['offered'] / stats['offered_s']:>8,.0f}/s offered  "
            f"{stats['spooled']:>8,} spooled  {stats['dropped']:>7,} dropped  "
            f"lag {stats['lag_s']:4.1f}s  CPU {stats['cpu_s']:5.1f}s  "
            f"RSS {stats['peak_rss_mib']:4.0f} MiB")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(child(int(sys.argv[2]), float(sys.argv[3]), sys.argv[4])))
        os._exit(0)  # the worker hangs on the backend: no exit-time flush
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--before", metavar="SRC")
    args = parser.parse_args()
    print(f"# overflow capacity: {args.seconds:.0f}s per offered rate, {os.cpu_count()} CPUs"
          + (f"; before = {args.before}" if args.before else ""))
    with tempfile.TemporaryDirectory(prefix="bench-spill-") as tmp:
        for rate in RATES:
            before = run(rate, args.seconds, args.before, Path(tmp)) if args.before else None
            after = run(rate, args.seconds, None, Path(tmp))
            label = f"{rate:>6,}/s" if rate else f"{'app':>8}"
            if before is not None:
                print(f"  {label} before: {line(before)}")
            print(f"  {label} after:  {line(after)}")
            if before is not None:
                lost_b, lost_a = before["dropped"], after["dropped"]
                share = lambda s: s["spooled"] / max(s["spooled"] + s["dropped"], 1)  # noqa: E731
                print(f"  {'':>8} set aside {share(before):.1%} -> {share(after):.1%}; "
                      f"dropped {lost_b:,} -> {lost_a:,}; CPU {after['cpu_s'] / before['cpu_s']:.2f}x")


if __name__ == "__main__":
    main()
