"""The C encoder (``events/_speedups_src/``) against the Python converter, byte for byte.

Whenever C encodes a span (does not decline it), its bytes must be exactly the Python
path's: ``dumps(span_to_event(...))`` (orjson, raw UTF-8) in UTF-8 mode, the standard
library's compact encoding in ASCII mode (an install without orjson). It may decline
anything, but not the common spans, and it must never raise, crash or leak.
"""

from __future__ import annotations

import contextlib
import enum
import gc
import importlib
import importlib.util
import json
import logging
import math
import random
import re
import struct
import subprocess
import sys
import textwrap
import tracemalloc
import types
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.resources import (
    DEPLOYMENT_ENVIRONMENT,
    SERVICE_NAME,
    SERVICE_NAMESPACE,
    SERVICE_VERSION,
    Resource,
)
from opentelemetry.sdk.trace import Event, ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
)
from pytest_httpserver import HTTPServer

from otel_experiments import attributes as A
from otel_experiments.events import _json, native
from otel_experiments.events.convert import DEPLOYMENT_ENVIRONMENT_NAME, span_to_event
from otel_experiments.events.metrics import check_metric
from otel_experiments.events.shapes import KeptAttributes
from otel_experiments.observation.metrics import record_metric

pytestmark = pytest.mark.skipif(not native.NATIVE, reason="the C encoder is not built")

ROOT = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent

#: ``gen_ai.*`` plus an exact key and a prefix of our own
KEPT = KeptAttributes(["custom.keep", "my.prefix.*"])


def speedups() -> Any:
    assert native._speedups is not None
    return native._speedups


# ------------------------------------------------------------------------------ helpers


def load_benchmark() -> types.ModuleType:
    """``benchmarks/bench_exporter.py`` (its ``make_spans`` is the common case)."""
    spec = importlib.util.spec_from_file_location(
        "bench_exporter", ROOT / "benchmarks" / "bench_exporter.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextmanager
def stdlib_encoder() -> Iterator[None]:
    """The C encoder configured as ``native`` configures it in an install without orjson:
    its ``dumps`` (for the payloads it hands to Python) is the standard library's.
    ``loads`` stays the one the Python converter uses here, so both paths decode alike."""
    original = _json.dumps
    _json.dumps = _json.stdlib_dumps  # type: ignore[assignment]
    try:
        importlib.reload(native)  # configure() again, with the stdlib dumps
        yield
    finally:
        _json.dumps = original  # type: ignore[assignment]
        importlib.reload(native)


def python_bytes(span: ReadableSpan, kept: KeptAttributes, ascii: bool
                 ) -> tuple[str, bytes, tuple[bytes, ...]] | None:
    """What the Python path gives for one span, in the encoding C's mode stands for."""
    converted = span_to_event(span, None, kept)
    if converted is None:
        return None
    encode = _json.stdlib_dumps if ascii else _json.dumps
    experiment_id, event, metrics = converted
    return experiment_id, encode(event), tuple(encode(m) for m in metrics)


def check_against_python(spans: Sequence[Any], kept: KeptAttributes, ascii: bool,
                         stats: Counter[str] | None = None) -> list[Any]:
    """C's result for every span it encodes is the Python path's bytes."""
    results = speedups().encode_spans(spans, kept, ascii)
    assert isinstance(results, list) and len(results) == len(spans)
    for span, result in zip(spans, results, strict=True):
        if result is None:
            if stats is not None:
                stats["declined"] += 1
            continue
        expected = python_bytes(span, kept, ascii)
        assert expected is not None, "C encoded a span the Python converter skips"
        assert type(result) is tuple and len(result) == 3
        assert result[0] == expected[0] and type(result[0]) is str
        assert result[1] == expected[1]
        assert type(result[2]) is tuple
        assert result[2] == expected[2]
        if stats is not None:
            stats["native"] += 1
            stats["metrics"] += len(result[2])
    return results


Groups = tuple[dict[str, list[tuple[bytes, tuple[bytes, ...]]]], int]


def wrapper_groups(spans: Sequence[Any], kept: KeptAttributes, use_c: bool) -> Groups:
    """What the package's wrapper gives, as ``({experiment id: [(event, metrics)]},
    spans not encodable)``; the metrics as a tuple (C gives a tuple, Python a list)."""
    groups: dict[str, list[tuple[bytes, tuple[bytes, ...]]]] = {}
    unencodable = 0
    if hasattr(native, "encode_span_groups"):
        raw, unencodable = native.encode_span_groups(spans, kept, use_c)
        for experiment_id, items in raw.items():
            groups[experiment_id] = [(item[0], tuple(item[1])) for item in items]
    else:  # the earlier wrapper: per span, in order
        for experiment_id, item in native.encode_span_events(spans, kept, use_c):
            if item is None:
                unencodable += 1
            else:
                groups.setdefault(experiment_id, []).append((item[0], tuple(item[1])))
    return groups, unencodable


def wrapper_paths_agree(spans: Sequence[Any], kept: KeptAttributes) -> None:
    fast = wrapper_groups(spans, kept, True)
    slow = wrapper_groups(spans, kept, False)
    assert fast == slow
    assert list(fast[0]) == list(slow[0])  # experiments in the same (first-seen) order


@contextmanager
def quiet_sdk() -> Iterator[None]:
    """The SDK warns about every attribute it refuses: not while generating thousands."""
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


class Text(str):
    """A str subclass: Python's isinstance rules take it, C declines it."""


class Level(enum.IntEnum):
    LOW = 1
    HUGE = 2**40


class Experiment(str, enum.Enum):
    """Experiment ids as enum members (str subclasses: C declines such a span)."""

    PROMPT_V2 = "exp-1"
    RICH = "exp-rich"


# ------------------------------------------------------------------------ real spans

RESOURCES = (
    Resource.create({SERVICE_NAME: "svc"}),
    Resource({
        SERVICE_NAME: 'sv"c\\\u00e9', SERVICE_VERSION: "1.2.3", SERVICE_NAMESPACE: "ns\U0001f600",
        DEPLOYMENT_ENVIRONMENT: "prod\x7f\x01", DEPLOYMENT_ENVIRONMENT_NAME: "",
    }),
    Resource({}),
    Resource({SERVICE_NAME: 5, SERVICE_VERSION: 1.5}),
    Resource({SERVICE_NAME: "lone\ud800"}),
)


class SdkTracers:
    """One provider per resource, spans kept in memory (built once per module)."""

    def __init__(self) -> None:
        self.pairs: list[tuple[TracerProvider, InMemorySpanExporter]] = []
        for resource in RESOURCES:
            memory = InMemorySpanExporter()
            provider = TracerProvider(resource=resource)
            provider.add_span_processor(SimpleSpanProcessor(memory))
            self.pairs.append((provider, memory))

    def tracer(self, index: int) -> tuple[trace.Tracer, InMemorySpanExporter]:
        provider, memory = self.pairs[index]
        return provider.get_tracer("native-tests"), memory

    def shutdown(self) -> None:
        for provider, _ in self.pairs:
            provider.shutdown()


@pytest.fixture(scope="module")
def sdk() -> Iterator[SdkTracers]:
    tracers = SdkTracers()
    yield tracers
    tracers.shutdown()


def finished_span(tracers: SdkTracers, build: Callable[[trace.Tracer], None],
                  resource: int = 0) -> ReadableSpan:
    tracer, memory = tracers.tracer(resource)
    memory.clear()
    build(tracer)
    return memory.get_finished_spans()[-1]


# ---------------------------------------------------------------------- span specs

ABSENT = "<absent>"  # a key not set at all (None: set to None)
TRACE_ID = 0x0AF7651916CD43DD8448EB211C80319C


def among(*choices: Any) -> st.SearchStrategy[Any]:
    """``sampled_from`` for choices that include str and int subclasses (which Hypothesis
    cannot record as plain choices)."""
    return st.one_of(*(st.just(choice) for choice in choices))


# Two kinds of span: "tame" ones (what instrumentation writes, with every character JSON
# escapes; C should encode most) and "wild" ones (anything a foreign SDK or hostile code
# might leave in a span; C declines many).
SPECIAL_CHARS = '"\\/\x00\x08\x0c\x1f\x7f\n\r\t \u00e9\u2028\uffff\U0001f600{}[]:,'
clean_texts = st.text(st.characters(exclude_categories=["Cs"]) | st.sampled_from(SPECIAL_CHARS),
                      max_size=12)
texts = clean_texts | st.text(st.characters() | st.sampled_from("\ud800\udfff\"\\"), max_size=6)
ints = st.integers(-(10**6), 10**6) | st.sampled_from([
    2**53, 2**53 + 1, -(2**53), -(2**53) - 1, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1,
    2**64 - 1, 2**64, 2**100, -(2**100),
])
floats = st.floats() | st.sampled_from([
    1e-7, 5e-5, 1e-4, 0.1, 1e15, 1e16, 1e22, -0.0, 2.0**53, math.nan, math.inf, -math.inf,
])
finite_floats = st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from(
    [1e-7, 5e-5, 1e-4, 0.1, 1e15, 1e16, 1e22, -0.0, 2.0**53])
scalars = texts | ints | floats | st.booleans()
tame_scalars = clean_texts | st.integers(-(2**63), 2**63 - 1) | finite_floats | st.booleans()
odd_scalars = st.builds(Text, texts) | among(Level.LOW, Level.HUGE, None)
values = scalars | odd_scalars | st.lists(scalars | st.none(), max_size=4).map(tuple)
tame_values = tame_scalars | st.lists(clean_texts, max_size=3).map(tuple)

json_values = st.recursive(
    st.none() | st.booleans() | ints | floats | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=10,
)
tame_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | finite_floats | clean_texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(clean_texts, inner, max_size=4),
    max_leaves=10,
)
JSON_SAMPLES = [
    '{"a":1,"a":2}', '[1,]', '{"a":1,}', '{"a":1}x', ' [ 1 , 2 ] ', '[-0]', '[0]', '[01]',
    '[1.0]', '[1e5]', '[1E5]', '[123456789012345678]', '[1234567890123456789]',
    '[-123456789012345678]', '"\\u001f"', '"\\u001F"', '"\\u0008"', '"\\u000a"', '"\\/"',
    '"\\u00e9"', '"\\ud800"', '"\\ud83d\\ude00"', '[true,false,null]', '[tru]', '', '   ',
    '{}', '{ }', '[ ]', '\t{"k":\n"v"}\r\n', '"a\\"b"', '{"\\n":1}', '{"x":1,"\\u0078":2}',
    '[1]]', 'nul', 'null', 'true', '-', '-5', '+5', '{"a" :1}', '[1 2]', '{"a":1 "b":2}',
    '["\x01"]', '{"a":[{"a":1},{"a":2}]}', '[' * 63 + ']' * 63, '[' * 65 + ']' * 65,
    "{" + ",".join(f'"k{i}":{i}' for i in range(33)) + "}", '{"a":NaN}', '[Infinity]',
    '[1e400]', '[18446744073709551616]', '{"\u00e9":"\U0001f600\x7f"}', '"\\\\"',
    '{"a":"b\\u0000c"}', '{1:2}', "{'a':1}", '[1,\u00a02]', '\u00a0[1]', '{"a":"\\u0000"}',
    '{"a":{"b":{"c":[1,{"d":"e"}]}},"f":-12,"g":[]}', '[1,-1,0,999999999999999999]',
]
FORMATS = st.tuples(
    st.sampled_from([(",", ":"), (", ", ": "), (" ,\n", " :\t")]),
    st.sampled_from([None, 2, "\t"]),
    st.booleans(),
)


