"""Routes ddtrace's experiment queries on our list path to the route that answers them.

ddtrace fetches and lists experiments with ``GET /api/v2/llm-obs/v1/experiments`` -- our own
list endpoint's path -- but with its own parameters (``filter[id]``, ``page[limit]``) and
reads its own answer shape (``meta.after``, ``run_count``, the logical name). A request
carrying one of ddtrace's parameters is passed on as the same query on
``/api/unstable/llm-obs/v1/experiments`` (:func:`.routes.list_experiments`); every other
request, our clients' included, is untouched.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from .routes import UNSTABLE, V2

_OUR_LIST = f"{V2}/experiments"
_DDTRACE_LIST = f"{UNSTABLE}/experiments"
#: Parameters only ddtrace sends to the list (ours are page[size], filter[status], ...).
DDTRACE_PARAMETERS = frozenset({"filter[id]", "page[limit]", "filter[experiment]",
                                "filter[metadata]", "filter[parent_experiment_id]",
                                "filter[is_deleted]"})


class DdtraceQueryDispatch:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] == "http" and scope["method"] == "GET"
                and scope["path"].rstrip("/") == _OUR_LIST):
            query = scope.get("query_string", b"").decode("latin-1")
            if any(key in DDTRACE_PARAMETERS for key, _ in parse_qsl(query)):
                scope = {**scope, "path": _DDTRACE_LIST, "raw_path": _DDTRACE_LIST.encode()}
        await self.app(scope, receive, send)
