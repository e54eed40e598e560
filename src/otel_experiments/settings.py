"""Every environment variable the package reads: its name, default and meaning, once.

Precedence everywhere: constructor argument > environment variable > default. Each
settings object reads its variables once, when it is built: :class:`ExporterSettings`
per exporter, :class:`ScopeSettings` once per process (:func:`scope_settings`; call
:func:`reload` after changing ``os.environ`` at run time). A bad value never stops the
host application: it produces one warning naming the variable and the value (secrets
are never echoed) and the default is used. The parsing rules are
:mod:`otel_experiments._runtime.env`.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from ._runtime.args import (
    api_key_arg,
    attribute_keys_arg,
    hash_key_arg,
    int_arg,
    parse_rules,
    redact_arg,
    seconds_arg,
    spool_dir_arg,
)
from ._runtime.env import (
    env_bool,
    env_choice,
    env_float,
    env_headers,
    env_int,
    env_path,
    env_str,
    raw_value,
    redact_url,
    valid_http_url,
    validate_headers,
    warn_invalid,
    xdg_dir,
)
from ._runtime.logs import WarnOnce
from .models import TraceExperiment, validate_id, validate_name

OTEL_SDK_DISABLED: Final = "OTEL_SDK_DISABLED"
OTEL_EXPERIMENTS_ENABLED: Final = "OTEL_EXPERIMENTS_ENABLED"
OTEL_EXPERIMENTS_ENDPOINT: Final = "OTEL_EXPERIMENTS_ENDPOINT"
OTEL_EXPERIMENTS_API_KEY: Final = "OTEL_EXPERIMENTS_API_KEY"
OTEL_EXPERIMENTS_HEADERS: Final = "OTEL_EXPERIMENTS_HEADERS"
OTEL_EXPERIMENTS_TIMEOUT: Final = "OTEL_EXPERIMENTS_TIMEOUT"
OTEL_EXPERIMENTS_SHUTDOWN_TIMEOUT: Final = "OTEL_EXPERIMENTS_SHUTDOWN_TIMEOUT"
OTEL_EXPERIMENTS_COMPRESSION: Final = "OTEL_EXPERIMENTS_COMPRESSION"
OTEL_EXPERIMENTS_DIALECT: Final = "OTEL_EXPERIMENTS_DIALECT"
OTEL_EXPERIMENTS_MAX_BODY_BYTES: Final = "OTEL_EXPERIMENTS_MAX_BODY_BYTES"
OTEL_EXPERIMENTS_MAX_SPANS_PER_REQUEST: Final = "OTEL_EXPERIMENTS_MAX_SPANS_PER_REQUEST"
OTEL_EXPERIMENTS_SPOOL_DIR: Final = "OTEL_EXPERIMENTS_SPOOL_DIR"
OTEL_EXPERIMENTS_SPOOL_MAX_BYTES: Final = "OTEL_EXPERIMENTS_SPOOL_MAX_BYTES"
OTEL_EXPERIMENTS_OVERFLOW_MAX_BYTES: Final = "OTEL_EXPERIMENTS_OVERFLOW_MAX_BYTES"
OTEL_EXPERIMENTS_REDACT: Final = "OTEL_EXPERIMENTS_REDACT"
OTEL_EXPERIMENTS_SPAN_ATTRIBUTES: Final = "OTEL_EXPERIMENTS_SPAN_ATTRIBUTES"
OTEL_EXPERIMENTS_NATIVE_ENCODER: Final = "OTEL_EXPERIMENTS_NATIVE_ENCODER"
OTEL_EXPERIMENTS_HASH_USER_IDS_KEY: Final = "OTEL_EXPERIMENTS_HASH_USER_IDS_KEY"
OTEL_EXPERIMENTS_TRUST_BAGGAGE: Final = "OTEL_EXPERIMENTS_TRUST_BAGGAGE"
OTEL_EXPERIMENTS_PROPAGATE_IDENTITY_NAMES: Final = "OTEL_EXPERIMENTS_PROPAGATE_IDENTITY_NAMES"
OTEL_EXPERIMENTS_MAX_PAYLOAD_CHARS: Final = "OTEL_EXPERIMENTS_MAX_PAYLOAD_CHARS"
OTEL_EXPERIMENTS_ID: Final = "OTEL_EXPERIMENTS_ID"
OTEL_EXPERIMENTS_NAME: Final = "OTEL_EXPERIMENTS_NAME"
OTEL_EXPERIMENTS_FEATURE_SLUG: Final = "OTEL_EXPERIMENTS_FEATURE_SLUG"

DEFAULT_ENDPOINT: Final = "http://127.0.0.1:8642"
DEFAULT_TIMEOUT_S: Final = 10.0
DEFAULT_SHUTDOWN_TIMEOUT_S: Final = 5.0
DEFAULT_COMPRESSION: Final = "gzip"
DEFAULT_DIALECT: Final = "otel"
DEFAULT_MAX_BODY_BYTES: Final = 4 * 1024 * 1024
DEFAULT_MAX_SPANS_PER_REQUEST: Final = 1000
DEFAULT_MAX_PAYLOAD_CHARS: Final = 32 * 1024
DEFAULT_SPOOL_MAX_BYTES: Final = 64 * 1024 * 1024
#: the batch processor's overflow, encoded and waiting for its spool write (sdk/spill.py)
DEFAULT_OVERFLOW_MAX_BYTES: Final = 16 * 1024 * 1024

#: Every variable this package reads, in documentation order (docs/configuration.md).
ALL_VARIABLES: Final = (
    OTEL_SDK_DISABLED,
    OTEL_EXPERIMENTS_ENABLED,
    OTEL_EXPERIMENTS_ENDPOINT,
    OTEL_EXPERIMENTS_API_KEY,
    OTEL_EXPERIMENTS_HEADERS,
    OTEL_EXPERIMENTS_TIMEOUT,
    OTEL_EXPERIMENTS_SHUTDOWN_TIMEOUT,
    OTEL_EXPERIMENTS_COMPRESSION,
    OTEL_EXPERIMENTS_DIALECT,
    OTEL_EXPERIMENTS_MAX_BODY_BYTES,
    OTEL_EXPERIMENTS_MAX_SPANS_PER_REQUEST,
    OTEL_EXPERIMENTS_SPOOL_DIR,
    OTEL_EXPERIMENTS_SPOOL_MAX_BYTES,
    OTEL_EXPERIMENTS_OVERFLOW_MAX_BYTES,
    OTEL_EXPERIMENTS_REDACT,
    OTEL_EXPERIMENTS_SPAN_ATTRIBUTES,
    OTEL_EXPERIMENTS_NATIVE_ENCODER,
    OTEL_EXPERIMENTS_HASH_USER_IDS_KEY,
    OTEL_EXPERIMENTS_TRUST_BAGGAGE,
    OTEL_EXPERIMENTS_PROPAGATE_IDENTITY_NAMES,
    OTEL_EXPERIMENTS_MAX_PAYLOAD_CHARS,
    OTEL_EXPERIMENTS_ID,
    OTEL_EXPERIMENTS_NAME,
    OTEL_EXPERIMENTS_FEATURE_SLUG,
)

#: Accepted values of ``OTEL_EXPERIMENTS_COMPRESSION``.
COMPRESSIONS: Final = frozenset({"gzip", "none"})
#: Accepted values of ``OTEL_EXPERIMENTS_DIALECT``: ours (to our server or Datadog's public
#: experiments API), or ddtrace's (what Datadog's SDK sends; ``events/dialects.py``).
DIALECTS: Final = frozenset({"otel", "ddtrace"})

def default_spool_dir() -> str:
    """``$XDG_CACHE_HOME/otel-experiments/spool``, else ``~/.cache/otel-experiments/spool``.

    From the process environment (like ``HOME``): it describes the machine, not the
    exporter.
    """
    return xdg_dir("XDG_CACHE_HOME", ".cache", "otel-experiments", "spool")


def sdk_disabled(env: Mapping[str, str] | None = None) -> bool:
    # Parsed exactly as opentelemetry-sdk does, so we are off exactly when the SDK is.
    return (raw_value(OTEL_SDK_DISABLED, env) or "").lower() == "true"


def enabled(env: Mapping[str, str] | None = None) -> bool:
    """False when ``OTEL_SDK_DISABLED=true`` or ``OTEL_EXPERIMENTS_ENABLED=false``."""
    return not sdk_disabled(env) and env_bool(OTEL_EXPERIMENTS_ENABLED, True, env)


def native_encoder(env: Mapping[str, str] | None = None) -> bool:
    """False when ``OTEL_EXPERIMENTS_NATIVE_ENCODER=false``: every span converted in Python."""
    return env_bool(OTEL_EXPERIMENTS_NATIVE_ENCODER, True, env)


def default_experiment(env: Mapping[str, str] | None = None) -> TraceExperiment | None:
    """The process-wide experiment for batch jobs (``OTEL_EXPERIMENTS_ID`` and friends).

    Each variable is checked on its own: a bad ``OTEL_EXPERIMENTS_NAME`` or
    ``OTEL_EXPERIMENTS_FEATURE_SLUG`` is dropped with a warning and the experiment is
    kept; a bad ``OTEL_EXPERIMENTS_ID`` disables the default experiment.
    """
    exp_id = raw_value(OTEL_EXPERIMENTS_ID, env)
    name = raw_value(OTEL_EXPERIMENTS_NAME, env)
    slug = raw_value(OTEL_EXPERIMENTS_FEATURE_SLUG, env)
    if exp_id is None:
        for var, value in ((OTEL_EXPERIMENTS_NAME, name), (OTEL_EXPERIMENTS_FEATURE_SLUG, slug)):
            if value is not None:
                warn_invalid(var, value, f"to be used together with {OTEL_EXPERIMENTS_ID}", None)
        return None
    try:
        validate_id(exp_id, OTEL_EXPERIMENTS_ID)
    except (TypeError, ValueError) as exc:
        warn_invalid(OTEL_EXPERIMENTS_ID, exp_id, f"a valid experiment id ({exc})", None)
        return None
    if name is not None:
        try:
            validate_name(name, OTEL_EXPERIMENTS_NAME)
        except (TypeError, ValueError) as exc:
            warn_invalid(OTEL_EXPERIMENTS_NAME, name, f"a valid name ({exc})", None)
            name = None
    if slug is not None:
        try:
            validate_id(slug, OTEL_EXPERIMENTS_FEATURE_SLUG)
        except (TypeError, ValueError) as exc:
            warn_invalid(OTEL_EXPERIMENTS_FEATURE_SLUG, slug, f"a valid feature slug ({exc})", None)
            slug = None
    return TraceExperiment(exp_id, name, slug)


# --------------------------------------------------------------------- scope settings


@dataclass(frozen=True, slots=True)
class ScopeSettings:
    """How experiment scopes behave in this process (read once: :func:`scope_settings`)."""

    #: stamp spans from inbound W3C Baggage (``OTEL_EXPERIMENTS_TRUST_BAGGAGE``)
    trust_baggage: bool = True
    #: send user/organization names in outgoing baggage
    #: (``OTEL_EXPERIMENTS_PROPAGATE_IDENTITY_NAMES``)
    propagate_identity_names: bool = False
    #: cap on one recorded input/output/metadata value (``OTEL_EXPERIMENTS_MAX_PAYLOAD_CHARS``)
    max_payload_chars: int = DEFAULT_MAX_PAYLOAD_CHARS
    #: attribute keys never put in outgoing baggage (the keys of ``OTEL_EXPERIMENTS_REDACT``)
    redact: frozenset[str] = frozenset()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ScopeSettings:
        return cls(
            trust_baggage=env_bool(OTEL_EXPERIMENTS_TRUST_BAGGAGE, True, env),
            propagate_identity_names=env_bool(OTEL_EXPERIMENTS_PROPAGATE_IDENTITY_NAMES, False, env),
            max_payload_chars=env_int(
                OTEL_EXPERIMENTS_MAX_PAYLOAD_CHARS, DEFAULT_MAX_PAYLOAD_CHARS, env, minimum=64
            ),
            redact=frozenset(
                rule for rule in parse_rules(env_str(OTEL_EXPERIMENTS_REDACT, "", env) or "")
                if not rule.startswith("$")
            ),
        )


_scope_settings: ScopeSettings | None = None
_scope_lock = threading.Lock()


def scope_settings() -> ScopeSettings:
    """This process's :class:`ScopeSettings`, read from the environment on first use."""
    current = _scope_settings
    if current is None:
        current = reload()
    return current


