"""The OpenAPI is the contract: schemathesis with all checks against the real server, and
the browser rules (content types, CORS, Host) that keep other web pages out."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import jsonschema_rs
import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from server_helpers import API, uid

from otel_experiments.models import validate_id, validate_name
from otel_experiments.server import ServerSettings, create_app
from otel_experiments.server.jsonapi import ApiError
from otel_experiments.server.settings import cors_origins_from_env
from otel_experiments.server.store import encode_cursor
from server_process import ServerProcess

CONFIG = Path(__file__).with_name("schemathesis.toml")
#: Examples per operation and phase, and the phases. `make fuzz` raises the budget and adds
#: the coverage phase (boundary and negative cases of every parameter: ~2,000 requests, some
#: with 10,000 records), too slow for every test run on a shared 2-CPU machine.
FUZZ_EXAMPLES = int(os.environ.get("OTEL_EXPERIMENTS_FUZZ_EXAMPLES", "5"))
FUZZ_PHASES = os.environ.get("OTEL_EXPERIMENTS_FUZZ_PHASES", "examples,fuzzing,stateful")
FUZZ_SEED = int(os.environ.get("OTEL_EXPERIMENTS_FUZZ_SEED", "20260101"))
# One worker: with more, Hypothesis parses lambdas' source in several threads at once, which
# CPython 3.11 can fail with "SystemError: AST constructor recursion depth mismatch".
FUZZ_WORKERS = os.environ.get("OTEL_EXPERIMENTS_FUZZ_WORKERS", "1")


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server of its own: the fuzzer writes thousands of odd rows."""
    db = tmp_path_factory.mktemp("fuzz") / "fuzz.db"
    with ServerProcess(f"sqlite:///{db}") as server:
        yield server


#: ddtrace's own endpoints (server/ddtrace/) do not publish their contract yet.
UNCHECKED_TAGS = ("ddtrace",)


def test_schemathesis_all_checks_pass(fuzz_server: ServerProcess, tmp_path: Path) -> None:
    spec = httpx.get(f"{fuzz_server.base_url}/openapi.json").json()
    operations = sum(1 for item in spec["paths"].values() for op in item.values()
                     if not set(op.get("tags", ())) & set(UNCHECKED_TAGS))
    cmd = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "run",
           f"{fuzz_server.base_url}/openapi.json", "--checks", "all",
           *(arg for tag in UNCHECKED_TAGS for arg in ("--exclude-tag", tag)),
           "--seed", str(FUZZ_SEED), "--max-examples", str(FUZZ_EXAMPLES),
           "--phases", FUZZ_PHASES,
           # the largest body the server takes (10,000 records) must answer within 30 s
           # even on a loaded 2-CPU machine; schemathesis' default limit is 10 s
           "--workers", FUZZ_WORKERS, "--request-timeout", "60", "--max-response-time", "30",
           "--report", "junit", "--report-dir", str(tmp_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, cwd=tmp_path,
                          env={**os.environ, "NO_COLOR": "1"})  # its cache stays out of the repo
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-20000:]
    assert re.search(rf"Tested: {operations}\b", out), out[-3000:]  # every one was reached
    generated = int(re.search(r"(\d+) generated", out).group(1))  # type: ignore[union-attr]
    assert generated >= operations * FUZZ_EXAMPLES, out[-3000:]
    print(f"schemathesis: {generated} cases, seed {FUZZ_SEED}")


# -- patterns: the published ones accept exactly what the server's checks accept ------------

ODD = ["a", "a b", " a", "a\n", "é", "ü-exp", "日本", "😀", "\u200b", "\u00a0", "\u0378",
       "\ue000", "\U000e0001", "\x7f", "\x85", "a" * 256, "a" * 257, "", "-", "a\tb", "\u2028"]


#: Rust regex, as schemathesis validates with; the id pattern exceeds the default size limit.
REGEX = jsonschema_rs.FancyRegexOptions(size_limit=150_000_000)


