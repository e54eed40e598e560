"""The UI's pure parts and its cache, on a real SQLite store."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from otel_experiments.server.db import create_engine, migrate
from otel_experiments.server.ingest import parse_events
from otel_experiments.server.store import Store
from otel_experiments.server.ui import charts, session, views
from otel_experiments.server.ui.cache import ResultCache


def test_session_cookie_round_trip_expiry_and_tampering() -> None:
    keys = ("alpha", "beta")
    assert session.login("wrong", keys) is None
    assert session.login("", keys) is None
    cookie = session.login("beta", keys, now=1_000_000)
    assert cookie is not None and "beta" not in cookie
    assert session.valid(cookie, keys, now=1_000_000 + 60)
    assert not session.valid(cookie, ("alpha",), now=1_000_000 + 60)  # key removed: logged out
    assert not session.valid(cookie, keys, now=1_000_000 + session.SESSION_SECONDS + 1)
    version, issued, mac = cookie.split(".")
    assert not session.valid(f"{version}.{int(issued) + 1}.{mac}", keys, now=1_000_000 + 60)
    forged = mac[:-1] + ("1" if mac[-1] == "0" else "0")
    assert not session.valid(f"{version}.{issued}.{forged}", keys, now=1_000_000 + 60)
    assert not session.valid(None, keys) and not session.valid(cookie, (), now=1_000_000)


@pytest.mark.parametrize(("target", "expected"), [
    ("/ui/experiment?id=a", "/ui/experiment?id=a"),
    ("//evil.example/ui/", "/ui/"),
    ("https://evil.example/ui/", "/ui/"),
    ("/ui\\@evil", "/ui/"),
    ("/api/v2/llm-obs/v1/projects", "/ui/"),
    (None, "/ui/"),
])
def test_login_redirect_stays_in_the_ui(target: str | None, expected: str) -> None:
    assert session.safe_next(target, "/ui") == expected


def _span(span_id: str, parent: str | None, start: int, duration: int) -> dict[str, Any]:
    return {"span_id": span_id, "parent_id": parent, "start_ns": start, "duration": duration,
            "name": span_id, "status": "ok", "doc": {}, "metrics": []}


def test_span_tree_order_depth_and_cycles() -> None:
    rows = [_span("root", None, 0, 100), _span("a", "root", 10, 50), _span("b", "root", 20, 10),
            _span("a1", "a", 15, 5), _span("x", "y", 30, 5), _span("y", "x", 31, 5)]
    tree = views.span_tree(rows)
    order = [(s["span_id"], s["depth"]) for s in tree["spans"]]
    assert order[:4] == [("root", 0), ("a", 1), ("a1", 2), ("b", 1)]
    assert {s for s, _ in order} == {r["span_id"] for r in rows}  # the cycle is still shown
    a = next(s for s in tree["spans"] if s["span_id"] == "a")
    assert a["offset"] == pytest.approx(10.0) and a["width"] == pytest.approx(50.0)


def test_histogram_geometry() -> None:
    chart = charts.histogram([1, 0, 3], 0.0, 3.0, str, "x")
    assert [round(b.height, 1) for b in chart.bars][1] == 0.0
    assert chart.bars[2].height > chart.bars[0].height > 0
    assert chart.bars[2].y + chart.bars[2].height == pytest.approx(chart.baseline)
    assert "4 values" in chart.description


def _store(tmp_path: Path) -> Store:
    engine = create_engine(f"sqlite:///{tmp_path / 'ui.db'}")
    migrate(engine)
    return Store(engine)


def _ingest(store: Store, exp: str, n: int, first: int = 0) -> None:
    spans = [{"span_id": f"{i:016x}", "trace_id": f"{i:032x}", "name": "s", "start_ns": i,
              "duration": 10 + i, "status": "ok", "meta": {}, "tags": []}
             for i in range(first, first + n)]
    body = {"data": {"type": "experiment_events", "attributes": {"spans": spans, "metrics": []}}}
    store.ingest(exp, *parse_events(body, 1000))


def test_cache_reuses_until_new_spans_arrive_and_finishes_slow_work_later(
        tmp_path: Path) -> None:
    store = _store(tmp_path)
    _ingest(store, "exp-1", 3)
    cache = ResultCache(store)
    calls: list[int] = []

    def count() -> int:
        calls.append(1)
        row = store.get_experiment("exp-1")
        assert row is not None
        return int(store.summary("exp-1")["span_count"])

    row = store.get_experiment("exp-1")
    assert row is not None
    assert cache.get("n", [row], count) == 3
    assert cache.get("n", [row], count) == 3 and len(calls) == 1
    _ingest(store, "exp-1", 2, first=3)
    assert cache.get("n", [row], count) == 5 and len(calls) == 2

    release = threading.Event()

    def slow() -> str:
        release.wait(10)
        return "done"

    assert cache.get_soon("slow", [row], slow, wait=0.01) is None
    assert cache.get_soon("slow", [row], slow, wait=0.01) is None  # still one job, not two
    release.set()
    deadline = time.monotonic() + 10
    while (value := cache.get_soon("slow", [row], slow, wait=0.5)) is None:
        assert time.monotonic() < deadline
    assert value == "done"


def test_changed_records_judged_as_the_runner_judges_them() -> None:
    """The UI and the runner share one rule (otel_experiments.outcomes), each with its own
    pairing of records: on many random pairs of runs, both find the same changes in order."""
    from otel_experiments.runner.compare import LOWER_IS_BETTER, compare
    from otel_experiments.runner.results import ExperimentResult, RecordOutcome
    from otel_experiments.server.ui import changes

    assert changes.LOWER_IS_BETTER == LOWER_IS_BETTER
    rng = random.Random(7)
    values = [None, True, False, 0, 1, 0.5, 2.5, "cat", "dog"]
    for _ in range(200):
        runs: list[dict[str, dict[str, Any]]] = [{}, {}]
        for i in range(rng.randint(0, 12)):
            for run in runs:
                if rng.random() < 0.9:  # some records only in one run
                    metrics = {label: rng.choice(values) for label in ("a", "b", "c")
                               if rng.random() < 0.8}
                    error = {"type": "E", "message": f"m{i}"} if rng.random() < 0.15 else None
                    run[f"r{i}"] = {"record_id": f"r{i}", "input": i, "output": None,
                                    "error": error, "metrics": metrics,
                                    "span_id": f"s{i}", "trace_id": f"t{i}"}
        ours, common = changes.compare_outcomes(runs[0], runs[1])
        results = [ExperimentResult(f"e{n}", f"e{n}", "COMPLETED", [
            RecordOutcome(r["record_id"], r["input"], None, None, r["error"], None, r["metrics"])
            for r in run.values()]) for n, run in enumerate(runs)]
        theirs = compare(*results)
        assert common == theirs.common_records
        assert [(c["record_id"], c["kind"], c["what"]) for c in ours] == \
            [(c.record_id, c.kind, c.what) for c in theirs.changes]


def test_compare_outcomes_are_the_records_apis_rows(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The compare page reads records its own lean way: the same records, inputs, outputs,
    errors and metric values as the records API gives, across pages."""
    from otel_experiments.server.store.records import _metric_value, experiment_records
    from otel_experiments.server.ui import changes

    store = _store(tmp_path)
    rng = random.Random(5)
    spans, metrics = [], []
    for i in range(1, 60):
        root = i % 3 != 0
        status = "error" if i % 7 == 0 else "ok"
        meta: dict[str, Any] = {"input": {"q": i}, "output": f"a{i}"}
        if status == "error":
            meta["error"] = {"type": "E", "message": f"boom {i}", "stack": None}
        span: dict[str, Any] = {"span_id": f"{i:016x}", "trace_id": f"{i // 3 + 1:032x}",
                                "name": "s", "start_ns": i, "duration": i, "status": status,
                                "meta": meta, "tags": []}
        if not root:
            span["parent_id"] = f"{i - 1:016x}"
        if i % 4:
            span["dataset_record_id"] = f"rec-{i % 40}"  # some records repeat: last wins
        spans.append(span)
        for label, value in (("s", rng.choice([0.5, 2, -0.0, 1e300])), ("b", i % 2 == 0),
                             ("c", rng.choice(["x", "y" * 300, "z\x00"]))):
            kind = ("boolean" if isinstance(value, bool) else
                    "score" if isinstance(value, (int, float)) else "categorical")
            metrics.append({"span_id": f"{i:016x}", "trace_id": f"{i // 3 + 1:032x}",
                            "metric_type": kind, "label": label, f"{kind}_value": value,
                            "timestamp_ms": 1})
    body = {"data": {"type": "experiment_events", "attributes": {"spans": spans,
                                                                 "metrics": metrics}}}
    store.ingest("exp-o", *parse_events(body, 1000))
    monkeypatch.setattr(changes, "_PAGE", 7)  # several pages

    expected: dict[str, dict[str, Any]] = {}
    for row in experiment_records(store, "exp-o", size=1000).rows:
        key = row["dataset_record_id"] or row["span_id"]
        error = None
        if row["status"] == "error":
            error = {"type": row["error"]["type"], "message": row["error"]["message"] or "error"}
        expected[key] = {"record_id": key, "input": row["input"], "output": row["output"],
                         "error": error, "span_id": row["span_id"], "trace_id": row["trace_id"],
                         "metrics": {m["label"]: _metric_value(m) for m in row["metrics"]}}
    got = changes.outcomes(store, "exp-o")
    assert list(got) == list(expected) and len(got) > 20
    assert got == expected


