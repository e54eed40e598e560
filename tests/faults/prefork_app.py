"""A WSGI app for gunicorn ``--preload``: ``configure()`` runs once, in the master, before
the workers are forked; every request is one ``start_observe`` span with one metric.

Environment: ``PREFORK_ENDPOINT`` (where events go), ``PREFORK_EXPERIMENT``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from typing import Any

import otel_experiments
from otel_experiments import start_observe

handle = otel_experiments.configure(endpoint=os.environ["PREFORK_ENDPOINT"])
EXPERIMENT = os.environ["PREFORK_EXPERIMENT"]
MASTER_PID = os.getpid()


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    if environ.get("PATH_INFO") == "/health":  # no span
        start_response("200 OK", [("Content-Length", "0")])
        return [b""]
    with start_observe("prefork", "request", experiment=EXPERIMENT) as span:
        span.set_input({"path": environ.get("PATH_INFO", "")})
        span.add_metric("score", 1.0)
    body = json.dumps({"span_id": span.span_id, "pid": os.getpid(),
                       "master": MASTER_PID}).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