def _spec(**settings: object) -> dict:
    app = create_app(ServerSettings(database_url=f"sqlite:///{settings.pop('db')}",
                                    **settings))  # type: ignore[arg-type]
    return app.openapi()


def _accepts(check: object, value: str) -> bool:
    try:
        check(value, "f")  # type: ignore[operator]
    except (TypeError, ValueError):
        return False
    return True


def test_published_patterns_match_the_server_checks(tmp_path: Path) -> None:
    schemas = _spec(db=tmp_path / "p.db")["components"]["schemas"]
    for component, check in (("Id", validate_id), ("Name", validate_name)):
        # jsonschema-rs is the validator schemathesis (and most tools) check values with
        validator = jsonschema_rs.validator_for(schemas[component], pattern_options=REGEX)
        for value in [*ODD, "x" * 512, "x" * 513, "  x  "]:
            assert validator.is_valid(value) == _accepts(check, value), (component, value)
    cursor = jsonschema_rs.validator_for({"type": "string", "pattern": _param(
        _spec(db=tmp_path / "c.db"), "/projects", "page[cursor]")["pattern"]},
        pattern_options=REGEX)
    for n in (0, 1, 9, 10, 99, 100, 12345, 10**17, 10**18 - 1):
        assert cursor.is_valid(encode_cursor(n)), n
    for bad in ("MQ=", "!", "MTIz\n", "abc", encode_cursor(10**18)):
        assert not cursor.is_valid(bad), bad


def _param(spec: dict, path: str, name: str) -> dict:
    params = spec["paths"][API + path]["get"]["parameters"]
    schema: dict = next(p["schema"] for p in params if p["name"] == name)
    return schema


def test_openapi_lists_what_the_server_answers(tmp_path: Path) -> None:
    spec = _spec(db=tmp_path / "o.db")
    assert spec["openapi"].startswith("3.1")
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if set(op.get("tags", ())) & set(UNCHECKED_TAGS):
                continue
            assert "422" not in op["responses"], (method, path)
            for status, answer in op["responses"].items():
                media = set(answer.get("content", {}))
                expected = ({"application/x-protobuf", "application/json"}
                            if path == "/v1/traces" and status == "200"
                            else {"application/vnd.api+json"})
                assert media == expected, (method, path, status)
    assert {"200", "201"} <= set(spec["paths"][f"{API}/projects"]["post"]["responses"])
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    size = _param(spec, "/projects", "page[size]")
    assert (size["minimum"], size["maximum"]) == (1, 1000)
    keyed = _spec(db=tmp_path / "k.db", api_keys=("k",))
    assert set(keyed["components"]["securitySchemes"]) == {"bearer", "ddApiKey"}
    assert "401" in keyed["paths"][f"{API}/projects"]["get"]["responses"]
    assert keyed["paths"]["/health"]["get"]["security"] == []


# -- browser rules ---------------------------------------------------------------------------

def _otlp_body(experiment_id: str) -> bytes:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("probe").start_as_current_span(
            "probe", attributes={"experiment.id": experiment_id}):
        pass
    provider.shutdown()
    return encode_spans(exporter.get_finished_spans()).SerializeToString()


def test_cross_site_writes_are_refused_and_store_nothing(sqlite_server: ServerProcess) -> None:
    base = sqlite_server.base_url
    exp_id = uid("exp")
    body = _otlp_body(exp_id)
    # the request a page can send with fetch(url, {method: "POST", body: blob}), no preflight
    for headers in ({}, {"content-type": "text/plain"},
                    {"content-type": "application/x-www-form-urlencoded"},
                    {"content-type": "multipart/form-data; boundary=x"}):
        r = httpx.post(f"{base}/v1/traces", content=body, headers=headers)
        assert r.status_code == 415, (headers, r.text)
        assert r.json()["errors"][0]["status"] == "415"
    assert httpx.get(f"{base}{API}/experiments/{exp_id}").status_code == 404
    # the same body with its real type is stored: the probe was a real write
    r = httpx.post(f"{base}/v1/traces", content=body,
                   headers={"content-type": "application/x-protobuf"})
    assert r.status_code == 200 and r.headers["x-otel-experiments-accepted-spans"] == "1"
    assert httpx.get(f"{base}{API}/experiments/{exp_id}").status_code == 200