def dumped(value: Any, form: tuple[Any, Any, bool]) -> str:
    return json.dumps(value, separators=form[0], indent=form[1], ensure_ascii=form[2])


tame_json_texts = st.builds(dumped, tame_json_values, FORMATS)


@st.composite
def json_texts(draw: st.DrawFn) -> str:
    choice = draw(st.integers(0, 3))
    if choice == 0:
        return draw(st.sampled_from(JSON_SAMPLES))
    if choice == 1:  # a JSON value, formatted any of the ways a producer might
        return dumped(draw(json_values), draw(FORMATS))
    if choice == 2:  # ... then damaged
        text = json.dumps(draw(json_values))
        cut = draw(st.integers(0, len(text)))
        return text[:cut] + draw(st.sampled_from(["", ",", "}", " ", "x", '"']))
    return draw(texts)


mime_types = among(
    ABSENT, A.MIME_JSON, A.MIME_TEXT, "Application/JSON", "application/json ", "",
    Text(A.MIME_JSON), 5, None,
)

TAG_KEYS = (*A.STAMPED_KEYS[1:], A.OBSERVE_FEATURE_SLUG, A.EXPERIMENT_ENTRY)
PAYLOAD_KEYS = (A.INPUT_VALUE, A.OUTPUT_VALUE, A.EXPECTED_OUTPUT_VALUE, A.METADATA)
MIME_KEYS = (A.INPUT_MIME_TYPE, A.OUTPUT_MIME_TYPE, A.EXPECTED_OUTPUT_MIME_TYPE)
KEPT_KEYS = (
    A.GEN_AI_INPUT_TOKENS, A.GEN_AI_OUTPUT_TOKENS, A.GEN_AI_RESPONSE_MODEL,
    A.GEN_AI_REQUEST_MODEL, "gen_ai.prompt", "custom.keep", "my.prefix.x",
)
OTHER_KEYS = ("http.method", "custom.other", "gen_ai", "my.prefix", A.REPETITION)
KNOWN_KEYS = (*TAG_KEYS, *PAYLOAD_KEYS, *MIME_KEYS, A.DATASET_RECORD_ID, *KEPT_KEYS,
              *OTHER_KEYS)


def value_for(key: str, wild: bool) -> st.SearchStrategy[Any]:
    if key == A.EXPERIMENT_ID:
        tame = st.sampled_from(["exp-1", "exp/2", "\u00e9xp-\U0001f600"]) | clean_texts.filter(bool)
        return tame | among("", Text("exp-1"), 5, None, "exp\ud800") if wild else tame
    if key in TAG_KEYS:
        return texts | values if wild else clean_texts
    if key in PAYLOAD_KEYS:
        return json_texts() | texts | values if wild else tame_json_texts | clean_texts
    if key in MIME_KEYS:
        return mime_types.filter(lambda m: m != ABSENT) if wild else among(A.MIME_JSON, A.MIME_TEXT)
    if key == A.DATASET_RECORD_ID:
        return texts | among("rec-1", "", Text("rec-1"), 7) if wild else clean_texts
    if key.startswith(("gen_ai", "custom", "my.")):
        if not wild:
            return tame_values
        return values | st.lists(values, max_size=3).map(tuple) | st.just("k" * 4100)
    return values if wild else tame_values


@st.composite
def attribute_lists(draw: st.DrawFn, wild: bool) -> list[tuple[Any, Any]]:
    keys = st.sampled_from(KNOWN_KEYS) | (texts | st.just("") if wild else st.nothing())
    chosen = draw(st.lists(keys, unique=True, max_size=10))
    pairs: list[tuple[Any, Any]] = [(key, draw(value_for(key, wild))) for key in chosen]
    if not wild or draw(st.integers(0, 4)) > 0:  # an experiment id, anywhere
        position = draw(st.integers(0, len(pairs)))
        pairs.insert(position, (A.EXPERIMENT_ID, draw(value_for(A.EXPERIMENT_ID, wild))))
    return pairs


LABELS = [
    "accuracy", "  leading", "   ", "", "\u3000", "\u00e9" * 128, "\u00e9" * 129, "\u00e9" * 200,
    "\U0001f600" * 128, "\U0001f600" * 129, "a" * 256, "a" * 257, "x\ud800", 'q"\\\x7f',
]
metric_types = among("score", "boolean", "categorical", "bogus", Text("score"), 5, ABSENT, None)
metric_values = (ints | floats | st.booleans() | texts | odd_scalars
                 | among("c" * 1024, "c" * 1025, ABSENT, (1, 2)))