def _run(store: Store, exp: str, n: int, seed: int) -> None:
    """``n`` records (some repeated, some failing, a label with a NUL, metrics kept as sent
    and as columns) of experiment ``exp``."""
    rng = random.Random(seed)
    spans, metrics = [], []
    for i in range(n):
        span_id = f"{seed:04x}{i:012x}"
        status = "error" if rng.random() < 0.1 else "ok"
        meta: dict[str, Any] = {"input": {"q": i}, "output": f"a{i}-{seed}"}
        if status == "error":
            meta["error"] = {"type": "E", "message": f"boom {i}", "stack": None}
        spans.append({"span_id": span_id, "trace_id": f"{seed:04x}{i:028x}", "name": "s",
                      "start_ns": i, "duration": 1, "status": status, "meta": meta,
                      "tags": [], "dataset_record_id": f"rec-{i % (n - 5)}"})
        for label, value in (("ok", rng.random() < 0.7),
                             ("s", rng.choice([0.5, 1, 2.5, -0.0, 0.0, 3.0])),
                             ("c", rng.choice(["x", "y", "z" * 300, "w\x00"])),
                             ("n\x00l", rng.random() < 0.5)):
            kind = ("boolean" if isinstance(value, bool) else
                    "score" if isinstance(value, (int, float)) else "categorical")
            metric = {"span_id": span_id, "trace_id": f"{seed:04x}{i:028x}",
                      "metric_type": kind, "label": label, f"{kind}_value": value,
                      "timestamp_ms": 1}
            if i % 3 == 1:  # members in another order: kept as sent (``doc``) as well
                metric = dict(reversed(metric.items()))
            elif i % 3 == 2:
                metric["metadata"] = {"by": "test"}
            metrics.append(metric)
    store.ingest(exp, *parse_events({"data": {"type": "experiment_events", "attributes": {
        "spans": spans, "metrics": metrics}}}, 100_000))