def test_no_cors_by_default_and_allow_on_405(sqlite_server: ServerProcess) -> None:
    base = sqlite_server.base_url
    origin = {"Origin": "https://attacker.example"}
    r = httpx.get(f"{base}{API}/projects", headers=origin)
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers
    r = httpx.options(f"{base}{API}/projects", headers={
        **origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    assert r.status_code == 405 and "access-control-allow-origin" not in r.headers
    assert r.headers["allow"] == "GET, POST"
    for method, path, allow in (("DELETE", f"{API}/projects", "GET, POST"),
                                ("PUT", "/health", "GET"),
                                ("GET", "/v1/traces", "POST"),
                                ("POST", f"{API}/datasets/d/records/r", "DELETE, PATCH")):
        r = httpx.request(method, f"{base}{path}")
        assert r.status_code == 405 and r.headers["allow"] == allow, (method, path)
        assert r.json()["errors"][0]["status"] == "405"


def test_cors_allow_list(tmp_path: Path) -> None:
    allowed = "http://ui.example:3000"
    env = {**os.environ, "OTEL_EXPERIMENTS_SERVER_CORS_ORIGINS": f" {allowed}/ ,https://b.example"}
    with ServerProcess(f"sqlite:///{tmp_path / 'cors.db'}", env=env) as server:
        url = f"{server.base_url}{API}/projects"
        preflight = {"Access-Control-Request-Method": "POST",
                     "Access-Control-Request-Headers": "content-type"}
        r = httpx.options(url, headers={"Origin": allowed, **preflight})
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == allowed
        assert "access-control-allow-credentials" not in r.headers
        r = httpx.options(url, headers={"Origin": "https://attacker.example", **preflight})
        assert r.status_code == 400 and "access-control-allow-origin" not in r.headers
        name = f"cors-{uuid.uuid4().hex[:8]}"
        r = httpx.post(url, json={"data": {"attributes": {"name": name}}},
                       headers={"Origin": allowed})
        assert r.status_code == 201 and r.headers["access-control-allow-origin"] == allowed
        r = httpx.post(f"{server.base_url}/v1/traces", content=b"",
                       headers={"Origin": allowed, "content-type": "application/x-protobuf"})
        exposed = r.headers["access-control-expose-headers"].lower()
        assert "x-otel-experiments-accepted-spans" in exposed
        # the DNS-rebinding guard holds for allowed origins too
        r = httpx.get(url, headers={"Origin": allowed, "Host": f"ui.example:{server.port}"})
        assert r.status_code == 400


def test_cors_settings() -> None:
    env = {"OTEL_EXPERIMENTS_SERVER_CORS_ORIGINS": "https://a.example/, ,http://b:1"}
    assert cors_origins_from_env(env) == ("https://a.example", "http://b:1")
    assert cors_origins_from_env({}) == ()
    for bad in ("*", "a.example", "https://a.example/path", "file://x"):
        with pytest.raises(ValueError, match="CORS origin"):
            ServerSettings(database_url="sqlite://", cors_origins=(bad,))


def test_time_filters_outside_the_stored_range_are_clamped() -> None:
    # found by schemathesis: year 712 overflowed SQLite's 64-bit integer (a 500)
    from otel_experiments.server.routes._common import time_ns

    assert time_ns("0712-07-19T18:49:58.4+00:51", "f") == 0
    assert time_ns("9999-12-31T23:59:59z", "f") == 2**63 - 1
    assert time_ns("9999999999999999999", "f") == 2**63 - 1
    assert time_ns("1970-01-01T00:00:01Z", "f") == 10**9
    with pytest.raises(ApiError):
        time_ns("yesterday", "f")
