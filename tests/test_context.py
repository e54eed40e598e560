"""The context layer and the processor, against a real SDK TracerProvider."""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from opentelemetry import baggage, trace
from opentelemetry import context as otel_context
from opentelemetry.trace import StatusCode

from otel_experiments import (
    ContextExecutor,
    Experiment,
    Identity,
    TraceExperiment,
    bind_context,
    current_experiment,
    current_identity,
    experiment_context,
    observe,
    settings,
    start_observe,
)

EXP_KEYS = ("experiment.id", "experiment.name", "experiment.feature_slug")
IDENTITY = {"organization": {"id": "org-1", "name": "Acme"}, "user": {"id": "u-9", "name": "Jane"}}


def stamped(attrs: dict[str, object]) -> dict[str, object]:
    keys = (*EXP_KEYS, "user.id", "user.name", "organization.id", "organization.name")
    return {k: attrs[k] for k in keys if k in attrs}


def test_nested_spans_from_other_instrumentation_are_stamped(recorder, tracer) -> None:
    exp = Experiment("exp-456", "Model A/B", "checkout", "2026-01-01T00:00:00Z")
    with start_observe("checkout", "answer-question", experiment=exp, identity=IDENTITY) as span:
        span.set_input({"q": "why?"})
        with tracer.start_as_current_span("db.query"), tracer.start_as_current_span("deeper"):
            pass
        span.set_output("because")
    want = {
        "experiment.id": "exp-456", "experiment.name": "Model A/B",
        "experiment.feature_slug": "checkout", "organization.id": "org-1",
        "organization.name": "Acme", "user.id": "u-9", "user.name": "Jane",
    }
    for name in ("answer-question", "db.query", "deeper"):
        assert stamped(recorder.attrs(name)) == want, name
    root = recorder.attrs("answer-question")
    assert root["input.value"] == '{"q": "why?"}'
    assert root["input.mime_type"] == "application/json"
    assert root["output.value"] == "because"
    assert root["output.mime_type"] == "text/plain"
    deeper = recorder.by_name("deeper")
    assert deeper.context.trace_id == recorder.by_name("answer-question").context.trace_id


def test_no_stamping_outside_a_scope(recorder, tracer) -> None:
    with start_observe("f", "inside", experiment="exp-1"):
        pass
    with tracer.start_as_current_span("outside"):
        pass
    assert stamped(recorder.attrs("outside")) == {}
    assert current_experiment() is None and current_identity() is None


def test_feature_slug_fills_the_experiment_and_string_ids_work(recorder) -> None:
    with start_observe("checkout", "s", experiment="exp-456"):
        assert current_experiment() == TraceExperiment("exp-456", None, "checkout")
    assert stamped(recorder.attrs("s")) == {
        "experiment.id": "exp-456", "experiment.feature_slug": "checkout"}


def test_inner_scope_overrides_and_exit_restores_exactly(recorder, tracer) -> None:
    before = otel_context.get_current()
    with experiment_context("outer-exp", identity={"user": {"id": "u-1"}}):
        with experiment_context(TraceExperiment("inner-exp", "Inner")):
            assert current_experiment() == TraceExperiment("inner-exp", "Inner")
            assert current_identity() == Identity.coerce({"user": {"id": "u-1"}})
            with tracer.start_as_current_span("in-inner"):
                pass
            assert baggage.get_baggage("experiment.id") == "inner-exp"
        assert current_experiment() == TraceExperiment("outer-exp")
        with tracer.start_as_current_span("in-outer"):
            pass
    assert otel_context.get_current() == before
    assert stamped(recorder.attrs("in-inner")) == {
        "experiment.id": "inner-exp", "experiment.name": "Inner", "user.id": "u-1"}
    assert stamped(recorder.attrs("in-outer")) == {"experiment.id": "outer-exp", "user.id": "u-1"}


def test_exceptions_restore_the_context_and_mark_the_span(recorder) -> None:
    before = otel_context.get_current()
    with pytest.raises(KeyError), start_observe("f", "boom", experiment="exp-1"):
        raise KeyError("missing")
    assert otel_context.get_current() == before
    span = recorder.by_name("boom")
    assert span.status.status_code is StatusCode.ERROR
    assert [e.name for e in span.events] == ["exception"]
    assert span.events[0].attributes["exception.type"] == "KeyError"

    @start_observe("f", "decorated-boom", experiment="exp-2")
    def fails() -> None:
        raise ValueError("bad")

    with pytest.raises(ValueError):
        fails()
    assert otel_context.get_current() == before
    assert recorder.by_name("decorated-boom").status.status_code is StatusCode.ERROR


