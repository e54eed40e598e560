"""Benchmark the experiments server: ingest throughput and summary latency.

Starts the real server (``python -m otel_experiments.cli serve``) on 127.0.0.1 against a
fresh SQLite file and a fresh PostgreSQL database (a throwaway durable cluster unless
``--postgres-url`` points at a server), then measures:

* ingest throughput (spans/s, each span with one score and one boolean metric) at batch
  sizes 1, 100 and 1000 with ``--clients`` concurrent clients; every cell is bounded both
  in span count and in wall time;
* the p50/p95 latency of ``GET /experiments/{id}/summary`` on an experiment holding
  ``--summary-spans`` spans (100,000 by default; 20,000 with ``--quick``).

Bodies are built and gzip-compressed before the clock starts, as the exporter sends them.

    python benchmarks/bench_server.py [--quick] [--backends sqlite,postgres]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import httpx
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the test helpers
from server_process import (
    ServerProcess,
    TempPostgres,
    create_database,
    postgres_available,
)

API = "/api/v2/llm-obs/v1"
HEADERS = {"content-type": "application/json", "content-encoding": "gzip"}


def _span(exp: str, i: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    trace_id = f"{i // 4 + 1:032x}"
    span_id = f"{i + 1:016x}"
    span = {
        "trace_id": trace_id,
        "span_id": span_id,
        "name": "task",
        "start_ns": 1_700_000_000_000_000_000 + i * 1000,
        "duration": 1_000_000 + (i * 7919) % 50_000_000,
        "status": "error" if i % 17 == 0 else "ok",
        "meta": {"input": {"question": f"q{i}", "context": "x" * 64},
                 "output": f"answer {i}", "expected_output": f"answer {i}"},
        "tags": [f"experiment.id:{exp}", "experiment.name:bench", "experiment.feature_slug:bench",
                 f"user.id:u{i % 50}", f"organization.id:o{i % 5}", "service.name:bench"],
    }
    if i % 17 == 0:
        span["meta"]["error"] = {"type": "ValueError", "message": "boom", "stack": None}
    if i % 4:
        span["parent_id"] = f"{i - i % 4 + 1:016x}"
    metrics = [
        {"span_id": span_id, "trace_id": trace_id, "metric_type": "score", "label": "accuracy",
         "score_value": (i % 100) / 100, "timestamp_ms": 1_700_000_000_000},
        {"span_id": span_id, "trace_id": trace_id, "metric_type": "boolean", "label": "exact",
         "boolean_value": i % 3 == 0, "timestamp_ms": 1_700_000_000_000},
    ]
    return span, metrics


def _bodies(exp: str, total: int, batch: int) -> list[bytes]:
    out = []
    for lo in range(0, total, batch):
        spans, metrics = [], []
        for i in range(lo, min(lo + batch, total)):
            s, m = _span(exp, i)
            spans.append(s)
            metrics += m
        body = {"data": {"type": "experiment_events",
                         "attributes": {"spans": spans, "metrics": metrics}}}
        out.append(gzip.compress(json.dumps(body).encode(), compresslevel=1))
    return out


def _ingest(base: str, exp: str, bodies: list[bytes], clients: int,
            time_limit: float) -> tuple[int, float, list[float]]:
    """Send bodies from ``clients`` threads until done or ``time_limit``; -> (spans, s, lat)."""
    url = f"{base}{API}/experiments/{exp}/events"
    deadline = time.perf_counter() + time_limit
    latencies: list[float] = []
    accepted = 0

    def worker(chunk: list[bytes]) -> tuple[int, list[float]]:
        n, lat = 0, []
        with httpx.Client(timeout=120) as client:
            for body in chunk:
                if time.perf_counter() > deadline:
                    break
                t0 = time.perf_counter()
                r = client.post(url, content=body, headers=HEADERS)
                lat.append(time.perf_counter() - t0)
                r.raise_for_status()
                n += r.json()["data"]["attributes"]["accepted_spans"]
        return n, lat

    chunks = [bodies[i::clients] for i in range(clients)]
    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        for n, lat in pool.map(worker, chunks):
            accepted += n
            latencies += lat
    return accepted, time.perf_counter() - start, latencies


def _pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    k = (len(values) - 1) * p
    lo = int(k)
    hi = min(lo + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def _summary_latency(base: str, exp: str, expected: int, requests: int) -> list[float]:
    lat = []
    with httpx.Client(base_url=base, timeout=120) as client:
        summary = client.get(f"{API}/experiments/{exp}/summary").json()["data"]["attributes"]
        assert summary["span_count"] == expected, summary
        for _ in range(requests):
            t = time.perf_counter()
            client.get(f"{API}/experiments/{exp}/summary").raise_for_status()
            lat.append(time.perf_counter() - t)
    return lat


def bench_backend(name: str, url: str, args: argparse.Namespace, log_dir: Path) -> list[dict[str, Any]]:
    rows = []
    with ServerProcess(url, log_dir=log_dir) as server:
        for batch, total in ((1, args.spans_batch1), (100, args.spans_batch100),
                             (1000, args.spans_batch1000)):
            exp = f"bench-{batch}-{uuid.uuid4().hex[:8]}"
            bodies = _bodies(exp, total, batch)
            accepted, elapsed, lat = _ingest(server.base_url, exp, bodies, args.clients,
                                             args.time_limit)
            rows.append({"backend": name, "case": f"ingest batch={batch}", "clients": args.clients,
                         "spans": accepted, "seconds": elapsed,
                         "spans_per_s": accepted / elapsed,
                         "p50_ms": _pct(lat, 0.5) * 1e3, "p95_ms": _pct(lat, 0.95) * 1e3})
            print(f"  {name} batch={batch}: {accepted} spans in {elapsed:.1f}s "
                  f"= {accepted / elapsed:,.0f} spans/s", file=sys.stderr)
        # summary on a large experiment
        exp = f"bench-summary-{uuid.uuid4().hex[:8]}"
        t0 = time.perf_counter()
        accepted, _, _ = _ingest(server.base_url, exp, _bodies(exp, args.summary_spans, 1000),
                                 2, 3600)
        load_s = time.perf_counter() - t0
        cases = [("", _summary_latency(server.base_url, exp, accepted, args.summary_requests))]
        if url.startswith("postgresql"):
            # what autovacuum does to an insert-only table soon after a load
            engine = sa.create_engine(url)
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE spans")
                conn.exec_driver_sql("VACUUM ANALYZE metrics")
            engine.dispose()
            cases.append((", after VACUUM ANALYZE",
                          _summary_latency(server.base_url, exp, accepted, args.summary_requests)))
        for note, lat in cases:
            rows.append({"backend": name, "case": f"summary ({accepted:,} spans, "
                         f"{2 * accepted:,} metrics{note})", "clients": 1, "spans": accepted,
                         "seconds": load_s, "spans_per_s": float("nan"),
                         "p50_ms": _pct(lat, 0.5) * 1e3, "p95_ms": _pct(lat, 0.95) * 1e3})
            print(f"  {name} summary on {accepted} spans{note}: p50 {_pct(lat, .5) * 1e3:.1f} ms, "
                  f"p95 {_pct(lat, .95) * 1e3:.1f} ms (loaded in {load_s:.0f}s)", file=sys.stderr)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts (about a minute)")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--postgres-url", default=None,
                        help="admin URL of a PostgreSQL server (default: throwaway cluster)")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--time-limit", type=float, default=30.0,
                        help="seconds per ingest cell at most")
    args = parser.parse_args()
    quick = args.quick
    args.spans_batch1 = 500 if quick else 3000
    args.spans_batch100 = 5000 if quick else 30_000
    args.spans_batch1000 = 10_000 if quick else 60_000
    args.summary_spans = 20_000 if quick else 100_000
    args.summary_requests = 20 if quick else 50
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]

    rows: list[dict[str, Any]] = []
    with TemporaryDirectory(prefix="bench-server-") as tmp:
        log_dir = Path(tmp)
        if "sqlite" in backends:
            rows += bench_backend("sqlite", f"sqlite:///{log_dir / 'bench.db'}", args, log_dir)
        if "postgres" in backends:
            if args.postgres_url:
                rows += bench_backend("postgres", create_database(args.postgres_url), args, log_dir)
            elif postgres_available():
                with TempPostgres(durable=True) as pg:
                    rows += bench_backend("postgres", create_database(pg.url()), args, log_dir)
            else:
                print("postgres: skipped (no PostgreSQL binaries)", file=sys.stderr)

    print("| backend | case | clients | spans | seconds | spans/s | req p50 ms | req p95 ms |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        rate = "" if r["spans_per_s"] != r["spans_per_s"] else f"{r['spans_per_s']:,.0f}"
        print(f"| {r['backend']} | {r['case']} | {r['clients']} | {r['spans']:,} | "
              f"{r['seconds']:.1f} | {rate} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} |")
    print(f"\n{os.cpu_count()} CPUs; --quick={quick}; --clients={args.clients}; ingest cells "
          f"capped at {args.time_limit:.0f}s; summary p50/p95 over {args.summary_requests} requests")
    return 0


if __name__ == "__main__":
    sys.exit(main())