def reload() -> ScopeSettings:
    """Read :class:`ScopeSettings` from the environment again (after changing ``os.environ``)."""
    global _scope_settings
    with _scope_lock:
        _scope_settings = ScopeSettings.from_env()
        return _scope_settings


# ------------------------------------------------------------------ exporter settings


Env = Mapping[str, str] | None

#: The path the API lives under; an endpoint is the part before it.
API_PATH: Final = "/api/v2/llm-obs/v1"

_notes = WarnOnce()
#: ``scheme:`` not followed by a port number (``localhost:8642`` has no scheme)
_SCHEME: Final = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:(?!\d)")


def normalize_endpoint(value: str, source: str) -> str | None:
    """The endpoint to use for ``value`` (from ``source``), or ``None`` when it is unusable.

    Data never goes to another server than the one named: ``localhost:8642`` (no scheme)
    is read as ``http://localhost:8642`` and an endpoint given with the API path
    (``.../api/v2/llm-obs/v1``) is cut back to its base, each with a note; anything else
    that is not an http(s) URL is refused (``None``), never replaced by the default.
    """
    url = value.strip()
    if url and "://" not in url and not _SCHEME.match(url) and not url.startswith("/"):
        _notes(f"scheme:{url}", "otel-experiments: %s=%r has no scheme; using http://%s",
               source, url, url)
        url = "http://" + url
    url = url.rstrip("/")
    if not valid_http_url(url):
        return None
    base, sep, _rest = url.partition(API_PATH)
    if sep:
        _notes(f"api-path:{url}", "otel-experiments: %s=%r includes the API path %s; using %r "
               "(the exporter appends the path itself)", source, url, API_PATH, base)
        url = base.rstrip("/")
    return url


