"""Server settings: command line > environment > defaults."""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from .._runtime.env import env_str, xdg_dir
from ..pricing import PriceTable, PriceTableError

OTEL_EXPERIMENTS_DATA_DIR: Final = "OTEL_EXPERIMENTS_DATA_DIR"
OTEL_EXPERIMENTS_DATABASE_URL: Final = "OTEL_EXPERIMENTS_DATABASE_URL"
OTEL_EXPERIMENTS_SERVER_API_KEYS: Final = "OTEL_EXPERIMENTS_SERVER_API_KEYS"
OTEL_EXPERIMENTS_SERVER_CORS_ORIGINS: Final = "OTEL_EXPERIMENTS_SERVER_CORS_ORIGINS"
OTEL_EXPERIMENTS_PRICES: Final = "OTEL_EXPERIMENTS_PRICES"

DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 8642
#: Largest request body accepted on the wire (compressed or not).
DEFAULT_MAX_BODY_BYTES: Final = 8 * 1024 * 1024
#: Largest body accepted after gzip/deflate decompression (gzip-bomb guard).
DEFAULT_MAX_DECOMPRESSED_BYTES: Final = 32 * 1024 * 1024
#: Most spans (or metrics) accepted in one events request.
DEFAULT_MAX_ITEMS_PER_REQUEST: Final = 10_000
SQLITE_FILE_NAME: Final = "experiments.db"
_ORIGIN = re.compile(r"https?://[^\s/?#*]+")


def default_data_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$OTEL_EXPERIMENTS_DATA_DIR``, else ``$XDG_DATA_HOME/otel-experiments``,
    else ``~/.local/share/otel-experiments`` (a relative ``$XDG_DATA_HOME`` is ignored,
    as the XDG spec says)."""
    explicit = env_str(OTEL_EXPERIMENTS_DATA_DIR, None, env)
    if explicit is not None:
        return Path(explicit).expanduser()
    return Path(xdg_dir("XDG_DATA_HOME", os.path.join(".local", "share"), "otel-experiments",
                        env=env))


def default_database_url(env: Mapping[str, str] | None = None) -> str:
    """``$OTEL_EXPERIMENTS_DATABASE_URL`` or a SQLite file in :func:`default_data_dir`."""
    explicit = env_str(OTEL_EXPERIMENTS_DATABASE_URL, None, env)
    if explicit is not None:
        return explicit
    return f"sqlite:///{default_data_dir(env) / SQLITE_FILE_NAME}"


def api_keys_from_env(env: Mapping[str, str] | None = None) -> tuple[str, ...]:
    raw = env_str(OTEL_EXPERIMENTS_SERVER_API_KEYS, "", env) or ""
    return tuple(key.strip() for key in raw.split(",") if key.strip())


def cors_origins_from_env(env: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """Origins allowed to call the server from a browser (comma-separated; none by default)."""
    raw = env_str(OTEL_EXPERIMENTS_SERVER_CORS_ORIGINS, "", env) or ""
    return tuple(origin.strip().rstrip("/") for origin in raw.split(",") if origin.strip())


def prices_from_env(env: Mapping[str, str] | None = None) -> PriceTable | None:
    """The price table ``$OTEL_EXPERIMENTS_PRICES`` names (``None`` when unset). A table
    that cannot be read stops the server at start, naming the file and the problem."""
    path = env_str(OTEL_EXPERIMENTS_PRICES, None, env)
    if path is None:
        return None
    try:
        return PriceTable.from_file(Path(path).expanduser())
    except PriceTableError as exc:
        raise ValueError(f"{OTEL_EXPERIMENTS_PRICES}: {exc}") from None


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IP literals; False for anything else."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ServerSettings:
    database_url: str = field(default_factory=default_database_url)
    api_keys: tuple[str, ...] = field(default=(), repr=False)
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES
    max_items_per_request: int = DEFAULT_MAX_ITEMS_PER_REQUEST
    migrate: bool = True
    #: When set, requests whose Host header names another host get 400: a server without
    #: API keys on a loopback address is then not reachable through DNS rebinding.
    allowed_hosts: tuple[str, ...] | None = None
    #: Origins (``https://app.example``) whose pages may call this server from a browser.
    #: Empty: no CORS headers at all, so a browser lets no other site read an answer or
    #: send a request that needs a preflight (every write does; see docs/server.md).
    cors_origins: tuple[str, ...] = field(default_factory=cors_origins_from_env)
    #: USD per 1M tokens per model: summary and records show ``cost`` next to ``usage``.
    prices: PriceTable | None = field(default_factory=prices_from_env, repr=False)

    def __post_init__(self) -> None:
        for origin in self.cors_origins:
            # An allow-list only: "*" would let every web page write to a keyless server.
            if not _ORIGIN.fullmatch(origin):
                raise ValueError(f"CORS origin {origin!r} is not scheme://host[:port] "
                                 f"(from {OTEL_EXPERIMENTS_SERVER_CORS_ORIGINS} or the settings)")


LOOPBACK_HOSTS: Final = ("127.0.0.1", "localhost", "::1")
