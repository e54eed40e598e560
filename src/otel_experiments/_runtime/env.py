"""Parsing environment variables: one warning per bad value, never an exception.

Generic primitives (``env_bool``, ``env_int``, ``env_path``, ...) that take the variable's
name; which variables exist and what they mean is :mod:`otel_experiments.settings`.
A bad value produces one warning naming the variable and the value (a secret's value
is never echoed) and the default is used.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from urllib.parse import unquote, urlsplit, urlunsplit

from .logs import WarnOnce

__all__ = [
    "env_bool",
    "env_choice",
    "env_float",
    "env_headers",
    "env_int",
    "env_path",
    "env_str",
    "is_secret",
    "parse_headers",
    "raw_value",
    "redact_url",
    "valid_header_value",
    "valid_http_url",
    "validate_headers",
    "warn_invalid",
    "xdg_dir",
]

logger = logging.getLogger("otel_experiments")

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


_SECRET_SUFFIXES = ("_KEY", "_API_KEYS", "_HEADERS", "_TOKEN", "_PASSWORD", "_SECRET")


def is_secret(name: str) -> bool:
    """Variables whose values are never logged (keys, tokens, header values)."""
    return name.endswith(_SECRET_SUFFIXES)


_warn_once = WarnOnce()


def warn_invalid(name: str, value: str, expected: str, default: object) -> None:
    """One warning per (variable, bad value) per process; secrets are never echoed."""
    shown = "<redacted>" if is_secret(name) else repr(value)
    _warn_once(
        f"{name}:{hash(value)}",  # a hash: a secret value itself is never kept around
        "otel-experiments: ignoring %s=%s: expected %s; using the default (%r)",
        name,
        shown,
        expected,
        default if not is_secret(name) or not default else "<redacted>",
    )


def raw_value(name: str, env: Mapping[str, str] | None) -> str | None:
    value = (os.environ if env is None else env).get(name)
    if value is None:
        return None
    value = value.strip()
    return value or None


def env_bool(name: str, default: bool, env: Mapping[str, str] | None = None) -> bool:
    raw = raw_value(name, env)
    if raw is None:
        return default
    low = raw.lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    warn_invalid(name, raw, "true or false", default)
    return default


def env_float(
    name: str, default: float, env: Mapping[str, str] | None = None, *, minimum: float = 0.0
) -> float:
    raw = raw_value(name, env)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not value >= minimum or value == float("inf"):  # also rejects NaN
        warn_invalid(name, raw, f"a finite number >= {minimum}", default)
        return default
    return value


def env_int(name: str, default: int, env: Mapping[str, str] | None = None, *, minimum: int = 1) -> int:
    raw = raw_value(name, env)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        warn_invalid(name, raw, f"an integer >= {minimum}", default)
        return default
    if value < minimum:
        warn_invalid(name, raw, f"an integer >= {minimum}", default)
        return default
    return value


def env_str(name: str, default: str | None, env: Mapping[str, str] | None = None) -> str | None:
    raw = raw_value(name, env)
    return default if raw is None else raw


def env_choice(
    name: str, default: str, choices: frozenset[str], env: Mapping[str, str] | None = None
) -> str:
    raw = raw_value(name, env)
    if raw is None:
        return default
    if raw.lower() in choices:
        return raw.lower()
    warn_invalid(name, raw, " or ".join(sorted(choices)), default)
    return default


_TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz")


def valid_header_value(value: str) -> bool:
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
        if not sep or not key or not set(key) <= _TOKEN_CHARS or not valid_header_value(value):
            return None
        headers[key] = value
    return headers


def validate_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Check headers given in code; raise ``ValueError`` naming the bad key."""
    out: dict[str, str] = {}
    for key, value in headers.items():
        if not isinstance(key, str) or not key or not set(key.lower()) <= _TOKEN_CHARS:
            raise ValueError(f"invalid HTTP header name {key!r}")
        if not isinstance(value, str) or not valid_header_value(value):
            raise ValueError(f"invalid value for HTTP header {key!r}")  # value not echoed
        out[key.lower()] = value
    return out


def env_headers(name: str, env: Mapping[str, str] | None = None) -> dict[str, str]:
    raw = raw_value(name, env)
    if raw is None:
        return {}
    parsed = parse_headers(raw)
    if parsed is None:
        warn_invalid(name, raw, "a comma-separated list of key=value pairs", {})
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


def env_path(name: str, default: str, env: Mapping[str, str] | None = None) -> str:
    raw = raw_value(name, env)
    if raw is None:
        return default
    if "\x00" in raw:
        warn_invalid(name, raw, "a directory path", default)
        return default
    return os.path.abspath(os.path.expanduser(raw))


def xdg_dir(var: str, fallback: str, *parts: str, env: Mapping[str, str] | None = None) -> str:
    """``$var/<parts>`` when ``$var`` is an absolute path, else ``~/<fallback>/<parts>``.

    The XDG Base Directory rule: a relative (or empty) ``$var`` is ignored, and ``~`` in
    it is not expanded. ``var`` is read from ``env`` (default: the process environment);
    the home directory always comes from the process. Without a usable home directory,
    ``<tempdir>/otel-experiments-<uid>`` stands in for it.
    For example ``xdg_dir("XDG_CACHE_HOME", ".cache", "otel-experiments", "spool")``.
    """
    base = raw_value(var, env)
    if base is None or not os.path.isabs(base):
        home = os.path.expanduser("~")
        if not os.path.isabs(home):  # no usable home directory
            import tempfile

            home = os.path.join(tempfile.gettempdir(), f"otel-experiments-{getattr(os, 'getuid', int)()}")
        base = os.path.join(home, fallback)
    return os.path.join(base, *parts)


def redact_url(url: str) -> str:
    """``url`` without a password in its userinfo (``https://user:<redacted>@host``)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:<redacted>@{netloc}"))


