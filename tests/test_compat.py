"""Every private OpenTelemetry name we use still exists, and every public fallback works.

When one of the first tests fails after an SDK upgrade, ``_compat`` already runs on the
fallback (exercised by the second kind of test): decide whether to follow the new
private name or live with the fallback's cost.
"""

from __future__ import annotations

import contextvars
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import pytest
from opentelemetry import baggage, context, trace
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace import Span as SdkSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_experiments import _compat


def test_private_names_still_exist() -> None:
    from opentelemetry.context import _RUNTIME_CONTEXT  # noqa: F401

    assert _compat.get_current_context != context.get_current  # the fast path is in use
    assert isinstance(_compat._current_var, contextvars.ContextVar)  # the runtime's variable
    assert _compat.BAGGAGE_KEY is not None and _compat.baggage_of == _compat._baggage_via_key
    assert _compat.SUPPRESS_INSTRUMENTATION_KEY is not None
    assert _compat.DIRECT_ATTRIBUTES and _compat.set_clean_attributes == _compat._set_direct
    provider = TracerProvider()
    assert hasattr(provider, "_active_span_processor")
    assert hasattr(provider._active_span_processor, "_span_processors")


def test_current_context_fast_path_equals_the_public_one() -> None:
    token = context.attach(context.set_value("k", "v"))
    try:
        assert _compat.get_current_context() == context.get_current()
        assert _compat.get_current_context().get("k") == "v"
    finally:
        context.detach(token)
    assert _compat.get_current_context() == context.get_current()  # and after detaching


def test_current_context_follows_threads_and_tasks() -> None:
    import asyncio
    import threading

    seen: list[object] = []
    token = context.attach(context.set_value("k", "main"))
    try:
        thread = threading.Thread(target=lambda: seen.append(_compat.get_current_context().get("k")))
        thread.start()
        thread.join()

        async def task() -> None:
            seen.append(_compat.get_current_context().get("k"))

        asyncio.run(task())  # a task copies the caller's context
    finally:
        context.detach(token)
    assert seen == [None, "main"]


def test_baggage_fast_path_equals_the_public_fallback() -> None:
    ctx = baggage.set_baggage("experiment.id", "e1", baggage.set_baggage("user.id", "u"))
    assert dict(_compat._baggage_via_key(ctx)) == dict(_compat._baggage_public(ctx))
    assert dict(_compat._baggage_public(ctx)) == {"experiment.id": "e1", "user.id": "u"}
    assert dict(_compat._baggage_via_key(context.Context())) == {}


_STAMP = {"experiment.id": "e1", "experiment.name": "n", "user.id": "u"}


def _attributes_after(
    setter: Callable[[trace.Span, Mapping[str, str]], None],
    limits: SpanLimits | None = None,
    initial: Mapping[str, str] | None = None,
    end_first: bool = False,
) -> tuple[list[tuple[str, object]], int]:
    """A span's attributes (in order) and dropped count after ``setter`` stamped it."""
    provider = TracerProvider(span_limits=limits or SpanLimits())
    span = provider.get_tracer("t").start_span("s", attributes=initial)
    if end_first:
        span.end()
    setter(span, _STAMP)
    span.end()
    assert isinstance(span, ReadableSpan)
    return list(span.attributes.items()), span.dropped_attributes


@pytest.mark.parametrize(
    ("limits", "initial", "end_first"),
    [
        (None, None, False),  # the common case: a fresh span
        (None, {"a": "1", "experiment.id": "old", "b": "2"}, False),  # a key there already
        (SpanLimits(max_span_attributes=4), {"a": "1", "b": "2"}, False),  # evicts the oldest
        (SpanLimits(max_span_attributes=5), {"a": "1", "b": "2"}, False),  # exactly full
        (SpanLimits(max_span_attributes=0), None, False),  # drops everything
        (SpanLimits(max_attribute_length=1), None, False),  # truncates the values
        (None, None, True),  # an ended span: a warning, nothing set
    ],
)
def test_clean_attributes_fast_path_equals_set_attributes(
    limits: SpanLimits | None, initial: Mapping[str, str] | None, end_first: bool
) -> None:
    public = _attributes_after(_compat._set_public, limits, initial, end_first)
    assert public == _attributes_after(_compat._set_direct, limits, initial, end_first)
    assert public[0] != [] or end_first or limits is not None  # the cases set something


