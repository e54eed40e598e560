"""Percentiles from a fixed log-bucket histogram (DDSketch's mapping), kept at ingest.

A value ``v > 0`` falls in bucket ``ceil(log(v) / log(GAMMA))``; every value of a bucket is
within :data:`RELATIVE_ACCURACY` (1 %) of the bucket's representative value, so a
percentile read off the bucket counts is within 1 % of the exact one (and is clamped to the
exact minimum and maximum, kept beside). Negative values use the mirrored buckets, zero
(and anything closer to it than :data:`MIN_INDEXABLE`) has a bucket of its own. Bucket
keys are integers that sort as the values do, so a table of ``(key, count)`` rows read in
key order walks the values in order: additive upserts per key keep it, whatever the order
spans arrive in and however many writers add to it.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from itertools import filterfalse, repeat
from operator import truediv

RELATIVE_ACCURACY = 0.01
GAMMA = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
_LOG_GAMMA = math.log(GAMMA)
#: Keys of positive values are offset by this much, so that every positive key is > 0 and
#: every negative one < 0 (the smallest positive double, 5e-324, maps to about -37,600).
_OFFSET = 50_000
MIN_INDEXABLE = 1e-300
_ZERO = 0
PERCENTILES = (0.5, 0.95)


def bucket(value: float) -> int:
    """The bucket key of a finite value."""
    magnitude = abs(value)
    if magnitude < MIN_INDEXABLE:
        return _ZERO
    key = math.ceil(math.log(magnitude) / _LOG_GAMMA) + _OFFSET
    return key if value > 0 else -key


def representative(key: int) -> float:
    """The value standing for every value of bucket ``key`` (within 1 % of each)."""
    if key == _ZERO:
        return 0.0
    index = abs(key) - _OFFSET
    value = 2.0 * GAMMA ** index / (GAMMA + 1.0)
    return value if key > 0 else -value


def count_buckets(values: Iterable[float], into: dict[int, int] | None = None) -> dict[int, int]:
    """``{bucket key: count}`` of ``values`` (added to ``into`` when given)."""
    values = values if isinstance(values, list) else list(values)
    counts: dict[int, int] = {} if into is None else into
    if not values:
        return counts
    # (a hot loop at ingest: the positive values go through C-level builtins; zeros and
    # negatives, usually few, through ``bucket``)
    others: list[float] = []
    if min(values) < MIN_INDEXABLE:
        others = list(filterfalse(MIN_INDEXABLE.__le__, values))
        values = list(filter(MIN_INDEXABLE.__le__, values))
    found = Counter(map(math.ceil, map(truediv, map(math.log, values), repeat(_LOG_GAMMA))))
    pairs = [(key + _OFFSET, n) for key, n in found.items()]
    if others:
        pairs += Counter(map(bucket, others)).items()
    get = counts.get
    for key, n in pairs:
        counts[key] = get(key, 0) + n
    return counts


def _value_at(buckets: Sequence[tuple[int, int]], rank: int) -> float:
    """The value of 0-based ``rank`` in the values ``buckets`` (key order) counts."""
    seen = 0
    for key, n in buckets:
        seen += n
        if rank < seen:
            return representative(key)
    return representative(buckets[-1][0])


def percentiles(buckets: Sequence[tuple[int, int]], lo: float | None,
                hi: float | None) -> dict[str, float | None]:
    """``{"p50": ..., "p95": ...}`` interpolated between ranks as ``percentile_cont`` does,
    from ``(key, count)`` rows in key order; clamped to the exact ``lo`` / ``hi``."""
    n = sum(count for _, count in buckets)
    out: dict[str, float | None] = {}
    for p in PERCENTILES:
        key = f"p{round(p * 100)}"
        if n == 0:
            out[key] = None
            continue
        k = (n - 1) * p
        below = math.floor(k)
        a = _value_at(buckets, below)
        b = _value_at(buckets, below + 1) if below + 1 < n else a
        value = a + (b - a) * (k - below)
        if lo is not None:
            value = max(value, float(lo))
        if hi is not None:
            value = min(value, float(hi))
        out[key] = value
    return out


def histogram(buckets: Iterable[tuple[int, int]], lo: float, hi: float,
              bins: int) -> list[int]:
    """Counts in ``bins`` equal-width bins over [lo, hi], each bucket's count put in the bin
    of its representative value (a chart's resolution is far coarser than 1 %)."""
    counts = [0] * bins
    width = (hi - lo) / bins if hi > lo else 0.0
    for key, n in buckets:
        value = min(max(representative(key), lo), hi)
        index = int((value - lo) / width) if width else 0
        counts[min(max(index, 0), bins - 1)] += n
    return counts
