"""The application of the fault scenarios: a real process using ``configure()``.

Usage: fault_app.py ENDPOINT EXPERIMENT --spans N --ids FILE [--rate R] [--then MODE]

Produces N ``start_observe`` spans (each with one ``score`` metric) under EXPERIMENT,
``--rate`` per second (0: as fast as it can; ``--until FILE``: stop early once FILE
exists), writing each span id to FILE as soon as
the span has ended, then prints ``produced <count> in <seconds>s slowest <seconds>s`` (the slowest
span, ``span.end()`` included). Then, by MODE:

* ``idle``: no further traffic at all (no span, no flush): sleeps until killed;
* ``exit``: returns from the script (the interpreter's exit flushes);
* ``stdin``: one command per line: ``flush`` (``handle.force_flush()``, prints
  ``flushed <bool>``), ``replay`` (the exporter's own ``force_flush()``, which sends
  the spool), ``report`` (prints the delivery report when the exporter has
  one), ``exit``.

Exporter settings come from the environment (``OTEL_EXPERIMENTS_*``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
import time
from collections.abc import Mapping
from typing import Any

import otel_experiments
from otel_experiments import start_observe

logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                    format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def report_of(handle: Any) -> dict[str, Any] | None:
    """The delivery report of the handle or its exporter, as plain data (None if absent)."""
    for owner in (handle, getattr(handle, "exporter", None)):
        method = getattr(owner, "delivery_report", None)
        if callable(method):
            report = method()
            names = ([f.name for f in dataclasses.fields(report)]
                     if dataclasses.is_dataclass(report) else
                     [k for k in vars(report) if not k.startswith("_")])
            out = {}
            for name in names:
                value = getattr(report, name)
                out[name] = dict(value) if isinstance(value, Mapping) else value
            return out
    return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("endpoint")
    parser.add_argument("experiment")
    parser.add_argument("--spans", type=int, required=True)
    parser.add_argument("--ids", required=True)
    parser.add_argument("--rate", type=float, default=0.0)
    parser.add_argument("--until", default=None, help="stop producing once this file exists")
    parser.add_argument("--then", choices=("idle", "exit", "stdin"), default="idle")
    args = parser.parse_args()

    handle = otel_experiments.configure(endpoint=args.endpoint)
    print(f"configured exporter={type(handle.exporter).__name__}", flush=True)
    pause = 1.0 / args.rate if args.rate > 0 else 0.0
    produced = 0
    slowest = 0.0
    started = time.perf_counter()
    with open(args.ids, "a", encoding="ascii") as ids:
        for i in range(args.spans):
            if args.until is not None and os.path.exists(args.until):
                break
            begin = time.perf_counter()
            with start_observe("faults", "unit", experiment=args.experiment) as span:
                span.set_input({"i": i})
                span.set_output(f"out-{i}")
                span.add_metric("score", i / max(1, args.spans))
            slowest = max(slowest, time.perf_counter() - begin)  # span.end() included
            ids.write(span.span_id + "\n")
            ids.flush()
            produced += 1
            if pause:
                time.sleep(pause)
    print(f"produced {produced} in {time.perf_counter() - started:.3f}s "
          f"slowest {slowest:.3f}s", flush=True)

    if args.then == "idle":
        while True:
            time.sleep(3600)
    if args.then == "stdin":
        for line in sys.stdin:
            command = line.strip()
            if command == "flush":
                print(f"flushed {handle.force_flush(10_000)}", flush=True)
            elif command == "replay":  # the exporter's own flush: replays the spool
                exporter = handle.exporter
                ok = exporter.force_flush(10_000) if exporter is not None else None
                print(f"replayed {ok}", flush=True)
            elif command == "report":
                print("report " + json.dumps(report_of(handle), default=str), flush=True)
            elif command == "exit":
                break


if __name__ == "__main__":
    main()