def test_clean_attributes_write_the_sdk_dict_directly() -> None:
    span = TracerProvider().get_tracer("t").start_span("s", attributes={"a": "1"})
    inner = span._attributes._dict  # type: ignore[attr-defined]
    _compat._set_direct(span, _STAMP)
    assert inner == {"a": "1", **_STAMP}  # the SDK's own dict, not a replacement
    span.end()

    class OtherSpan(trace.NonRecordingSpan):  # another span class: the public call
        def __init__(self) -> None:
            super().__init__(trace.INVALID_SPAN_CONTEXT)
            self.seen: list[Mapping[str, object]] = []

        def set_attributes(self, attributes: Mapping[str, object]) -> None:  # type: ignore[override]
            self.seen.append(dict(attributes))

    other = OtherSpan()
    _compat._set_direct(other, _STAMP)
    assert other.seen == [_STAMP]


def test_clean_attributes_honour_a_span_class_with_its_own_set_attributes() -> None:
    """An SDK span subclass that overrides ``set_attributes`` (a redaction hook, say) is
    called, not bypassed."""
    class RedactingSpan(SdkSpan):
        def set_attributes(self, attributes: Mapping[str, Any]) -> None:
            super().set_attributes({k: "<redacted>" if k.startswith("user.") else v
                                    for k, v in attributes.items()})

    template = TracerProvider().get_tracer("t").start_span("s")
    span = RedactingSpan("s", context=template.get_span_context())
    span.start()
    _compat._set_direct(span, _STAMP)
    span.end()
    assert dict(span.attributes) == {**_STAMP, "user.id": "<redacted>"}


def test_clean_attributes_wait_for_a_writer_holding_the_lock() -> None:
    """The count limit is checked under the attributes' lock: a writer that holds it
    (here, hashing a slow key) finishes first, then the limit applies to what it left."""
    inside = threading.Event()

    class SlowKey(str):
        hashed = 0

        def __hash__(self) -> int:
            if str(self) == "z2":
                SlowKey.hashed += 1
                if SlowKey.hashed == 3:  # in _setitem_locked, under the attributes' lock
                    inside.set()
                    time.sleep(0.3)
            return str.__hash__(self)

        def __eq__(self, other: object) -> bool:
            return str.__eq__(self, other)

    results = []
    for setter in (_compat._set_public, _compat._set_direct):
        inside.clear()
        SlowKey.hashed = 0
        provider = TracerProvider(span_limits=SpanLimits(max_span_attributes=4))
        span = provider.get_tracer("t").start_span("s")
        other = threading.Thread(target=span.set_attributes, args=(
            {SlowKey("z1"): "1", SlowKey("z2"): "2", SlowKey("z3"): "3"},))
        other.start()
        assert inside.wait(5)
        setter(span, {"experiment.id": "e", "user.id": "u"})
        other.join()
        span.end()
        assert isinstance(span, ReadableSpan)
        results.append((list(span.attributes), span.dropped_attributes))
    assert results[0] == results[1] == (["z2", "z3", "experiment.id", "user.id"], 1)


def test_suppression_key_is_the_one_the_sdk_honours() -> None:
    # The SDK's exporters and instrumentations check exactly this key.
    from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY

    assert _compat.SUPPRESS_INSTRUMENTATION_KEY == _SUPPRESS_INSTRUMENTATION_KEY


def test_span_processors_finds_what_was_added() -> None:
    provider = TracerProvider()
    first, second = SimpleSpanProcessor(InMemorySpanExporter()), SimpleSpanProcessor(
        InMemorySpanExporter())
    provider.add_span_processor(first)
    provider.add_span_processor(second)
    assert list(_compat.span_processors(provider)) == [first, second]

    class NotAnSdkProvider:  # the fallback: nothing found, nothing raised
        pass

    assert list(_compat.span_processors(NotAnSdkProvider())) == []  # type: ignore[arg-type]


