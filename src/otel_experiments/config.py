"""Every environment variable the package reads, parsed in one place.

Precedence everywhere: constructor argument > environment variable > default.
A bad value never stops the host application: it produces one warning naming the
variable and the value (secrets are never echoed) and the default is used.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import unquote, urlsplit

from .logs import WarnOnce
from .models import TraceExperiment, validate_id, validate_name

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
OTEL_EXPERIMENTS_SPOOL_DIR: Final = "OTEL_EXPERIMENTS_SPOOL_DIR"
OTEL_EXPERIMENTS_SPOOL_MAX_BYTES: Final = "OTEL_EXPERIMENTS_SPOOL_MAX_BYTES"
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
DEFAULT_SPOOL_MAX_BYTES: Final = 64 * 1024 * 1024

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})

#: Every variable this package reads, in documentation order (docs/configuration.md).
ALL_VARIABLES: Final = (
    OTEL_SDK_DISABLED,
    OTEL_EXPERIMENTS_ENABLED,
    OTEL_EXPERIMENTS_ENDPOINT,
    OTEL_EXPERIMENTS_API_KEY,
    OTEL_EXPERIMENTS_HEADERS,
    OTEL_EXPERIMENTS_TIMEOUT,
    OTEL_EXPERIMENTS_COMPRESSION,
    OTEL_EXPERIMENTS_MAX_BODY_BYTES,
    OTEL_EXPERIMENTS_MAX_SPANS_PER_REQUEST,
    OTEL_EXPERIMENTS_SPOOL_DIR,
    OTEL_EXPERIMENTS_SPOOL_MAX_BYTES,
    OTEL_EXPERIMENTS_TRUST_BAGGAGE,
    OTEL_EXPERIMENTS_PROPAGATE_IDENTITY_NAMES,
    OTEL_EXPERIMENTS_MAX_PAYLOAD_CHARS,
    OTEL_EXPERIMENTS_ID,
    OTEL_EXPERIMENTS_NAME,
    OTEL_EXPERIMENTS_FEATURE_SLUG,
)

#: Accepted values of ``OTEL_EXPERIMENTS_COMPRESSION``.
COMPRESSIONS: Final = frozenset({"gzip", "none"})

_warn_once = WarnOnce()


def _warn_invalid(name: str, value: str, expected: str, default: object) -> None:
    """One warning per (variable, bad value) per process; secrets are never echoed."""
    shown = "<redacted>" if name in SECRET_VARIABLES else repr(value)
    _warn_once(
        f"{name}:{hash(value)}",  # a hash: a secret value itself is never kept around
        "otel-experiments: ignoring %s=%s: expected %s; using the default (%r)",
        name,
        shown,
        expected,
        default if name not in SECRET_VARIABLES or not default else "<redacted>",
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


_TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz")


def _valid_header_value(value: str) -> bool:
    return not any((ord(ch) < 0x20 and ch != "\t") or ord(ch) == 0x7F for ch in value)


def parse_headers(raw: str) -> dict[str, str] | None:
    """Parse ``k1=v1,k2=v2`` (W3C Baggage-like, URL-encoded values) as OTLP does.

    Keys are lower-cased and must be HTTP tokens; values may not contain control
    characters (no header injection). Returns ``None`` when any member is malformed,
    so the caller can warn once.
    """
    headers: dict[str, str] = {}
    for member in raw.split(","):
        member = member.strip()
        if not member:
            continue
        key, sep, value = member.partition("=")
        key = unquote(key).strip().lower()
        value = unquote(value).strip()
        if not sep or not key or not set(key) <= _TOKEN_CHARS or not _valid_header_value(value):
            return None
        headers[key] = value
    return headers


def validate_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Check headers given in code; raise ``ValueError`` naming the bad key."""
    out: dict[str, str] = {}
    for key, value in headers.items():
        if not isinstance(key, str) or not key or not set(key.lower()) <= _TOKEN_CHARS:
            raise ValueError(f"invalid HTTP header name {key!r}")
        if not isinstance(value, str) or not _valid_header_value(value):
            raise ValueError(f"invalid value for HTTP header {key!r}")  # value not echoed
        out[key.lower()] = value
    return out


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
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return False
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return False
    return not any(ch.isspace() or ord(ch) < 0x20 for ch in value)


