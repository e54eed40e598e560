"""Runner overhead per record over calling the task directly.

Run: ``python benchmarks/bench_runner.py [--records 1000] [--repeats 3]``

Starts the local server (SQLite, a temporary directory) and, with a no-op task, times:

* calling the task directly for every record (the floor),
* ``run_experiment`` sequentially (``max_concurrency=1``) and on 8 threads,

each including everything a run does: creating the experiment, a span per record with its
input, expected output and output, one evaluator metric, the status updates and the final
flush of every span to the server. Prints the best of N repeats as microseconds per record
over the direct calls; the target is under 1 ms per record.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

from _timing import best_seconds
from opentelemetry.sdk.trace import TracerProvider

from otel_experiments.client import ExperimentsClient
from otel_experiments.runner import exact_match, run_experiment

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the test helpers
from server_process import ServerProcess

TARGET_US = 1000.0


def noop(x: Any) -> Any:
    return x


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    records = [{"input": {"q": i}, "expected_output": {"q": i}} for i in range(args.records)]
    provider = TracerProvider()
    tmp = Path(tempfile.mkdtemp(prefix="bench-runner-"))
    with ServerProcess(f"sqlite:///{tmp / 'b.db'}", log_dir=tmp) as server, \
            ExperimentsClient(endpoint=server.base_url) as client:
        direct = best_seconds(lambda: [noop(r["input"]) for r in records], args.repeats)
        rows = []
        for workers in (1, 8):
            def run(workers: int = workers) -> None:
                result = run_experiment(f"bench-{workers}", records, noop, [exact_match],
                                        client=client, max_concurrency=workers, resume=False,
                                        tracer_provider=provider, quiet=True)
                assert len(result.records) == args.records and result.value("exact_match") == 1
                assert result.delivery is not None and result.delivery["flushed"]

            elapsed = best_seconds(run, args.repeats)
            rows.append((workers, elapsed, (elapsed - direct) / args.records * 1e6))
        provider.shutdown()
    print(f"runner overhead, {args.records} records, no-op task, best of {args.repeats} "
          f"(spans flushed to a local server):")
    print(f"  direct calls:            {direct / args.records * 1e6:9.2f} us/record")
    for workers, elapsed, overhead in rows:
        verdict = "met" if overhead < TARGET_US else "NOT met"
        print(f"  run_experiment, {workers} thread{'s' if workers > 1 else ' '}: "
              f"{overhead:9.2f} us/record over direct ({elapsed:.3f} s total)  "
              f"target < {TARGET_US:.0f} us: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