def test_each_loop_iteration_gets_its_own_trace(recorder) -> None:
    for i in range(3):
        with start_observe("support-ticket", "analyse_ticket", experiment="exp-1") as span:
            span.set_input({"ticket": i})
    spans = [s for s in recorder.spans() if s.name == "analyse_ticket"]
    assert len({s.context.trace_id for s in spans}) == 3
    assert all(s.parent is None for s in spans)


def test_child_of_active_span_unless_new_trace(recorder, tracer) -> None:
    with tracer.start_as_current_span("http.request") as request_span:
        with start_observe("f", "joined", experiment="e"):
            pass
        with start_observe("f", "separate", experiment="e", new_trace=True):
            pass
    joined, separate = recorder.by_name("joined"), recorder.by_name("separate")
    assert joined.parent.span_id == request_span.get_span_context().span_id
    assert separate.parent is None
    assert separate.context.trace_id != request_span.get_span_context().trace_id
    assert separate.links[0].context.span_id == request_span.get_span_context().span_id


def test_decorator_records_arguments_and_result_and_keeps_signature(recorder) -> None:
    @start_observe("ab-test", "variant_a", experiment="exp-456", identity=IDENTITY)
    def run_variant(model: str, temperature: float = 0.0) -> dict[str, str]:
        """Doc."""
        observe.set_metadata({"prompt": "v3"})
        return {"model": model}

    assert inspect.signature(run_variant).parameters.keys() == {"model", "temperature"}
    assert run_variant.__doc__ == "Doc." and run_variant.__name__ == "run_variant"
    assert run_variant("gpt-4o", temperature=0.2) == {"model": "gpt-4o"}
    attrs = recorder.attrs("variant_a")
    assert attrs["input.value"] == '{"model": "gpt-4o", "temperature": 0.2}'
    assert attrs["output.value"] == '{"model": "gpt-4o"}'
    assert attrs["metadata"] == '{"prompt": "v3"}'
    assert attrs["experiment.id"] == "exp-456" and attrs["user.id"] == "u-9"


def test_decorator_on_methods_and_opt_out_of_recording(recorder) -> None:
    class Service:
        @start_observe("f", "method", experiment="e", record_input=False, record_output=False)
        def handle(self, secret: str) -> str:
            return secret.upper()

    assert Service().handle("pw") == "PW"
    attrs = recorder.attrs("method")
    assert "input.value" not in attrs and "output.value" not in attrs
    assert attrs["experiment.id"] == "e"


async def test_async_functions_and_tasks_inherit_the_scope(recorder, tracer) -> None:
    async def child(i: int) -> str | None:
        await asyncio.sleep(0)
        with tracer.start_as_current_span(f"task-{i}"):
            pass
        exp = current_experiment()
        return exp.id if exp else None

    @start_observe("f", "async-root", experiment="exp-async")
    async def root() -> list[str | None]:
        return list(await asyncio.gather(*(asyncio.create_task(child(i)) for i in range(3))))

    assert await root() == ["exp-async"] * 3
    for i in range(3):
        assert recorder.attrs(f"task-{i}")["experiment.id"] == "exp-async"
    assert current_experiment() is None

    async with start_observe("f", "async-with", experiment="exp-2"):
        assert current_experiment() == TraceExperiment("exp-2", None, "f")


def test_threads_need_the_helper(recorder, tracer) -> None:
    def work(name: str) -> str | None:
        with tracer.start_as_current_span(name):
            exp = current_experiment()
            return exp.id if exp else None

    with start_observe("f", "threads", experiment="exp-t"):
        plain = ThreadPoolExecutor(max_workers=2)
        assert plain.submit(work, "plain-thread").result() is None  # documented: not carried
        with ContextExecutor(ThreadPoolExecutor(max_workers=2)) as pool:
            assert pool.submit(work, "pool-submit").result() == "exp-t"
            assert list(pool.map(work, ["pool-map-1", "pool-map-2"])) == ["exp-t", "exp-t"]
        result: list[str | None] = []
        thread = threading.Thread(target=bind_context(lambda: result.append(work("bound"))))
        thread.start()
        thread.join()
        assert result == ["exp-t"]
        plain.shutdown()
    assert "experiment.id" not in recorder.attrs("plain-thread")
    for name in ("pool-submit", "pool-map-1", "pool-map-2", "bound"):
        assert recorder.attrs(name)["experiment.id"] == "exp-t"