def test_changed_records_and_paired_values_past_a_thousand_records(tmp_path: Path) -> None:
    """The lean reading (``store/outcome_rows.py``: documents of the shown records only)
    finds the same changes, in the same order and with the same texts, as judging every
    record read in full; the compare endpoint's values cover every record (more than one
    page of 1,000)."""
    from otel_experiments.server.store.compare import ERROR_RATE, compare_experiments
    from otel_experiments.server.ui import changes

    store = _store(tmp_path)
    _run(store, "exp-a", 1205, 1)
    _run(store, "exp-b", 1205, 2)
    from otel_experiments.server.store.records import _metric_value, experiment_records

    api = {}
    for page in (experiment_records(store, "exp-a", size=1000),
                 experiment_records(store, "exp-a", size=1000, cursor=1000)):
        for row in page.rows:  # the values the records API shows, label as sent
            api[row["dataset_record_id"]] = {m["label"]: _metric_value(m) for m in row["metrics"]}
    lean = {k: v["metrics"] for k, v in changes.outcomes(store, "exp-a").items()}
    assert lean == api and len(api) == 1200
    assert {repr(v["s"]) for v in lean.values()} >= {"1", "-0.0", "3.0", "0.0"}
    full, common = changes.compare_outcomes(changes.outcomes(store, "exp-a"),
                                            changes.outcomes(store, "exp-b"))
    got = changes.changed_records(store, {"id": "exp-a"}, {"id": "exp-b"}, 150)
    assert common == got["common"] == 1200 and len(full) == got["total"] > 300
    assert got["changes"] == full[:150]
    assert any("task now fails (boom" in c["what"] for c in got["changes"])
    assert any("n\x00l" in c["what"] for c in full)  # the label as sent, not as its column
    assert sum(got["counts"].values()) == got["total"]
    assert [c["kind"] for c in got["changes"]] == sorted(
        (c["kind"] for c in got["changes"]), key=changes.KINDS.index)
    pytest.importorskip("scipy")
    found = compare_experiments(store, "exp-a", "exp-b", 0.95)
    assert found["common_records"] == 1200
    assert {m["label"] for m in found["metrics"]} == {"ok", "s", "n\x00l", ERROR_RATE}
