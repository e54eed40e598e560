"""In-process checks of pieces that are awkward to reach through a server process."""

from __future__ import annotations

import gzip
import zlib
from typing import Any

import pytest
from server_helpers import events_body, metric, span

from otel_experiments.server import ingest
from otel_experiments.server.jsonapi import ApiError, ApiErrors, _decompress, dumps_str, loads
from otel_experiments.server.schema import CATEGORY_INDEX_CHARS
from otel_experiments.server.store import (
    METRIC_COLUMNS,
    SPAN_COLUMNS,
    decode_cursor,
    encode_cursor,
    tag_map,
)
from otel_experiments.server.store.columns import span_document


def test_schema_errors_agree_with_and_without_jsonschema(
        monkeypatch: pytest.MonkeyPatch) -> None:
    bad = events_body([span(1)], [metric(1, "acc", 0.5)])
    bad["data"]["attributes"]["spans"][0]["span_id"] = "XYZ"
    del bad["data"]["attributes"]["metrics"][0]["timestamp_ms"]
    with pytest.raises(ApiErrors) as fast:
        ingest.validate_schema(bad)
    monkeypatch.setattr(ingest.schema_validator(), "explainer", None)  # jsonschema-rs alone
    with pytest.raises(ApiErrors) as slow:
        ingest.validate_schema(bad)
    pointers = [e.pointer for e in slow.value.errors]
    assert pointers == [e.pointer for e in fast.value.errors]
    assert pointers == ["/data/attributes/metrics/0/timestamp_ms",
                        "/data/attributes/spans/0/span_id"]
    ingest.validate_schema(events_body([span(1)]))  # valid: no error on the slow path either


def test_metric_limits_keep_index_keys_small() -> None:
    long_value = "v" * 5000
    _, (row,) = ingest.parse_events(events_body([], [metric(1, "grade", long_value)]), 10)
    values = dict(zip(METRIC_COLUMNS, row, strict=True))
    assert values["categorical_value"] == "v" * CATEGORY_INDEX_CHARS
    assert loads(values["doc"])["categorical_value"] == long_value  # the full value is kept
    with pytest.raises(ApiError) as err:
        ingest.parse_events(events_body([], [metric(1, "\U0001f600" * 200, 1.0)]), 10)
    assert err.value.pointer == "/data/attributes/metrics/0/label"
    with pytest.raises(ApiError) as err:
        ingest.parse_events(events_body([span(i) for i in range(1, 4)]), 2)
    assert err.value.status == 413


def test_decompress_limits() -> None:
    data = b"x" * 10_000
    assert _decompress(gzip.compress(data), "gzip", 10_000) == data
    assert _decompress(gzip.compress(data) + gzip.compress(data), "gzip", 20_000) == data * 2
    assert _decompress(zlib.compress(data), "deflate", 10_000) == data
    for limit in (9_999, 100):
        with pytest.raises(ApiError) as err:
            _decompress(gzip.compress(data), "gzip", limit)
        assert err.value.status == 413
    with pytest.raises(ApiError) as err:  # second member pushes past the limit
        _decompress(gzip.compress(data) + gzip.compress(data), "gzip", 15_000)
    assert err.value.status == 413
    assert _decompress(gzip.compress(data) * 3, "gzip", 30_000) == data * 3
    assert _decompress(b"", "gzip", 10) == b""  # (then: "request body is empty")
    for bad in (gzip.compress(data)[:-12], gzip.compress(data) + b"garbage", b"not gzip",
                gzip.compress(data) + gzip.compress(data)[:-12]):
        with pytest.raises(ApiError) as err:
            _decompress(bad, "gzip", 100_000)
        assert err.value.status == 400


def test_cursor_and_tags() -> None:
    assert decode_cursor(encode_cursor(12345)) == 12345
    assert decode_cursor(None) == 0 and decode_cursor("") == 0
    for bad in ("***", encode_cursor(-1), "LTE"):
        with pytest.raises(ApiError):
            decode_cursor(bad)
    assert tag_map(["a:1", "a:2", "b:x:y", "nocolon", 5]) == {"a": "1", "b": "x:y"}
    assert tag_map(None) == {}


