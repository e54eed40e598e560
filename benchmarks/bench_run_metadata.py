"""Run-metadata filters and datasets from traces, on the server's store (SQLite, in process).

Run: ``python benchmarks/bench_run_metadata.py [--experiments 5000] [--spans 10000]``

* ``filter[where]`` matches config / metadata JSON in Python after the SQL filters. Timed
  side by side on the same experiments, first page of 100 of the same 2 % selectivity:
  the indexed column filter (``filter[feature_slug]``, the reference) vs ``filter[where]``
  (``config.model=...``), which reads every candidate row. Ratio where / column.
* ``POST /datasets/{id}/from-spans`` over one experiment's root spans (half of them
  repeating an input): per-span cost of selecting, deduplicating and inserting, beside a
  plain ``add_records`` of the same number of distinct records (the reference).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _timing import best_seconds

from otel_experiments.server.db import create_engine, migrate
from otel_experiments.server.ingest import parse_events
from otel_experiments.server.store import MetricCondition, SpanSelection, Store
from otel_experiments.server.where import parse_where


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=5000)
    parser.add_argument("--spans", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"sqlite:///{Path(tmp) / 'b.db'}")
        migrate(engine)
        store = Store(engine)
        n = args.experiments
        for i in range(n):
            rare = i % 50 == 0
            store.create_experiment({
                "id": f"exp-{i}", "name": f"run {i}", "description": "", "project_id": None,
                "dataset_id": None, "dataset_version": None, "status": "COMPLETED",
                "feature_slug": "rare" if rare else "common",
                "config": {"model": "rare" if rare else "common", "temperature": 0,
                           "prompt_version": f"v{i % 7}"},
                "metadata": {"reproducibility": {"git": {"commit": f"{i:040x}",
                                                         "dirty": False}}}})
        where = parse_where(["config.model=rare"])
        column = best_seconds(lambda: store.list_experiments({"feature_slug": "rare"}, 100, 0),
                      args.repeats)
        json_filter = best_seconds(lambda: store.list_experiments({}, 100, 0, where), args.repeats)
        assert len(store.list_experiments({}, 100, 0, where).rows) == min(100, -(-n // 50))
        print(f"experiment list, first page of 100 ({n} experiments, 2 % match):")
        print(f"  filter[feature_slug] (indexed column, reference): {column * 1e3:8.2f} ms")
        print(f"  filter[where]=config.model=rare (JSON, in Python): {json_filter * 1e3:8.2f} ms"
              f"   ratio {json_filter / column:.1f}x")

        spans = [{"trace_id": f"{i:032x}", "span_id": f"{i + 1:016x}", "name": "task",
                  "start_ns": 1_700_000_000_000_000_000 + i, "duration": 1000, "status": "ok",
                  "meta": {"input": {"question": f"q{i // 2}", "context": "x" * 100},
                           "output": f"a{i}"}, "tags": []} for i in range(args.spans)]
        metrics = [{"trace_id": sp["trace_id"], "span_id": sp["span_id"],
                    "metric_type": "boolean", "label": "exact_match",
                    "boolean_value": i % 4 == 0, "timestamp_ms": 1_700_000_000_000}
                   for i, sp in enumerate(spans)]
        for start in range(0, len(spans), 5000):
            body = {"data": {"type": "experiment_events", "attributes": {
                "spans": spans[start:start + 5000], "metrics": metrics[start:start + 5000]}}}
            span_rows, metric_rows = parse_events(body, 10_000)
            store.ingest("exp-0", span_rows, metric_rows)
        distinct = args.spans // 2

        def from_spans() -> None:
            ds = store.create_dataset(None, "from spans", "", {})
            done = store.records_from_spans(ds["id"], SpanSelection(
                experiment_id="exp-0", limit=args.spans))
            assert len(done.rows) == distinct, len(done.rows)

        def plain() -> None:
            ds = store.create_dataset(None, "plain", "", {})
            store.add_records(ds["id"], [
                {"record_id": f"r{i}", "input": {"question": f"q{i}", "context": "x" * 100},
                 "expected_output": f"a{i}", "metadata": {}, "tags": []}
                for i in range(distinct)])

        def failing() -> None:
            ds = store.create_dataset(None, "failing", "", {})
            done = store.records_from_spans(ds["id"], SpanSelection(
                experiment_id="exp-0", limit=args.spans,
                metric=MetricCondition("exact_match", equals=False)))
            assert done.matched == args.spans * 3 // 4, done.matched

        t_from = best_seconds(from_spans, args.repeats)
        t_failing = best_seconds(failing, args.repeats)
        t_plain = best_seconds(plain, args.repeats)
        print(f"\ndataset from {args.spans} root spans ({distinct} distinct inputs):")
        print(f"  add_records of {distinct} records (reference):  {t_plain * 1e3:8.1f} ms")
        print(f"  from-spans (select, dedupe, insert):      {t_from * 1e3:8.1f} ms   "
              f"{t_from / args.spans * 1e6:.1f} us/span, ratio {t_from / t_plain:.1f}x")
        print(f"  from-spans, exact_match=false (3/4 of the traces): {t_failing * 1e3:8.1f} ms"
              f"   ratio {t_failing / t_plain:.1f}x")
        engine.dispose()


if __name__ == "__main__":
    main()