def _endpoint_arg(value: object) -> str:
    url = normalize_endpoint(value, "endpoint") if isinstance(value, str) else None
    if url is None:
        raise ValueError(f"endpoint must be an http:// or https:// URL, got {value!r}")
    return url


def _endpoint_env(env: Env) -> str:
    raw = raw_value(OTEL_EXPERIMENTS_ENDPOINT, env)
    if raw is None:
        return DEFAULT_ENDPOINT
    url = normalize_endpoint(raw, OTEL_EXPERIMENTS_ENDPOINT)
    if url is None:
        _notes(f"bad-endpoint:{raw}", "otel-experiments: %s=%r is not an http:// or https:// "
               "URL: nothing will be exported until it is fixed (spans are not sent to the "
               "default endpoint instead)", OTEL_EXPERIMENTS_ENDPOINT, raw[:200])
        return ""
    return url


def _compression_arg(value: object) -> str:
    value = getattr(value, "value", value)  # also opentelemetry's ``Compression`` enum
    if not isinstance(value, str) or value.strip().lower() not in COMPRESSIONS:
        raise ValueError(f"compression must be one of {sorted(COMPRESSIONS)}, got {value!r}")
    return value.strip().lower()


def dialect_arg(value: object) -> str:
    if not isinstance(value, str) or value.strip().lower() not in DIALECTS:
        raise ValueError(f"dialect must be one of {sorted(DIALECTS)}, got {value!r}")
    return value.strip().lower()


