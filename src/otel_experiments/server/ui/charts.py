"""Bar-chart geometry for inline SVG, computed here and drawn by ``templates/charts.html``.

Only numbers and plain strings leave this module: the template draws them with
autoescaping on, so a metric label or category value cannot inject markup.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

WIDTH = 320
HEIGHT = 120
_AXIS = 18  # room under the bars for the axis labels
_TOP = 4


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    title: str  # tooltip and accessible text: "0.40 to 0.45: 12"
    highlight: bool = False


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    bars: list[Bar]
    axis: list[tuple[float, str, str]]  # (x, text-anchor, text)
    description: str
    baseline: float


def _geometry(values: Sequence[float], titles: Sequence[str],
              highlight: Sequence[bool] | None, gap: float) -> tuple[list[Bar], float]:
    n = max(len(values), 1)
    slot = WIDTH / n
    top = max((v for v in values if v > 0), default=0.0)
    usable = HEIGHT - _AXIS - _TOP
    bars = []
    for i, (value, title) in enumerate(zip(values, titles, strict=True)):
        h = 0.0 if top <= 0 else max(value / top * usable, 1.0 if value > 0 else 0.0)
        bars.append(Bar(x=round(i * slot + gap / 2, 2), y=round(_TOP + usable - h, 2),
                        width=round(max(slot - gap, 1.0), 2), height=round(h, 2), title=title,
                        highlight=bool(highlight and highlight[i])))
    return bars, float(_TOP + usable)


def histogram(counts: Sequence[int], lo: float, hi: float,
              fmt: Callable[[float], str], what: str) -> Chart:
    """Equal-width buckets over [lo, hi]; the axis shows the two ends."""
    n = len(counts)
    width = (hi - lo) / n if n and hi > lo else 0.0
    titles = [f"{fmt(lo + i * width)}\u2013{fmt(lo + (i + 1) * width) if width else fmt(hi)}: {c}"
              for i, c in enumerate(counts)]
    bars, baseline = _geometry([float(c) for c in counts], titles, None, gap=1.0)
    axis = [(0.0, "start", fmt(lo)), (float(WIDTH), "end", fmt(hi))]
    total = sum(counts)
    peak = max(range(n), key=lambda i: counts[i]) if n else 0
    description = (f"Distribution of {what}: {total} values from {fmt(lo)} to {fmt(hi)}"
                   + (f"; most in {titles[peak].rsplit(':', 1)[0]}" if total else ""))
    return Chart(WIDTH, HEIGHT, bars, axis, description, baseline)


def bars(items: Sequence[tuple[str, float]], fmt: Callable[[float], str], what: str,
         highlight: Sequence[bool] | None = None) -> Chart:
    """One bar per (name, value): category counts, or one experiment per bar."""
    titles = [f"{name}: {fmt(value)}" for name, value in items]
    values = [max(value, 0.0) for _, value in items]
    geometry, baseline = _geometry(values, titles, highlight, gap=6.0)
    slot = WIDTH / max(len(items), 1)
    axis = [(round(i * slot + slot / 2, 2), "middle", _short(name))
            for i, (name, _) in enumerate(items)]
    description = f"{what}: " + "; ".join(titles)
    return Chart(WIDTH, HEIGHT, geometry, axis, description, baseline)


def _short(text: str, limit: int = 14) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
