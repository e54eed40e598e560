"""Two services over real HTTP: the experiment follows the request as W3C Baggage.

    python examples/two_services.py            # runs both, prints the downstream span

``frontend`` opens ``start_observe(...)`` and calls ``backend`` with ``httpx``; the
standard ``tracecontext,baggage`` propagators put the trace and the experiment in the
request headers. ``backend`` (a plain ``http.server``) extracts them, and its own
``ExperimentSpanProcessor`` stamps its span, after validating the inbound values.
``python examples/two_services.py backend PORT`` runs the backend alone; it answers
with the attributes its span carried, as JSON.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

from otel_experiments import ExperimentSpanProcessor, start_observe


def setup_tracing(service: str, console: bool) -> trace.Tracer:
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(ExperimentSpanProcessor())  # the one line
    if console:
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    trace.set_tracer_provider(provider)
    return trace.get_tracer(service)


def run_backend(port: int) -> None:
    tracer = setup_tracing("backend", console=False)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            ctx = propagate.extract(dict(self.headers))
            with tracer.start_as_current_span(
                "GET /answer", context=ctx, kind=trace.SpanKind.SERVER
            ) as span:
                attrs = dict(span.attributes or {})  # type: ignore[attr-defined]
                trace_id = format(span.get_span_context().trace_id, "032x")
            body = json.dumps({"trace_id": trace_id, "attributes": attrs}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"backend listening on 127.0.0.1:{port}", flush=True)
    server.serve_forever()


def call_backend(port: int, tracer: trace.Tracer) -> dict[str, object]:
    with start_observe(
        "checkout",
        "answer-question",
        experiment={"id": "exp-456", "name": "Prompt v3"},
        identity={"organization": {"id": "org-1", "name": "Acme"}, "user": {"id": "u-9"}},
    ) as span:
        headers: dict[str, str] = {}
        propagate.inject(headers)  # traceparent + baggage
        reply = httpx.get(f"http://127.0.0.1:{port}/answer", headers=headers, timeout=5).json()
        span.set_output(reply)
        reply["frontend_trace_id"] = span.trace_id
        return dict(reply)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "backend":
        run_backend(int(sys.argv[2]))
        return
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    backend = subprocess.Popen(
        [sys.executable, __file__, "backend", str(port)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert backend.stdout is not None
        backend.stdout.readline()  # "backend listening ..."
        tracer = setup_tracing("frontend", console=False)
        for _ in range(50):
            try:
                reply = call_backend(port, tracer)
                break
            except httpx.ConnectError:
                time.sleep(0.1)
        print("backend span attributes:", json.dumps(reply["attributes"], indent=2))
        print("same trace:", reply["trace_id"] == reply["frontend_trace_id"])
    finally:
        backend.terminate()
        backend.wait(timeout=10)


if __name__ == "__main__":
    main()
