"""``otel-experiments demo``: the whole loop on the embedded server, no account needed.

Starts the local server (fresh SQLite under ``--data-dir``), creates a dataset of support
tickets, runs two classifier variants over it with the runner, then prints the comparison
(read back from the server) and the quality gate's verdict for the second variant against
the first.
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
from urllib.parse import quote

from ._common import CliError, command

API = "/api/v2/llm-obs/v1"
DEFAULT_PORT = 8642


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_server(port: int, data_dir: Path) -> subprocess.Popen[bytes]:
    import httpx

    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    cmd = [sys.executable, "-m", "otel_experiments.cli", "serve", "--port", str(port),
           "--database-url", f"sqlite:///{data_dir / 'experiments.db'}", "--no-access-log",
           "--log-level", "warning"]
    server = subprocess.Popen(cmd)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise CliError(f"the server exited with code {server.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.1)
    server.kill()
    raise CliError("the server did not start within 30 s")


def _loop(base: str) -> None:
    from ..client import ExperimentsClient
    from ..runner import accuracy, error_rate, run_experiment
    from ..runner.compare import compare
    from ..runner.gate import gate
    from ..runner.report import compare_text, gate_text
    from ..runner.results import ExperimentResult
    from ..runner.tracing import delivery_line
    from ._demo_app import VARIANTS, records

    os.environ.setdefault("OTEL_SERVICE_NAME", "support-triage")
    with ExperimentsClient(endpoint=base) as client:
        project = client.projects.create("support", "Support-ticket triage")
        dataset = client.datasets.create("support-tickets", project_id=project.id,
                                         records=records())
        print(f"dataset {dataset.id}: {dataset.record_count} tickets")

        def correct(output: str, expected_output: str) -> bool:
            return output == expected_output

        results = []
        for name, (task, config) in VARIANTS.items():
            result = run_experiment(name, dataset, task, [correct],
                                    [accuracy("correct"), error_rate],
                                    feature_slug="support-triage", config=config,
                                    project_id=project.id, client=client, resume=False,
                                    max_concurrency=4, quiet=True, progress=False)
            n_ok = sum(1 for r in result.records if r.metrics.get("correct") is True)
            print(f"ran {name}: {n_ok}/{len(result.records)} tickets correct, "
                  f"{result.summary['failed_count']} failed "
                  f"(experiment {result.experiment_id}; "
                  f"{delivery_line(result.delivery or {})})")
            results.append(result)
        # read both back from the server: what a teammate would see
        a, b = (ExperimentResult.from_server(client, r.experiment_id) for r in results)
    print("\n" + compare_text(compare(a, b), max_changes=10))
    verdict = gate(b, minimums={"correct": 0.8}, max_failures=0, baseline=a)
    print("\n" + gate_text(verdict))
    print("\nwhere to look:")
    print(f"  web UI:       {base}/ui/")
    print(f"  comparison:   {base}/ui/compare?id={quote(a.experiment_id, safe='')}"
          f"&id={quote(b.experiment_id, safe='')}")
    print(f"  experiments:  {base}{API}/experiments")
    for r in results:
        print(f"  records:      {base}{API}/experiments/{r.experiment_id}/records")
    print(f"  API docs:     {base}/docs")


def _demo(args: argparse.Namespace) -> int:
    port = args.port or (DEFAULT_PORT if _port_is_free(DEFAULT_PORT) else _free_port())
    base = f"http://127.0.0.1:{port}"
    print(f"starting the local experiments server on {base} ...")
    server = _start_server(port, args.data_dir)
    try:
        _loop(base)
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
    return 0


def add_parsers(sub: Any) -> None:
    demo = command(sub, "demo", "the whole loop on the embedded server, in under a minute", [
        "otel-experiments demo",
        "otel-experiments demo --no-serve --data-dir /tmp/demo",
    ], """
        Starts the local server, creates a dataset, runs two variants with the runner,
        prints the comparison and the quality gate's verdict. On a terminal the server
        keeps running until Ctrl-C so you can browse the URLs it prints.""")
    demo.add_argument("--serve", action=argparse.BooleanOptionalAction,
                      default=sys.stdin.isatty(),
                      help="keep the server running after the demo (default on a terminal)")
    demo.add_argument("--port", type=int, default=0,
                      help=f"server port (default: {DEFAULT_PORT} if free, else any free port)")
    demo.add_argument("--data-dir", type=Path, default=Path(".otel-experiments/demo"),
                      help="where the demo's SQLite database goes (emptied first)")
    demo.set_defaults(func=_demo)


__all__ = ["add_parsers"]