timestamps_ms = ints | among(ABSENT, True, False, 1.5, Level.LOW, None, -1)
event_timestamps = st.sampled_from([None, 0, -1, 1, 999_999, 10**18, 2**63 - 1, 2**63, 2**64]) | ints


@st.composite
def metric_event_attributes(draw: st.DrawFn) -> list[tuple[str, Any]]:
    candidates = {
        A.METRIC_LABEL: draw(st.sampled_from(LABELS) | texts | among(5, Text("l"), ABSENT)),
        A.METRIC_TYPE: draw(metric_types),
        A.METRIC_VALUE: draw(metric_values),
        A.METRIC_TIMESTAMP_MS: draw(timestamps_ms),
        A.METRIC_METADATA: draw(st.sampled_from([ABSENT, ABSENT, None]) | json_texts() | values),
        "other": draw(st.sampled_from([ABSENT, "x"])),
    }
    pairs = [(k, v) for k, v in candidates.items() if not (isinstance(v, str) and v == ABSENT)]
    return draw(st.permutations(pairs))


@st.composite
def recorded_metrics(draw: st.DrawFn) -> tuple[Any, ...]:
    """What ``record_metric`` accepts: ``("record", label, value, type, metadata)``."""
    label = draw(st.sampled_from([LABELS[0], *LABELS[5:9], LABELS[10]]) | clean_texts)
    value = draw(st.booleans() | st.integers(-(2**60), 2**60) | floats | clean_texts)
    try:
        check_metric(label, value)
    except (TypeError, ValueError):
        label, value = "fallback", 0.5
    metadata = draw(st.none() | st.dictionaries(clean_texts, tame_json_values, max_size=2))
    return ("record", label, value, None, metadata)


@st.composite
def event_specs(draw: st.DrawFn, wild: bool) -> tuple[Any, ...]:
    kind = draw(st.integers(0, 5))
    if kind <= (1 if wild else 4):
        return draw(recorded_metrics())
    name = draw(among(A.METRIC_EVENT_NAME, A.METRIC_EVENT_NAME, Text(A.METRIC_EVENT_NAME),
                      "other", "exception"))
    if not wild:
        return ("event", "other", [("x", draw(clean_texts))], draw(event_timestamps))
    if kind == 5:  # the metric name, but no (or unrelated) attributes
        return ("event", name, draw(st.sampled_from([[], [("x", 1)]])), draw(event_timestamps))
    return ("event", name, draw(metric_event_attributes()), draw(event_timestamps))


ODD_IDS = among(0, 1, 2**64 - 1, 2**64, 2**128 - 1, 2**128, -1, True)


@st.composite
def span_specs(draw: st.DrawFn) -> dict[str, Any]:
    wild = draw(st.integers(0, 2)) == 0
    direct = wild and draw(st.booleans())  # a hand-made ReadableSpan (a foreign SDK's)
    times = st.sampled_from([0, 1, -5, 2**63 - 1, 2**63, -(2**63), 10**18]) | st.integers(0, 2**62)
    spec: dict[str, Any] = {
        "wild": wild,
        "direct": direct,
        "name": draw(texts | among("task", Text("task")) if wild else clean_texts),
        "attributes": draw(attribute_lists(wild)),
        "events": draw(st.lists(event_specs(wild), max_size=4)),
        "status": draw(among(StatusCode.UNSET, StatusCode.OK, StatusCode.ERROR) if wild
                       else among(StatusCode.UNSET, StatusCode.OK)),
        "description": draw(st.sampled_from([None, "went wrong", ""])),
        "exception": wild and draw(st.booleans()),
        "parent": draw(st.none() | st.integers(1, 2**64 - 1) | (ODD_IDS if wild else st.nothing())),
        "resource": draw(st.integers(0, len(RESOURCES) - (1 if wild else 2))),
        "kind": draw(among(*SpanKind)),
        "start": draw(st.none() | times) if wild else None,
        "end": draw(st.none() | times) if wild else None,
    }
    if direct:
        spec["ids"] = (draw(st.integers(1, 2**128 - 1) | ODD_IDS),
                       draw(st.integers(1, 2**64 - 1) | ODD_IDS))
        spec["kind"] = draw(among(*SpanKind, 7, "weird"))
        spec["plain_events"] = draw(st.booleans())
        spec["no_resource"] = draw(st.booleans())
    return spec


def inject(attributes: Any, pairs: Iterable[tuple[Any, Any]]) -> None:
    """Values the SDK refused (or changed), written as a foreign SDK might have."""
    inner = attributes._dict if hasattr(attributes, "_dict") else attributes
    for key, value in pairs:
        if key not in inner or type(inner[key]) is not type(value):
            inner[key] = value


def event_attributes(spec: tuple[Any, ...]) -> list[tuple[str, Any]]:
    if spec[0] == "event":
        return list(spec[2])
    _, label, value, metric_type, metadata = spec
    pairs = [(A.METRIC_LABEL, label), (A.METRIC_TYPE, check_metric(label, value, metric_type)),
             (A.METRIC_VALUE, value)]
    if metadata is not None:
        pairs.append((A.METRIC_METADATA, json.dumps(metadata, separators=(",", ":"))))
    return [*pairs, (A.METRIC_TIMESTAMP_MS, 1_700_000_000_000)]


def build_sdk_span(tracers: SdkTracers, spec: dict[str, Any]) -> ReadableSpan:
    tracer, memory = tracers.tracer(spec["resource"])
    memory.clear()
    context = None
    if spec["parent"] is not None:
        parent = SpanContext(TRACE_ID, spec["parent"], is_remote=True,
                             trace_flags=TraceFlags(TraceFlags.SAMPLED))
        context = trace.set_span_in_context(NonRecordingSpan(parent))
    span = tracer.start_span(spec["name"], context=context, kind=spec["kind"],
                             start_time=spec["start"])
    for key, value in spec["attributes"]:
        span.set_attribute(key, value)
    for event in spec["events"]:
        if event[0] == "record":
            record_metric(span, *event[1:])
        else:
            span.add_event(event[1], dict(event[2]), timestamp=event[3])
    if spec["exception"]:
        span.record_exception(ValueError("boom \u00e9"))
    if spec["status"] is StatusCode.ERROR:
        span.set_status(Status(StatusCode.ERROR, spec["description"]))
    elif spec["status"] is StatusCode.OK:
        span.set_status(Status(StatusCode.OK))
    span.end(end_time=spec["end"])
    finished = memory.get_finished_spans()[-1]
    inject(finished._attributes, spec["attributes"])
    for event, event_spec in zip(finished._events._dq, spec["events"], strict=False):
        if event_spec[0] == "event":
            inject(event._attributes, event_spec[2])
    return finished


def build_direct_span(spec: dict[str, Any]) -> ReadableSpan:
    events: list[Event] = []
    for event_spec in spec["events"]:
        pairs = event_attributes(event_spec)
        name = event_spec[1] if event_spec[0] == "event" else A.METRIC_EVENT_NAME
        timestamp = event_spec[3] if event_spec[0] == "event" else 1_700_000_000_000_000_000
        attrs: Any = dict(pairs) if spec["plain_events"] else BoundedAttributes(attributes=dict(pairs))
        if not spec["plain_events"]:
            inject(attrs, pairs)
        events.append(Event(name, attrs, timestamp=timestamp))
    if spec["exception"]:
        events.append(Event("exception", {"exception.type": "ValueError",
                                          "exception.message": "boom"}, timestamp=5))
    parent = None
    if spec["parent"] is not None:
        parent = SpanContext(TRACE_ID, spec["parent"], is_remote=True)
    status = Status(spec["status"], spec["description"] if spec["status"] is StatusCode.ERROR else None)
    span = ReadableSpan(
        spec["name"],
        context=SpanContext(*spec["ids"], is_remote=False),
        parent=parent,
        resource=RESOURCES[spec["resource"]],
        attributes=dict(spec["attributes"]),
        events=tuple(events) if spec["plain_events"] else list(events),
        kind=spec["kind"],
        status=status,
        start_time=spec["start"],
        end_time=spec["end"],
    )
    if spec["no_resource"]:
        span._resource = None  # type: ignore[assignment]
    return span


