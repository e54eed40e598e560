"""Jinja filters: numbers, durations, timestamps and arbitrary JSON values as short text."""

from __future__ import annotations

import json
import math
import urllib.parse
from datetime import datetime, timezone
from typing import Any

#: Shown for a missing value (an en dash).
NONE = "\u2013"
#: Longest text a table cell shows before "…" (the full value is on the trace page).
CELL_CHARS = 160


def number(value: Any, digits: int = 3) -> str:
    if value is None:
        return NONE
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        if value != 0 and (abs(value) >= 1e6 or abs(value) < 10 ** -digits):
            return f"{value:.{digits}g}"
        return f"{value:,.{digits}f}".rstrip("0").rstrip(".")
    return str(value)


def percent(value: Any) -> str:
    return NONE if value is None else f"{float(value) * 100:.1f}%"


def duration(ns: Any) -> str:
    """Nanoseconds as the unit a person reads: 850 ns, 12.3 µs, 4.56 ms, 1.23 s."""
    if ns is None:
        return NONE
    value = float(ns)
    for limit, unit, scale in ((1e3, "ns", 1.0), (1e6, "µs", 1e3), (1e9, "ms", 1e6)):
        if abs(value) < limit:
            return f"{value / scale:.3g} {unit}" if unit != "ns" else f"{value:.0f} ns"
    return f"{value / 1e9:.3g} s"


def timestamp(text: Any) -> str:
    """``2026-01-04T00:00:00.123456Z`` -> ``2026-01-04 00:00:00`` (UTC)."""
    if not isinstance(text, str):
        return NONE
    return text[:19].replace("T", " ")


def start_time(ns: Any) -> str:
    if not isinstance(ns, int):
        return NONE
    return datetime.fromtimestamp(ns / 1e9, timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def json_text(value: Any, indent: int | None = None) -> str:
    """Any stored value as text: strings as they are, everything else as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, indent=indent, sort_keys=indent is not None)


def cell(value: Any, limit: int = CELL_CHARS) -> str:
    text = json_text(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def quote(value: Any) -> str:
    """Query-string component: every reserved character escaped (ids may hold ``/&?#``)."""
    return urllib.parse.quote(str(value), safe="")


FILTERS = {"number": number, "percent": percent, "duration": duration, "timestamp": timestamp,
           "start_time": start_time, "json_text": json_text, "cell": cell, "q": quote}
