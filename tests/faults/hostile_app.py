"""An application feeding hostile values to every recording entry point, exporting to a
real server. Usage: hostile_app.py ENDPOINT EXPERIMENT OUT.json

No ``try`` around the package's calls except where an exception is the contract
(``add_metric`` with NaN / infinity / a wrong type): anything else escaping ends the
process with a traceback. Every call is timed; OUT.json gets, per case, the span id,
the slowest call's seconds and what was expected to be refused.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

from opentelemetry import baggage, propagate, trace
from opentelemetry import context as otel_context

import otel_experiments
from otel_experiments import experiment_context, observe, start_observe

ENDPOINT, EXPERIMENT, OUT = sys.argv[1], sys.argv[2], sys.argv[3]
CAP = 4096  # OTEL_EXPERIMENTS_MAX_PAYLOAD_CHARS, set by the test

handle = otel_experiments.configure(endpoint=ENDPOINT)
tracer = trace.get_tracer("hostile")
results: dict[str, dict[str, Any]] = {}


class _Timer:
    def __init__(self) -> None:
        self.slowest = 0.0

    def __call__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            self.slowest = max(self.slowest, time.perf_counter() - start)


def case(name: str, body: Callable[[Any, _Timer], None], **extra: Any) -> None:
    timer = _Timer()
    started = time.perf_counter()
    with start_observe("hostile", name, experiment=EXPERIMENT) as span:
        body(span, timer)
    results[name] = {"span_id": span.span_id, "slowest_call_s": timer.slowest,
                     "case_s": time.perf_counter() - started, **extra}


# ------------------------------------------------------------------------ payloads

class Unencodable:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")

    def __str__(self) -> str:
        raise RuntimeError("no str")


class ExplodingIterable:
    def __iter__(self) -> Iterator[int]:
        raise RuntimeError("no iteration")

    def __len__(self) -> int:
        raise RuntimeError("no len")


class LyingMapping(dict):  # type: ignore[type-arg]
    def items(self) -> Any:
        raise RuntimeError("no items")


def oversized(span: Any, t: _Timer) -> None:
    t(span.set_input, "i" * 5_000_000)
    t(span.set_output, ["row"] * 1_000_000)
    t(span.set_metadata, {f"k{i}": "v" * 100 for i in range(100_000)})
    t(span.set_attribute, "app.big_attribute", "a" * 2_000_000)


def non_utf8(span: Any, t: _Timer) -> None:
    t(span.set_input, b"\xff\xfe\x00\x80 not utf-8".decode("utf-8", "surrogateescape"))
    t(span.set_output, {"raw": b"\xff\xfe\xfd", "text": "caf\udce9"})
    t(span.set_metadata, {"bytes\udcff": bytearray(b"\x80\x81")})
    t(span.set_attribute, "app.raw", b"\xff\xfe")


def non_finite(span: Any, t: _Timer) -> None:
    t(span.set_input, {"nan": math.nan, "inf": math.inf, "ninf": -math.inf, "list": [math.nan]})
    t(span.set_output, math.inf)
    t(span.set_expected_output, [math.nan, {"deep": -math.inf}])
    t(span.set_metadata, {"score": math.nan, "limit": math.inf})
    t(span.set_attribute, "app.nan", math.nan)


def unencodable(span: Any, t: _Timer) -> None:
    cyclic_list: list[Any] = []
    cyclic_list.append(cyclic_list)
    cyclic_dict: dict[str, Any] = {}
    cyclic_dict["self"] = cyclic_dict
    t(span.set_input, cyclic_list)
    t(span.set_output, {"cycle": cyclic_dict, "obj": Unencodable(), "it": ExplodingIterable()})
    t(span.set_expected_output, Unencodable())
    t(span.set_metadata, LyingMapping(a=1))
    t(span.set_metadata, {"cycle": cyclic_dict, "set": {1, 2}, "obj": Unencodable()})
    t(span.set_attribute, "app.obj", Unencodable())
    t(observe.set_metadata, {2**100: "big key", (1, 2): "tuple key", None: "none key"})


UNICODE = {
    "lone_high": "x\ud800y",
    "lone_low": "x\udfffy",
    "rtl": "\u202eevil\u202c \u05e9\u05dc\u05d5\u05dd",
    "zero_width": "a\u200bb\u200c\u200d\ufeffc",
    "emoji": "\U0001f600\U0001f9d1\u200d\U0001f4bb\U0001f1f9\U0001f1ed",
    "nul": "a\x00b",
    "controls": "\x1b[31mred\x1b[0m\r\n",
}


def unicode_edges(span: Any, t: _Timer) -> None:
    t(span.set_input, dict(UNICODE))
    t(span.set_output, "".join(UNICODE.values()))
    t(span.set_metadata, {value: key for key, value in UNICODE.items()})
    for key, value in UNICODE.items():
        t(span.set_attribute, f"app.unicode.{key}", value)
    t(span.add_metric, "emoji \U0001f600 label", "\U0001f600 category \u202e")
    t(span.add_metric, "zero\u200bwidth", 0.5, metadata={"note": "\U0001f9ea"})


def metric_contract(span: Any, t: _Timer) -> None:
    """The one deliberate exception: bad metric values raise at the call."""
    refused = []
    for label, value in (("nan", math.nan), ("inf", math.inf), ("ninf", -math.inf),
                         ("none", None), ("list", [1]), ("dict", {"a": 1}), ("obj", object())):
        try:
            t(span.add_metric, f"bad-{label}", value)
        except (ValueError, TypeError) as exc:
            refused.append([label, type(exc).__name__])
    try:
        t(span.add_metric, "bad-metadata", 1.0, metadata={"x": math.nan})
    except (ValueError, TypeError) as exc:
        refused.append(["metadata-nan", type(exc).__name__])
    t(span.add_metric, "good", 1.0)
    results["_metric_refused"] = {"refused": refused}


# ------------------------------------------------------------------------ baggage

HOSTILE_VALUES = {
    "huge": "x" * 1_000_000,
    "crlf": "u\r\nSet-Cookie: a=b",
    "sql": "'; DROP TABLE spans; --",
    "html": "<script>alert(1)</script>",
    "path": "../../etc/passwd",
    "percent": "%00%0d%0a%",
    "separators": "a=b,c=d;e",
    "unicode": UNICODE["rtl"] + UNICODE["emoji"] + UNICODE["lone_high"],
}


def _enter_and_leave(scope: Any) -> None:
    with scope:
        pass


def many_baggage_entries(span: Any, t: _Timer) -> None:
    ctx = otel_context.get_current()
    for i in range(10_000):
        ctx = baggage.set_baggage(f"key{i}", f"value{i}", ctx)
    ctx = baggage.set_baggage("experiment.id", EXPERIMENT, ctx)
    token = otel_context.attach(ctx)
    try:
        with tracer.start_as_current_span("baggage-10k-child"):
            carrier: dict[str, str] = {}
            t(propagate.inject, carrier)
            results["_baggage_10k_header_bytes"] = {"bytes": len(carrier.get("baggage", ""))}
        t(_enter_and_leave, experiment_context(EXPERIMENT))
    finally:
        otel_context.detach(token)
    header = ",".join(f"k{i}=v{i}" for i in range(10_000)) + f",experiment.id={EXPERIMENT}"
    inbound = t(propagate.extract, {"baggage": header})
    token = otel_context.attach(inbound)
    try:
        with tracer.start_as_current_span("baggage-10k-inbound"):
            pass
    finally:
        otel_context.detach(token)


def hostile_baggage(span: Any, t: _Timer) -> None:
    traceparent = "00-" + "1" * 32 + "-" + "2" * 16 + "-01"
    for key in ("experiment.id", "experiment.name", "user.id", "user.name",
                "organization.id"):
        for label, value in HOSTILE_VALUES.items():
            if key == "experiment.id" and "/" in value:
                continue  # tests/faults/test_hostile_input.py::test_an_experiment_id_with_a_slash
            # set by application code in its own context, then arriving in a header (as a
            # WSGI server hands header bytes over: latin-1, so any byte, never a surrogate)
            wire = f"{key}={value}".encode("utf-8", "surrogatepass").decode("latin-1")
            for ctx in (baggage.set_baggage(key, value),
                        t(propagate.extract, {"baggage": wire, "traceparent": traceparent})):
                token = otel_context.attach(ctx)
                try:
                    with tracer.start_as_current_span(f"bag-{key}-{label}"):
                        pass
                finally:
                    otel_context.detach(token)
    # our own scopes with unusual (valid) identity names, propagated: inject never raises
    for label, value in (("rtl", UNICODE["rtl"]), ("zero_width", UNICODE["zero_width"]),
                         ("emoji", UNICODE["emoji"]), ("sql", HOSTILE_VALUES["sql"]),
                         ("long", "n" * 500)):
        scope = experiment_context(EXPERIMENT, identity={"user": {"id": "u-1", "name": value}},
                                   propagate_identity_names=True)
        with scope, tracer.start_as_current_span(f"scope-name-{label}"):
            carrier: dict[str, str] = {}
            t(propagate.inject, carrier)


case("oversized", oversized)
case("non_utf8", non_utf8)
case("non_finite", non_finite)
case("unencodable", unencodable)
case("unicode_edges", unicode_edges)
case("metric_contract", metric_contract)
case("many_baggage_entries", many_baggage_entries)
case("hostile_baggage", hostile_baggage)

flushed = handle.force_flush(30_000)
report = handle.exporter.delivery_report() if hasattr(handle.exporter, "delivery_report") else None
results["_export"] = {"flushed": flushed,
                      "report": None if report is None else {
                          "delivered": report.delivered, "dropped": report.dropped,
                          "dropped_by_reason": dict(report.dropped_by_reason)}}
handle.shutdown()
with open(OUT, "w", encoding="utf-8") as out:
    json.dump(results, out)
print("done", flush=True)