#: Each exporter setting: how an argument is checked (raises) and how the variable is
#: read (warns and falls back). The one table ``ExporterSettings.resolve`` walks.
_EXPORTER_FIELDS: Final[dict[str, tuple[Callable[[Any], Any], Callable[[Env], Any]]]] = {
    "endpoint": (_endpoint_arg, _endpoint_env),
    "api_key": (api_key_arg, lambda env: env_str(OTEL_EXPERIMENTS_API_KEY, None, env)),
    "headers": (validate_headers, lambda env: env_headers(OTEL_EXPERIMENTS_HEADERS, env)),
    "timeout": (
        seconds_arg("timeout"),
        lambda env: env_float(OTEL_EXPERIMENTS_TIMEOUT, DEFAULT_TIMEOUT_S, env, minimum=0.001),
    ),
    "shutdown_timeout": (
        seconds_arg("shutdown_timeout"),
        lambda env: env_float(
            OTEL_EXPERIMENTS_SHUTDOWN_TIMEOUT, DEFAULT_SHUTDOWN_TIMEOUT_S, env, minimum=0.001
        ),
    ),
    "compression": (
        _compression_arg,
        lambda env: env_choice(OTEL_EXPERIMENTS_COMPRESSION, DEFAULT_COMPRESSION, COMPRESSIONS, env),
    ),
    "max_body_bytes": (
        int_arg("max_body_bytes", 1024),
        lambda env: env_int(OTEL_EXPERIMENTS_MAX_BODY_BYTES, DEFAULT_MAX_BODY_BYTES, env, minimum=1024),
    ),
    "max_spans_per_request": (
        int_arg("max_spans_per_request", 1),
        lambda env: env_int(
            OTEL_EXPERIMENTS_MAX_SPANS_PER_REQUEST, DEFAULT_MAX_SPANS_PER_REQUEST, env
        ),
    ),
    "dialect": (
        dialect_arg,
        lambda env: env_choice(OTEL_EXPERIMENTS_DIALECT, DEFAULT_DIALECT, DIALECTS, env),
    ),
    "spool_dir": (
        spool_dir_arg,
        lambda env: env_path(OTEL_EXPERIMENTS_SPOOL_DIR, default_spool_dir(), env),
    ),
    "spool_max_bytes": (
        int_arg("spool_max_bytes", 0),
        lambda env: env_int(OTEL_EXPERIMENTS_SPOOL_MAX_BYTES, DEFAULT_SPOOL_MAX_BYTES, env, minimum=0),
    ),
    "redact": (
        redact_arg,
        lambda env: parse_rules(env_str(OTEL_EXPERIMENTS_REDACT, "", env) or ""),
    ),
    "hash_user_ids_key": (hash_key_arg, lambda env: _hash_key_env(env)),
    "span_attributes": (
        attribute_keys_arg,
        lambda env: parse_rules(env_str(OTEL_EXPERIMENTS_SPAN_ATTRIBUTES, "", env) or ""),
    ),
}