def build_span(tracers: SdkTracers, spec: dict[str, Any]) -> ReadableSpan:
    return build_direct_span(spec) if spec["direct"] else build_sdk_span(tracers, spec)


# --------------------------------------------------------------- 1. differential tests

DIFFERENTIAL = settings(
    max_examples=300, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.mark.parametrize("ascii_mode", [False, True], ids=["utf8", "ascii"])
def test_native_bytes_are_the_python_bytes(sdk: SdkTracers, ascii_mode: bool) -> None:
    stats: Counter[str] = Counter()

    @DIFFERENTIAL
    @given(st.lists(span_specs(), min_size=1, max_size=4))
    def check(specs: list[dict[str, Any]]) -> None:
        check_against_python([build_span(sdk, spec) for spec in specs], KEPT, ascii_mode, stats)

    # ASCII mode is the stdlib's bytes: the package's encoder then is the stdlib's
    with (stdlib_encoder() if ascii_mode else contextlib.nullcontext()), quiet_sdk():
        check()
    # not vacuous: many spans and metrics went through C (and, with orjson, many declined)
    assert stats["native"] >= 150 and stats["metrics"] >= 100, stats
    assert ascii_mode or stats["declined"] >= 50, stats


@settings(DIFFERENTIAL, max_examples=200)
@given(specs=st.lists(span_specs(), min_size=1, max_size=6))
def test_the_wrapper_gives_the_same_groups_with_and_without_c(
    sdk: SdkTracers, specs: list[dict[str, Any]]
) -> None:
    """The package's entry point: same experiments, same order, same bytes (UTF-8 mode,
    what the package uses with orjson installed)."""
    with quiet_sdk():
        spans = [build_span(sdk, spec) for spec in specs]
    wrapper_paths_agree(spans, KEPT)


def test_spans_c_declines_keep_their_place(sdk: SdkTracers) -> None:
    """A span whose experiment id C does not read (a str subclass such as a StrEnum
    member; a foreign span) stays where it was among its experiment's spans."""
    def build(tracer: trace.Tracer) -> None:
        with tracer.start_as_current_span("first", attributes={A.EXPERIMENT_ID: Experiment.PROMPT_V2}):
            pass
        with tracer.start_as_current_span("second", attributes={A.EXPERIMENT_ID: "exp-0"}):
            pass
        with tracer.start_as_current_span("third", attributes={A.EXPERIMENT_ID: "exp-1"}):
            pass

    tracer, memory = sdk.tracer(0)
    memory.clear()
    build(tracer)
    spans = list(memory.get_finished_spans())
    assert speedups().encode_spans(spans, KEPT, False)[0] is None  # declined: Python's
    names = {use_c: [[json.loads(event)["name"] for event, _ in items]
                     for items in wrapper_groups(spans, KEPT, use_c)[0].values()]
             for use_c in (True, False)}
    assert names[False] == [["first", "third"], ["second"]]
    assert names[True] == names[False]


class ProxySpan(ReadableSpan):
    """A wrapping SDK's span whose public properties are the truth (its ``__dict__``
    lacks ``_events``, so the Python converter reads the properties)."""

    @property
    def attributes(self) -> Any:
        return {A.EXPERIMENT_ID: "exp-public"}

    @property
    def events(self) -> Any:
        return ()


def test_a_declined_span_is_filed_under_the_experiment_python_reads() -> None:
    span = ProxySpan("s", context=SpanContext(TRACE_ID, 2, False),
                     attributes={A.EXPERIMENT_ID: "exp-private"})
    del vars(span)["_events"]
    converted = span_to_event(span)
    assert converted is not None and converted[0] == "exp-public"
    assert list(wrapper_groups([span], KEPT, False)[0]) == ["exp-public"]
    assert list(wrapper_groups([span], KEPT, True)[0]) == ["exp-public"]


def test_json_payload_texts(sdk: SdkTracers) -> None:
    """Every sample JSON text as a JSON-tagged input, an expected output without a MIME
    type, and metadata: C's bytes are Python's (or C declines)."""
    spans = []
    for key in (A.INPUT_VALUE, A.EXPECTED_OUTPUT_VALUE, A.METADATA):
        for text in JSON_SAMPLES:
            def build(tracer: trace.Tracer, key: str = key, text: str = text) -> None:
                with tracer.start_as_current_span("t", attributes={A.EXPERIMENT_ID: "e"}) as span:
                    span.set_attribute(key, text)
                    if key == A.INPUT_VALUE:
                        span.set_attribute(A.INPUT_MIME_TYPE, A.MIME_JSON)

            spans.append(finished_span(sdk, build))
    results = check_against_python(spans, KEPT, False)
    assert sum(r is not None for r in results) >= len(JSON_SAMPLES)  # not all declined
    wrapper_paths_agree(spans, KEPT)
    with stdlib_encoder():
        check_against_python(spans, KEPT, True)


def test_every_escape_position_in_short_and_long_strings(sdk: SdkTracers) -> None:
    """A character to escape (or a non-ASCII one) at each position of strings of 0 to 40
    characters, as a span name: C reads 16 then 8 bytes at a time, and the last few in one
    padded or overlapping word; the bytes are Python's in both modes."""
    names = [""] + ["a" * n for n in range(1, 41)]
    for n in range(1, 41):
        for position in range(n):
            for special in ('"', "\\", "\n", "\x00", "\x1f", "\x7f", "\u00e9", "\U0001f600"):
                names.append("a" * position + special + "b" * (n - position - 1))
    spans = []
    for name in names:
        def build(tracer: trace.Tracer, name: str = name) -> None:
            with tracer.start_as_current_span(name, attributes={A.EXPERIMENT_ID: "e"}):
                pass

        spans.append(finished_span(sdk, build))
    assert all(r is not None for r in check_against_python(spans, KEPT, False))
    with stdlib_encoder():
        assert all(r is not None for r in check_against_python(spans, KEPT, True))


def test_float_metric_values_are_repr(sdk: SdkTracers) -> None:
    """Float metric values, with and without the short-decimal path (at most 6 decimals,
    1e-4 <= |x| < 1e9), at its edges and at random: repr()'s text, in both modes."""
    rng = random.Random(16)
    edges = [1e-4, 9.999999e-5, 1.0001e-4, 1e9, 999999999.999999, 999999999.9999999, 0.1,
             0.2, 0.3, 0.1 + 0.2, 1 / 3, 2 / 3, 1.005, 2.675, 0.000123, 0.0001234567, -0.0,
             0.0, 5e-324, 1e16, 123456789.123456, 100.0, 2.5, -7.25, 4503599627370497.0]
    values = edges + [-v for v in edges]
    values += [rng.randrange(-10**9, 10**9) / 10 ** rng.randrange(8) for _ in range(3000)]
    values += [round(rng.uniform(-1e9, 1e9), rng.randrange(9)) for _ in range(3000)]
    values += [struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0]
               for _ in range(1000)]
    values = [v for v in values if math.isfinite(v)]
    spans = []
    for chunk in range(0, len(values), 50):
        def build(tracer: trace.Tracer, part: list[float] = values[chunk:chunk + 50]) -> None:
            with tracer.start_as_current_span("m", attributes={A.EXPERIMENT_ID: "e"}) as span:
                for value in part:
                    span.add_event(A.METRIC_EVENT_NAME, {
                        A.METRIC_LABEL: "l", A.METRIC_TYPE: "score", A.METRIC_VALUE: value})

        spans.append(finished_span(sdk, build))
    with stdlib_encoder():  # ASCII mode writes exponents too: no span is declined
        results = check_against_python(spans, KEPT, True)
    assert all(r is not None for r in results)
    texts = [m.split(b'"score_value":')[1].split(b',"timestamp_ms"')[0]
             for r in results for m in r[2]]
    assert texts == [repr(v).encode() for v in values]
    check_against_python(spans, KEPT, False)  # UTF-8 mode: the same, or declined