def test_span_field_fast_paths_equal_the_public_properties() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("t").start_as_current_span("s", attributes={"a": 1}) as span:
        span.add_event("ev", {"x": "y"}, timestamp=7)
    (finished,) = exporter.get_finished_spans()
    fast = _compat.span_fields(finished)
    assert fast is vars(finished)  # the SDK's own dict: no copy, no property calls
    public = _compat._span_fields_public(finished)
    assert set(public) == set(_compat.SPAN_FIELDS) <= set(fast)
    for key in _compat.SPAN_FIELDS:
        if key in ("_attributes", "_events"):
            continue
        assert fast[key] == public[key], key
    assert dict(_compat.attribute_dict(fast["_attributes"])) == dict(public["_attributes"])
    events = _compat.events_of(fast["_events"])
    assert [e.name for e in events] == [e.name for e in public["_events"]] == ["ev"]
    assert _compat.event_fields(events[0]) == ("ev", {"x": "y"}, 7)
    assert type(_compat.event_fields(events[0])[1]) is dict

    class PlainEvent:  # another SDK's event: the public properties are used
        name, attributes, timestamp = "ev", {"x": "z"}, 9

    class PlainSpan:  # another SDK's span: the public properties are used
        name, context, parent, start_time, end_time = "p", None, None, 1, 2
        status = kind = resource = None
        attributes: ClassVar[dict[str, int]] = {"a": 2}
        events = (PlainEvent(),)

    fields = _compat.span_fields(PlainSpan())  # type: ignore[arg-type]
    assert fields["_attributes"] == {"a": 2} and fields["_name"] == "p"
    assert _compat.event_fields(_compat.events_of(fields["_events"])[0]) == ("ev", {"x": "z"}, 9)
    assert _compat.attribute_dict(None) == {}
    assert trace.get_tracer_provider() is not None


def test_native_field_names_are_where_the_c_encoder_reads_them() -> None:
    """``NATIVE_FIELD_NAMES``, on real SDK objects, where ``events/_speedups_src/`` reads
    them (a span without them is declined: correct, but every span through Python)."""
    from opentelemetry.trace import Status, StatusCode

    from otel_experiments.events import native
    from otel_experiments.events.shapes import KeptAttributes

    span_fields = _compat.NATIVE_FIELD_NAMES[:10]
    assert span_fields == _compat.SPAN_FIELDS
    assert _compat.NATIVE_FIELD_NAMES[10:] == ("_dict", "_dq", "_status_code", "_timestamp")
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("t").start_as_current_span(
        "s", attributes={"experiment.id": "e"}
    ) as span:
        span.add_event("experiment.metric", {"metric.label": "l", "metric.type": "score",
                                             "metric.value": 1}, timestamp=7_000_000)
        span.set_status(Status(StatusCode.OK))
    provider.shutdown()
    (finished,) = exporter.get_finished_spans()
    fields = vars(finished)
    assert set(span_fields) <= set(fields)
    assert type(fields["_attributes"]._dict) is dict  # the C side takes an exact dict
    assert fields["_attributes"]._dict == {"experiment.id": "e"}
    events = fields["_events"]._dq
    assert [type(e).__name__ for e in events] == ["Event"]
    assert fields["_status"]._status_code is StatusCode.OK
    event = vars(events[0])
    assert {"_name", "_attributes", "_timestamp"} <= set(event)
    assert event["_timestamp"] == 7_000_000 and type(event["_attributes"]._dict) is dict
    # the extension was built here, is in use, and reads a real span through those names
    assert native.NATIVE and native._speedups is not None
    (result,) = native._speedups.encode_spans([finished], KeptAttributes(), False)
    assert result is not None and result[0] == "e"
    assert result[2][0].endswith(b'"timestamp_ms":7}')  # the event's _timestamp, read in C


def test_sqlite_adapter_registry_is_readable(monkeypatch: pytest.MonkeyPatch) -> None:
    class Probe:
        pass

    assert _compat.sqlite_adapter_registered(Probe) is False
    sqlite3.register_adapter(Probe, str)
    try:
        assert _compat.sqlite_adapter_registered(Probe) is True
    finally:
        del sqlite3.adapters[(Probe, sqlite3.PrepareProtocol)]
    monkeypatch.delattr(sqlite3, "adapters")  # the registry gone: "unknown", never "free"
    assert _compat.sqlite_adapter_registered(Probe) is None