def env_url(name: str, default: str, env: Mapping[str, str] | None = None) -> str:
    raw = _raw(name, env)
    if raw is None:
        return default
    if not valid_http_url(raw):
        _warn_invalid(name, raw, "an http:// or https:// URL", default)
        return default
    return raw.rstrip("/")


def default_spool_dir() -> str:
    """``$XDG_CACHE_HOME/otel-experiments/spool``, else ``~/.cache/otel-experiments/spool``.

    From the process environment (like ``HOME``): it describes the machine, not the
    exporter.
    """
    return xdg_dir("XDG_CACHE_HOME", ".cache", "otel-experiments", "spool")


def env_path(name: str, default: str, env: Mapping[str, str] | None = None) -> str:
    raw = _raw(name, env)
    if raw is None:
        return default
    if "\x00" in raw:
        _warn_invalid(name, raw, "a directory path", default)
        return default
    return os.path.abspath(os.path.expanduser(raw))


def sdk_disabled(env: Mapping[str, str] | None = None) -> bool:
    # Parsed exactly as opentelemetry-sdk does, so we are off exactly when the SDK is.
    return (_raw(OTEL_SDK_DISABLED, env) or "").lower() == "true"


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
    """The process-wide experiment for batch jobs (``OTEL_EXPERIMENTS_ID`` and friends).

    Each variable is checked on its own: a bad ``OTEL_EXPERIMENTS_NAME`` or
    ``OTEL_EXPERIMENTS_FEATURE_SLUG`` is dropped with a warning and the experiment is
    kept; a bad ``OTEL_EXPERIMENTS_ID`` disables the default experiment.
    """
    exp_id = _raw(OTEL_EXPERIMENTS_ID, env)
    name = _raw(OTEL_EXPERIMENTS_NAME, env)
    slug = _raw(OTEL_EXPERIMENTS_FEATURE_SLUG, env)
    if exp_id is None:
        for var, value in ((OTEL_EXPERIMENTS_NAME, name), (OTEL_EXPERIMENTS_FEATURE_SLUG, slug)):
            if value is not None:
                _warn_invalid(var, value, f"to be used together with {OTEL_EXPERIMENTS_ID}", None)
        return None
    try:
        validate_id(exp_id, OTEL_EXPERIMENTS_ID)
    except (TypeError, ValueError) as exc:
        _warn_invalid(OTEL_EXPERIMENTS_ID, exp_id, f"a valid experiment id ({exc})", None)
        return None
    if name is not None:
        try:
            validate_name(name, OTEL_EXPERIMENTS_NAME)
        except (TypeError, ValueError) as exc:
            _warn_invalid(OTEL_EXPERIMENTS_NAME, name, f"a valid name ({exc})", None)
            name = None
    if slug is not None:
        try:
            validate_id(slug, OTEL_EXPERIMENTS_FEATURE_SLUG)
        except (TypeError, ValueError) as exc:
            _warn_invalid(OTEL_EXPERIMENTS_FEATURE_SLUG, slug, f"a valid feature slug ({exc})", None)
            slug = None
    return TraceExperiment(exp_id, name, slug)


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
    spool_dir: str = field(default_factory=default_spool_dir)
    spool_max_bytes: int = DEFAULT_SPOOL_MAX_BYTES

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ExporterSettings:
        """Every field from the environment (or its default)."""
        return cls.resolve(env=env)

    @classmethod
    def resolve(
        cls,
        *,
        endpoint: str | None = None,
        api_key: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        compression: str | None = None,
        max_body_bytes: int | None = None,
        max_spans_per_request: int | None = None,
        spool_dir: str | os.PathLike[str] | None = None,
        spool_max_bytes: int | None = None,
        env: Mapping[str, str] | None = None,
    ) -> ExporterSettings:
        """Constructor argument > environment variable > default, field by field.

        A variable overridden by an argument is not read (so not warned about). Bad
        arguments are programming errors and raise ``ValueError`` / ``TypeError``
        (a secret's value is never part of the message); bad variables warn once and
        fall back to the default.
        """
        if endpoint is not None:
            if not isinstance(endpoint, str) or not valid_http_url(endpoint.strip()):
                raise ValueError(f"endpoint must be an http:// or https:// URL, got {endpoint!r}")
            endpoint = endpoint.strip().rstrip("/")
        else:
            endpoint = env_url(OTEL_EXPERIMENTS_ENDPOINT, DEFAULT_ENDPOINT, env)
        if api_key is not None:
            if not isinstance(api_key, str) or not api_key.strip():
                raise ValueError("api_key must be a non-empty str")
            if not _valid_header_value(api_key):
                raise ValueError("api_key contains control characters")
            api_key = api_key.strip()
        else:
            api_key = env_str(OTEL_EXPERIMENTS_API_KEY, None, env)
        if headers is not None:
            resolved_headers: Mapping[str, str] = validate_headers(headers)
        else:
            resolved_headers = env_headers(OTEL_EXPERIMENTS_HEADERS, env)
        if timeout is not None:
            if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not (
                0.001 <= float(timeout) < float("inf")
            ):
                raise ValueError(f"timeout must be a finite number of seconds >= 0.001, got {timeout!r}")
            timeout = float(timeout)
        else:
            timeout = env_float(OTEL_EXPERIMENTS_TIMEOUT, DEFAULT_TIMEOUT_S, env, minimum=0.001)
        if compression is not None:
            if not isinstance(compression, str) or compression.lower() not in COMPRESSIONS:
                raise ValueError(f"compression must be one of {sorted(COMPRESSIONS)}, got {compression!r}")
            compression = compression.lower()
        else:
            compression = env_choice(
                OTEL_EXPERIMENTS_COMPRESSION, DEFAULT_COMPRESSION, COMPRESSIONS, env
            )
        max_body_bytes = (
            _int_arg("max_body_bytes", max_body_bytes, 1024)
            if max_body_bytes is not None
            else env_int(OTEL_EXPERIMENTS_MAX_BODY_BYTES, DEFAULT_MAX_BODY_BYTES, env, minimum=1024)
        )
        max_spans_per_request = (
            _int_arg("max_spans_per_request", max_spans_per_request, 1)
            if max_spans_per_request is not None
            else env_int(
                OTEL_EXPERIMENTS_MAX_SPANS_PER_REQUEST, DEFAULT_MAX_SPANS_PER_REQUEST, env
            )
        )
        if spool_dir is not None:
            if not isinstance(spool_dir, (str, os.PathLike)) or not str(os.fspath(spool_dir)).strip():
                raise ValueError(f"spool_dir must be a non-empty path, got {spool_dir!r}")
            resolved_spool_dir = os.path.abspath(os.path.expanduser(os.fspath(spool_dir)))
        else:
            resolved_spool_dir = env_path(OTEL_EXPERIMENTS_SPOOL_DIR, default_spool_dir(), env)
        spool_max_bytes = (
            _int_arg("spool_max_bytes", spool_max_bytes, 0)
            if spool_max_bytes is not None
            else env_int(OTEL_EXPERIMENTS_SPOOL_MAX_BYTES, DEFAULT_SPOOL_MAX_BYTES, env, minimum=0)
        )
        return cls(
            endpoint=endpoint,
            api_key=api_key,
            headers=resolved_headers,
            timeout=timeout,
            compression=compression,
            max_body_bytes=max_body_bytes,
            max_spans_per_request=max_spans_per_request,
            spool_dir=resolved_spool_dir,
            spool_max_bytes=spool_max_bytes,
        )


def _int_arg(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def xdg_dir(var: str, fallback: str, *parts: str, env: Mapping[str, str] | None = None) -> str:
    """``$var/<parts>`` when ``$var`` is an absolute path, else ``~/<fallback>/<parts>``.

    The XDG Base Directory rule: a relative (or empty) ``$var`` is ignored, and ``~`` in
    it is not expanded. ``var`` is read from ``env`` (default: the process environment);
    the home directory always comes from the process. Without a usable home directory,
    ``<tempdir>/otel-experiments-<uid>`` stands in for it.
    For example ``xdg_dir("XDG_CACHE_HOME", ".cache", "otel-experiments", "spool")``.
    """
    base = _raw(var, env)
    if base is None or not os.path.isabs(base):
        home = os.path.expanduser("~")
        if not os.path.isabs(home):  # no usable home directory
            import tempfile

            home = os.path.join(tempfile.gettempdir(), f"otel-experiments-{getattr(os, 'getuid', int)()}")
        base = os.path.join(home, fallback)
    return os.path.join(base, *parts)
