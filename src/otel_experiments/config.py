"""Every environment variable the package reads, parsed in one place.

Precedence everywhere: constructor argument > environment variable > default.
A bad value never stops the host application: it produces one warning naming the
variable and the value (secrets are never echoed) and the default is used.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import unquote, urlsplit

from .models import TraceExperiment

logger = logging.getLogger("otel_experiments")

OTEL_SDK_DISABLED: Final = "OTEL_SDK_DISABLED"
OTEL_EXPERIMENTS_ENABLED: Final = "OTEL_EXPERIMENTS_ENABLED"
OTEL_EXPERIMENTS_ENDPOINT: Final = "OTEL_EXPERIMENTS_ENDPOINT"
OTEL_EXPERIMENTS_API_KEY: Final = "OTEL_EXPERIMENTS_API_KEY"
OTEL_EXPERIMENTS_HEADERS: Final = "OTEL_EXPERIMENTS_HEADERS"
OTEL_EXPERIMENTS_TIMEOUT: Final = "OTEL_EXPERIMENTS_TIMEOUT"
OTEL_EXPERIMENTS_COMPRESSION: Final = "OTEL_EXPERIMENTS_COMPRESSION"
OTEL_EXPERIMENTS_MAX_BODY_BYTES: Final = "OTEL_EXPERIMENTS_MAX_BODY_BYTES"
OTEL_EXPERIMENTS_MAX_SPANS_PER_REQUEST: Final = "OTEL_EXPERIMENTS_MAX_SPANS_PER_REQUEST"
OTEL_EXPERIMENTS_TRUST_BAGGAGE: Final = "OTEL_EXPERIMENTS_TRUST_BAGGAGE"
OTEL_EXPERIMENTS_PROPAGATE_IDENTITY_NAMES: Final = "OTEL_EXPERIMENTS_PROPAGATE_IDENTITY_NAMES"
OTEL_EXPERIMENTS_MAX_PAYLOAD_CHARS: Final = "OTEL_EXPERIMENTS_MAX_PAYLOAD_CHARS"
OTEL_EXPERIMENTS_ID: Final = "OTEL_EXPERIMENTS_ID"
OTEL_EXPERIMENTS_NAME: Final = "OTEL_EXPERIMENTS_NAME"
OTEL_EXPERIMENTS_FEATURE_SLUG: Final = "OTEL_EXPERIMENTS_FEATURE_SLUG"

#: Variables whose values must never be logged.
SECRET_VARIABLES: Final = frozenset({OTEL_EXPERIMENTS_API_KEY, OTEL_EXPERIMENTS_HEADERS})

DEFAULT_ENDPOINT: Final = "http://127.0.0.1:8642"
DEFAULT_TIMEOUT_S: Final = 10.0
DEFAULT_COMPRESSION: Final = "gzip"
DEFAULT_MAX_BODY_BYTES: Final = 4 * 1024 * 1024
DEFAULT_MAX_SPANS_PER_REQUEST: Final = 1000
DEFAULT_MAX_PAYLOAD_CHARS: Final = 32 * 1024

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})

_warned: set[tuple[str, str]] = set()
_warned_lock = threading.Lock()


def _warn_invalid(name: str, value: str, expected: str, default: object) -> None:
    shown = "<redacted>" if name in SECRET_VARIABLES else repr(value)
    with _warned_lock:
        if (name, value) in _warned:
            return
        _warned.add((name, value))
    logger.warning(
        "otel-experiments: ignoring %s=%s: expected %s; using the default (%r)",
        name,
        shown,
        expected,
        default if name not in SECRET_VARIABLES else "<redacted>",
    )


def _raw(name: str, env: Mapping[str, str] | None) -> str | None:
    value = (os.environ if env is None else env).get(name)
    if value is None:
        return None
    value = value.strip()
    return value or None


def env_bool(name: str, default: bool, env: Mapping[str, str] | None = None) -> bool:
    raw = _raw(name, env)
    if raw is None:
        return default
    low = raw.lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    _warn_invalid(name, raw, "true or false", default)
    return default


def env_float(
    name: str, default: float, env: Mapping[str, str] | None = None, *, minimum: float = 0.0
) -> float:
    raw = _raw(name, env)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not value >= minimum or value == float("inf"):  # also rejects NaN
        _warn_invalid(name, raw, f"a finite number >= {minimum}", default)
        return default
    return value


def env_int(name: str, default: int, env: Mapping[str, str] | None = None, *, minimum: int = 1) -> int:
    raw = _raw(name, env)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        _warn_invalid(name, raw, f"an integer >= {minimum}", default)
        return default
    if value < minimum:
        _warn_invalid(name, raw, f"an integer >= {minimum}", default)
        return default
    return value


def env_str(name: str, default: str | None, env: Mapping[str, str] | None = None) -> str | None:
    raw = _raw(name, env)
    return default if raw is None else raw


def env_choice(
    name: str, default: str, choices: frozenset[str], env: Mapping[str, str] | None = None
) -> str:
    raw = _raw(name, env)
    if raw is None:
        return default
    if raw.lower() in choices:
        return raw.lower()
    _warn_invalid(name, raw, " or ".join(sorted(choices)), default)
    return default


def parse_headers(raw: str) -> dict[str, str] | None:
    """Parse ``k1=v1,k2=v2`` (W3C Baggage-like, URL-encoded values) as OTLP does.

    Returns ``None`` when any member is malformed, so the caller can warn once.
    """
    headers: dict[str, str] = {}
    for member in raw.split(","):
        member = member.strip()
        if not member:
            continue
        key, sep, value = member.partition("=")
        key = unquote(key).strip().lower()
        if not sep or not key or any(ch.isspace() or ord(ch) < 0x21 for ch in key):
            return None
        headers[key] = unquote(value).strip()
    return headers


def env_headers(name: str, env: Mapping[str, str] | None = None) -> dict[str, str]:
    raw = _raw(name, env)
    if raw is None:
        return {}
    parsed = parse_headers(raw)
    if parsed is None:
        _warn_invalid(name, raw, "a comma-separated list of key=value pairs", {})
        return {}
    return parsed


def valid_http_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def env_url(name: str, default: str, env: Mapping[str, str] | None = None) -> str:
    raw = _raw(name, env)
    if raw is None:
        return default
    if not valid_http_url(raw):
        _warn_invalid(name, raw, "an http:// or https:// URL", default)
        return default
    return raw.rstrip("/")


def sdk_disabled(env: Mapping[str, str] | None = None) -> bool:
    return env_bool(OTEL_SDK_DISABLED, False, env)


def enabled(env: Mapping[str, str] | None = None) -> bool:
    """False when ``OTEL_SDK_DISABLED=true`` or ``OTEL_EXPERIMENTS_ENABLED=false``."""
    return not sdk_disabled(env) and env_bool(OTEL_EXPERIMENTS_ENABLED, True, env)


def trust_baggage(env: Mapping[str, str] | None = None) -> bool:
    return env_bool(OTEL_EXPERIMENTS_TRUST_BAGGAGE, True, env)


def propagate_identity_names(env: Mapping[str, str] | None = None) -> bool:
    return env_bool(OTEL_EXPERIMENTS_PROPAGATE_IDENTITY_NAMES, False, env)


def max_payload_chars(env: Mapping[str, str] | None = None) -> int:
    return env_int(OTEL_EXPERIMENTS_MAX_PAYLOAD_CHARS, DEFAULT_MAX_PAYLOAD_CHARS, env, minimum=64)


def default_experiment(env: Mapping[str, str] | None = None) -> TraceExperiment | None:
    """The process-wide experiment for batch jobs (``OTEL_EXPERIMENTS_ID`` and friends)."""
    exp_id = _raw(OTEL_EXPERIMENTS_ID, env)
    if exp_id is None:
        return None
    try:
        return TraceExperiment(
            exp_id,
            _raw(OTEL_EXPERIMENTS_NAME, env),
            _raw(OTEL_EXPERIMENTS_FEATURE_SLUG, env),
        )
    except (TypeError, ValueError) as exc:
        _warn_invalid(OTEL_EXPERIMENTS_ID, exp_id, f"a valid experiment ({exc})", None)
        return None


@dataclass(frozen=True)
class ExporterSettings:
    """Delivery settings for :class:`~otel_experiments.exporter.ExperimentEventsExporter`."""

    endpoint: str = DEFAULT_ENDPOINT
    api_key: str | None = field(default=None, repr=False)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    timeout: float = DEFAULT_TIMEOUT_S
    compression: str = DEFAULT_COMPRESSION
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_spans_per_request: int = DEFAULT_MAX_SPANS_PER_REQUEST

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ExporterSettings:
        return cls(
            endpoint=env_url(OTEL_EXPERIMENTS_ENDPOINT, DEFAULT_ENDPOINT, env),
            api_key=env_str(OTEL_EXPERIMENTS_API_KEY, None, env),
            headers=env_headers(OTEL_EXPERIMENTS_HEADERS, env),
            timeout=env_float(OTEL_EXPERIMENTS_TIMEOUT, DEFAULT_TIMEOUT_S, env, minimum=0.001),
            compression=env_choice(
                OTEL_EXPERIMENTS_COMPRESSION, DEFAULT_COMPRESSION, frozenset({"gzip", "none"}), env
            ),
            max_body_bytes=env_int(
                OTEL_EXPERIMENTS_MAX_BODY_BYTES, DEFAULT_MAX_BODY_BYTES, env, minimum=1024
            ),
            max_spans_per_request=env_int(
                OTEL_EXPERIMENTS_MAX_SPANS_PER_REQUEST, DEFAULT_MAX_SPANS_PER_REQUEST, env
            ),
        )