def test_strict_loads_without_orjson(monkeypatch: pytest.MonkeyPatch) -> None:
    from otel_experiments.server import jsonapi

    monkeypatch.setattr(jsonapi, "JSON_BACKEND", "json")
    assert jsonapi.loads(b'{"a": [1, 2.5, "\\u00e9"]}') == {"a": [1, 2.5, "é"]}
    for bad in (b'{"a": NaN}', b"[Infinity]", b'["\\ud800"]', b'{"\\udfff": 1}',
                b'["\\\\\\ud800"]', b'["\\ud800\\ud800\\udc00"]', b'["\xed\xa0\x80"]',
                '["\ud800"]', '["\ud800"]'.encode("utf-16-le", "surrogatepass")):
        with pytest.raises(ValueError):
            jsonapi.loads(bad)
    assert jsonapi.loads(b'["\\ud83d\\ude00", "\\\\ud800"]') == ["\U0001f600", "\\ud800"]


def test_ids_and_names_reject_unstorable_text() -> None:
    """NUL and lone surrogates are refused by the models' own checks (no second pass)."""
    from otel_experiments.server.validation import id_value, name_value

    for check in (id_value, name_value):
        for bad in ("a\x00b", "a\ud800b", "\udfff"):
            with pytest.raises(ApiError) as err:
                check(bad, "/data/attributes/x")
            assert err.value.status == 400 and err.value.pointer == "/data/attributes/x"
    assert id_value("exp-1", "/x") == "exp-1" and name_value("Nice name", "/x") == "Nice name"


@pytest.mark.parametrize("explained", [True, False])
def test_checks_the_schema_cannot_express(monkeypatch: pytest.MonkeyPatch, explained: bool) -> None:
    """What parse_events checks after the schema, with and without jsonschema's wording."""
    if not explained:
        monkeypatch.setattr(ingest.schema_validator(), "explainer", None)
    cases = [
        ("spans", "span_id", "0000000000000001\n"),  # Python's re: "$" matches before "\n"
        ("spans", "parent_id", "0000000000000001\n"),
        ("spans", "start_ns", 5.5),
        ("spans", "duration", 2**63),
        ("metrics", "trace_id", "00000000000000000000000000000001\n"),
        ("metrics", "timestamp_ms", -1.0),
        ("metrics", "score_value", 10**400),
    ]
    for key, field, value in cases:
        body = events_body([span(1)], [metric(1, "acc", 0.5)])
        body["data"]["attributes"][key][0][field] = value
        with pytest.raises((ApiError, ApiErrors)) as err:
            ingest.parse_events(body, 10)
        errors = err.value.errors if isinstance(err.value, ApiErrors) else [err.value]
        assert f"/data/attributes/{key}/0/{field}" in [e.pointer for e in errors], (field, value)


def test_otlp_rejects_an_unconvertible_span_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    from otel_experiments.server import otlp

    request = ExportTraceServiceRequest()
    spans = request.resource_spans.add().scope_spans.add().spans
    for i, (name, exp_id) in enumerate([("a", "exp-1"), ("boom", "exp-1"), ("b", ""),
                                        ("c", "exp-2"), ("d", "exp-1")], start=1):
        span = spans.add(name=name, trace_id=i.to_bytes(16, "big"), span_id=i.to_bytes(8, "big"))
        span.attributes.add(key="experiment.id").value.string_value = exp_id
    spans.add(name="no-ids")  # invalid trace/span ids
    convert = otlp.span_to_event

    def flaky(span: object, cache: object = None) -> object:
        if getattr(span, "name", "") == "boom":
            raise RuntimeError("cannot convert")
        return convert(span, cache)  # type: ignore[arg-type]

    stored: dict[str, list[str]] = {}

    def ingest_(experiment_id: str, span_rows: list, metric_rows: list) -> object:
        stored[experiment_id] = [row.values[SPAN_COLUMNS.index("name")] for row in span_rows]
        return SimpleNamespace(accepted_spans=len(span_rows), duplicate_spans=0,
                               accepted_metrics=len(metric_rows), duplicate_metrics=0)

    monkeypatch.setattr(otlp, "span_to_event", flaky)
    result = otlp.receive_otlp(SimpleNamespace(ingest=ingest_),  # type: ignore[arg-type]
                               request.SerializeToString(), "application/x-protobuf", 100)
    assert stored == {"exp-1": ["a", "d"], "exp-2": ["c"]}
    assert (result.received_spans, result.accepted_spans, result.ignored_spans,
            result.rejected_spans) == (6, 3, 1, 2)
    assert result.error_message == "span 'boom' could not be converted: cannot convert"


