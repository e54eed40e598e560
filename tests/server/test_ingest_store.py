"""The ingest path in process, on real databases: row building, group commit, indexes."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from server_helpers import events_body, metric, span

from otel_experiments.server import ingest
from otel_experiments.server.db import create_engine, current_revision, migrate
from otel_experiments.server.store import SPAN_COLUMNS, Store
from otel_experiments.server.store.records import experiment_records

BACKENDS = ["sqlite", "postgres"]


def _valid_items() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    spans = [
        span(1, tags=["user.id:u1", "organization.id:o1", "experiment.name:Nice",
                      "experiment.feature_slug:slug", "user.id:ignored"]),
        span(2, parent=1, status="error", tags=["dataset_record_id:rec-1", "user.id:has space"]),
        span(3, parent=0, dataset_record_id="rec-3", name="päivää"),
    ]
    metrics = [metric(1, "acc", 0.5), metric(1, "n", 3), metric(2, "ok", True),
               metric(3, "grade", "A" * 300), metric(3, "ünï", "ß")]
    return spans, metrics


def test_fast_rows_equal_the_checked_rows() -> None:
    """The fast path builds exactly the row the field-by-field path builds, or declines."""
    spans, metrics = _valid_items()
    for i, s in enumerate(spans):
        fast = ingest._span_fast(s)
        assert fast is not None
        assert fast == ingest._span(s, f"/x/{i}")
    by_column = dict(zip(SPAN_COLUMNS, ingest._span_fast(spans[0]).values, strict=True))  # type: ignore[union-attr]
    assert (by_column["user_id"], by_column["organization_id"]) == ("u1", "o1")
    assert by_column["is_root"] is True
    second = dict(zip(SPAN_COLUMNS, ingest._span_fast(spans[1]).values, strict=True))  # type: ignore[union-attr]
    assert second["user_id"] is None and second["dataset_record_id"] == "rec-1"
    declined = 0
    for i, m in enumerate(metrics):
        fast = ingest._metric_fast(m)
        declined += fast is None
        assert fast is None or fast == ingest._metric(m, f"/m/{i}")
    assert declined == 1  # the non-ASCII label goes the checked way
    odd = span(4, name="a\x00b")  # NUL: declined by the fast path, stored as U+FFFD
    assert ingest._span_fast(odd) is None
    assert ingest._span(odd, "/s").values[SPAN_COLUMNS.index("name")] == "a\ufffdb"


@pytest.mark.parametrize("backend", BACKENDS)
def test_concurrent_ingests_count_each_request(backend: str,
                                               fresh_database_url: Callable[[str], str]) -> None:
    """Requests stored together (SQLite group commit) or apart (PostgreSQL) keep their own
    accepted / duplicate counts, and the experiment is created exactly once."""
    engine = create_engine(fresh_database_url(backend))
    migrate(engine)
    store = Store(engine)
    results: list[Any] = []
    barrier = threading.Barrier(6)

    def client(k: int) -> None:
        body = events_body([span(i) for i in range(k * 50, k * 50 + 100)],  # overlaps k+1
                           [metric(i, "acc", 0.5) for i in range(k * 50, k * 50 + 100)])
        rows = ingest.parse_events(body, 1000)
        barrier.wait()
        results.append(store.ingest("exp-concurrent", *rows))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.accepted_spans for r in results) == 350  # ids 0..349
    assert sum(r.duplicate_spans for r in results) == 600 - 350
    assert sum(r.accepted_metrics for r in results) == 350
    assert all(r.accepted_spans + r.duplicate_spans == 100 for r in results)
    assert [r.experiment_created for r in results].count(True) == 1
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT count(*) FROM spans")).scalar_one()
    assert stored == 350
    engine.dispose()


def test_a_failing_request_fails_alone(fresh_database_url: Callable[[str], str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """When a group commit fails, each request is retried in its own transaction."""
    engine = create_engine(fresh_database_url("sqlite"))
    migrate(engine)
    store = Store(engine)
    good = ingest.parse_events(events_body([span(1)]), 10)
    bad_span = ingest.parse_events(events_body([span(2)]), 10)[0][0]
    bad_span.values = (*bad_span.values[:-1], None)  # doc is NOT NULL: the insert fails
    jobs = [_job("exp-a", good), _job("exp-b", ([bad_span], []))]
    store._group_commit(jobs)
    assert jobs[0].result is not None and jobs[0].result.accepted_spans == 1
    assert jobs[1].error is not None and jobs[1].result is None
    engine.dispose()


def _job(exp: str, rows: tuple[Any, Any]) -> Any:
    from otel_experiments.server.store.events import _Job

    return _Job(exp, rows[0], rows[1])


_READ_TABLES = ("spans", "metrics", "span_totals", "metric_totals", "metric_values",
                "value_buckets", "usage_totals")


def test_the_api_queries_use_indexes(fresh_database_url: Callable[[str], str]) -> None:
    """Every span / metric query of listing and summary reads an index: no full scan and
    no sort of a whole experiment (SQLite's plans; PostgreSQL's depend on statistics)."""
    engine = create_engine(fresh_database_url("sqlite"))
    migrate(engine)
    store = Store(engine)
    store.ingest("exp-plans", *ingest.parse_events(events_body(
        [span(i, status="error" if i % 3 else "ok", tags=[f"user.id:u{i % 2}"])
         for i in range(1, 30)],
        [metric(i, "acc", i / 30) for i in range(1, 30)] + [metric(1, "ok", True)]), 100))
    statements: list[tuple[str, Any]] = []

    @sa.event.listens_for(engine, "before_cursor_execute")
    def capture(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if any(f"FROM {table}" in statement for table in _READ_TABLES):
            statements.append((statement, params))

    store.list_events("exp-plans", {}, 10, 0)
    store.list_events("exp-plans", {"status": "error"}, 10, 0)
    store.list_events("exp-plans", {"user_id": "u1"}, 10, 0)
    store.summary("exp-plans")
    experiment_records(store, "exp-plans", size=10)
    sa.event.remove(engine, "before_cursor_execute", capture)
    assert len(statements) >= 14
    with engine.connect() as conn:
        for statement, params in statements:
            plan = " / ".join(row[-1] for row in conn.exec_driver_sql(
                f"EXPLAIN QUERY PLAN {statement}", params).all())
            assert "USING" in plan and not any(f"SCAN {t}" in plan for t in _READ_TABLES), \
                (statement, plan)
            # (a page's usage groups that page's traces only: a sort of a few rows)
            if "FROM spans" in statement and "trace_id IN" not in statement:
                assert "TEMP B-TREE" not in plan, (statement, plan)
            if "status = 'error'" in statement and "ORDER BY spans.seq" in statement:
                assert "ix_spans_experiment_errors" in plan, plan  # listing the errors
    engine.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
def test_metrics_without_doc_read_back_as_sent(backend: str,
                                               fresh_database_url: Callable[[str], str]) -> None:
    """Plain metrics are stored without ``doc`` and rebuilt, byte for byte, on read; the
    others keep their JSON (and survive a downgrade to 0005, which restores every doc)."""
    engine = create_engine(fresh_database_url(backend))
    migrate(engine)
    store = Store(engine)
    def plain(label: str, value: Any) -> dict[str, Any]:  # members in the exporter's order
        m = metric(1, label, value)
        return {k: m[k] for k in ("span_id", "trace_id", "metric_type", "label")} | {
            k: v for k, v in m.items() if k.endswith("_value")} | {"timestamp_ms": 1}

    sent = [plain("acc", 0.25), plain("n", 3), plain("neg", -0.0), plain("ok", False),
            plain("grade", "B"), plain("long", "x" * 500), {**plain("meta", 0.5), "metadata": {}},
            metric(1, "order", 0.5)]  # trace_id first: kept as sent
    store.ingest("exp-docs", *ingest.parse_events(events_body([span(1)], sent), 10))
    with engine.connect() as conn:
        docs = dict(conn.execute(sa.text("SELECT label, doc FROM metrics")).all())
    assert sorted(label for label, doc in docs.items() if doc is None) == ["acc", "grade", "ok"]
    page = store.list_events("exp-docs", {}, 10, 0)
    from otel_experiments.server.jsonapi import dumps_str

    got = {m["label"]: dumps_str(m) for m in page.rows[0]["doc"]["metrics"]}
    assert got == {m["label"]: dumps_str(m) for m in sent}
    _downgrade(engine, backend, "0005")
    with engine.connect() as conn:
        restored = dict(conn.execute(sa.text("SELECT label, doc FROM metrics")).all())
    assert all(restored.values())
    assert {k: json.loads(v) for k, v in restored.items()} == {m["label"]: m for m in sent}
    engine.dispose()


def _downgrade(engine: sa.Engine, backend: str, revision: str) -> None:
    from alembic import command

    from otel_experiments.server.db import WRITE, _alembic_config

    with engine.connect().execution_options(**WRITE) as conn:
        if backend == "sqlite":
            conn.begin()
        command.downgrade(_alembic_config(conn), revision)
        conn.commit()


@pytest.mark.parametrize("backend", BACKENDS)
def test_revision_0005_downgrades_and_upgrades(backend: str,
                                               fresh_database_url: Callable[[str], str]) -> None:
    engine = create_engine(fresh_database_url(backend))
    migrate(engine)
    Store(engine).ingest("exp-mig", *ingest.parse_events(events_body([span(1), span(2)]), 10))

    def indexes() -> set[str]:
        return {ix["name"] for ix in sa.inspect(engine).get_indexes("spans")}

    assert {"ix_spans_experiment_seq", "ix_spans_experiment_errors"} <= indexes()
    assert not {"ix_spans_experiment_user", "ix_spans_experiment_duration"} & indexes()
    _downgrade(engine, backend, "0004")
    assert current_revision(engine) == "0004"
    assert {"ix_spans_summary", "ix_spans_experiment_user"} <= indexes()
    assert "ix_spans_experiment_seq" not in indexes()
    migrate(engine)
    assert "ix_spans_experiment_errors" in indexes()
    assert Store(engine).summary("exp-mig")["span_count"] == 2
    engine.dispose()


def test_without_jsonschema_the_fast_validator_names_the_field() -> None:
    """The [server] extra installs one validator (jsonschema-rs): its errors stand alone."""
    from otel_experiments.server.ingest import _SchemaValidator

    validator = _SchemaValidator(explain=False)
    assert validator.explainer is None
    good = events_body([span(1)])
    assert validator.errors(good) == []
    bad = events_body([span(1, duration="long")])
    (error,) = validator.errors(bad)
    assert error.status == 400 and error.pointer == "/data/attributes/spans/0/duration"


def test_ingest_now_never_waits_for_a_busy_writer(fresh_database_url: Callable[[str], str]) -> None:
    """The event loop stores a small body at once only when the SQLite writer is free; when
    another writer holds the lock it gets ``None`` at once (then a worker thread waits)."""
    engine = create_engine(fresh_database_url("sqlite"))
    migrate(engine)
    store = Store(engine)
    rows = ingest.parse_events(events_body([span(1)], [metric(1, "acc", 0.5)]), 1000)
    lock = store._sqlite_lock
    assert lock is not None
    with lock:  # a dataset write, or a big body's group commit, in another thread
        started = threading.Event()
        results: list[Any] = []
        worker = threading.Thread(target=lambda: (started.set(), results.append(
            store.ingest_now("exp-now", *rows))))
        worker.start()
        worker.join(5)
        assert started.is_set() and not worker.is_alive()  # did not wait for the lock
        assert results == [None]
    done = store.ingest_now("exp-now", *rows)
    assert done is not None and (done.accepted_spans, done.accepted_metrics) == (1, 1)
    again = store.ingest_now("exp-now", *rows)
    assert again is not None and (again.duplicate_spans, again.duplicate_metrics) == (1, 1)


def test_ingest_now_is_sqlite_only(fresh_database_url: Callable[[str], str]) -> None:
    """PostgreSQL takes every request in a worker thread (a network round trip each)."""
    engine = create_engine(fresh_database_url("postgres"))
    migrate(engine)
    rows = ingest.parse_events(events_body([span(1)]), 1000)
    assert Store(engine).ingest_now("exp-pg-now", *rows) is None


class _Deadlock(Exception):
    sqlstate = "40P01"  # what psycopg's DeadlockDetected carries


def test_a_deadlock_is_retried_whether_or_not_sqlalchemy_wrapped_it(
        fresh_database_url: Callable[[str], str]) -> None:
    """The ingest runs its statements on the driver's cursor, whose errors arrive unwrapped:
    a deadlock or serialization failure is retried either way, anything else raised."""
    store = Store(create_engine(fresh_database_url("sqlite")))
    for wrap in (False, True):
        calls: list[int] = []

        def flaky(wrap: bool = wrap, calls: list[int] = calls) -> str:
            calls.append(1)
            if len(calls) < 3:
                error = _Deadlock("deadlock detected")
                raise sa.exc.DBAPIError("INSERT", None, error) if wrap else error
            return "stored"

        assert store._retrying(flaky) == "stored" and len(calls) == 3
    with pytest.raises(ValueError):
        store._retrying(lambda: (_ for _ in ()).throw(ValueError("not retryable")))


@pytest.mark.parametrize("backend", BACKENDS)
def test_span_documents_leave_their_columns_out_and_read_back_whole(
        backend: str, fresh_database_url: Callable[[str], str]) -> None:
    """The stored document leaves out what the columns hold; the events read back are the
    spans as sent: a narrow document, a whole one (a NUL in the name: the column holds
    U+FFFD, the document what was sent), and one stored whole before (no migration)."""
    engine = create_engine(fresh_database_url(backend))
    migrate(engine)
    store = Store(engine)
    sent = [span(1, tags=["user.id:u1"]), span(2, parent=1, name="a\x00b", dataset_record_id="r")]
    store.ingest("exp-doc", *ingest.parse_events(events_body(sent, []), 10))
    old = span(3, parent=1)
    with store._driver_transaction() as cursor:
        mark = "?" if store.sqlite else "%s"
        cursor.execute(
            f"INSERT INTO spans (experiment_id, received_at, span_id, trace_id, parent_id, name, "
            f"start_ns, duration, status, is_root, doc) VALUES ({', '.join([mark] * 11)})",
            ("exp-doc", "2026-01-01T00:00:00Z", old["span_id"], old["trace_id"], old["parent_id"],
             old["name"], old["start_ns"], old["duration"], old["status"], False,
             json.dumps(old)))
    with store._read() as conn:
        stored = dict(conn.execute(sa.text(
            "SELECT span_id, doc FROM spans WHERE experiment_id = 'exp-doc'")).all())
    assert "span_id" not in json.loads(stored[sent[0]["span_id"]])  # narrow
    assert json.loads(stored[sent[1]["span_id"]])["name"] == "a\x00b"  # whole
    page = store.list_events("exp-doc", {}, 10, 0)
    assert [r["doc"] for r in page.rows] == [{**s, "metrics": []} for s in [*sent, old]]
    store.close()
    # revision 0010's downgrade gives every narrow document its members back
    _downgrade(engine, backend, "0009")
    with engine.connect() as conn:
        docs = [json.loads(d) for (d,) in conn.execute(sa.text(
            "SELECT doc FROM spans WHERE experiment_id = 'exp-doc' ORDER BY seq"))]
    assert docs == [*sent, old]
    migrate(engine)
    assert current_revision(engine) == "0010"
    engine.dispose()
