"""Load: an application producing spans as fast as it can, end to end, with and without
an outage of the server.

Run: ``python benchmarks/bench_load.py [--duration 60] [--outage 20] [--quick]
[--before SRC]`` (``--quick``: 10 s runs with a 4 s outage; ``--before``: the same runs
with the application importing the package from another source tree, e.g. a
``git archive`` of an earlier commit, interleaved with ours and reported side by side
with ratios; the server is always this tree's).

Real processes on 127.0.0.1: the local server (SQLite), the fault proxy of the fault
suite in front of it (it only counts: how many span copies the server reported as
duplicates), and an application process using ``configure()`` — ``start_observe`` spans
with one input and one metric each, through ``ExperimentBatchSpanProcessor`` (what
``configure()`` installs; default settings) and ``ExperimentEventsExporter``. Two runs:

* ``steady``: the server up all along;
* ``outage``: the endpoint refuses connections for ``--outage`` seconds in the middle
  of the run; the server is stopped at its start and started again during it.

After the production phase the application goes idle (no flush, no shutdown) and the
benchmark waits until the server holds everything or stops making progress. Reported per
run: spans produced, produced/s, spans stored, delivered/s (stored / time from the first
span until the last one was stored), lost (produced - stored: must be 0), duplicates
(stored twice: must be 0; and copies the server received again and deduplicated), the
exporter's CPU share (CPU of the application outside its producing thread: the batch
worker and the HTTP threads, over the application's total), the application's peak RSS,
and the exporter's delivery report.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------- the app


def run_app(endpoint: str, experiment: str, duration: float, out: str) -> None:
    """The application process: produce for ``duration`` s, idle until told to exit."""
    import otel_experiments
    from otel_experiments import start_observe

    handle = otel_experiments.configure(endpoint=endpoint)
    produced = 0
    print("started", flush=True)
    cpu0, thread0, wall0 = time.process_time(), time.thread_time(), time.monotonic()
    end = wall0 + duration
    while True:
        for _ in range(100):
            with start_observe("load", "unit", experiment=experiment) as span:
                span.set_input({"i": produced, "prompt": "summarize the ticket"})
                span.add_metric("score", 0.5)
            produced += 1
        if time.monotonic() >= end:
            break
    wall_produce = time.monotonic() - wall0
    cpu_produce, thread_produce = time.process_time() - cpu0, time.thread_time() - thread0
    print(f"produced {produced} {wall_produce:.3f}", flush=True)
    sys.stdin.readline()  # idle: no span, no flush, until the benchmark has read back
    cpu_total, thread_total = time.process_time() - cpu0, time.thread_time() - thread0
    report: Any = None
    exporter = handle.exporter
    if exporter is not None and hasattr(exporter, "delivery_report"):
        r = exporter.delivery_report()
        report = {"delivered": r.delivered, "retried": r.retried, "spooled": r.spooled,
                  "replayed": r.replayed, "dropped": r.dropped,
                  "dropped_by_reason": dict(r.dropped_by_reason)}
    stats = {
        "produced": produced,
        "produce_s": wall_produce,
        "cpu_produce_s": cpu_produce,
        "exporter_cpu_produce_s": cpu_produce - thread_produce,
        "cpu_total_s": cpu_total,
        "exporter_cpu_total_s": cpu_total - thread_total,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "report": report,
    }
    Path(out).write_text(json.dumps(stats))
    os._exit(0)  # the numbers are taken: no exit-time flush to wait for


# ----------------------------------------------------------------------- the benchmark


def _span_count(base_url: str, experiment: str) -> int:
    import httpx

    try:
        answer = httpx.get(f"{base_url}/api/v2/llm-obs/v1/experiments/{experiment}/summary",
                           timeout=30)
    except httpx.TransportError:
        return -1
    if answer.status_code != 200:
        return 0
    count: int = answer.json()["data"]["attributes"]["span_count"]
    return count


def one_run(name: str, duration: float, outage: float, work: Path,
            source: str | None = None) -> dict[str, Any]:
    sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "faults")]
    from fault_helpers import PinnedServer
    from fault_proxy import FaultProxy

    experiment = f"load-{name}-{uuid.uuid4().hex[:8]}"
    out = work / f"{name}.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update({"OTEL_EXPERIMENTS_SPOOL_DIR": str(work / f"spool-{name}"),
                "OTEL_SERVICE_NAME": "bench-load", "PYTHONUNBUFFERED": "1"})
    if source is not None:  # the application runs another tree's package
        env["PYTHONPATH"] = os.pathsep.join([str(Path(source) / "src"), env.get("PYTHONPATH", "")])
    server = PinnedServer(f"sqlite:///{work / f'{name}.db'}", work).start()
    proxy = FaultProxy(server.port).start()
    app = subprocess.Popen(
        [sys.executable, __file__, "--app", proxy.url, experiment, str(duration), str(out)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=(work / f"{name}.err").open("wb"),
        env=env, text=True)
    try:
        assert app.stdout is not None and app.stdin is not None
        assert app.stdout.readline().strip() == "started"
        started = time.monotonic()
        outage_at: tuple[float, float] | None = None
        if outage > 0:
            time.sleep(max(0.0, (duration - outage) / 2))
            down = time.monotonic() - started
            proxy.refusing()
            server.stop()
            # the server starts again during the outage (it takes a few seconds); the
            # endpoint refuses connections for exactly ``outage`` seconds
            time.sleep(outage / 2)
            server.start()
            time.sleep(max(0.0, down + outage - (time.monotonic() - started)))
            proxy.listen()
            outage_at = (down, time.monotonic() - started)
        line = app.stdout.readline().split()
        produced = int(line[1])
        # idle app: wait until everything is stored, or nothing moved for 30 s
        stored, grew_at = 0, time.monotonic()
        while time.monotonic() - grew_at < 30:
            count = _span_count(server.base_url, experiment)
            if count > stored:
                stored, grew_at = count, time.monotonic()
            if stored >= produced:
                break
            time.sleep(0.25)
        delivered_in = grew_at - started
        app.stdin.write("exit\n")
        app.stdin.flush()
        app.wait(60)
        stats: dict[str, Any] = json.loads(out.read_text())
        stats["stored_twice"] = _stored_twice(server.base_url, experiment)
    finally:
        if app.poll() is None:
            app.kill()
            app.wait(10)
        proxy.stop()
        server.stop()
    summary = proxy.summary()
    stats.update({
        "run": name, "stored": stored, "lost": produced - stored,
        "resent_deduplicated": summary["duplicates_reported"],
        "requests": summary["requests"], "delivered_in_s": delivered_in,
        "outage_s": outage_at,
    })
    return stats


def _stored_twice(base_url: str, experiment: str) -> int:
    """Read every stored span back: how many span ids come more than once."""
    import httpx

    ids: list[str] = []
    url: str | None = (f"{base_url}/api/v2/llm-obs/v1/experiments/{experiment}"
                       "/events?page[size]=1000")
    with httpx.Client(timeout=60) as client:
        while url is not None:
            answer = client.get(url)
            if answer.status_code == 404:
                return 0
            doc = answer.json()
            ids += [item["id"] for item in doc["data"]]
            url = doc["links"]["next"]
    return len(ids) - len(set(ids))


def show(stats: dict[str, Any]) -> None:
    produced, stored = stats["produced"], stats["stored"]
    outage = stats["outage_s"]
    share = stats["exporter_cpu_total_s"] / max(stats["cpu_total_s"], 1e-9)
    share_p = stats["exporter_cpu_produce_s"] / max(stats["cpu_produce_s"], 1e-9)
    print(f"## {stats['run']}" + (f" (server down from {outage[0]:.1f}s to {outage[1]:.1f}s)"
                                  if outage else ""))
    print(f"  produced        {produced:>10,} spans in {stats['produce_s']:.1f}s "
          f"({produced / stats['produce_s']:,.0f}/s)")
    print(f"  stored          {stored:>10,} spans; the last stored {stats['delivered_in_s']:.1f}s "
          f"after the start ({stored / stats['delivered_in_s']:,.0f}/s delivered)")
    print(f"  lost            {stats['lost']:>10,}   (must be 0)")
    print(f"  stored twice    {stats['stored_twice']:>10,}   (must be 0); copies re-sent and "
          f"deduplicated by the server: {stats['resent_deduplicated']:,} "
          f"in {stats['requests']:,} requests")
    print(f"  exporter CPU    {share:>10.0%}   of the app's CPU ({share_p:.0%} while producing; "
          f"app CPU {stats['cpu_total_s']:.1f}s)")
    print(f"  peak RSS        {stats['peak_rss_mib']:>10.0f} MiB")
    print(f"  delivery report {stats['report']}")


def side_by_side(before: dict[str, Any], after: dict[str, Any]) -> None:
    """One run's figures, the other tree's beside ours, with ratios (ours / theirs)."""
    def rate(stats: dict[str, Any], key: str, seconds: str) -> float:
        return float(stats[key]) / max(float(stats[seconds]), 1e-9)

    def share(stats: dict[str, Any]) -> float:
        return float(stats["exporter_cpu_total_s"]) / max(float(stats["cpu_total_s"]), 1e-9)

    rows = [
        ("produced/s", rate(before, "produced", "produce_s"), rate(after, "produced", "produce_s"),
         ",.0f"),
        ("delivered/s", rate(before, "stored", "delivered_in_s"),
         rate(after, "stored", "delivered_in_s"), ",.0f"),
        ("lost", before["lost"], after["lost"], ","),
        ("stored twice", before["stored_twice"], after["stored_twice"], ","),
        ("exporter CPU", share(before), share(after), ".0%"),
        ("peak RSS MiB", before["peak_rss_mib"], after["peak_rss_mib"], ".0f"),
    ]
    print(f"## {after['run']}: before | after | after/before")
    for label, old, new, fmt in rows:
        ratio = f"{new / old:.2f}x" if old else ("=" if new == old else "-")
        print(f"  {label:<14} {format(old, fmt):>10} | {format(new, fmt):>10} | {ratio}")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--app":
        run_app(sys.argv[2], sys.argv[3], float(sys.argv[4]), sys.argv[5])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--outage", type=float, default=20.0)
    parser.add_argument("--quick", action="store_true", help="10 s runs, 4 s outage")
    parser.add_argument("--only", choices=("steady", "outage"))
    parser.add_argument("--before", metavar="SRC",
                        help="also run the application on the package of this source tree")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.outage = 10.0, 4.0
    print(f"# load benchmark: {args.duration:.0f}s runs, {os.cpu_count()} CPUs, "
          f"outage {args.outage:.0f}s" + (f"; before = {args.before}" if args.before else ""))
    failed = False
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        for name, outage in (("steady", 0.0), ("outage", args.outage)):
            if args.only and args.only != name:
                continue
            before = None
            if args.before:  # interleaved: the machine's load weighs on both alike
                before = one_run(f"{name}-before", args.duration, outage, Path(tmp), args.before)
                show(before)
            stats = one_run(name, args.duration, outage, Path(tmp))
            show(stats)
            if before is not None:
                side_by_side(before, stats)
            failed = failed or stats["lost"] != 0 or stats["stored_twice"] != 0
    if failed:
        print("RESULT: spans were lost or stored twice")


if __name__ == "__main__":
    main()