def test_generators_scope_only_their_own_steps(recorder, tracer) -> None:
    @start_observe("f", "producer", experiment="exp-gen")
    def produce(n: int):
        for i in range(n):
            with tracer.start_as_current_span(f"produce-{i}"):
                pass
            yield i

    seen = []
    for item in produce(2):
        seen.append(current_experiment())  # consumer code: not the producer's scope
        with tracer.start_as_current_span(f"consume-{item}"):
            pass
    assert seen == [None, None]
    for i in range(2):
        assert recorder.attrs(f"produce-{i}")["experiment.id"] == "exp-gen"
        assert "experiment.id" not in recorder.attrs(f"consume-{i}")
    assert recorder.attrs("producer")["output.value"] == "[0, 1]"
    assert recorder.by_name("produce-1").parent.span_id == recorder.by_name("producer").context.span_id

    before = otel_context.get_current()
    gen = produce(10)
    next(gen)
    gen.close()  # abandoned early: span ends, caller context untouched
    assert otel_context.get_current() == before
    assert len([s for s in recorder.spans() if s.name == "producer"]) == 2


async def test_async_generators(recorder, tracer) -> None:
    @start_observe("f", "agen", experiment="exp-agen")
    async def stream(n: int):
        for i in range(n):
            await asyncio.sleep(0)
            with tracer.start_as_current_span(f"chunk-{i}"):
                pass
            yield f"c{i}"

    out = [(chunk, current_experiment()) async for chunk in stream(2)]
    assert out == [("c0", None), ("c1", None)]
    assert recorder.attrs("chunk-1")["experiment.id"] == "exp-agen"
    assert recorder.attrs("agen")["output.value"] == '["c0", "c1"]'

    @start_observe("f", "agen-err", experiment="e")
    async def broken():
        yield 1
        raise RuntimeError("stream broke")

    with pytest.raises(RuntimeError):
        async for _ in broken():
            pass
    assert recorder.by_name("agen-err").status.status_code is StatusCode.ERROR


def test_observe_helpers_act_on_the_innermost_span_and_noop_outside(recorder) -> None:
    observe.set_input("ignored")  # outside any scope: no error, nothing recorded
    with start_observe("f", "outer", experiment="e"):
        with start_observe("f", "inner", experiment="e"):
            observe.set_output("inner-out")
        observe.set_output("outer-out")
    assert recorder.attrs("inner")["output.value"] == "inner-out"
    assert recorder.attrs("outer")["output.value"] == "outer-out"


def test_payloads_are_capped_and_unencodable_values_do_not_raise(recorder) -> None:
    class Weird:
        def __repr__(self) -> str:
            return "<weird>"

    with start_observe("f", "big", experiment="e", max_payload_chars=100) as span:
        span.set_input("x" * 1000)
        span.set_output({"obj": Weird(), "nan": float("nan")})
    attrs = recorder.attrs("big")
    assert len(attrs["input.value"]) == 100
    assert attrs["input.value"].endswith("...[truncated]")
    assert "weird" in attrs["output.value"]


def test_identity_names_stay_out_of_baggage_unless_enabled(monkeypatch) -> None:
    with experiment_context("e", identity=IDENTITY):
        bag = baggage.get_all()
        assert bag["user.id"] == "u-9" and "user.name" not in bag
        assert "organization.name" not in bag
    with experiment_context("e", identity=IDENTITY, propagate_identity_names=True):
        assert baggage.get_all()["user.name"] == "Jane"
    monkeypatch.setenv("OTEL_EXPERIMENTS_PROPAGATE_IDENTITY_NAMES", "true")
    settings.reload()  # the process's scope settings are read once
    with experiment_context("e", identity=IDENTITY):
        assert baggage.get_all()["organization.name"] == "Acme"


