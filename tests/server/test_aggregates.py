"""The summary's aggregates kept at ingest (``store.aggregates``), SQLite and PostgreSQL:
they match what the stored rows say (exact counts, sums, min / max; percentiles within the
sketch's 1 %), duplicates add nothing, concurrent writers lose nothing, and migration 0009
backfills them from existing rows."""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from server_helpers import events_body, metric, span
from test_ingest_store import _downgrade

from otel_experiments.server import ingest, sketch
from otel_experiments.server.db import create_engine, migrate
from otel_experiments.server.store import Store

BACKENDS = ["sqlite", "postgres"]


def _exact(values: list[float], p: float) -> float:
    values = sorted(values)
    k = (len(values) - 1) * p
    lo = int(k)
    hi = min(lo + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def _approx(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _approx(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_approx(v) for v in value]
    return pytest.approx(value, rel=1e-12) if isinstance(value, float) else value


def _body(ids: range, rng: random.Random) -> tuple[Any, Any]:
    spans = [span(i, trace=i // 3 + 1, parent=None if i % 3 == 0 else (i - i % 3 or 999),
                  duration=int(rng.lognormvariate(15, 2)), status="error" if i % 7 == 0 else "ok")
             for i in ids]
    metrics = [metric(i, "score", rng.uniform(-5, 100)) for i in ids]
    metrics += [metric(i, "pass", i % 4 == 0) for i in ids]
    metrics += [metric(i, "grade", "ABC"[i % 3]) for i in ids]
    return ingest.parse_events(events_body(spans, metrics), 10_000)


def test_sketch_percentiles_within_one_percent() -> None:
    rng = random.Random(7)
    for values in ([rng.lognormvariate(10, 3) for _ in range(5000)],
                   [rng.uniform(-100, 100) for _ in range(5000)],
                   [0.0] * 10 + [1e-320, 5.0, 1e300]):
        buckets = sorted(sketch.count_buckets(values).items())
        got = sketch.percentiles(buckets, min(values), max(values))
        for p in sketch.PERCENTILES:
            exact = _exact(values, p)
            assert got[f"p{round(p * 100)}"] == pytest.approx(exact, rel=0.01, abs=1e-300)


def test_count_buckets_is_bucket_counted() -> None:
    """The C-level passes (positive values) and ``bucket`` (zeros, negatives) together
    count exactly what ``bucket`` alone counts, for ints and floats."""
    rng = random.Random(5)
    for values in ([rng.uniform(-1, 1) for _ in range(500)] + [0.0, -0.0, 0, 7, 1e-320],
                   [rng.randrange(0, 10**9) for _ in range(500)],
                   [(i % 100) / 100 for i in range(500)], [0.0, 0.0], [3.5]):
        assert sketch.count_buckets(values) == dict(Counter(map(sketch.bucket, values)))
    into = {sketch.bucket(2.0): 5}
    assert sketch.count_buckets([2.0, 0.0], into) == {sketch.bucket(2.0): 6, sketch.bucket(0.0): 1}


@pytest.mark.parametrize("backend", BACKENDS)
def test_aggregates_match_the_rows_and_survive_a_rebuild(
        backend: str, fresh_database_url: Callable[[str], str]) -> None:
    engine = create_engine(fresh_database_url(backend))
    migrate(engine)
    store = Store(engine)
    rng = random.Random(3)
    exp = "exp-agg"
    store.ingest(exp, *_body(range(1, 301), rng))
    resent = _body(range(250, 401), rng)  # 51 duplicates, stored values win
    result = store.ingest(exp, *resent)
    assert (result.accepted_spans, result.duplicate_spans) == (100, 51)
    summary = store.summary(exp)

    s = sa.table("spans", sa.column("experiment_id"), sa.column("duration"),
                 sa.column("status"), sa.column("is_root"))
    m = sa.table("metrics", sa.column("experiment_id"), sa.column("label"),
                 sa.column("score_value"), sa.column("boolean_value"))
    with engine.connect() as conn:
        rows = conn.execute(sa.select(s.c.duration, s.c.status, s.c.is_root)
                            .where(s.c.experiment_id == exp)).all()
        scores = [v for (v,) in conn.execute(sa.select(m.c.score_value).where(
            m.c.experiment_id == exp, m.c.label == "score"))]
        passes = [v for (v,) in conn.execute(sa.select(m.c.boolean_value).where(
            m.c.experiment_id == exp, m.c.label == "pass"))]
    for stats, chosen in ((summary, rows), (summary["root_spans"], [r for r in rows if r[2]])):
        durations = [r[0] for r in chosen]
        assert stats["span_count"] == len(chosen) and len(chosen) > 0
        assert stats["error_count"] == sum(r[1] == "error" for r in chosen)
        lat = stats["latency_ns"]
        assert (lat["min"], lat["max"]) == (min(durations), max(durations))
        assert lat["mean"] == pytest.approx(sum(durations) / len(durations))
        for p in (0.5, 0.95):
            assert lat[f"p{round(p * 100)}"] == pytest.approx(_exact(durations, p), rel=0.01)
    assert summary["span_count"] == 400
    by_label = {x["label"]: x for x in summary["metrics"]}
    score = by_label["score"]
    assert score["count"] == len(scores) == 400
    assert (score["min"], score["max"]) == (min(scores), max(scores))
    assert score["mean"] == pytest.approx(sum(scores) / len(scores))
    assert score["p50"] == pytest.approx(_exact(scores, 0.5), rel=0.01)
    assert score["p95"] == pytest.approx(_exact(scores, 0.95), rel=0.01)
    assert by_label["pass"]["value_counts"] == {"false": passes.count(False),
                                                "true": passes.count(True)}
    assert by_label["grade"]["value_counts"] == {"A": 133, "B": 134, "C": 133}

    # migration 0009 rebuilds the same aggregates from the stored rows
    _downgrade(engine, backend, "0008")
    migrate(engine)
    assert Store(engine).summary(exp) == _approx(summary)  # (float sums: another order)
    engine.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
def test_concurrent_writers_lose_no_counts(backend: str,
                                           fresh_database_url: Callable[[str], str]) -> None:
    """8 threads, each with its own store (PostgreSQL: as separate server processes would),
    overlapping span ids: every stored span is counted once."""
    url = fresh_database_url(backend)
    engine = create_engine(url)
    migrate(engine)
    bodies = [_body(range(1 + 40 * (k // 2), 81 + 40 * (k // 2)), random.Random(k))
              for k in range(16)]
    stores = [Store(engine) if backend == "sqlite" else Store(create_engine(url))
              for _ in range(8)]
    accepted: list[int] = []
    barrier = threading.Barrier(8)

    def work(k: int) -> None:
        barrier.wait()
        for body in bodies[k::8]:
            accepted.append(stores[k].ingest("exp-race", *body).accepted_spans)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(accepted) == 360  # span ids 1..360
    summary = Store(engine).summary("exp-race")
    assert summary["span_count"] == 360 and summary["root_spans"]["span_count"] == 120
    assert {m["label"]: m["count"] for m in summary["metrics"]} == {
        "grade": 360, "pass": 360, "score": 360}
    assert sum(summary["metrics"][1]["value_counts"].values()) == 360
    with engine.connect() as conn:
        buckets = conn.exec_driver_sql(
            "SELECT series, sum(n) FROM value_buckets WHERE experiment_id = 'exp-race' "
            "GROUP BY series ORDER BY series").all()
    assert [tuple(r) for r in buckets] == [(0, 360), (1, 120), (2, 360)]
    for s in stores:
        s.engine.dispose()


def test_one_group_commit_adds_what_separate_requests_add(
        fresh_database_url: Callable[[str], str]) -> None:
    """SQLite's group commit sums the aggregates of its requests per experiment: the same
    summaries as the requests stored one by one, duplicates across requests counted once."""
    from otel_experiments.server.store.events import _Job

    def requests() -> list[tuple[str, Any]]:
        rng = random.Random(5)
        return [("exp-a", _body(range(1, 61), rng)), ("exp-b", _body(range(1, 31), rng)),
                ("exp-a", _body(range(41, 101), rng)),  # 20 spans repeat the first request's
                ("exp-a", _body(range(101, 102), rng))]

    apart = Store(create_engine(fresh_database_url("sqlite")))
    migrate(apart.engine)
    counts_apart = [apart.ingest(exp, *rows) for exp, rows in requests()]
    together = Store(create_engine(fresh_database_url("sqlite")))
    migrate(together.engine)
    jobs = [_Job(exp, *rows) for exp, rows in requests()]
    together._group_commit(jobs)
    assert [j.result for j in jobs] == counts_apart
    assert counts_apart[2].duplicate_spans == 20
    for exp in ("exp-a", "exp-b"):
        assert together.summary(exp) == _approx(apart.summary(exp))
    assert together.summary("exp-a")["span_count"] == 101
    for store in (apart, together):
        store.engine.dispose()
