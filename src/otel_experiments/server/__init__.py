"""The local experiments server (``otel-experiments serve``; needs the ``server`` extra).

The app is imported on first use, so :mod:`.settings` (which the command line reads for its
defaults) stays importable without the extra.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import API_PREFIX, create_app
    from .settings import ServerSettings

__all__ = ["API_PREFIX", "ServerSettings", "create_app"]


def __getattr__(name: str) -> Any:
    if name in ("API_PREFIX", "create_app"):
        from . import app

        return getattr(app, name)
    if name == "ServerSettings":
        from .settings import ServerSettings

        return ServerSettings
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
