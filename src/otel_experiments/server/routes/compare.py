"""``GET /experiments/compare?a=ID&b=ID&confidence=0.95``: experiment b against a.

Registered before the experiment routes, so ``compare`` is not read as an experiment id.
"""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from .. import _openapi as doc
from ..jsonapi import ApiError, JsonApiResponse, resource
from ..store.compare import compare_experiments
from ..validation import path_id
from ._common import settings_of, store_of

router = APIRouter(tags=["experiments"], default_response_class=JsonApiResponse)


@router.get("/experiments/compare",
            responses=doc.responses({200: "ComparisonDocument"}, 400, 404),
            description="Experiment `b` against experiment `a` on their common dataset "
                        "records (a record's repetitions averaged): per metric the delta "
                        "with its confidence interval (paired bootstrap), the p-value of a "
                        "paired test (McNemar's exact test for booleans run once per record, "
                        "else Wilcoxon's signed-rank test) and the verdict: improved, "
                        "regressed or no significant change. `error_rate` (lower is "
                        "better) pairs whether each record's task failed. Deterministic. "
                        "`usage` holds each experiment's GenAI tokens (`a`, `b`: totals and "
                        "per model), and `cost` their cost when the server has a price table "
                        "(OTEL_EXPERIMENTS_PRICES).")
async def compare(
    request: Request,
    a: str = Query(..., description="the baseline experiment id"),
    b: str = Query(..., description="the candidate experiment id"),
    confidence: float = Query(0.95, gt=0, lt=1,
                              description="level of the intervals and the tests"),
) -> Response:
    a, b = path_id(a, "a"), path_id(b, "b")
    try:
        attrs = await run_in_threadpool(compare_experiments, store_of(request), a, b,
                                        confidence)
    except ImportError:
        raise ApiError(501, "comparisons need scipy: pip install "
                       "'otel-experiments[server]'") from None
    prices = settings_of(request).prices
    if prices is not None:  # no table: no cost member, rather than a made-up zero
        attrs["cost"] = {side: prices.cost(u["by_model"]).to_dict()
                         for side, u in attrs["usage"].items()}
    return JsonApiResponse({"data": resource("experiment_comparisons", f"{a}..{b}", attrs)})