def test_experiment_context_as_decorator(recorder, tracer) -> None:
    @experiment_context("exp-mw", identity={"organization": {"id": "o"}})
    def handler() -> None:
        with tracer.start_as_current_span("handler-span"):
            pass

    handler()
    assert stamped(recorder.attrs("handler-span")) == {
        "experiment.id": "exp-mw", "organization.id": "o"}


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"experiment": ""}, ValueError),
        ({"experiment": 42}, TypeError),
        ({"experiment": "has space"}, ValueError),
        ({"experiment": "x" * 300}, ValueError),
        ({"identity": {"user": {"name": "no id"}}}, TypeError),
        ({"identity": {"usr": {"id": "typo"}}}, ValueError),
        ({"identity": {"user": {"id": "ok", "name": "bad\nname"}}}, ValueError),
    ],
)
def test_invalid_models_fail_at_the_call(kwargs, error) -> None:
    with pytest.raises(error):
        start_observe("f", "n", **kwargs)


def test_processor_never_raises_into_the_app(caplog) -> None:
    from otel_experiments import ExperimentSpanProcessor

    class Broken:
        def set_attributes(self, _attrs: object) -> None:
            raise RuntimeError("broken span")

    processor = ExperimentSpanProcessor(default_experiment=None)
    with experiment_context("e"), caplog.at_level(logging.WARNING, "otel_experiments"):
        processor.on_start(Broken())  # type: ignore[arg-type]
        processor.on_start(Broken())  # type: ignore[arg-type]
    assert len([r for r in caplog.records if "could not stamp" in r.message]) == 1


def test_default_experiment_for_spans_outside_any_scope() -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from otel_experiments import ExperimentSpanProcessor

    provider, memory = TracerProvider(), InMemorySpanExporter()
    provider.add_span_processor(ExperimentSpanProcessor(default_experiment="batch-exp"))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    local = provider.get_tracer("t")
    with local.start_as_current_span("batch-span"):
        pass
    with experiment_context("explicit"), local.start_as_current_span("scoped"):
        pass
    with experiment_context(identity={"user": {"id": "u"}}), local.start_as_current_span("who"):
        pass
    got = {s.name: dict(s.attributes or {}) for s in memory.get_finished_spans()}
    assert got["batch-span"]["experiment.id"] == "batch-exp"
    assert got["scoped"]["experiment.id"] == "explicit"
    assert got["who"]["experiment.id"] == "batch-exp" and got["who"]["user.id"] == "u"
    assert trace.get_current_span() is trace.INVALID_SPAN


def test_random_inbound_baggage_never_raises_and_only_valid_values_pass() -> None:
    import random

    from otel_experiments.context.baggage import scope_from_baggage

    rng = random.Random(1234)
    alphabet = "ab-_.:/@ \t\n\r\x00\x7f\u202e\u00e9\U0001f600%=,;"
    keys = ("experiment.id", "experiment.name", "experiment.feature_slug", "user.id",
            "user.name", "organization.id", "organization.name")
    for _ in range(3000):
        bag = {k: "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 300)))
               for k in keys if rng.random() < 0.7}
        if rng.random() < 0.1:
            bag["experiment.id"] = rng.choice([None, 1, b"bytes", ["x"]])  # type: ignore[assignment]
        scope = scope_from_baggage(bag)
        if scope is None:
            continue
        for key, value in scope.attributes.items():
            assert bag[key] == value and 0 < len(value) <= 256 and value.isprintable()
            if key.endswith(".id") or key.endswith("feature_slug"):
                assert not any(ch.isspace() for ch in value)


def test_start_observe_with_a_non_global_provider() -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from otel_experiments import ExperimentSpanProcessor

    provider, memory = TracerProvider(), InMemorySpanExporter()
    provider.add_span_processor(ExperimentSpanProcessor(default_experiment=None))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    lib = provider.get_tracer("lib")
    with start_observe("f", "local", experiment="exp-local", tracer_provider=provider), \
            lib.start_as_current_span("child"):
        pass
    got = {s.name: s.attributes["experiment.id"] for s in memory.get_finished_spans()}
    assert got == {"local": "exp-local", "child": "exp-local"}


async def test_one_start_observe_instance_shared_by_concurrent_tasks(recorder) -> None:
    shared = start_observe("f", "shared", experiment="exp-shared")

    async def handler(i: int, delay: float) -> None:
        async with shared as span:
            span.set_input(i)
            await asyncio.sleep(delay)
        assert current_experiment() is None

    await asyncio.gather(handler(0, 0.02), handler(1, 0.0), handler(2, 0.01))
    spans = [s for s in recorder.spans() if s.name == "shared"]
    assert sorted(s.attributes["input.value"] for s in spans) == ["0", "1", "2"]
    assert len({s.context.trace_id for s in spans}) == 3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"metadata": "str"}, "metadata must be a mapping"),
        ({"record_input": "no"}, "record_input must be a bool"),
        ({"tracer_provider": "x"}, "tracer_provider must be a TracerProvider"),
    ],
)
def test_bad_start_observe_arguments_say_what_is_wrong(kwargs, message) -> None:
    with pytest.raises(TypeError, match=message):
        start_observe("f", "n", **kwargs)


