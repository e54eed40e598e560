"""Ids with a slash in URL paths: ``/experiments/a%2Fb/events`` is experiment ``a/b``.

An id may hold any printable character but a space (``models.validate_id``), ``/``
included; clients quote it (``%2F``). ASGI servers decode the path before routing, so
``a%2Fb`` would arrive as two segments and match no route. Two pieces make it one:

* :class:`EncodedSlashes` (ASGI middleware): when the raw path holds an encoded slash,
  the routed path is decoded from it with every ``%2F`` turned into ``SLASH``, a
  private-use character no valid id can contain (it is not printable), so it stays
  inside its segment;
* the ``id`` path convertor (``{experiment_id:id}``): one segment, ``SLASH`` back to
  ``/``. Every route with an id in its path uses it.

A path whose decoded form already contains ``SLASH`` is left as it is (no smuggling:
such an id is refused as unprintable, or read as the slash it stands for, never routed
elsewhere). Only the routed path changes: ``raw_path`` stays what the client sent, and
links built from it (``render.list_document``) keep the quoting.
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import quote, unquote

from starlette.convertors import Convertor, register_url_convertor
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["SLASH", "EncodedSlashes", "IdConvertor"]

#: Stands for an encoded slash inside a path segment while routing (U+E000, private use).
SLASH: Final = "\ue000"
_ENCODED_SLASH = re.compile("%2f", re.IGNORECASE)


class IdConvertor(Convertor[str]):
    """One path segment holding an id, slashes included (``SLASH`` back to ``/``)."""

    regex = "[^/]+"

    def convert(self, value: str) -> str:
        return value.replace(SLASH, "/")

    def to_string(self, value: str) -> str:
        return quote(value, safe="")


register_url_convertor("id", IdConvertor())


class EncodedSlashes:
    """Route ``%2F`` inside a segment as part of it (see the module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            raw = scope.get("raw_path")
            if isinstance(raw, bytes) and b"%2" in raw and SLASH not in scope["path"]:
                text = raw.decode("latin-1")
                if _ENCODED_SLASH.search(text):
                    scope = {**scope, "path": unquote(_ENCODED_SLASH.sub(SLASH, text))}
        await self.app(scope, receive, send)
