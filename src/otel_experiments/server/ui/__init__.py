"""The web UI (server-rendered pages at ``/ui``): see :mod:`.routes`."""

from __future__ import annotations

from .routes import PREFIX, install

__all__ = ["PREFIX", "install"]
