"""``otel_experiments.config``: precedence, parsing, one warning per bad value, no secrets."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from otel_experiments import settings as config
from otel_experiments._runtime import env as env_rules
from otel_experiments.models import TraceExperiment
from otel_experiments.settings import ExporterSettings

DOCS = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"


@pytest.fixture(autouse=True)
def _fresh_warnings() -> Iterator[None]:
    env_rules._warn_once.clear()
    yield
    env_rules._warn_once.clear()


@pytest.fixture
def warnings(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.WARNING, logger="otel_experiments")
    return caplog


def _messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "otel_experiments"]


def test_defaults_without_environment() -> None:
    s = ExporterSettings.resolve(env={})
    assert s == ExporterSettings()
    assert s.endpoint == config.DEFAULT_ENDPOINT and s.compression == "gzip"
    assert config.enabled({}) and config.ScopeSettings.from_env({}).trust_baggage
    assert not config.ScopeSettings.from_env({}).propagate_identity_names
    assert config.default_experiment({}) is None
    assert config.ScopeSettings.from_env({}).max_payload_chars == config.DEFAULT_MAX_PAYLOAD_CHARS


def test_environment_values_are_parsed() -> None:
    env = {
        "OTEL_EXPERIMENTS_ENDPOINT": "https://events.example.test:8443/base/",
        "OTEL_EXPERIMENTS_API_KEY": " key-1 ",
        "OTEL_EXPERIMENTS_HEADERS": "X-Team=ml%20ops, x-env = ci ,",
        "OTEL_EXPERIMENTS_TIMEOUT": "2.5",
        "OTEL_EXPERIMENTS_COMPRESSION": "NONE",
        "OTEL_EXPERIMENTS_MAX_BODY_BYTES": "65536",
        "OTEL_EXPERIMENTS_MAX_SPANS_PER_REQUEST": "50",
    }
    s = ExporterSettings.resolve(env=env)
    assert s.endpoint == "https://events.example.test:8443/base"
    assert s.api_key == "key-1"
    assert dict(s.headers) == {"x-team": "ml ops", "x-env": "ci"}
    assert (s.timeout, s.compression, s.max_body_bytes, s.max_spans_per_request) == (
        2.5,
        "none",
        65536,
        50,
    )
    assert "key-1" not in repr(s)


def test_precedence_argument_beats_env_beats_default(warnings: pytest.LogCaptureFixture) -> None:
    env = {
        "OTEL_EXPERIMENTS_ENDPOINT": "http://from-env:1",
        "OTEL_EXPERIMENTS_TIMEOUT": "not-a-number",  # overridden: never read, never warned
        "OTEL_EXPERIMENTS_MAX_SPANS_PER_REQUEST": "7",
    }
    s = ExporterSettings.resolve(endpoint="http://from-arg:2/", timeout=3, env=env)
    assert s.endpoint == "http://from-arg:2"
    assert s.timeout == 3.0
    assert s.max_spans_per_request == 7  # env
    assert s.max_body_bytes == config.DEFAULT_MAX_BODY_BYTES  # default
    assert _messages(warnings) == []


@pytest.mark.parametrize(
    ("name", "value", "field", "default"),
    [
        ("OTEL_EXPERIMENTS_TIMEOUT", "ten", "timeout", config.DEFAULT_TIMEOUT_S),
        ("OTEL_EXPERIMENTS_TIMEOUT", "-1", "timeout", config.DEFAULT_TIMEOUT_S),
        ("OTEL_EXPERIMENTS_TIMEOUT", "nan", "timeout", config.DEFAULT_TIMEOUT_S),
        ("OTEL_EXPERIMENTS_TIMEOUT", "inf", "timeout", config.DEFAULT_TIMEOUT_S),
        ("OTEL_EXPERIMENTS_MAX_BODY_BYTES", "1.5", "max_body_bytes", config.DEFAULT_MAX_BODY_BYTES),
        ("OTEL_EXPERIMENTS_MAX_BODY_BYTES", "10", "max_body_bytes", config.DEFAULT_MAX_BODY_BYTES),
        (
            "OTEL_EXPERIMENTS_MAX_SPANS_PER_REQUEST",
            "0",
            "max_spans_per_request",
            config.DEFAULT_MAX_SPANS_PER_REQUEST,
        ),
        ("OTEL_EXPERIMENTS_COMPRESSION", "brotli", "compression", "gzip"),
    ],
)
def test_bad_value_warns_once_and_falls_back(
    warnings: pytest.LogCaptureFixture, name: str, value: str, field: str, default: object
) -> None:
    for _ in range(3):
        s = ExporterSettings.resolve(env={name: value})
        assert getattr(s, field) == default
    (message,) = _messages(warnings)
    assert f"{name}={value!r}" in message
    assert "using the default" in message


@pytest.mark.parametrize(
    "raw",
    [
        "novalue",
        "=s3cr3t",
        "bad key=1",
        "x-token=s3cr3t%0AInjected: yes",
        "k=v,,broken",
    ],
)
def test_malformed_headers_warn_without_the_secret(
    warnings: pytest.LogCaptureFixture, raw: str
) -> None:
    assert ExporterSettings.resolve(env={"OTEL_EXPERIMENTS_HEADERS": raw}).headers == {}
    (message,) = _messages(warnings)
    assert "OTEL_EXPERIMENTS_HEADERS=<redacted>" in message
    assert "s3cr3t" not in message and raw not in message


def test_headers_accept_empty_members_and_encoded_values() -> None:
    assert env_rules.parse_headers("a=1,,b=x%3Dy") == {"a": "1", "b": "x=y"}
    assert env_rules.parse_headers("") == {}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("true", True), ("TRUE", True), ("1", True), ("yes", True), ("on", True),
     ("false", False), ("0", False), ("No", False), ("off", False)],
)
def test_booleans(raw: str, expected: bool) -> None:
    assert env_rules.env_bool("X", not expected, {"X": raw}) is expected


def test_unknown_boolean_warns_and_uses_default(warnings: pytest.LogCaptureFixture) -> None:
    env = {"OTEL_EXPERIMENTS_TRUST_BAGGAGE": "maybe", "OTEL_EXPERIMENTS_ENABLED": "perhaps"}
    assert config.ScopeSettings.from_env(env).trust_baggage is True
    assert config.enabled(env) is True
    assert config.enabled(env) is True
    messages = _messages(warnings)
    assert len(messages) == 2
    assert any("OTEL_EXPERIMENTS_TRUST_BAGGAGE='maybe'" in m for m in messages)
    assert any("OTEL_EXPERIMENTS_ENABLED='perhaps'" in m for m in messages)


def test_empty_values_mean_unset(warnings: pytest.LogCaptureFixture) -> None:
    env = {name: "  " for name in config.ALL_VARIABLES}
    assert ExporterSettings.resolve(env=env) == ExporterSettings()
    assert config.enabled(env) and config.default_experiment(env) is None
    assert _messages(warnings) == []


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, True),
        ({"OTEL_SDK_DISABLED": "true"}, False),
        ({"OTEL_SDK_DISABLED": "false"}, True),
        ({"OTEL_EXPERIMENTS_ENABLED": "false"}, False),
        ({"OTEL_EXPERIMENTS_ENABLED": "true", "OTEL_SDK_DISABLED": "true"}, False),
    ],
)
def test_enabled(env: dict[str, str], expected: bool) -> None:
    assert config.enabled(env) is expected


def test_default_experiment_from_env() -> None:
    env = {
        "OTEL_EXPERIMENTS_ID": "exp-1",
        "OTEL_EXPERIMENTS_NAME": "Nightly run",
        "OTEL_EXPERIMENTS_FEATURE_SLUG": "support-ticket",
    }
    assert config.default_experiment(env) == TraceExperiment("exp-1", "Nightly run", "support-ticket")


def test_default_experiment_checks_each_variable(warnings: pytest.LogCaptureFixture) -> None:
    env = {
        "OTEL_EXPERIMENTS_ID": "exp-1",
        "OTEL_EXPERIMENTS_NAME": "x" * 10_000,
        "OTEL_EXPERIMENTS_FEATURE_SLUG": "has space",
    }
    assert config.default_experiment(env) == TraceExperiment("exp-1")
    messages = _messages(warnings)
    assert len(messages) == 2
    assert any(m.startswith("otel-experiments: ignoring OTEL_EXPERIMENTS_NAME=") for m in messages)
    assert any("OTEL_EXPERIMENTS_FEATURE_SLUG='has space'" in m for m in messages)


def test_bad_experiment_id_disables_default(warnings: pytest.LogCaptureFixture) -> None:
    assert config.default_experiment({"OTEL_EXPERIMENTS_ID": "a b"}) is None
    (message,) = _messages(warnings)
    assert "OTEL_EXPERIMENTS_ID='a b'" in message


def test_name_without_id_warns(warnings: pytest.LogCaptureFixture) -> None:
    assert config.default_experiment({"OTEL_EXPERIMENTS_NAME": "orphan"}) is None
    (message,) = _messages(warnings)
    assert "OTEL_EXPERIMENTS_NAME='orphan'" in message and "OTEL_EXPERIMENTS_ID" in message


def test_resolve_rejects_bad_arguments_without_echoing_secrets() -> None:
    for kwargs in (
        {"endpoint": "ftp://nope"},
        {"endpoint": "http://h:port"},
        {"timeout": 0},
        {"timeout": True},
        {"compression": "zstd"},
        {"max_body_bytes": 10},
        {"max_spans_per_request": 0},
        {"headers": {"bad key": "v"}},
    ):
        with pytest.raises(ValueError):
            ExporterSettings.resolve(env={}, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError) as info:
        ExporterSettings.resolve(api_key="hunter2\r\nx: y", env={})
    assert "hunter2" not in str(info.value)
    with pytest.raises(ValueError) as info:
        ExporterSettings.resolve(headers={"x-token": "hunter2\n"}, env={})
    assert "hunter2" not in str(info.value)


def test_secret_bad_value_is_redacted(warnings: pytest.LogCaptureFixture) -> None:
    env_rules.warn_invalid("OTEL_EXPERIMENTS_API_KEY", "hunter2", "something", "also-secret")
    (message,) = _messages(warnings)
    assert "hunter2" not in message and "also-secret" not in message


def test_processor_reads_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from otel_experiments import ExperimentSpanProcessor

    monkeypatch.setenv("OTEL_EXPERIMENTS_ID", "exp-env")
    monkeypatch.setenv("OTEL_EXPERIMENTS_TRUST_BAGGAGE", "false")
    proc = ExperimentSpanProcessor()
    assert proc.default_experiment == TraceExperiment("exp-env")
    assert proc._trust_baggage is False
    # constructor beats env
    assert ExperimentSpanProcessor(default_experiment=None).default_experiment is None
    assert ExperimentSpanProcessor(trust_baggage=True)._trust_baggage is True


def test_every_variable_is_declared_and_documented() -> None:
    declared = {
        value
        for name, value in vars(config).items()
        if name.startswith("OTEL_") and isinstance(value, str)
    }
    assert declared == set(config.ALL_VARIABLES)
    text = DOCS.read_text(encoding="utf-8")
    table_rows = set(re.findall(r"^\|\s*`(OTEL_[A-Z_]+)`", text, flags=re.MULTILINE))
    missing = set(config.ALL_VARIABLES) - table_rows
    assert not missing, f"not in the docs/configuration.md table: {sorted(missing)}"
    for server_var in ("OTEL_EXPERIMENTS_SERVER_API_KEYS", "OTEL_EXPERIMENTS_DATA_DIR"):
        assert server_var in text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("localhost:8642", "http://localhost:8642"),  # no scheme: http://, with a note
        ("127.0.0.1:9/base/", "http://127.0.0.1:9/base"),
        ("https://h.example/api/v2/llm-obs/v1", "https://h.example"),  # API path cut back
        ("http://h:1/prefix/api/v2/llm-obs/v1/", "http://h:1/prefix"),
        ("ftp://host", ""), ("http://", ""), ("http://h:99999", ""), ("http://h:port", ""),
    ],
)
def test_an_endpoint_is_never_replaced_by_the_default(
    raw: str, expected: str, warnings: pytest.LogCaptureFixture
) -> None:
    """Data goes to the server named, or nowhere (``""``: the exporter sends nothing)."""
    settings = ExporterSettings.resolve(env={"OTEL_EXPERIMENTS_ENDPOINT": raw})
    assert settings.endpoint == expected
    assert settings.endpoint != config.DEFAULT_ENDPOINT
    assert any("OTEL_EXPERIMENTS_ENDPOINT" in m for m in _messages(warnings))
    if expected:
        assert ExporterSettings.resolve(env={}, endpoint=raw).endpoint == expected