# ---------------------------------------------------------------- 2. the common case


def rich_span(tracers: SdkTracers, resource: int = 0) -> ReadableSpan:
    """Expected output, metadata, gen_ai attributes, a record id, a parent, metrics."""
    def build(tracer: trace.Tracer) -> None:
        with tracer.start_as_current_span("record", attributes={
            A.EXPERIMENT_ID: "exp-rich", A.EXPERIMENT_NAME: "R\u00e9sum\u00e9 \U0001f600",
            A.ORGANIZATION_ID: "org-1", A.USER_ID: "u-1", A.EXPERIMENT_ENTRY: "true",
        }), tracer.start_as_current_span("llm") as span:
            span.set_attribute(A.EXPERIMENT_ID, "exp-rich")
            span.set_attribute(A.INPUT_VALUE, json.dumps({"q": "caf\u00e9?", "n": [1, 2]}))
            span.set_attribute(A.INPUT_MIME_TYPE, A.MIME_JSON)
            span.set_attribute(A.OUTPUT_VALUE, 'It says "hi"\n\tcaf\u00e9 \U0001f600')
            span.set_attribute(A.OUTPUT_MIME_TYPE, A.MIME_TEXT)
            span.set_attribute(A.EXPECTED_OUTPUT_VALUE, '{"answer": "hi", "score": 1}')
            span.set_attribute(A.METADATA, json.dumps({"split": "test", "k": 3}))
            span.set_attribute(A.DATASET_RECORD_ID, "rec-42")
            span.set_attribute(A.GEN_AI_REQUEST_MODEL, "gpt-x")
            span.set_attribute(A.GEN_AI_INPUT_TOKENS, 120)
            span.set_attribute(A.GEN_AI_OUTPUT_TOKENS, 30)
            span.set_attribute("gen_ai.response.finish_reasons", ("stop",))
            span.set_attribute("custom.keep", 0.25)
            span.set_attribute("not.kept", "x")
            record_metric(span, "relevance", 0.75)
            record_metric(span, "exact", True)
            record_metric(span, "label", "good", metadata={"by": "judge"})
            record_metric(span, "tokens", 2**53)
            span.set_status(Status(StatusCode.OK))

    tracer, memory = tracers.tracer(resource)
    memory.clear()
    build(tracer)
    (child,) = [s for s in memory.get_finished_spans() if s.name == "llm"]
    return child


def test_the_common_case_is_encoded_by_c(sdk: SdkTracers) -> None:
    bench = load_benchmark()
    spans = [*bench.make_spans(50), rich_span(sdk), rich_span(sdk, resource=1)]
    rich = spans[-1]
    assert rich.parent is not None and len(rich.events) == 4
    for ascii in (False, True):
        results = speedups().encode_spans(spans, KEPT, ascii)
        assert None not in results, [i for i, r in enumerate(results) if r is None]
    results = check_against_python(spans, KEPT, False)
    event = json.loads(results[-1][1])  # every part made it in
    assert set(event) >= {"parent_id", "dataset_record_id", "attributes"}
    assert set(event["meta"]) == {"input", "output", "expected_output", "metadata"}
    assert set(event["attributes"]) == {
        A.GEN_AI_REQUEST_MODEL, A.GEN_AI_INPUT_TOKENS, A.GEN_AI_OUTPUT_TOKENS,
        "gen_ai.response.finish_reasons", "custom.keep",
    }
    assert len(results[-1][2]) == 4
    wrapper_paths_agree(spans, KEPT)
    with stdlib_encoder():
        results = check_against_python(spans, KEPT, True)
        assert None not in results
        assert all(max(r[1]) < 0x80 for r in results)  # ASCII mode: ASCII bytes


# ------------------------------------------------------------------- 3. no leaks


def declined_spans(tracers: SdkTracers) -> list[ReadableSpan]:
    """Spans C declines at different points (each after taking some references)."""
    made: list[ReadableSpan] = []

    def span_with(attrs: dict[str, Any], status: StatusCode = StatusCode.UNSET,
                  metric: dict[str, Any] | None = None) -> ReadableSpan:
        def build(tracer: trace.Tracer) -> None:
            with tracer.start_as_current_span("declined", attributes={
                A.EXPERIMENT_ID: "exp-declined", A.USER_ID: "u"
            }) as span:
                for key, value in attrs.items():
                    span.set_attribute(key, value)
                if metric is not None:
                    span.add_event(A.METRIC_EVENT_NAME, metric, timestamp=7)
                if status is StatusCode.ERROR:
                    span.record_exception(RuntimeError("no"))
                    span.set_status(Status(StatusCode.ERROR, "no"))

        span = finished_span(tracers, build)
        made.append(span)
        return span

    span_with({}, StatusCode.ERROR)
    span_with({A.OUTPUT_VALUE: "lone \ud800"})
    span_with({A.INPUT_VALUE: "{not json", A.INPUT_MIME_TYPE: A.MIME_JSON})
    span_with({A.INPUT_VALUE: '{"a": 1.5}', A.INPUT_MIME_TYPE: A.MIME_JSON}, StatusCode.ERROR)
    span_with({"gen_ai.big": 2**70})
    span_with({A.DATASET_RECORD_ID: "r"}, metric={A.METRIC_LABEL: "   ", A.METRIC_TYPE: "score",
                                                  A.METRIC_VALUE: 1})
    span_with({A.METADATA: "m"}, metric={A.METRIC_LABEL: "ok", A.METRIC_TYPE: "score",
                                         A.METRIC_VALUE: 1e-7})
    span_with({A.USER_ID: 5})
    span = span_with({A.DATASET_RECORD_ID: "x"})
    span._attributes._dict[A.DATASET_RECORD_ID] = Text("rec")  # type: ignore[union-attr]
    span = span_with({A.OUTPUT_VALUE: "x"})
    span._attributes._dict[A.OUTPUT_VALUE] = ("a", "b")  # type: ignore[union-attr]
    span = span_with({}, metric={A.METRIC_LABEL: "l", A.METRIC_TYPE: "score", A.METRIC_VALUE: 1})
    span._events._dq[0]._attributes = None  # type: ignore[attr-defined]
    made.append(ReadableSpan("foreign", context=SpanContext(2**128, 1, False),
                             attributes={A.EXPERIMENT_ID: "exp-declined"}))
    return made


