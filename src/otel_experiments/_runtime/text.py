"""Text made safe to record and to encode: one truncation rule, one surrogate cleaner."""

from __future__ import annotations

from ..attributes import TRUNCATION_MARKER

__all__ = ["clean_text", "truncate"]


def truncate(text: str, max_chars: int) -> str:
    """``text`` cut to ``max_chars`` characters, the cut marked with the truncation marker."""
    if len(text) <= max_chars:
        return text
    keep = max(0, max_chars - len(TRUNCATION_MARKER))
    return text[:keep] + TRUNCATION_MARKER


def clean_text(text: str) -> str:
    """``text`` made UTF-8-encodable: surrogate pairs joined, lone surrogates -> U+FFFD."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text
