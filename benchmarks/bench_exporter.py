"""Per-span cost of the experiment events converter vs OTLP protobuf encoding.

Run: ``python benchmarks/bench_exporter.py [--spans 2000] [--repeats 9]``

Builds 2,000 realistic finished spans once (7 experiment/identity attributes, ~200-byte
JSON input and text output, one metric event each) and times, on those same spans and in
the same process, best of N rounds (the variants take turns in every round):

* converter only (``spans_to_event_bodies``: dicts built from the span fields),
* converter + stdlib ``json`` encoding of every body,
* converter + ``orjson`` encoding (when installed),
* the exporter's own path (what goes on the wire, before gzip): the C encoder
  (``events/_speedups_src/``) writing each span's JSON, then the bodies packed; beside it the
  same path with the C encoder off (every span through the Python converter and orjson),
* then all of it again in a child process where orjson cannot be imported (the package's
  stdlib ``json`` configuration: non-ASCII escaped; target 8x),
* ``encode_spans(spans).SerializeToString()`` (what ``OTLPSpanExporter`` does).

Prints ns/span, spans/s, the speed-up over OTLP protobuf (targets: >= 20x with orjson,
>= 8x with stdlib json) and bytes/span before and after gzip, and the converter's time
against a minimal one building the same dicts (the floor on this machine), and a second
floor writing each span's JSON text without building dicts (checked to decode to ours). No
network.
"""

from __future__ import annotations

import argparse
import gc
import gzip
import json
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from json import loads as json_loads
from typing import Any

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_experiments import ExperimentEventsExporter
from otel_experiments import attributes as A
from otel_experiments.events import _json, native, spans_to_event_bodies
from otel_experiments.events.bodies import Item, encode_bodies, pack_encoded
from otel_experiments.events.convert import iter_span_events
from otel_experiments.events.shapes import DEFAULT_KEPT
from otel_experiments.observation.metrics import record_metric

#: issue 16's targets, per JSON encoder: speed-up over OTLP protobuf encoding
TARGETS = {"orjson": 20.0, "stdlib json": 8.0}


def make_spans(n: int) -> list[ReadableSpan]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create({SERVICE_NAME: "bench-svc", SERVICE_VERSION: "1.2.3"})
    )
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("bench")
    question = "Summarize the following support ticket in one sentence: " + "lorem ipsum " * 10
    answer = (
        "The customer reports that exports to the experiments backend intermittently fail "
        "with HTTP 503 and asks whether retries with backoff are supported by the SDK today."
    )
    for i in range(n):
        stamped = {
            A.EXPERIMENT_ID: f"exp-{i % 4}",
            A.EXPERIMENT_NAME: "prompt v2 vs v1",
            A.EXPERIMENT_FEATURE_SLUG: "ticket-summary",
            A.ORGANIZATION_ID: f"org-{i % 13}",
            A.ORGANIZATION_NAME: "Acme Corporation",
            A.USER_ID: f"user-{i % 97}",
            A.USER_NAME: "Ada Lovelace",
        }
        with tracer.start_as_current_span("ticket-summary", attributes=stamped) as span:
            span.set_attribute(
                A.INPUT_VALUE, json.dumps({"ticket_id": i, "prompt": question[:150]})
            )
            span.set_attribute(A.INPUT_MIME_TYPE, A.MIME_JSON)
            span.set_attribute(A.OUTPUT_VALUE, answer[:200])
            span.set_attribute(A.OUTPUT_MIME_TYPE, A.MIME_TEXT)
            record_metric(span, "relevance", (i % 100) / 100)
    spans = list(memory.get_finished_spans())
    provider.shutdown()
    return spans


def best_ns_rotating(fns: Sequence[Callable[[], Any]], repeats: int) -> list[int]:
    """Best time of each function, the functions taking turns round after round: the
    VM's speed drifts within a run, and every variant sees the same drift."""
    for fn in fns:
        fn()  # warm-up
    best: list[int | None] = [None] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            gc.collect()  # same starting point for every run; the collector stays enabled
            start = time.perf_counter_ns()
            fn()
            elapsed = time.perf_counter_ns() - start
            current = best[i]
            best[i] = elapsed if current is None else min(current, elapsed)
    return [b for b in best if b is not None]


