"""A batch job: nested spans, no experiment code of its own.

Usage: batch_job.py [--configure N] [--spans N] [--no-shutdown]

``--configure N`` calls ``otel_experiments.configure()`` N times (0: rely on
``opentelemetry-instrument``). Prints ``handle enabled=... exporter=...`` lines.
"""

from __future__ import annotations

import argparse
import logging

from opentelemetry import trace

logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

parser = argparse.ArgumentParser()
parser.add_argument("--configure", type=int, default=0)
parser.add_argument("--spans", type=int, default=3)
parser.add_argument("--no-shutdown", action="store_true")
args = parser.parse_args()

handle = None
if args.configure:
    import otel_experiments

    for _ in range(args.configure):
        handle = otel_experiments.configure()
        print(f"handle enabled={handle.enabled} exporter={type(handle.exporter).__name__}")

tracer = trace.get_tracer("batch_job")
with tracer.start_as_current_span("job"):
    for i in range(args.spans - 1):
        with tracer.start_as_current_span(f"item-{i}"):
            pass

if handle is not None and not args.no_shutdown:
    handle.shutdown()
print("done", flush=True)