def test_no_reference_or_memory_leaks(sdk: SdkTracers) -> None:
    bench = load_benchmark()
    experiment_id = "".join(["exp-", "leak-check"])  # unique objects, not interned
    label = "".join(["leak-", "label"])
    text = "".join(["some ", "input ", "text"])
    payload = json.dumps({"k": [1, 2, 3], "t": text})
    resource = Resource.create({SERVICE_NAME: "".join(["leak-", "svc"])})
    tracer_provider = TracerProvider(resource=resource)
    memory = InMemorySpanExporter()
    tracer_provider.add_span_processor(SimpleSpanProcessor(memory))
    with tracer_provider.get_tracer("t").start_as_current_span(
        "tracked", attributes={A.EXPERIMENT_ID: experiment_id, A.USER_ID: text}
    ) as span:
        span.set_attribute(A.INPUT_VALUE, payload)
        span.set_attribute(A.INPUT_MIME_TYPE, A.MIME_JSON)
        span.set_attribute(A.OUTPUT_VALUE, text)
        span.set_attribute(A.METADATA, payload)
        span.set_attribute(A.GEN_AI_REQUEST_MODEL, text)
        record_metric(span, label, 0.5, metadata={"m": 1})
        record_metric(span, label, "category")
    tracer_provider.shutdown()
    tracked_span = memory.get_finished_spans()[0]
    spans = [tracked_span, *bench.make_spans(10), *declined_spans(sdk), tracked_span]
    kept = KeptAttributes(["custom.keep"])

    tracked: list[Any] = [experiment_id, label, text, payload, resource, kept, kept.shapes, spans]
    for item in spans:
        fields = vars(item)
        tracked += [item, fields, fields["_attributes"], fields["_status"], fields["_context"],
                    fields["_resource"]]
        tracked += [v for v in getattr(fields["_attributes"], "_dict", {}).values()
                    if type(v) in (str, tuple, float)]
        for event in getattr(fields["_events"], "_dq", ()):
            tracked += [event, vars(event), event._attributes]

    # singletons (a foreign span's None resource, ...) are shared with every thread left
    # running by other tests: their counts move without us
    tracked = [obj for obj in tracked if obj is not None and type(obj) is not bool]
    encoders = [speedups().encode_spans]
    if hasattr(speedups(), "encode_groups"):  # the exporter's call
        encoders.append(speedups().encode_groups)
    first = [encode(spans, kept, ascii) for encode in encoders for ascii in (False, True)]
    results = first[0]
    assert results[0] is not None and results[0][0] == experiment_id
    assert None in results  # a mixed list
    del results
    before = [sys.getrefcount(obj) for obj in tracked]
    shapes = len(kept.shapes)
    for i in range(1000):
        for number, encode in enumerate(encoders):
            again = encode(spans, kept, bool(i & 1))
            assert again == first[2 * number + (i & 1)]
            del again
    after = [sys.getrefcount(obj) for obj in tracked]
    changed = [(type(obj).__name__, repr(obj)[:60], b, a)
               for obj, b, a in zip(tracked, before, after, strict=True) if a != b]
    assert changed == []
    assert len(kept.shapes) == shapes

    # nor memory: what one call allocates is all freed (a leaked object per call shows).
    # Only what this file's calls (and the helpers C calls back) allocate is counted:
    # another test's leftover thread does not move the measure.
    def traced() -> int:
        snapshot = tracemalloc.take_snapshot().filter_traces([
            tracemalloc.Filter(True, __file__),
            tracemalloc.Filter(True, "*/otel_experiments/events/*"),
        ])
        return sum(stat.size for stat in snapshot.statistics("filename"))

    gc.collect()
    tracemalloc.start(1)
    try:
        for i in range(50):  # warm-up (caches, free lists)
            for encode in encoders:
                encode(spans, kept, bool(i & 1))
        gc.collect()
        start = traced()
        for i in range(500):
            for encode in encoders:
                encode(spans, kept, bool(i & 1))
        gc.collect()
        end = traced()
        alive = [encoders[0](spans, kept, False) for _ in range(20)]
        seen = traced() - end  # the measure does see what the encoder allocates
        del alive
    finally:
        tracemalloc.stop()
    assert seen > 16 * 1024, seen
    assert end - start < 16 * 1024, end - start


# ------------------------------------------------------------------- 4. robustness


class Slotted:
    __slots__ = ("x",)


class DictRaises:
    @property
    def __dict__(self) -> Any:  # type: ignore[override]
        raise RuntimeError("no dict")


class DictIsList:
    @property
    def __dict__(self) -> Any:  # type: ignore[override]
        return [1, 2]


class RaisingIterable:
    """An events container whose iteration fails midway."""

    def __init__(self, events: Sequence[Any]) -> None:
        self._dq = self._iterate(events)

    @staticmethod
    def _iterate(events: Sequence[Any]) -> Iterator[Any]:
        yield from events
        raise RuntimeError("iteration failed")


class BadKept:
    """A kept-attributes object whose shape() fails or returns nonsense."""

    def __init__(self, shape: Any) -> None:
        self.shapes: dict[Any, Any] = {}
        self._shape = shape

    def shape(self, keys: tuple[str, ...]) -> Any:
        if isinstance(self._shape, Exception):
            raise self._shape
        return self._shape


def good_span(**overrides: Any) -> ReadableSpan:
    span = ReadableSpan(
        "good", context=SpanContext(TRACE_ID, 0x00F067AA0BA902B7, False),
        attributes={A.EXPERIMENT_ID: "exp-robust", A.OUTPUT_VALUE: "out"},
        events=(Event(A.METRIC_EVENT_NAME, {A.METRIC_LABEL: "l", A.METRIC_TYPE: "score",
                                            A.METRIC_VALUE: 1}, timestamp=5_000_000),),
        start_time=10, end_time=20,
    )
    fields = vars(span)
    for name, value in overrides.items():
        if value is DELETE:
            del fields[name]
        else:
            fields[name] = value
    return span


DELETE = object()
METRIC = {A.METRIC_LABEL: "l", A.METRIC_TYPE: "score", A.METRIC_VALUE: 1}

#: Entries C must decline: not spans at all, or spans the Python converter skips or
#: cannot convert.
MUST_DECLINE: list[Any] = [
    None, 0, "span", b"span", 1.5, object(), [], {}, Slotted(), DictRaises(), DictIsList(),
    types.SimpleNamespace(), ReadableSpan,
    *[good_span(**{name: DELETE}) for name in (
        "_name", "_context", "_parent", "_start_time", "_end_time", "_status", "_kind",
        "_resource", "_attributes", "_events")],
    *[good_span(_attributes=value) for value in (
        None, [], "attributes", 5, object(), types.SimpleNamespace(_dict=[1]),
        types.SimpleNamespace(_dict=None), {}, {A.EXPERIMENT_ID: ""},
        {A.EXPERIMENT_ID: None}, {A.EXPERIMENT_ID: 5}, {"other": "x"}, {1: 2, (3,): 4},
    )],
    *[good_span(_context=value) for value in (None, (1,), "ab", ())],
    *[good_span(_events=value) for value in (
        "abc", [None], [object()], [Slotted()], [types.SimpleNamespace()],
        [types.SimpleNamespace(_name=A.METRIC_EVENT_NAME)],
        [types.SimpleNamespace(_name=A.METRIC_EVENT_NAME, _attributes=[1])],
        [types.SimpleNamespace(_name=A.METRIC_EVENT_NAME, _attributes="s", _timestamp=1)],
        types.SimpleNamespace(_dq=5),
    )],
    good_span(_resource=5),
    good_span(_kind=[]),
]

#: Odd entries the Python converter converts: C declines them or gives the same bytes.
MAY_DECLINE: list[Any] = [
    *[good_span(_name=value) for value in (None, 5, "lone \ud800", Text("n"))],
    *[good_span(_context=value) for value in (
        (-1, 2), (2**128, 2), (1, 2**64), (True, False), [1, 2], (1, 2, 3, 4))],
    *[good_span(_parent=value) for value in ((0, -1), (0, 2**64), (1, 2), (0, True))],
    *[good_span(_start_time=value) for value in (1.5, 2**64, -(2**63) - 1, None, True)],
    *[good_span(_end_time=value) for value in (2.5, 2**64, None, 5, 2**63 - 1)],
    good_span(_start_time=-(2**63), _end_time=2**63 - 1),
    good_span(_status=Status(StatusCode.ERROR, "e")),
    *[good_span(_events=value) for value in (
        None, (), [],
        [types.SimpleNamespace(_name=A.METRIC_EVENT_NAME, _attributes=None)],
        [types.SimpleNamespace(_name=A.METRIC_EVENT_NAME, _attributes=METRIC, _timestamp=1.5)],
        [types.SimpleNamespace(_name=A.METRIC_EVENT_NAME, _attributes=METRIC, _timestamp=-1)],
        [types.SimpleNamespace(_name=A.METRIC_EVENT_NAME, _attributes=METRIC)],
        [types.SimpleNamespace(_name=5, _attributes=METRIC, _timestamp=1)],
        [Event(A.METRIC_EVENT_NAME, METRIC, timestamp=2**64)],
        [Event(A.METRIC_EVENT_NAME, METRIC, timestamp=i) for i in range(65)],
        [Event(A.METRIC_EVENT_NAME, METRIC, timestamp=i) for i in range(64)],
        types.SimpleNamespace(_dq=[Event("other", {}, timestamp=1)]),
    )],
    good_span(_resource=None),
    good_span(_kind=7),
    good_span(_attributes={A.EXPERIMENT_ID: Text("exp")}),
    good_span(_attributes={A.EXPERIMENT_ID: "e", A.USER_ID: Text("u")}),
    good_span(_attributes={A.EXPERIMENT_ID: "e", 5: "int key", (1, 2): "tuple key"}),
    good_span(_attributes={A.EXPERIMENT_ID: "e", A.INPUT_VALUE: 5, A.INPUT_MIME_TYPE: A.MIME_JSON}),
    good_span(_attributes={A.EXPERIMENT_ID: "e", A.METADATA: object()}),
    good_span(_attributes={A.EXPERIMENT_ID: "e", "gen_ai.x": object()}),
]