def test_warns_once_when_no_sdk_provider_is_set() -> None:
    import subprocess
    import sys

    code = (
        "from otel_experiments import start_observe\n"
        "for _ in range(3):\n"
        "    with start_observe('f', 'lost', experiment='e'):\n"
        "        pass\n"
    )
    err = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=30, check=True).stderr
    assert err.count("no global SDK TracerProvider") == 1, err


def test_one_experiment_context_shared_by_threads_restores_each() -> None:
    shared = experiment_context("exp-1", {"user": {"id": "alice"}})
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    after: dict[str, object] = {}

    def first() -> None:
        with shared:
            a_in.set()
            b_in.wait(5)
        a_out.set()
        after["first"] = (current_experiment(), current_identity())

    def second() -> None:
        a_in.wait(5)
        with shared:
            b_in.set()
            a_out.wait(5)  # the first thread exits while this one is still inside
            assert current_experiment() == TraceExperiment("exp-1")
        after["second"] = (current_experiment(), current_identity())

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert after == {"first": (None, None), "second": (None, None)}


async def test_experiment_context_on_generators(recorder, tracer) -> None:
    @experiment_context("exp-gen-ctx")
    def numbers():
        for i in range(2):
            with tracer.start_as_current_span(f"ctx-gen-{i}"):
                pass
            yield current_experiment()

    @experiment_context("exp-agen-ctx")
    async def stream():
        yield current_experiment()

    assert [e.id for e in numbers()] == ["exp-gen-ctx", "exp-gen-ctx"]
    assert [e.id async for e in stream()] == ["exp-agen-ctx"]
    assert recorder.attrs("ctx-gen-1")["experiment.id"] == "exp-gen-ctx"
    assert current_experiment() is None


