"""Is prompt-v2 better, or just lucky? Repetitions, intervals and a paired comparison.

A stand-in for an LLM classifier: each answer is right with a probability that depends on
the prompt, drawn from a seeded generator (so this script prints the same table every time).
Each of 100 records runs 3 times per prompt; ``compare`` pairs the records and tells a real
improvement from noise. Needs a server: ``otel-experiments serve`` in another terminal (or
``OTEL_EXPERIMENTS_ENDPOINT``).

    python examples/significance.py
"""

from __future__ import annotations

import random
import threading
from collections import Counter

from otel_experiments.runner import run_experiment
from otel_experiments.runner.compare import compare
from otel_experiments.runner.report import markdown_table
from otel_experiments.runner.significance import HEADERS, rows, title

RECORDS = [{"id": f"ticket-{i}", "input": f"ticket {i}", "expected_output": i % 4}
           for i in range(100)]


class Classifier:
    """Right with probability ``accuracy``; seeded per (prompt, input, call)."""

    def __init__(self, prompt: str, accuracy: float) -> None:
        self.prompt, self.accuracy = prompt, accuracy
        self.calls: Counter[str] = Counter()
        self.lock = threading.Lock()

    def __call__(self, text: str) -> dict[str, float | int]:
        with self.lock:
            n = self.calls[text]
            self.calls[text] += 1
        rng = random.Random(f"{self.prompt}/{text}/{n}")
        label = int(text.split()[1]) % 4
        right = rng.random() < self.accuracy
        return {"label": label if right else (label + 1) % 4,
                "confidence": round(rng.uniform(0.6, 1.0) if right else rng.uniform(0.3, 0.8), 3)}


def correct(output: dict[str, float | int], expected_output: int) -> bool:
    return output["label"] == expected_output


def confidence(output: dict[str, float | int]) -> float:
    return float(output["confidence"])


def main() -> None:
    runs = {}
    for name, accuracy in (("prompt-v1", 0.70), ("prompt-v1-rerun", 0.70),
                           ("prompt-v2", 0.85)):
        runs[name] = run_experiment(name, RECORDS, Classifier(name, accuracy),
                                    [correct, confidence], repetitions=3, resume=False,
                                    quiet=True)
    for candidate in ("prompt-v2", "prompt-v1-rerun"):
        cmp = compare(runs["prompt-v1"], runs[candidate])
        print(f"{candidate} against prompt-v1, {title(cmp.significance)}:\n")
        print(markdown_table(HEADERS, rows(cmp.significance)) + "\n")
    ok = runs["prompt-v2"].summary["metrics"]["correct"]
    print(f"prompt-v2 correct: {ok['mean']:.3f} [{ok['ci_low']:.3f}, {ok['ci_high']:.3f}], "
          f"pass@3 {ok['pass_at_k']['3']:.3f}, pass^3 {ok['pass_hat_k']['3']:.3f}")


if __name__ == "__main__":
    main()
