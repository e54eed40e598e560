"""What intervals and paired significance cost a run's summary and a comparison.

Run: ``python benchmarks/bench_stats.py [--records 1000] [--repetitions 3] [--repeats 3]``

Two runs of ``records`` records x ``repetitions``, with a boolean and a score metric
(seeded), side by side in one process:

* ``summarize`` without intervals (the plain aggregates) and with them (``add_intervals``:
  Wilson for the boolean, a bootstrap over records for the score, pass@k / pass^k);
* ``compare(confidence=None)`` (deltas and changed records) and ``compare()`` (plus the
  paired bootstrap and test per metric).

Prints the best of N repeats in milliseconds and the ratio with / without. The statistics
run once per run or comparison, never per span: the reference is the run itself
(``bench_runner.py``: 0.5-0.8 ms per record, so ~0.5 s for 1,000 records).
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Callable
from typing import Any

from _timing import best_seconds

from otel_experiments.runner.compare import compare
from otel_experiments.runner.results import (
    ExperimentResult,
    RecordOutcome,
    metric_stats,
    summarize,
)


def outcomes(records: int, repetitions: int, rate: float, seed: int) -> list[RecordOutcome]:
    rng = random.Random(seed)
    out = []
    for i in range(records):
        for j in range(repetitions):
            right = rng.random() < rate
            out.append(RecordOutcome(f"r{i}", i, i, i if right else -1, latency_ms=1.0,
                                     metrics={"correct": right, "score": rng.random()},
                                     repetition=j if repetitions > 1 else None))
    return out


def plain(records: list[RecordOutcome]) -> dict[str, Any]:
    labels = ("correct", "score")
    return {label: metric_stats(r.metrics.get(label) for r in records) for label in labels}


def best(fn: Callable[[], Any], repeats: int) -> float:
    """Milliseconds."""
    return best_seconds(fn, repeats) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    a_rows = outcomes(args.records, args.repetitions, 0.7, 1)
    b_rows = outcomes(args.records, args.repetitions, 0.75, 2)
    a = ExperimentResult("exp-a", "a", "COMPLETED", a_rows, summarize(a_rows))
    b = ExperimentResult("exp-b", "b", "COMPLETED", b_rows, summarize(b_rows))

    rows = [
        ("summary", best(lambda: plain(a_rows), args.repeats),
         best(lambda: summarize(a_rows), args.repeats)),
        ("compare", best(lambda: compare(a, b, confidence=None), args.repeats),
         best(lambda: compare(a, b), args.repeats)),
    ]
    print(f"{args.records} records x {args.repetitions} repetitions "
          f"({args.records * args.repetitions} outcomes), best of {args.repeats}")
    print(f"{'':<8}  {'without':>10}  {'with stats':>10}  {'ratio':>6}")
    for name, without, with_stats in rows:
        print(f"{name:<8}  {without:>8.1f}ms  {with_stats:>8.1f}ms  {with_stats / without:>5.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
