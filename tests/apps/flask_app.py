"""A Flask app with no experiment code; run under ``opentelemetry-instrument``.

Prints ``PORT <n>`` once listening on 127.0.0.1; exits cleanly on SIGTERM or
``POST /shutdown`` (so the SDK's exit hook flushes the span processors).
"""

from __future__ import annotations

import signal
import threading
from typing import Any

from flask import Flask
from opentelemetry import trace
from werkzeug.serving import make_server

app = Flask(__name__)
tracer = trace.get_tracer("flask_app")


@app.get("/work")
def work() -> str:
    with tracer.start_as_current_span("inner-work"):
        return "ok"


server = make_server("127.0.0.1", 0, app, threaded=True)


def _stop(*_: Any) -> None:
    threading.Thread(target=server.shutdown, daemon=True).start()


@app.post("/shutdown")
def shutdown() -> str:
    _stop()
    return "bye"


signal.signal(signal.SIGTERM, _stop)
print(f"PORT {server.server_port}", flush=True)
server.serve_forever()
print("stopped", flush=True)
