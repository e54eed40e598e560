"""A Flask app under the official instrumentation, one experiment per request.

Run (with ``otel-experiments serve`` in another terminal)::

    python examples/web_flask.py
    curl -H "x-variant: a" -H "x-user: u-1" http://127.0.0.1:PORT/answer

then look at ``web-exp-a`` / ``web-exp-b`` on http://127.0.0.1:8642.

The view picks the experiment (``x-variant``) and the user (``x-user``) with
``experiment_context`` and records a metric with ``observe.add_metric``. Prints
``PORT <n>``; SIGTERM stops the server and the exit hook of ``configure()`` flushes.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

from flask import Flask, request
from opentelemetry import trace
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from werkzeug.serving import make_server

import otel_experiments
from otel_experiments import experiment_context, observe

otel_experiments.configure()
app = Flask(__name__)
FlaskInstrumentor().instrument_app(app)
PREFIX = os.environ.get("WEB_PREFIX", "web-exp")
tracer = trace.get_tracer("web_flask")


@app.get("/answer")
def answer() -> dict[str, str]:
    variant = request.headers.get("x-variant", "a")
    user = request.headers.get("x-user", "anon")
    with experiment_context(f"{PREFIX}-{variant}", identity={"user": {"id": user}}):
        with tracer.start_as_current_span("llm-call"):
            pass
        observe.add_metric("helpful", True)
    return {"answer": "42"}


server = make_server("127.0.0.1", 0, app, threaded=True)


def _stop(*_: Any) -> None:
    threading.Thread(target=server.shutdown, daemon=True).start()


signal.signal(signal.SIGTERM, _stop)
print(f"PORT {server.server_port}", flush=True)
server.serve_forever()
