"""A FastAPI app under the official instrumentation, one experiment per request.

Run (with ``otel-experiments serve`` in another terminal)::

    python examples/web_fastapi.py
    curl -H "x-variant: a" -H "x-user: u-1" http://127.0.0.1:PORT/answer

then look at ``web-exp-a`` / ``web-exp-b`` on http://127.0.0.1:8642.

``WEB_MODE=middleware``: an HTTP middleware picks the experiment (``x-variant``) and the
user (``x-user``) with ``experiment_context``; the handler records a metric with
``observe.add_metric`` (outside any ``start_observe``). ``WEB_MODE=handler``: the
handler opens ``start_observe`` itself. Prints ``PORT <n>``. uvicorn re-raises SIGTERM
after its shutdown, which skips ``atexit`` hooks: the app flushes in its lifespan's
shutdown instead (the documented recipe).
"""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI, Request, Response
from opentelemetry import trace
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

import otel_experiments
from otel_experiments import experiment_context, observe, start_observe

handle = otel_experiments.configure()  # endpoint etc. from OTEL_EXPERIMENTS_* variables
MODE = os.environ.get("WEB_MODE", "middleware")


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    yield
    handle.shutdown()  # flush before uvicorn re-raises SIGTERM


app = FastAPI(lifespan=lifespan)
PREFIX = os.environ.get("WEB_PREFIX", "web-exp")
tracer = trace.get_tracer("web_fastapi")


def _who(request: Request) -> tuple[str, dict[str, dict[str, str]]]:
    variant = request.headers.get("x-variant", "a")
    return f"{PREFIX}-{variant}", {"user": {"id": request.headers.get("x-user", "anon")}}


if MODE == "middleware":
    @app.middleware("http")
    async def choose_experiment(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if request.url.path == "/health":  # probes are no unit of work
            return await call_next(request)
        experiment, identity = _who(request)
        async with experiment_context(experiment, identity=identity):
            return await call_next(request)


@app.get("/answer")
async def answer(request: Request) -> dict[str, str]:
    if MODE == "middleware":
        with tracer.start_as_current_span("llm-call"):
            pass
        observe.add_metric("helpful", True)
        return {"answer": "42"}
    experiment, identity = _who(request)
    with start_observe("web", "answer", experiment=experiment, identity=identity) as span:
        with tracer.start_as_current_span("llm-call"):
            pass
        span.add_metric("helpful", True)
    return {"answer": "42"}


@app.get("/health")
async def health() -> dict[str, str]:
    return {"ok": "yes"}


FastAPIInstrumentor.instrument_app(app)

if __name__ == "__main__":
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    server.run(sockets=[sock])
