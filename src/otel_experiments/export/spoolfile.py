"""The spool's file format: one file holds one body, or several written at once.

A file is a JSON header line, then the bodies as they go on the wire, back to back:

* ``{"v": 1, "path", "spans", "created", "encoding"}`` and one body (what a failed
  ``export()`` keeps);
* ``{"v": 2, "created", "encoding", "parts": [[path, spans, length], ...]}`` and the
  bodies in that order: the batch processor's overflow, written as one file with one
  ``fsync`` however many bodies it holds (group commit: an fsync costs the same for
  one body or a hundred, and the disk's fsync rate was what bounded the spill).

Paths are relative to the endpoint. Never credentials or headers. Parsing is strict
(every field typed, lengths adding up to the bytes read): a damaged file is refused
whole, never half-sent.
"""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

__all__ = ["Part", "pack", "read_bounded", "unpack"]

_ENCODINGS: Final = frozenset({"gzip", "identity"})
_OPEN_FLAGS: Final = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) \
    | getattr(os, "O_BINARY", 0)


@dataclass(frozen=True)
class Part:
    """One body: POST ``content`` to ``{endpoint}{path}``; it holds ``spans`` spans."""

    path: str
    spans: int
    content: bytes


def pack(parts: Sequence[Part], encoding: str) -> bytes:
    """The bytes of a spool file holding ``parts`` (version 1 for a single body)."""
    created = time.time()
    if len(parts) == 1:
        only = parts[0]
        header: dict[str, Any] = {"v": 1, "path": only.path, "spans": only.spans,
                                  "created": created, "encoding": encoding}
    else:
        header = {"v": 2, "created": created, "encoding": encoding,
                  "parts": [[p.path, p.spans, len(p.content)] for p in parts]}
    line = json.dumps(header, separators=(",", ":")).encode("utf-8")
    return b"".join([line, b"\n", *(p.content for p in parts)])


def _valid_path(path: object) -> bool:
    return (isinstance(path, str) and path.startswith("/") and not path.startswith("//")
            and not any(ch.isspace() or ord(ch) < 0x20 for ch in path))


def _valid_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def unpack(data: bytes) -> tuple[str, tuple[Part, ...]]:
    """``(encoding, parts)`` of a spool file's bytes; ``ValueError`` if it is not one."""
    raw_header, sep, content = data.partition(b"\n")
    header = json.loads(raw_header)
    if not sep or not content or not isinstance(header, dict):
        raise ValueError("not a spool file")
    encoding = header.get("encoding")
    if encoding not in _ENCODINGS:
        raise ValueError("bad header")
    version = header.get("v")
    if version == 1:
        path, spans = header.get("path"), header.get("spans")
        if not _valid_path(path) or not isinstance(spans, int) or not _valid_count(spans):
            raise ValueError("bad header")
        return str(encoding), (Part(str(path), spans, content),)
    if version != 2:
        raise ValueError("not a spool file")
    table = header.get("parts")
    if not isinstance(table, list) or not table:
        raise ValueError("bad header")
    parts: list[Part] = []
    offset = 0
    for row in table:
        if not isinstance(row, list) or len(row) != 3:
            raise ValueError("bad header")
        path, spans, length = row
        if not _valid_path(path) or not _valid_count(spans) or not _valid_count(length) \
                or length == 0:
            raise ValueError("bad header")
        parts.append(Part(path, spans, content[offset:offset + length]))
        offset += length
    if offset != len(content):
        raise ValueError("the bodies do not add up to the file's length")
    return str(encoding), tuple(parts)


def read_bounded(path: Path, max_bytes: int) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``; ``ValueError`` otherwise.

    Never follows a symlink, never blocks on a FIFO or device, never reads unbounded.
    """
    fd = os.open(path, _OPEN_FLAGS)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError("not a regular file")
        if info.st_size > max_bytes:
            raise ValueError(f"{info.st_size} bytes, over the spool's max_bytes")
        limit = max(0, max_bytes) + 1
        chunks: list[bytes] = []
        read = 0
        while read < limit:
            chunk = os.read(fd, min(limit - read, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            read += len(chunk)
        if read >= limit:
            raise ValueError("file grew over the spool's max_bytes")
        return b"".join(chunks)
    finally:
        os.close(fd)