def _hash_key_env(env: Env) -> str | None:
    value = env_str(OTEL_EXPERIMENTS_HASH_USER_IDS_KEY, None, env)
    if value is not None and len(value) < 16:  # a weak key would make ids guessable
        warn_invalid(OTEL_EXPERIMENTS_HASH_USER_IDS_KEY, value, "at least 16 characters", None)
        return None
    return value


@dataclass(frozen=True, repr=False)
class ExporterSettings:
    """Everything :class:`~otel_experiments.ExperimentEventsExporter` needs to deliver.

    Build it with :meth:`resolve` (arguments over variables over defaults); the
    exporter keeps it whole as ``exporter.settings``. Secrets are left out of ``repr``.
    """

    #: the backend's base URL; ``""`` when the configured one is unusable (nothing is sent)
    endpoint: str = DEFAULT_ENDPOINT
    api_key: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout: float = DEFAULT_TIMEOUT_S
    compression: str = DEFAULT_COMPRESSION
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_spans_per_request: int = DEFAULT_MAX_SPANS_PER_REQUEST
    #: the wire dialect: ``otel`` (ours) or ``ddtrace`` (Datadog's SDK's)
    dialect: str = DEFAULT_DIALECT
    spool_dir: str = field(default_factory=default_spool_dir)
    spool_max_bytes: int = DEFAULT_SPOOL_MAX_BYTES
    #: bound on shutting down, flushes at exit included (``OTEL_EXPERIMENTS_SHUTDOWN_TIMEOUT``)
    shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT_S
    #: attribute keys / JSON paths masked before export (``OTEL_EXPERIMENTS_REDACT``)
    redact: tuple[str, ...] = ()
    #: send HMAC-SHA256(key, user id) instead of user ids (secret, never in repr)
    hash_user_ids_key: str | None = None
    #: span attributes carried on the event besides ``gen_ai.*`` (``key`` or ``prefix*``;
    #: ``OTEL_EXPERIMENTS_SPAN_ATTRIBUTES``)
    span_attributes: tuple[str, ...] = ()

    @classmethod
    def resolve(cls, *, env: Env = None, **arguments: Any) -> ExporterSettings:
        """Argument > environment variable > default, field by field.

        ``arguments`` are field names; ``None`` means "not given". A variable
        overridden by an argument is not read (so not warned about). Bad arguments are
        programming errors and raise ``ValueError`` / ``TypeError`` (a secret's value is
        never part of the message); bad variables warn once and fall back to the default.
        """
        unknown = set(arguments) - set(_EXPORTER_FIELDS)
        if unknown:
            raise TypeError(f"unknown exporter setting(s): {', '.join(sorted(unknown))}")
        values = {
            name: check(arguments[name]) if arguments.get(name) is not None else from_env(env)
            for name, (check, from_env) in _EXPORTER_FIELDS.items()
        }
        return cls(**values)

    def __repr__(self) -> str:
        # Never a secret: the api key and header values are left out, a password in the
        # endpoint's userinfo is masked.
        return (
            f"{type(self).__name__}(endpoint={redact_url(self.endpoint)!r}, "
            f"api_key={'<redacted>' if self.api_key else None}, "
            f"headers={sorted(self.headers)!r}, timeout={self.timeout!r}, "
            f"compression={self.compression!r}, max_body_bytes={self.max_body_bytes!r}, "
            f"max_spans_per_request={self.max_spans_per_request!r}, "
            f"spool_dir={self.spool_dir!r}, spool_max_bytes={self.spool_max_bytes!r}, "
            f"shutdown_timeout={self.shutdown_timeout!r}, redact={list(self.redact)!r}, "
            f"span_attributes={list(self.span_attributes)!r}, "
            f"hash_user_ids_key={'<redacted>' if self.hash_user_ids_key else None})"
        )

    @property
    def credentials(self) -> tuple[str, ...]:
        """What authenticates a request: a spooled body is only replayed with the same."""
        if not self.api_key and not self.headers:
            return ()
        return (self.api_key or "", *sorted(f"{k}={v}" for k, v in self.headers.items()))

