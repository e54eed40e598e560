"""The local experiments server (``otel-experiments serve``; needs the ``server`` extra)."""

from __future__ import annotations

from .app import API_PREFIX, create_app
from .settings import ServerSettings

__all__ = ["API_PREFIX", "ServerSettings", "create_app"]