def test_encode_spans_declines_garbage_without_raising() -> None:
    for ascii in (False, True):
        results = speedups().encode_spans([*MUST_DECLINE, good_span()], KEPT, ascii)
        assert results[:-1] == [None] * len(MUST_DECLINE)
        assert results[-1] is not None  # the good span after them all is still encoded
        for entry in MUST_DECLINE:  # and each alone
            assert speedups().encode_spans([entry], KEPT, ascii) == [None]
        # spans with odd fields the Python converter copes with: declined, or its bytes
        results = check_against_python([*MAY_DECLINE, good_span()], KEPT, ascii)
        assert results[-1] is not None
    for entry in MUST_DECLINE:  # (what makes them must-decline: Python skips or fails)
        try:
            converted = span_to_event(entry, None, KEPT)
        except Exception:
            continue
        assert converted is None, entry


def test_the_wrapper_copes_with_odd_spans_as_python_does() -> None:
    for entry in MAY_DECLINE:  # each alone: the same experiment groups and bytes
        wrapper_paths_agree([entry, good_span()], KEPT)
    wrapper_paths_agree(MAY_DECLINE, KEPT)  # and all together, in order


def test_events_iteration_failing_midway_is_declined() -> None:
    metric = Event(A.METRIC_EVENT_NAME, METRIC, timestamp=1)
    span = good_span(_events=RaisingIterable([metric, metric]))
    assert speedups().encode_spans([span], KEPT, False) == [None]


@pytest.mark.parametrize("shape", [
    RuntimeError("shape failed"), None, (1, 2), ("a", True, False, ()), ((), True, False, "x"),
    ((("bad",),), False, False, ()), ((5,), False, False, ()),
])
def test_a_broken_kept_attributes_object_declines(shape: Any) -> None:
    assert speedups().encode_spans([good_span()], BadKept(shape), False) == [None]


def test_encode_spans_argument_errors() -> None:
    span = good_span()
    for spans in (5, None, 1.5):
        with pytest.raises(TypeError):
            speedups().encode_spans(spans, KEPT, False)
    with pytest.raises((TypeError, AttributeError)):
        speedups().encode_spans([span], object(), False)
    with pytest.raises(TypeError):
        speedups().encode_spans([span], KEPT)
    # any sequence or iterable of spans works, and gives the same results
    expected = speedups().encode_spans([span, span], KEPT, False)
    assert expected[0] is not None
    assert speedups().encode_spans((span, span), KEPT, False) == expected
    assert speedups().encode_spans(iter([span, span]), KEPT, False) == expected
    assert speedups().encode_spans([], KEPT, False) == []


# Python code the encoder calls back into (an attribute value's __eq__) mutating what it
# reads: run in a subprocess, as a memory error may kill the interpreter.
REENTRANT_PRELUDE = """
import gc
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanContext
from otel_experiments.events import native, _json
from otel_experiments.events.convert import span_to_event
from otel_experiments.events.shapes import KeptAttributes

def span(attrs):
    return ReadableSpan("s", context=SpanContext(1, 2, False), attributes=attrs,
                        start_time=1, end_time=2)
"""

REENTRANT_CASES = {
    # the mime type's __eq__ empties the list being encoded
    "spans list cleared": """
spans = []
class Mime:
    def __eq__(self, other):
        spans.clear()
        return False
    __hash__ = None
spans += [span({"experiment.id": "e", "input.value": "x", "input.mime_type": Mime()})]
spans += [span({"experiment.id": "e", "input.value": "x"}) for _ in range(50)]
out = native._speedups.encode_spans(spans, KeptAttributes(), False)
assert len(out) == 51
""",
    # ... replaces the values being written (C holds them as borrowed references)
    "attribute values replaced": """
holder = {}
class Mime:
    def __eq__(self, other):
        holder["attrs"]["experiment.id"] = "replaced-id"
        holder["attrs"]["input.value"] = "replaced-input"
        gc.collect()
        holder["junk"] = [("Z" * 50) + str(i) for i in range(20000)]
        return False
    __hash__ = None
def attrs():
    return {"experiment.id": "".join(["exp-unique-id-", "x" * 40]),
            "input.value": "".join(["input value text ", "y" * 40]),
            "input.mime_type": Mime()}
holder["attrs"] = attrs()
expected = span_to_event(span(holder["attrs"]))
holder["attrs"] = attrs()
(out,) = native._speedups.encode_spans([span(holder["attrs"])], KeptAttributes(), False)
if out is not None:
    assert out[0] == expected[0], out[0]
    assert out[1] == _json.dumps(expected[1]), out[1]
""",
    # a str-subclass key in the span's __dict__ whose __eq__ runs during the lookup of
    # "_context" and replaces "_name" (each field must be held as soon as it is read)
    "a span field replaced during another field's lookup": """
s = span({"experiment.id": "e"})
d = s.__dict__
class K(str):
    def __hash__(self):
        return hash("_context")
    def __eq__(self, other):
        d["_name"] = "".join(["replaced-", "n" * 30])  # frees the name read before
        gc.collect()
        return False
ctx = d.pop("_context")
d[K("zz")] = 1  # takes _context's first probe slot
d["_context"] = ctx
(out,) = native._speedups.encode_spans([s], KeptAttributes(), False)
assert out is not None and b'"name":"replaced-nnn' in out[1], out
""",
    # PyTuple_New of the attribute keys may collect garbage: a finalizer that adds
    # attributes then must not make the encoder write past the tuple
    "attributes grow while their keys are copied": """
from opentelemetry.trace import StatusCode
attrs = {"experiment.id": "e", **{f"a{i}": "v" for i in range(30)}}
class Bomb:
    def __init__(self):
        self.me = self
    def __del__(self):
        for i in range(200):
            attrs[f"added{i}"] = "x"
class Code:  # released right after it is read, just before the keys are copied
    def __del__(self):
        Bomb()
        gc.set_threshold(1)
class Status:
    status_code = StatusCode.UNSET
    description = None
    @property
    def _status_code(self):
        return Code()
s = ReadableSpan("s", context=SpanContext(1, 2, False), attributes={}, status=Status(),
                 start_time=1, end_time=2)
s.__dict__["_attributes"] = attrs
out = native._speedups.encode_spans([s], KeptAttributes(), False)
gc.set_threshold(700, 10, 10)
assert len(attrs) == 231 and out == [None], (len(attrs), out)
""",
}


@pytest.mark.parametrize("case", list(REENTRANT_CASES))
def test_reentrant_python_code_cannot_crash_the_encoder(case: str) -> None:
    script = REENTRANT_PRELUDE + textwrap.dedent(REENTRANT_CASES[case]) + "\nprint('ok')\n"
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", (
        proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])


# ------------------------------------------------- the real ASCII configuration (no orjson)

NO_ORJSON_SCRIPT = """
import sys
sys.modules["orjson"] = None  # an install without orjson
sys.path.insert(0, {tests!r})
from otel_experiments.events import _json, native
assert _json.BACKEND == "json" and native._ASCII is True and native.NATIVE
import test_events_native as t
spans = t.ascii_corpus()
results = native._speedups.encode_spans(spans, t.KEPT, True)
assert sum(r is not None for r in results) >= len(spans) // 2, results
t.check_against_python(spans, t.KEPT, True)
t.wrapper_paths_agree(spans, t.KEPT)
print("ok", sum(r is not None for r in results), len(spans))
"""


