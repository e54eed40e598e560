"""The web UI: server-rendered pages over the server's :class:`~..store.Store`.

Mounted as a sub-application at ``/ui`` (``/`` redirects there), so its HTML errors,
login redirects and headers stay apart from the JSON:API. The API-key middleware lets
``/ui/`` through; every page here checks the session cookie itself (:mod:`.session`).
"""

from __future__ import annotations

import functools
import logging
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2
from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import HTMLResponse, RedirectResponse, Response

from ...stats import PairedDelta
from ..costs import add_cost
from ..jsonapi import ApiError
from ..settings import ServerSettings
from ..store import EXPERIMENT_STATUSES, Store
from ..store.base import decode_cursor
from ..store.compare import compare_experiments
from ..store.outcome_rows import OutcomeRow, outcome_rows
from ..store.records import RecordFilters, experiment_records
from ..where import parse_where
from . import queries, session, views
from .cache import ResultCache
from .changes import changed_records
from .format import FILTERS

logger = logging.getLogger("otel_experiments.server.ui")

PREFIX = "/ui"
HERE = Path(__file__).parent
#: Page sizes of the two long tables.
EXPERIMENTS_PER_PAGE = 50
RECORDS_PER_PAGE = 50
#: A trace page draws at most this many spans (a runaway trace must not stall the page).
MAX_TRACE_SPANS = 2000
#: Seconds between refreshes of a page that shows a running experiment.
REFRESH_SECONDS = 5
#: Statuses during which events may still arrive, so the page refreshes itself.
LIVE_STATUSES = frozenset({"RUNNING", "PENDING", "EVALUATING"})
MAX_COMPARE = 6
#: Changed records listed per compared experiment (regressions come first).
MAX_CHANGES_SHOWN = 200
#: Seconds a compare page waits for its changed records before rendering without them
#: (they are finished in the background and the page reloads itself to show them).
CHANGES_WAIT = 0.1
#: Seconds between reloads of a compare page whose results are still being worked out.
PENDING_REFRESH_SECONDS = 1
#: Experiments whose lean records are kept for comparisons (a 25,000-record one: ~20 MB).
ROWS_KEPT = 4
MAX_FORM_BYTES = 8192
#: Level of the compare page's intervals and paired tests.
COMPARE_CONFIDENCE = 0.95

#: No inline script or style may run: all of it comes from /ui/static. A stored value that
#: somehow reached the markup unescaped still could not execute.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}

templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=True,  # every template, whatever its name: all user content is escaped
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
templates.filters.update(FILTERS)


class LoginRequired(Exception):
    """Raised by :func:`require_session` on a request without a valid session cookie."""


def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    settings: ServerSettings = request.app.state.settings
    logged_in = bool(settings.api_keys) and session.valid(
        request.cookies.get(session.COOKIE_NAME), settings.api_keys)
    html = templates.get_template(name).render(
        base=request.scope.get("root_path", PREFIX), logged_in=logged_in,
        **{"refresh": None, "refresh_reason": None, **context})
    return HTMLResponse(html, status, headers=SECURITY_HEADERS)


def require_session(request: Request) -> None:
    settings: ServerSettings = request.app.state.settings
    if settings.api_keys and not session.valid(
            request.cookies.get(session.COOKIE_NAME), settings.api_keys):
        raise LoginRequired