def exporter_path(exporter: ExperimentEventsExporter, spans: Sequence[ReadableSpan],
                  use_c: bool = True) -> list[bytes]:
    """What ExperimentEventsExporter puts on the wire (before gzip), one body per experiment
    (export/sending.py: GroupSender.group, then _encode, without a redaction hook): the C
    encoder's spans packed, or without C the converter's dicts, one dumps per body."""
    limits = (exporter.settings.max_body_bytes, exporter.settings.max_spans_per_request)
    if not use_c:
        items: dict[str, list[Item]] = {}
        for experiment_id, event, metrics in iter_span_events(spans, DEFAULT_KEPT):
            items.setdefault(experiment_id, []).append((event, metrics))
        return [body for group in items.values() for body, _ in encode_bodies(group, *limits)[0]]
    groups, unencodable = native.encode_span_groups(spans, DEFAULT_KEPT, use_c)
    assert not unencodable
    return [body for encoded in groups.values() for body, _ in pack_encoded(encoded, *limits)]


_MINIMAL_TAG_KEYS = tuple(
    (key, f"{key}:") for key in (*A.STAMPED_KEYS, A.OBSERVE_FEATURE_SLUG, A.EXPERIMENT_ENTRY)
)


def minimal_convert(spans: Sequence[ReadableSpan]) -> dict[str, dict[str, Any]]:
    """The floor: a straightforward converter building the same dicts from the SDK span's
    fields, with no validation, no fallbacks and no hostile-value handling (only correct for
    these well-formed spans; a reference, not a product)."""
    lists: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]] = {}
    out: dict[str, dict[str, Any]] = {}
    for span in spans:
        f = span.__dict__
        a = f["_attributes"]._dict
        eid = a.get(A.EXPERIMENT_ID)
        if eid is None:
            continue
        ctx = f["_context"]
        tid = ctx[0].to_bytes(16, "big").hex()
        sid = ctx[1].to_bytes(8, "big").hex()
        meta: dict[str, Any] = {}
        v = a.get(A.INPUT_VALUE)
        if v is not None:
            meta["input"] = json_loads(v) if a.get(A.INPUT_MIME_TYPE) == A.MIME_JSON else v
        v = a.get(A.OUTPUT_VALUE)
        if v is not None:
            meta["output"] = json_loads(v) if a.get(A.OUTPUT_MIME_TYPE) == A.MIME_JSON else v
        res = f["_resource"].attributes
        tags = [f"service.name:{res[SERVICE_NAME]}", f"service.version:{res[SERVICE_VERSION]}"]
        tags += [p + v for k, p in _MINIMAL_TAG_KEYS if (v := a.get(k)) is not None]
        tags.append("span.kind:" + f["_kind"].name.lower())
        start = f["_start_time"]
        event = {"trace_id": tid, "span_id": sid, "name": f["_name"], "start_ns": start,
                 "duration": f["_end_time"] - start, "status": "ok", "meta": meta, "tags": tags}
        metrics = []
        for e in f["_events"]._dq:
            ed = e.__dict__
            if ed["_name"] == A.METRIC_EVENT_NAME:
                ea = ed["_attributes"]._dict
                metrics.append({"span_id": sid, "trace_id": tid, "metric_type": ea[A.METRIC_TYPE],
                                "label": ea[A.METRIC_LABEL], "score_value": ea[A.METRIC_VALUE],
                                "timestamp_ms": ed["_timestamp"] // 1_000_000})
        pair = lists.get(eid)
        if pair is None:
            pair = lists[eid] = ([], [])
            out[eid] = {"data": {"type": "experiment_events",
                                 "attributes": {"spans": pair[0], "metrics": pair[1]}}}
        pair[0].append(event)
        pair[1].extend(metrics)
    return out


def direct_writer(spans: Sequence[ReadableSpan]) -> list[tuple[str, str, list[str]]]:
    """A second floor: no dicts at all, each span's JSON text written from the SDK span's
    fields with string formatting (only the JSON input is decoded and encoded again; tags
    cached by their values). Only correct for these well-formed spans."""
    import orjson  # (only run when orjson is installed)

    loads, dumps = orjson.loads, orjson.dumps
    out = []
    tag_cache: dict[tuple[Any, ...], str] = {}
    template = ('{"trace_id":"%s","span_id":"%s","name":%s,"start_ns":%d,"duration":%d,'
                '"status":"ok","meta":{"input":%s,"output":%s},"tags":%s}')
    metric_template = ('{"span_id":"%s","trace_id":"%s","metric_type":%s,"label":%s,'
                       '"score_value":%r,"timestamp_ms":%d}')
    for span in spans:
        f = span.__dict__
        a = f["_attributes"]._dict
        ctx = f["_context"]
        tid, sid = ctx[0].to_bytes(16, "big").hex(), ctx[1].to_bytes(8, "big").hex()
        get = a.get
        inp = dumps(loads(get(A.INPUT_VALUE))).decode()
        outp = json.dumps(get(A.OUTPUT_VALUE), ensure_ascii=False)
        res = f["_resource"].attributes
        key = tuple([get(k) for k, _ in _MINIMAL_TAG_KEYS])
        tags = tag_cache.get(key)
        if tags is None:
            listed = [f"service.name:{res[SERVICE_NAME]}", f"service.version:{res[SERVICE_VERSION]}"]
            listed += [p + v for (_, p), v in zip(_MINIMAL_TAG_KEYS, key, strict=True)
                       if v is not None]
            listed.append("span.kind:" + f["_kind"].name.lower())
            tags = tag_cache[key] = dumps(listed).decode()
        start = f["_start_time"]
        text = template % (tid, sid, json.dumps(f["_name"]), start, f["_end_time"] - start,
                           inp, outp, tags)
        metrics = []
        for e in f["_events"]._dq:
            ed = e.__dict__
            if ed["_name"] == A.METRIC_EVENT_NAME:
                ea = ed["_attributes"]._dict
                metrics.append(metric_template % (
                    sid, tid, json.dumps(ea[A.METRIC_TYPE]), json.dumps(ea[A.METRIC_LABEL]),
                    ea[A.METRIC_VALUE], ed["_timestamp"] // 1_000_000))
        out.append((get(A.EXPERIMENT_ID), text, metrics))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spans", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--without-orjson", action="store_true",
                        help="(set for the child process the run starts itself)")
    args = parser.parse_args(argv)
    n, repeats = args.spans, args.repeats
    spans = make_spans(n)

    def otlp() -> bytes:
        return encode_spans(spans).SerializeToString()  # type: ignore[no-any-return]

    def convert() -> dict[str, dict[str, Any]]:
        return spans_to_event_bodies(spans)

    def convert_stdlib() -> list[bytes]:
        return [_json.stdlib_dumps(b) for b in spans_to_event_bodies(spans).values()]

    # the floor must build exactly what ours builds, or the comparison means nothing
    assert minimal_convert(spans) == spans_to_event_bodies(spans)

    cases: list[tuple[str, Callable[[], Any], Callable[[], list[bytes]] | None]] = [
        ("OTLP protobuf encode_spans+Serialize", otlp, lambda: [otlp()]),
        ("converter only (dicts)", convert, None),
        ("minimal converter only (the floor)", lambda: minimal_convert(spans), None),
        ("converter + stdlib json", convert_stdlib, convert_stdlib),
    ]
    if _json.BACKEND == "orjson":
        import orjson

        def convert_orjson() -> list[bytes]:
            return [orjson.dumps(b) for b in spans_to_event_bodies(spans).values()]

        cases.append(("converter + orjson", convert_orjson, convert_orjson))
        # the no-dict floor writes the same events (checked: decoded, they are ours)
        ours = spans_to_event_bodies(spans)
        written: dict[str, list[Any]] = {}
        for eid, text, metric_texts in direct_writer(spans):
            pair = written.setdefault(eid, [[], []])
            pair[0].append(json_loads(text))
            pair[1] += [json_loads(m) for m in metric_texts]
        assert {eid: [b["data"]["attributes"]["spans"], b["data"]["attributes"]["metrics"]]
                for eid, b in ours.items()} == written
        cases.append(("direct JSON writer, no dicts (floor)", lambda: direct_writer(spans), None))
    exporter = ExperimentEventsExporter(endpoint="http://127.0.0.1:9", compression="none")
    # every path writes the same bodies (checked), or the comparison means nothing
    expected = [_json.dumps(b) for b in spans_to_event_bodies(spans).values()]
    assert exporter_path(exporter, spans, use_c=False) == expected
    cases.append(
        (
            f"exporter path, no C ({_json.BACKEND})",
            lambda: exporter_path(exporter, spans, use_c=False),
            lambda: exporter_path(exporter, spans, use_c=False),
        )
    )
    if native.NATIVE:
        assert exporter_path(exporter, spans) == expected
        cases.append((f"exporter path, C encoder ({_json.BACKEND})",
                      lambda: exporter_path(exporter, spans),
                      lambda: exporter_path(exporter, spans)))
    else:
        print("the C encoder is not built (no compiler at install): its rows are left out")

    results = []
    timings = best_ns_rotating([fn for _, fn, _ in cases], repeats)
    for (label, _, payload), ns in zip(cases, timings, strict=True):
        raw = gz = None
        if payload is not None:
            blobs = payload()
            raw = sum(len(b) for b in blobs) / n
            gz = sum(len(gzip.compress(b, 6)) for b in blobs) / n
        results.append((label, ns / n, raw, gz))

    otlp_per_span = results[0][1]
    ours_dicts, floor_dicts = results[1][1], results[2][1]
    print(f"experiment events converter vs OTLP protobuf: {n} spans, best of {repeats} "
          "rounds (the variants take turns)")
    print(f"JSON backend used by the exporter: {_json.BACKEND}"
          + ("" if _json.BACKEND == "orjson" else " (orjson not importable)"))
    header = f"{'case':<40} {'ns/span':>10} {'spans/s':>12} {'vs OTLP':>8} {'B/span':>8} {'gz B/span':>10}"
    print(header)
    print("-" * len(header))
    for label, per_span, raw, gz in results:
        ratio = otlp_per_span / per_span
        print(
            f"{label:<40} {per_span:>10,.0f} {1e9 / per_span:>12,.0f} {ratio:>7.1f}x "
            f"{'' if raw is None else f'{raw:,.0f}':>8} {'' if gz is None else f'{gz:,.0f}':>10}"
        )
    print(
        f"\nconverter vs the minimal one (same dicts, no validation or fallbacks): "
        f"{ours_dicts / floor_dicts:.2f}x its time; the floor itself is "
        f"{otlp_per_span / floor_dicts:.1f}x OTLP before any JSON encoding"
    )
    writer = [r for r in results if r[0].startswith("direct JSON writer")]
    if writer:
        print(f"a converter writing the JSON text without dicts (orjson for the input only): "
              f"{otlp_per_span / writer[0][1]:.1f}x OTLP, JSON included")
    encoded = [r for r in results[3:] if r[2] is not None]
    print("\nspeed-up over OTLP protobuf, against issue 16's targets:")
    for label, per_span, _, _ in encoded:
        ratio = otlp_per_span / per_span
        target = TARGETS["orjson" if "orjson" in label else "stdlib json"]
        verdict = "met" if ratio >= target else "NOT met"
        print(f"  {label:<38} {ratio:5.1f}x  (target {target:.0f}x: {verdict})")
    if args.without_orjson or _json.BACKEND != "orjson":
        return 0
    # the package as installed without orjson (the stdlib's bytes: non-ASCII escaped), in a
    # child process that cannot import it: its own OTLP figure beside it
    print("\n--- the same without orjson (a child process where it is not importable) ---")
    child = ("import runpy, sys; sys.modules['orjson'] = None; sys.argv = sys.argv[1:]; "
             "runpy.run_path(sys.argv[0], run_name='__main__')")
    return subprocess.run([sys.executable, "-c", child, __file__, "--without-orjson",
                           "--spans", str(n), "--repeats", str(repeats)], check=False).returncode


if __name__ == "__main__":
    raise SystemExit(main())