def test_server_events_route_is_the_exporters_path() -> None:
    from otel_experiments.export import EVENTS_PATH
    from otel_experiments.server.app import API_PREFIX, EVENTS_ROUTE

    assert API_PREFIX + EVENTS_ROUTE == EVENTS_PATH


def test_cli_parser_needs_no_server_extra() -> None:
    import subprocess
    import sys

    code = ("import sys\n"
            "for name in ('fastapi', 'starlette', 'sqlalchemy', 'uvicorn', 'alembic'):\n"
            "    sys.modules[name] = None\n"
            "from otel_experiments.cli import build_parser, main\n"
            "args = build_parser().parse_args(['serve'])\n"
            "assert (args.host, args.port) == ('127.0.0.1', 8642), args\n"
            "sys.exit(main(['serve']))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 1, result.stderr
    assert "needs the server extra" in result.stderr


def test_an_encoded_slash_stays_inside_its_path_segment() -> None:
    import asyncio

    from otel_experiments.server.paths import SLASH, EncodedSlashes, IdConvertor

    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["path"])

    middleware = EncodedSlashes(app)

    def routed(raw: bytes, path: str) -> str:
        asyncio.run(middleware({"type": "http", "raw_path": raw, "path": path}, None, None))
        return seen[-1]

    assert routed(b"/e/a%2Fb%25c/events", "/e/a/b%c/events") == f"/e/a{SLASH}b%c/events"
    assert routed(b"/e/a%2fb", "/e/a/b") == f"/e/a{SLASH}b"
    assert routed(b"/e/a%25b", "/e/a%b") == "/e/a%b"  # no encoded slash: as the server decoded it
    # a client sending the placeholder itself gets no rewrite (nothing smuggled as a slash)
    assert routed(b"/e/%EE%80%80%2F", f"/e/{SLASH}/") == f"/e/{SLASH}/"
    convertor = IdConvertor()
    assert convertor.convert(f"..{SLASH}x") == "../x"
    assert convertor.to_string("a/b%") == "a%2Fb%25"


def test_serve_takes_startup_objects_out_of_the_collectors_reach() -> None:
    """``serve`` freezes what start-up built, so full collections (every few events bodies)
    no longer traverse it; a request's own garbage is still collected."""
    import gc

    from otel_experiments.cli.server import _freeze_startup_objects

    class Cycle:
        me: Any = None

    assert gc.get_freeze_count() == 0
    try:
        _freeze_startup_objects()
        assert gc.get_freeze_count() > 10_000
        cycle = Cycle()
        cycle.me = cycle
        alive = [gc.is_tracked(cycle)]
        del cycle
        assert gc.collect() > 0 and alive == [True]
    finally:
        gc.unfreeze()


def test_whole_floats_in_integer_members_are_stored_as_ints() -> None:
    """``5.0`` is a JSON Schema "integer": accepted in every integer member of the schema,
    stored as ``5`` in the columns and in the document."""
    from otel_experiments.events import load_events_schema

    defs = load_events_schema()["$defs"]
    integers = {kind: {name for name, member in defs[kind]["properties"].items()
                       if member.get("type") == "integer"} for kind in ("span", "metric")}
    assert integers == {"span": {"start_ns", "duration"}, "metric": {"timestamp_ms"}}
    body = events_body([span(1)], [metric(1, "acc", 0.5)])
    attrs = body["data"]["attributes"]
    attrs["spans"][0].update(start_ns=7.0, duration=3.0)
    attrs["metrics"][0]["timestamp_ms"] = 1.0
    (row,), (mrow,) = ingest.parse_events(body, 10)
    values = dict(zip(SPAN_COLUMNS, row.values, strict=True))
    assert (values["start_ns"], values["duration"]) == (7, 3)
    assert all(type(values[k]) is int for k in ("start_ns", "duration"))
    stored_doc = loads(values["doc"])  # (the columns hold them: store.columns.COLUMN_MEMBERS)
    assert "start_ns" not in stored_doc and "duration" not in stored_doc
    rebuilt = span_document(stored_doc, *(values[k] for k in (
        "trace_id", "span_id", "parent_id", "name", "start_ns", "duration", "status")))
    assert type(rebuilt["start_ns"]) is int and '"start_ns":7,' in dumps_str(rebuilt)
    stored = dict(zip(METRIC_COLUMNS, mrow, strict=True))
    assert type(stored["timestamp_ms"]) is int and stored["timestamp_ms"] == 1
    assert stored["doc"].endswith('"timestamp_ms":1}')  # (these helpers' member order)