def test_span_still_ends_when_the_exception_cannot_be_printed(recorder) -> None:
    class Hostile(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no str for you")

    with pytest.raises(Hostile), start_observe("f", "hostile-exc", experiment="e"):
        raise Hostile()
    assert recorder.by_name("hostile-exc").status.status_code is StatusCode.ERROR


def test_baggage_set_by_app_code_with_blank_or_odd_values_never_raises() -> None:
    ctx = otel_context.get_current()
    for key, value in (("experiment.name", "   "), ("user.name", "\t"), ("experiment.id", "e\u00a0x")):
        ctx = baggage.set_baggage(key, value, ctx)
    ctx = baggage.set_baggage("user.id", "u-1", ctx)
    token = otel_context.attach(ctx)
    try:
        assert current_experiment() is None  # "e\\u00a0x": a no-break space is not an id
        assert current_identity() == Identity.coerce({"user": {"id": "u-1"}})
        with start_observe("f", "n", experiment="exp-2"), experiment_context(identity=None):
            assert current_experiment() == TraceExperiment("exp-2", None, "f")
    finally:
        otel_context.detach(token)


def test_payload_work_is_bounded_by_the_cap_and_hostile_values_never_raise(recorder) -> None:
    import time

    class Hostile:
        def __repr__(self) -> str:
            raise KeyError("no repr")

    class BadMapping(dict):  # type: ignore[type-arg]
        def keys(self):  # type: ignore[no-untyped-def]
            raise RuntimeError("boom")

    big_list = list(range(2_000_000))
    start = time.perf_counter()
    with start_observe("f", "bounded", experiment="e", max_payload_chars=1000) as span:
        span.set_input(b"x" * 50_000_000)
        span.set_output(big_list)
        span.set_metadata(BadMapping(a=1))
        span.set_expected_output({"name": "caf\udce9", "big": 2**80, "x": Hostile()})
        span.set_attribute("bad", Hostile())
    assert time.perf_counter() - start < 0.5
    attrs = recorder.attrs("bounded")
    assert attrs["input.value"] == '"<50000000 bytes>"'
    assert len(attrs["output.value"]) <= 1000 and "...[truncated]" in attrs["output.value"]
    expected = json.loads(attrs["expected_output.value"])
    assert expected["name"] == "caf\ufffd" and expected["big"] == str(2**80)
    assert expected["x"] == "<unencodable Hostile>" or "Hostile" in expected["x"]


@pytest.mark.parametrize("trust", [True, False])
def test_only_the_processor_decides_whether_inbound_baggage_is_trusted(trust: bool) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from otel_experiments import ExperimentSpanProcessor

    provider, memory = TracerProvider(), InMemorySpanExporter()
    provider.add_span_processor(ExperimentSpanProcessor(trust_baggage=trust, default_experiment=None))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    inbound = baggage.set_baggage("experiment.id", "from-upstream")
    token = otel_context.attach(inbound)
    try:
        with start_observe("f", "local-identity", identity={"user": {"id": "u-1"}},
                           tracer_provider=provider):
            outgoing = dict(baggage.get_all())
    finally:
        otel_context.detach(token)
    (span,) = memory.get_finished_spans()
    assert span.attributes["user.id"] == "u-1"
    assert span.attributes.get("experiment.id") == ("from-upstream" if trust else None)
    # the upstream experiment keeps travelling downstream, next to the local identity
    assert outgoing["experiment.id"] == "from-upstream" and outgoing["user.id"] == "u-1"


def test_a_local_experiment_replaces_the_whole_upstream_experiment_in_baggage() -> None:
    inbound = baggage.set_baggage("experiment.name", "Upstream name",
                                  baggage.set_baggage("experiment.id", "up"))
    token = otel_context.attach(inbound)
    try:
        with experiment_context("local-exp"):
            outgoing = dict(baggage.get_all())
    finally:
        otel_context.detach(token)
    assert outgoing == {"experiment.id": "local-exp"}


def test_entering_an_experiment_stamps_the_current_span_as_the_entry(recorder, tracer) -> None:
    # the server span starts before any experiment is known
    with (tracer.start_as_current_span("server-span"),
          experiment_context("exp-web", identity={"user": {"id": "u-1"}}),
          tracer.start_as_current_span("inner")):
        pass
    server = recorder.attrs("server-span")
    assert server["experiment.id"] == "exp-web" and server["user.id"] == "u-1"
    assert server["experiment.entry"] == "true"
    assert "experiment.entry" not in recorder.attrs("inner")


def test_an_inner_experiment_does_not_restamp_the_outer_unit(recorder, tracer) -> None:
    with experiment_context("exp-outer"), tracer.start_as_current_span("outer-span"):
        with experiment_context("exp-inner"):
            pass
        with start_observe("f", "nested-observe"):
            pass
    assert recorder.attrs("outer-span")["experiment.id"] == "exp-outer"
    assert "experiment.entry" not in recorder.attrs("outer-span")
    assert "experiment.entry" not in recorder.attrs("nested-observe")
    with start_observe("f", "top-observe", experiment="exp-top"):
        pass
    assert recorder.attrs("top-observe")["experiment.entry"] == "true"


def test_a_scope_built_by_hand_is_stamped_as_the_sdk_cleans_it(recorder, tracer) -> None:
    """``ExperimentScope`` is public: attributes that are not validated strings (an empty
    key, an int key, a list value) go through ``span.set_attributes``, which cleans them;
    the scopes the package builds are written as they are (checked once per scope)."""
    from otel_experiments import ExperimentScope
    from otel_experiments.context import SCOPE_KEY

    odd = ExperimentScope(TraceExperiment("e1"), None,
                          {"experiment.id": "e1", "": "x", "tags": ["a", "b"], 7: "int"})  # type: ignore[dict-item]
    assert odd.clean_attributes is None
    built = ExperimentScope.build(TraceExperiment("e2", "n"), None)
    assert built.clean_attributes == {"experiment.id": "e2", "experiment.name": "n"}
    assert built.clean_attributes is not built.attributes  # a copy: later edits are not seen
    for scope, name in ((odd, "odd"), (built, "built")):
        token = otel_context.attach(otel_context.set_value(SCOPE_KEY, scope))
        try:
            with tracer.start_as_current_span(name):
                pass
        finally:
            otel_context.detach(token)
    odd_attrs = recorder.attrs("odd")
    assert odd_attrs == {"experiment.id": "e1", "tags": ("a", "b"), "7": "int"}
    assert recorder.by_name("odd").dropped_attributes == 1  # the empty key
    assert stamped(recorder.attrs("built")) == {"experiment.id": "e2", "experiment.name": "n"}