def ascii_corpus() -> list[ReadableSpan]:
    """Spans whose text needs escaping in every way ASCII mode escapes (for the subprocess
    without orjson): non-ASCII, astral, DEL, control characters, lone surrogates."""
    tracers = SdkTracers()
    spans = list(load_benchmark().make_spans(5))
    spans.append(rich_span(tracers, resource=1))
    odd = ["caf\u00e9", "\U0001f600", "del\x7f", "ctl\x01\x1f\n", 'q"\\', "lone\ud800", "\u2028"]
    for i, text in enumerate(odd):
        def build(tracer: trace.Tracer, text: str = text, i: int = i) -> None:
            with tracer.start_as_current_span(text, attributes={A.EXPERIMENT_ID: "e-" + text,
                                                                A.USER_NAME: text}) as span:
                span.set_attribute(A.INPUT_VALUE, json.dumps({"t": text, "i": i},
                                                             ensure_ascii=bool(i & 1)))
                span.set_attribute(A.INPUT_MIME_TYPE, A.MIME_JSON)
                span.set_attribute(A.OUTPUT_VALUE, text)
                span.set_attribute(A.METADATA, json.dumps({"m": text}))
                span.set_attribute("gen_ai.system", text)
                record_metric(span, text if text.strip() else "x", text)
                record_metric(span, "score", [1e-7, 1e16, 0.1, 2**53, -0.0, 1e22, 5][i])

        spans.append(finished_span(tracers, build, resource=i % len(RESOURCES)))
    for text in JSON_SAMPLES:  # decoded by json.loads there, not orjson
        def build_json(tracer: trace.Tracer, text: str = text) -> None:
            with tracer.start_as_current_span("j", attributes={A.EXPERIMENT_ID: "e"}) as span:
                span.set_attribute(A.INPUT_VALUE, text)
                span.set_attribute(A.INPUT_MIME_TYPE, A.MIME_JSON)
                span.set_attribute(A.EXPECTED_OUTPUT_VALUE, text)
                span.set_attribute(A.METADATA, text)

        spans.append(finished_span(tracers, build_json))
    tracers.shutdown()
    return spans


def test_without_orjson_ascii_mode_matches_the_python_path() -> None:
    script = NO_ORJSON_SCRIPT.format(tests=str(TESTS))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert proc.returncode == 0 and proc.stdout.startswith("ok"), (
        proc.stdout[-2000:], proc.stderr[-3000:])


# ------------------------------------------------------------ 6. the exporter end to end


class CountingSpeedups:
    """The C module, counting the spans its encoders encode (not declined)."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.encoded = 0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._real, name)
        if name == "encode_spans":
            def counted_spans(*args: Any) -> Any:
                results = attr(*args)
                self.encoded += sum(r is not None for r in results)
                return results
            return counted_spans
        if name == "encode_groups":
            def counted_groups(*args: Any) -> Any:
                groups, declined = attr(*args)
                self.encoded += sum(item is not None for v in groups.values() for item in v)
                return groups, declined
            return counted_groups
        return attr


@pytest.mark.parametrize("extra", ["none", "str subclass experiment id"])
def test_exporter_bodies_are_byte_identical_without_c(
    httpserver: HTTPServer, sdk: SdkTracers, monkeypatch: pytest.MonkeyPatch, extra: str
) -> None:
    from test_exporter import ENV_VARS, Recorder
    from test_exporter import exporter as make_exporter

    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("OTEL_EXPERIMENTS_SPAN_ATTRIBUTES", raising=False)
    bench = load_benchmark()
    spans = [*bench.make_spans(30), rich_span(sdk), *declined_spans(sdk)]
    spans += [good_span(), good_span(_events=[Event(A.METRIC_EVENT_NAME, METRIC, timestamp=i)
                                             for i in range(70)])]
    if extra != "none":  # first among the spans of its experiment
        spans.insert(0, good_span(_attributes={A.EXPERIMENT_ID: Experiment.RICH}))
    endpoint = httpserver.url_for("").rstrip("/")

    def export_once(**kwargs: Any) -> list[tuple[str, bytes]]:
        recorder = Recorder()
        httpserver.clear()
        httpserver.expect_request(
            re.compile(r"^/api/v2/llm-obs/v1/experiments/.+/events$"),
            method="POST",
        ).respond_with_handler(recorder)
        exporter = make_exporter(endpoint, **kwargs)
        try:
            assert exporter.export(spans).name == "SUCCESS"
        finally:
            exporter.shutdown()
        assert all(r["headers"].get("Content-Encoding") == "gzip" for r in recorder.requests)
        return [(r["path"], r["body_bytes"]) for r in recorder.requests]

    counting = CountingSpeedups(speedups())
    for kwargs in ({}, {"max_spans_per_request": 7, "max_body_bytes": 20_000}):
        with monkeypatch.context() as m:  # C in use (and counted)
            m.setattr(native, "_speedups", counting)
            with_c = export_once(compression="gzip", **kwargs)
        assert counting.encoded >= 32  # the common spans went through C
        counting.encoded = 0
        with monkeypatch.context() as m:
            m.setattr(native, "_speedups", None)
            without_c = export_once(compression="gzip", **kwargs)
        assert len(with_c) >= (1 if not kwargs else 5)
        assert with_c == without_c


def test_an_unencodable_span_fails_the_export_on_both_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    """One span neither orjson nor the stdlib can encode: counted, logged, and export()
    says FAILURE, whether the spans took the C path or the dicts (a redaction hook)."""
    from opentelemetry.sdk.trace.export import SpanExportResult

    from otel_experiments import ExperimentEventsExporter

    class Unencodable:
        pass

    def spans() -> list[ReadableSpan]:
        good = ReadableSpan("ok", context=SpanContext(1, 2, False),
                            attributes={A.EXPERIMENT_ID: "e"}, start_time=1, end_time=2)
        bad = ReadableSpan("bad", context=SpanContext(1, 3, False),
                           attributes={A.EXPERIMENT_ID: "e"}, start_time=1, end_time=2)
        bad.__dict__["_name"] = Unencodable()
        return [good, bad]

    server = HTTPServer(host="127.0.0.1")
    server.start()
    try:
        server.expect_request("/api/v2/llm-obs/v1/experiments/e/events",
                              method="POST").respond_with_data("{}", status=202)
        for options in ({}, {"redact": lambda event: event}):
            exporter = ExperimentEventsExporter(endpoint=server.url_for(""), timeout=2,
                                                background_replay=False, **options)
            try:
                assert exporter.export(spans()) is SpanExportResult.FAILURE, options
                report = exporter.delivery_report()
                assert report.delivered == 1 and report.dropped_by_reason == {"encoding": 1}
            finally:
                exporter.shutdown()
    finally:
        server.clear()
        server.stop()


def test_encoded_spans_fill_a_body_exactly_as_dicts_do() -> None:
    """pack_encoded counts the commas between elements, as the one-call dict path does:
    a body that fits exactly is one body, without an oversize warning."""
    from otel_experiments.events.bodies import encode_bodies, pack_encoded
    from otel_experiments.events.convert import make_body

    event = {"a": 1}
    metric = {"m": 2}
    body = _json.dumps(make_body([event, event], [metric, metric]))
    items = [(_json.dumps(event), (_json.dumps(metric),))] * 2
    for limit in (len(body), len(body) + 1):
        warnings: list[int] = []
        packed = pack_encoded(list(items), limit, 100, warnings.append)
        assert [b for b, _ in packed] == [body] and not warnings
        assert [b for b, _ in encode_bodies([(event, [metric])] * 2, limit, 100)[0]] == [body]
    packed = pack_encoded(list(items), len(body) - 1, 100)
    assert len(packed) == 2  # one byte short: split, as the dict path splits
    assert len(encode_bodies([(event, [metric])] * 2, len(body) - 1, 100)[0]) == 2
