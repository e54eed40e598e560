"""Per-span cost of stamping: ours vs. the floor vs. BaggageSpanProcessor, in one run.

    python benchmarks/bench_processor.py [--spans 20000] [--rounds 15]

Every variant starts and ends the same spans on a real SDK TracerProvider; rounds
interleave the variants (in a rotating order) so machine noise hits them alike. The table
shows each variant's best round; "extra" is a variant's cost minus the bare "no processor"
cost. The ratio that matters is ours / floor, where the floor passes the same 7 attributes
to ``start_span`` itself: taken per round, then the median over the rounds. Ours is below
the floor by design: the SDK cleans ``attributes=`` value by value, while the processor
writes a mapping it validated once per scope (``_compat.set_clean_attributes``); the
floor stays what stamping by hand costs.
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable
from statistics import median

from opentelemetry import baggage
from opentelemetry import context as otel_context
from opentelemetry.processor.baggage import ALLOW_ALL_BAGGAGE_KEYS, BaggageSpanProcessor
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

from otel_experiments import ExperimentSpanProcessor
from otel_experiments.context import context_with_scope, scope_attributes
from otel_experiments.models import Identity, TraceExperiment

EXPERIMENT = TraceExperiment("exp-456", "Model comparison", "checkout")
IDENTITY = Identity.coerce(
    {"organization": {"id": "org-1", "name": "Acme"}, "user": {"id": "u-9", "name": "Jane"}}
)
ATTRS = scope_attributes(EXPERIMENT, IDENTITY)
assert len(ATTRS) == 7


class EmptyProcessor(SpanProcessor):
    def on_start(self, span: object, parent_context: object = None) -> None:
        pass


def variant(processor: SpanProcessor | None, ctx: otel_context.Context | None,
            attributes: dict[str, str] | None) -> Callable[[int], int]:
    provider = TracerProvider()
    if processor is not None:
        provider.add_span_processor(processor)
    tracer = provider.get_tracer("bench")

    def run(n: int) -> int:
        token = otel_context.attach(ctx) if ctx is not None else None
        try:
            start = time.perf_counter_ns()
            for _ in range(n):
                tracer.start_span("op", attributes=attributes).end()
            return time.perf_counter_ns() - start
        finally:
            if token is not None:
                otel_context.detach(token)

    return run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--spans", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()

    ours_ctx = context_with_scope(EXPERIMENT, IDENTITY, propagate_identity_names=True)
    bag_ctx = otel_context.Context()
    for key, value in ATTRS.items():
        bag_ctx = baggage.set_baggage(key, value, bag_ctx)

    variants: dict[str, Callable[[int], int]] = {
        "no processor": variant(None, None, None),
        "floor: start_span(attributes=7)": variant(None, None, dict(ATTRS)),
        "empty processor": variant(EmptyProcessor(), None, None),
        "ours, no experiment active": variant(
            ExperimentSpanProcessor(default_experiment=None), None, None),
        "ours, experiment active (7 attrs)": variant(
            ExperimentSpanProcessor(default_experiment=None), ours_ctx, None),
        "ours, from inbound baggage (7)": variant(
            ExperimentSpanProcessor(default_experiment=None), bag_ctx, None),
        "BaggageSpanProcessor, all keys (7)": variant(
            BaggageSpanProcessor(ALLOW_ALL_BAGGAGE_KEYS), bag_ctx, None),
    }
    rounds: dict[str, list[float]] = {name: [] for name in variants}
    for fn in variants.values():  # warm up
        fn(2000)
    names = list(variants)
    gc.disable()
    try:
        for r in range(args.rounds):
            # (each round in another order: no variant always runs first, or after another)
            for name in names[r % len(names):] + names[:r % len(names)]:
                rounds[name].append(variants[name](args.spans) / args.spans)
    finally:
        gc.enable()
    best = {name: min(times) for name, times in rounds.items()}

    base = best["no processor"]
    floor_extra = best["floor: start_span(attributes=7)"] - base
    print(f"{args.spans} spans x {args.rounds} rounds, best round per variant\n")
    print(f"{'variant':38} {'ns/span':>9} {'extra ns':>9} {'x floor':>8}")
    for name, ns in best.items():
        extra = ns - base
        ratio = f"{extra / floor_extra:8.2f}" if name != "no processor" else f"{'':8}"
        print(f"{name:38} {ns:9.0f} {extra:9.0f} {ratio}")
    # The targets' ratios, per round (the variants of one round ran within a second of each
    # other), then the median over rounds: a ratio of best rounds mixes rounds far apart in
    # time, on a machine whose speed may drift (a shared VM's: 1.5-2x within minutes).
    none, floor = rounds["no processor"], rounds["floor: start_span(attributes=7)"]
    ours_active = median([(o - n) / (f - n) for o, n, f in zip(
        rounds["ours, experiment active (7 attrs)"], none, floor, strict=True) if f > n]
        or [float("nan")])
    idle_share = median((o - e) / n for o, e, n in zip(
        rounds["ours, no experiment active"], rounds["empty processor"], none, strict=True))
    print()
    print(f"ours / floor (extra cost, experiment active), median of the rounds' ratios: "
          f"{ours_active:.2f}x (target <= 1.05x: {'met' if ours_active <= 1.05 else 'NOT met'})")
    print(f"ours, no experiment active, beyond an empty processor, median of the rounds: "
          f"{idle_share:+.1%} of a bare span's {base:.0f} ns (a difference of two spans' whole "
          "cost: this VM's noise; the target is judged on on_start alone, below, as the "
          "processor adds nothing else to a span)")
    # The end-to-end difference is two large numbers' difference: on a noisy machine it
    # swings by more than the target. on_start alone, timed the same way for both,
    # isolates the work the processor itself adds; a bare span is timed in the same rounds
    # (the VM's speed drifts between phases), and the share is the median of the rounds'.
    on_start, share = _on_start_ns(args.rounds, variants["no processor"])
    print(f"on_start alone, no experiment active: ours {on_start['ours']:.0f} ns, an empty "
          f"processor {on_start['empty']:.0f} ns (best rounds); per round beside a bare span, "
          f"median: {share:+.2%} of a bare span "
          f"(target <= 1.5%: {'met' if share <= 0.015 else 'NOT met'})")


def _on_start_ns(rounds: int, bare_span: Callable[[int], int],
                 n: int = 200_000) -> tuple[dict[str, float], float]:
    """Best on_start time of ours and of an empty processor, and the median over rounds of
    (ours - empty) / a bare span's cost, all three timed in the same round (the two
    processors in turn first)."""
    span = TracerProvider().get_tracer("bench").start_span("op")
    processors = {"empty": EmptyProcessor(), "ours": ExperimentSpanProcessor(default_experiment=None)}
    best = {name: float("inf") for name in processors}
    shares: list[float] = []
    gc.disable()
    try:
        for r in range(rounds):
            took: dict[str, float] = {}
            order = list(processors.items())[r % 2:] + list(processors.items())[:r % 2]
            for name, processor in order:  # (each round in another order)
                on_start = processor.on_start
                start = time.perf_counter_ns()
                for _ in range(n):
                    on_start(span, None)  # as the SDK calls it: the current context
                took[name] = (time.perf_counter_ns() - start) / n
                best[name] = min(best[name], took[name])
            bare = bare_span(n // 20) / (n // 20)
            shares.append((took["ours"] - took["empty"]) / bare)
    finally:
        gc.enable()
    return best, median(shares)


if __name__ == "__main__":
    main()