def create_ui(store: Store, settings: ServerSettings) -> FastAPI:
    ui = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    ui.state.store = store
    ui.state.settings = settings
    cache = ResultCache(store)
    # Each experiment's lean records (``outcome_rows``), read once for both the changed
    # records and the paired tests of a comparison: large, so only a few are kept.
    rows_cache = ResultCache(store, size=ROWS_KEPT)

    def summary_of(row: dict[str, Any], keys: dict[str, Any]) -> dict[str, Any]:
        exp = row["id"]

        def compute() -> dict[str, Any]:
            summary = add_cost(store.summary(exp), settings.prices)
            return {"summary": summary, "metrics": views.metric_rows(store, exp, summary),
                    "latency": views.latency_chart(store, exp,
                                                   summary.get("root_spans") or summary)}

        return cache.get("summary", [row], compute, keys)

    def stats_of(exp: str) -> dict[str, Any]:
        return queries.experiment_stats(store, [exp])[exp]
    static = {p.name: p.read_bytes() for p in (HERE / "static").iterdir()
              if p.suffix in STATIC_TYPES}

    @ui.exception_handler(LoginRequired)
    async def _login_required(request: Request, _exc: LoginRequired) -> Response:
        base = request.scope.get("root_path", PREFIX)
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"{base}/login?next={urllib.parse.quote(target, safe='')}", 303)

    @ui.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return render(request, "error.html", exc.status_code, code=exc.status_code,
                      message=str(exc.detail))

    @ui.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        # The store's own refusals (an unknown experiment, a malformed page cursor).
        return render(request, "error.html", exc.status, code=exc.status, message=exc.detail)

    @ui.exception_handler(RequestValidationError)
    async def _bad_query(request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'request'}: "
                             f"{e.get('msg', 'invalid')}" for e in exc.errors())
        return render(request, "error.html", 400, code=400, message=problems or "bad request")

    @ui.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        logger.exception("UI page failed", exc_info=exc)
        return render(request, "error.html", 500, code=500,
                      message="internal error; see the server log")

    @ui.get("/static/{name}")
    def static_file(name: str) -> Response:
        body = static.get(name)
        if body is None:
            raise StarletteHTTPException(404, "no such file")
        return Response(body, media_type=STATIC_TYPES[Path(name).suffix],
                        headers={"Cache-Control": "public, max-age=300",
                                 "X-Content-Type-Options": "nosniff"})

    @ui.get("/login")
    def login_form(request: Request, next: str | None = None) -> Response:
        if not settings.api_keys:
            return RedirectResponse(f"{request.scope.get('root_path', PREFIX)}/", 303)
        return render(request, "login.html", next=next or "", error=None)

    @ui.post("/login")
    async def login(request: Request) -> Response:
        base = request.scope.get("root_path", PREFIX)
        if not session.same_origin(request):
            raise StarletteHTTPException(403, "cross-site form post refused")
        form = await _form(request)
        target = session.safe_next(form.get("next"), base)
        cookie = session.login(form.get("api_key", ""), settings.api_keys)
        if cookie is None:
            return render(request, "login.html", 401, next=form.get("next", ""),
                          error="That API key is not accepted by this server.")
        response = RedirectResponse(target, 303)
        response.set_cookie(session.COOKIE_NAME, cookie, max_age=session.SESSION_SECONDS,
                            path=base, httponly=True, samesite="strict",
                            secure=request.url.scheme == "https")
        return response

    @ui.post("/logout")
    def logout(request: Request) -> Response:
        base = request.scope.get("root_path", PREFIX)
        if not session.same_origin(request):
            raise StarletteHTTPException(403, "cross-site form post refused")
        response = RedirectResponse(f"{base}/login", 303)
        response.delete_cookie(session.COOKIE_NAME, path=base, httponly=True, samesite="strict")
        return response

    pages = [Depends(require_session)]

    @ui.get("/", dependencies=pages)
    def experiment_list(
        request: Request, project: str = "", feature: str = "", status: str = "",
        q: str = Query("", max_length=200), sort: str = "created", order: str = "desc",
        page: int = Query(1, ge=1, le=100_000), where: str = Query("", max_length=2000),
    ) -> Response:
        status = status.upper() if status.upper() in EXPERIMENT_STATUSES else ""
        sort = sort if sort in queries.SORTS else "created"
        conditions = tuple(parse_where([c.strip() for c in where.split(",") if c.strip()]))
        filters = queries.ExperimentFilters(project or None, feature or None, status or None,
                                            q.strip() or None, conditions)
        rows, total = queries.list_experiments(
            store, filters, sort, order != "asc", EXPERIMENTS_PER_PAGE,
            (page - 1) * EXPERIMENTS_PER_PAGE)
        keys: dict[str, Any] = {}
        stats = {r["id"]: cache.get("stats", [r], functools.partial(stats_of, r["id"]), keys)
                 for r in rows}
        live = any(r["status"] in LIVE_STATUSES for r in rows)
        return render(request, "list.html", rows=rows, stats=stats, total=total, page=page,
                      pages=max(1, -(-total // EXPERIMENTS_PER_PAGE)),
                      choices=queries.filter_choices(store), statuses=sorted(EXPERIMENT_STATUSES),
                      f={"project": project, "feature": feature, "status": status, "q": q, "where": where,
                         "sort": sort, "order": "asc" if order == "asc" else "desc"},
                      sorts=list(queries.SORTS), refresh=REFRESH_SECONDS if live else None)

    @ui.get("/experiment", dependencies=pages)
    def experiment_detail(
        request: Request, id: str = Query(..., min_length=1, max_length=256),
        status: str = "", user: str = "", org: str = "", record: str = "",
        after: str = "",
    ) -> Response:
        row = store.get_experiment(id)
        if row is None:
            raise StarletteHTTPException(404, f"experiment {id!r} not found")
        cached = summary_of(row, {})
        filters = RecordFilters(status=status if status in ("ok", "error") else None,
                                user_id=user or None, organization_id=org or None,
                                dataset_record_id=record or None)
        page = experiment_records(store, id, filters=filters, size=RECORDS_PER_PAGE,
                                  cursor=decode_cursor(after or None))
        return render(
            request, "detail.html", exp=views.experiment_view(row),
            facts=views.run_facts(views.experiment_view(row)["metadata"]),
            evaluations=views.summary_evaluations(views.experiment_view(row)["metadata"]),
            names=queries.names_of(store, row["project_id"], row["dataset_id"]),
            summary=cached["summary"], metrics=cached["metrics"], latency=cached["latency"],
            records=[views.record_view(add_cost(r, settings.prices)) for r in page.rows],
            next_cursor=page.next_cursor,
            after=after, rf={"status": filters.status or "", "user": user, "org": org,
                             "record": record},
            refresh=REFRESH_SECONDS if row["status"] in LIVE_STATUSES else None)

    @ui.get("/trace", dependencies=pages)
    def trace(
        request: Request, experiment: str = Query(..., min_length=1, max_length=256),
        trace: str = Query(..., min_length=1, max_length=256), span: str = "",
    ) -> Response:
        row = store.get_experiment(experiment)
        if row is None:
            raise StarletteHTTPException(404, f"experiment {experiment!r} not found")
        spans = queries.trace_spans(store, experiment, trace, MAX_TRACE_SPANS + 1)
        if not spans:
            raise StarletteHTTPException(404, f"trace {trace!r} has no spans in this experiment")
        truncated = len(spans) > MAX_TRACE_SPANS
        tree = views.span_tree(spans[:MAX_TRACE_SPANS])
        return render(request, "trace.html", exp=row, trace_id=trace, tree=tree,
                      truncated=truncated, selected=span,
                      refresh=REFRESH_SECONDS if row["status"] in LIVE_STATUSES else None)

    @ui.get("/compare", dependencies=pages)
    def compare(request: Request, id: list[str] = Query([]),  # noqa: B008
                lower: list[str] = Query([])) -> Response:  # noqa: B008
        ids = list(dict.fromkeys(i for i in id if i))[:MAX_COMPARE]
        if len(ids) < 2:
            raise StarletteHTTPException(400, "pick at least two experiments to compare")
        rows = []
        for exp_id in ids:
            row = store.get_experiment(exp_id)
            if row is None:
                raise StarletteHTTPException(404, f"experiment {exp_id!r} not found")
            rows.append(row)
        keys: dict[str, Any] = {}
        docs = [summary_of(r, keys)["summary"] for r in rows]
        table = views.comparison([views.experiment_view(r) for r in rows], docs,
                                 frozenset(lower))
        by_id = {r["id"]: r for r in rows}

        def rows_of(exp_id: str) -> list[OutcomeRow]:
            return rows_cache.get("rows", [by_id[exp_id]],
                                  functools.partial(outcome_rows, store, exp_id))

        changes = [cache.get_soon("changes", [rows[0], other],
                                  functools.partial(changed_records, store, rows[0], other,
                                                    MAX_CHANGES_SHOWN, rows_of),
                                  CHANGES_WAIT, keys)
                   for other in rows[1:]]
        ticked = tuple(sorted(set(lower)))
        significance = [cache.get_soon(
            "significance:" + ",".join(ticked), [rows[0], other],
            functools.partial(_significance, store, rows[0]["id"], other["id"], ticked, rows_of),
            CHANGES_WAIT, keys) for other in rows[1:]]
        pending = any(c is None for c in [*changes, *significance])
        live = any(r["status"] in LIVE_STATUSES for r in rows)
        # While results are worked out the page reloads soon, to show them once ready.
        refresh = PENDING_REFRESH_SECONDS if pending else REFRESH_SECONDS if live else None
        return render(request, "compare.html", exps=rows, table=table, changes=changes,
                      significance=significance, confidence=COMPARE_CONFIDENCE, lower=lower,
                      refresh=refresh,
                      refresh_reason="while records are compared" if pending else None)

    return ui


def _significance(store: Store, a: str, b: str, lower: tuple[str, ...],
                  rows: Callable[[str], list[OutcomeRow]]) -> list[dict[str, Any]]:
    """The compare endpoint's per-metric verdicts for the page ([] without scipy)."""
    try:
        found = compare_experiments(store, a, b, COMPARE_CONFIDENCE, lower, rows=rows)
    except ImportError:
        return []
    for m in found["metrics"]:
        m["interval"] = PairedDelta.from_dict(m).interval_text()
    metrics: list[dict[str, Any]] = found["metrics"]
    return metrics


async def _form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (small; first value of each field)."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise StarletteHTTPException(413, "form too large")
    fields = urllib.parse.parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {k: v[0] for k, v in fields.items()}


def install(app: FastAPI) -> None:
    """Mount the UI at ``/ui`` of ``app`` (after its store and settings are set) and make
    ``/`` lead there."""
    app.mount(PREFIX, create_ui(app.state.store, app.state.settings))

    async def root() -> Response:
        return RedirectResponse(f"{PREFIX}/", 307)

    app.add_api_route("/", root, include_in_schema=False)
