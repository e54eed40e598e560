"""`make demo`: the main job end to end on the embedded default, no account needed.

1. starts the local experiments server (``otel-experiments serve``) on a free port, with
   a fresh SQLite database under ``.otel-experiments/demo/``;
2. runs the support-triage example app under two experiments, with the processor and
   the exporter installed by one ``otel_experiments.configure(...)`` call;
3. reads the experiments' summaries back from the server, prints a comparison and
   where to look. With ``--serve`` (the default on a terminal) the server stays up
   until Ctrl-C so you can browse the API.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from support_triage import TICKETS, VARIANTS, run_experiment

import otel_experiments

API = "/api/v2/llm-obs/v1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def start_server(port: int, data_dir: Path) -> subprocess.Popen[bytes]:
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    cmd = [sys.executable, "-m", "otel_experiments.cli", "serve", "--port", str(port),
           "--database-url", f"sqlite:///{data_dir / 'experiments.db'}", "--no-access-log",
           "--log-level", "warning"]
    server = subprocess.Popen(cmd)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with code {server.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit("the server did not start within 30 s")


def fmt_ms(ns: float | None) -> str:
    return "-" if ns is None else f"{ns / 1e6:.1f} ms"


def print_comparison(base: str) -> None:
    rows: list[tuple[str, dict[str, Any]]] = []
    for experiment in VARIANTS:
        reply = httpx.get(f"{base}{API}/experiments/{experiment.id}/summary", timeout=10)
        reply.raise_for_status()
        rows.append((experiment.id, reply.json()["data"]["attributes"]))
    print(f"\n{'experiment':22} {'tickets':>7} {'accuracy':>9} {'confidence':>10} "
          f"{'errors':>7} {'p50':>9} {'p95':>9}")
    for exp_id, summary in rows:
        metrics = {m["label"]: m for m in summary["metrics"]}
        correct = metrics.get("correct", {}).get("value_counts", {})
        roots = summary["root_spans"]  # one root span per ticket; failed ones count as wrong
        print(f"{exp_id:22} {roots['span_count']:>7} "
              f"{correct.get('true', 0) / max(1, roots['span_count']):>9.0%} "
              f"{metrics.get('confidence', {}).get('mean', 0):>10.2f} "
              f"{roots['error_rate']:>7.0%} {fmt_ms(roots['latency_ns']['p50']):>9} "
              f"{fmt_ms(roots['latency_ns']['p95']):>9}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", action=argparse.BooleanOptionalAction,
                        default=sys.stdin.isatty(),
                        help="keep the server running after the demo (default on a terminal)")
    parser.add_argument("--port", type=int, default=0,
                        help="server port (default: 8642 if free, else any free port)")
    parser.add_argument("--data-dir", type=Path, default=Path(".otel-experiments/demo"))
    args = parser.parse_args()

    port = args.port or (8642 if port_is_free(8642) else free_port())
    base = f"http://127.0.0.1:{port}"
    print(f"starting the local experiments server on {base} ...")
    server = start_server(port, args.data_dir)
    try:
        # One call: creates the global SDK TracerProvider (resource from OTEL_SERVICE_NAME)
        # and adds the processor and a batching exporter pointed at the server.
        os.environ.setdefault("OTEL_SERVICE_NAME", "support-triage")
        handle = otel_experiments.configure(endpoint=base)
        for experiment, classify in VARIANTS.items():
            correct = run_experiment(experiment, classify)
            print(f"ran {experiment.id}: {correct}/{len(TICKETS)} tickets correct")
        handle.shutdown()  # flushes every span to the server
        print_comparison(base)
        print("\nwhere to look:")
        print(f"  experiments:  {base}{API}/experiments")
        for experiment in VARIANTS:
            print(f"  events:       {base}{API}/experiments/{experiment.id}/events")
            print(f"  summary:      {base}{API}/experiments/{experiment.id}/summary")
        print(f"  API docs:     {base}/docs")
        cli = Path(sys.executable).parent / "otel-experiments"
        print(f"  reopen later: {cli} serve --port {port} --database-url "
              f"sqlite:///{(args.data_dir / 'experiments.db').resolve()}")
        if not args.serve:
            print("\n(the server stops now: use the 'reopen later' command, or run the demo "
                  "with --serve, to browse the URLs above)")
        else:
            print("\nserving; press Ctrl-C to stop")
            signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
            server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":
    main()
