"""Regular expressions that say in the OpenAPI exactly what the server's checks accept.

Each pattern is derived from the check it describes (``str.isprintable``, ``str.isspace``,
the experiment statuses), over every code point of the running interpreter, so the
published contract and the server cannot disagree. They are written for every engine that
reads them: ``\\uXXXX`` escapes for the BMP, literal characters above it (ECMA-262 with the
``u`` flag, Python ``re`` and Rust ``regex`` all read those alike). Surrogates are left out:
no UTF-8 request can carry one.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from functools import lru_cache

from ..models import MAX_ID_LENGTH
from .store import EXPERIMENT_STATUSES

_SURROGATES = range(0xD800, 0xE000)


def _ranges(excluded: Callable[[str], bool]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for code in range(sys.maxunicode + 1):
        if code in _SURROGATES or not excluded(chr(code)):
            continue
        if out and out[-1][1] == code - 1:
            out[-1] = (out[-1][0], code)
        else:
            out.append((code, code))
    return out


def _char(code: int) -> str:
    return f"\\u{code:04x}" if code <= 0xFFFF else chr(code)


def _class_body(ranges: Iterable[tuple[int, int]]) -> str:
    return "".join(_char(lo) if lo == hi else f"{_char(lo)}-{_char(hi)}" for lo, hi in ranges)


@lru_cache(maxsize=1)
def id_pattern() -> str:
    """What :func:`otel_experiments.models.validate_id` accepts: printable, no spaces."""
    # Spelled as the characters allowed, not the complement of those refused: the same
    # language, but Hypothesis (behind schemathesis) draws from it several times faster.
    good = _class_body(_ranges(lambda ch: ch != " " and ch.isprintable()))
    return f"^[{good}]{{1,{MAX_ID_LENGTH}}}$"


@lru_cache(maxsize=1)
def name_pattern() -> str:
    """What :func:`otel_experiments.models.validate_name` accepts (length aside): no control
    characters, and something besides whitespace."""
    controls = _class_body(_ranges(lambda ch: ord(ch) < 0x20 or ord(ch) == 0x7F))
    blank = _class_body(_ranges(lambda ch: ch.isspace() and ord(ch) >= 0x20 and ord(ch) != 0x7F))
    return f"^[^{controls}]*[^{controls}{blank}][^{controls}]*$"


#: Text stored in a column: anything but NUL.
TEXT_PATTERN = "^[^\\u0000]*$"


def any_case_pattern(words: Iterable[str]) -> str:
    """The words in any ASCII letter case (the server compares them case-insensitively)."""
    spelled = ("".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else c for c in word)
               for word in sorted(words))
    return f"^(?:{'|'.join(spelled)})$"


def status_pattern() -> str:
    return any_case_pattern(EXPERIMENT_STATUSES)
