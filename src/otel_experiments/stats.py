"""Statistics of runs: intervals for one run, paired significance between two.

Shared by the runner (summaries, ``compare``, the gate), the client and the server's
compare endpoint, so every place reports the same numbers for the same inputs. The
statistics are ``scipy.stats``'s (imported on first use: ``pip install
'otel-experiments[runner]'`` or ``[server]``); this module only decides which test fits
which metric and how repetitions are pooled:

* one run: per metric mean, standard deviation and a confidence interval — Wilson's
  binomial interval (``binomtest(...).proportion_ci``) over every trial of a boolean
  metric (the pass rate on this dataset: given the records, trials are independent, and
  records of unequal difficulty only make the interval conservative), a BCa bootstrap of
  the mean over records for a score (a record's repetitions averaged first: records are
  the resampled units); and for boolean
  metrics with repetitions pass@k and pass^k (the unbiased estimators, averaged over
  records).
* two runs on the same dataset: records paired by dataset record id (repetitions
  averaged), the delta's interval from a paired bootstrap of the per-record differences,
  the p-value from McNemar's exact test (``binomtest`` on the discordant records) for
  booleans run once per record, else Wilcoxon's signed-rank test on the per-record
  differences (scores, and the pass rates of booleans with repetitions).

Every resampling uses a fixed seed: the same inputs always give the same output.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Final

__all__ = [
    "IMPROVED",
    "NO_CHANGE",
    "REGRESSED",
    "SEED",
    "PairedDelta",
    "describe",
    "paired_delta",
    "paired_deltas",
    "pass_at_k",
    "pass_hat_k",
]

#: The bootstrap's seed: fixed so a comparison is reproducible.
SEED: Final = 20240615
#: Bootstrap resamples (scipy's default), and past :data:`BCA_MAX_UNITS` units.
RESAMPLES: Final = 9999
LARGE_RESAMPLES: Final = 2000
BCA_MAX_UNITS: Final = 2000

IMPROVED: Final = "improved"
REGRESSED: Final = "regressed"
NO_CHANGE: Final = "no significant change"


def _check_confidence(confidence: float) -> float:
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) \
            or not 0 < confidence < 1:
        raise ValueError(f"confidence must be a number in (0, 1), got {confidence!r}")
    return float(confidence)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def _kind(values: Iterable[Any]) -> str | None:
    """``"boolean"``, ``"score"`` or ``None`` (no numbers, or categorical values)."""
    present = [v for v in values if v is not None]
    if not present:
        return None
    if all(isinstance(v, bool) for v in present):
        return "boolean"
    if all(_number(v) is not None for v in present):
        return "score"
    return None


def pass_at_k(n: int, c: int, k: int) -> float:
    """Chance that at least one of ``k`` runs passes, from ``c`` passes in ``n`` runs.

    The unbiased estimator of Chen et al. 2021 (Codex): ``1 - C(n-c, k) / C(n, k)``.
    """
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def pass_hat_k(n: int, c: int, k: int) -> float:
    """Chance that all ``k`` runs pass, from ``c`` passes in ``n`` runs (pass^k of
    tau-bench): the unbiased ``C(c, k) / C(n, k)``."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    return math.comb(c, k) / math.comb(n, k)


def _bootstrap_plan(n: int) -> tuple[tuple[str, ...], int, int]:
    """Methods to try, resamples and batch size for a sample of ``n`` units.

    BCa needs a jackknife (an n x n array), so it is used up to :data:`BCA_MAX_UNITS`
    units; past that the percentile interval (whose bias the BCa correction removes
    shrinks with n) on fewer resamples keeps a 100,000-record run to about a second.
    Batches bound the memory to ~16 MB whatever n.
    """
    methods: tuple[str, ...] = ("BCa", "percentile") if n <= BCA_MAX_UNITS else ("percentile",)
    resamples = RESAMPLES if n <= BCA_MAX_UNITS else LARGE_RESAMPLES
    return methods, resamples, max(1, min(resamples, 2_000_000 // n))


def _bootstrap_mean(samples: Sequence[float], confidence: float) -> tuple[float, float]:
    """Bootstrap interval of the mean (BCa, or percentile when BCa is degenerate or the
    sample is large)."""
    import numpy as np
    from scipy import stats

    data = np.asarray(samples, dtype=float)
    if len(data) < 2 or float(np.ptp(data)) == 0.0:
        m = float(data.mean())
        return m, m  # no spread: nothing to resample
    methods, resamples, batch = _bootstrap_plan(len(data))
    for method in methods:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # BCa warns on near-degenerate samples
            res = stats.bootstrap((data,), np.mean, confidence_level=confidence,
                                  n_resamples=resamples, method=method, vectorized=True,
                                  batch=batch, random_state=np.random.default_rng(SEED))
        low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
        if math.isfinite(low) and math.isfinite(high):
            return low, high
    m = float(data.mean())
    return m, m


def _grouped(values: Mapping[str, Sequence[Any]]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for key, vs in values.items():
        nums = [n for n in (_number(v) for v in vs) if n is not None]
        if nums:
            out[key] = nums
    return out


def describe(values: Mapping[str, Sequence[Any]], *, confidence: float = 0.95
             ) -> dict[str, Any] | None:
    """One metric of one run: ``values`` maps a record id to its values (one per run of
    the record). ``None`` when the metric is neither boolean nor numeric.

    Returns ``mean``, ``std`` (over trials, sample standard deviation), ``ci_low`` /
    ``ci_high`` (``None`` with fewer than two trials), ``confidence``, ``trials``,
    ``records``; for booleans run more than once per record, ``pass_at_k`` and
    ``pass_hat_k`` as ``{"1": .., "k": ..}`` for every k up to the fewest runs of a record.
    """
    confidence = _check_confidence(confidence)
    kind = _kind(v for vs in values.values() for v in vs)
    if kind is None:
        return None
    groups = {key: sorted(vs) for key, vs in sorted(_grouped(values).items())}  # order-free
    trials = [v for vs in groups.values() for v in vs]
    n = len(trials)
    mean = math.fsum(trials) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in trials) / (n - 1)) if n > 1 else None
    out: dict[str, Any] = {"type": kind, "mean": mean, "std": std, "ci_low": None,
                           "ci_high": None, "confidence": confidence, "trials": n,
                           "records": len(groups)}
    if kind == "boolean":
        from scipy import stats

        passes = round(sum(trials))
        ci = stats.binomtest(passes, n).proportion_ci(confidence, method="wilson")
        out["ci_low"], out["ci_high"] = float(ci.low), float(ci.high)
        runs = min(len(vs) for vs in groups.values())
        if runs > 1:
            counts = [(len(vs), round(sum(vs))) for vs in groups.values()]
            out["pass_at_k"] = {str(k): sum(pass_at_k(m, c, k) for m, c in counts) / len(counts)
                                for k in range(1, runs + 1)}
            out["pass_hat_k"] = {str(k): sum(pass_hat_k(m, c, k) for m, c in counts)
                                 / len(counts) for k in range(1, runs + 1)}
    elif len(groups) > 1 or n > 1:
        # records are the independent units: bootstrap their means (with one record,
        # its repetitions are the only units there are)
        units = [math.fsum(vs) / len(vs) for vs in groups.values()] if len(groups) > 1 else trials
        out["ci_low"], out["ci_high"] = _bootstrap_mean(units, confidence)
    return out


@dataclass(frozen=True)
class PairedDelta:
    """One metric of run b against run a on their common records."""

    label: str
    type: str
    #: records both runs have a value for
    pairs: int
    a: float
    b: float
    #: ``b - a`` (mean of the per-record differences)
    delta: float
    ci_low: float
    ci_high: float
    p_value: float
    #: ``"mcnemar"`` (booleans run once per record: exact test on the discordant records)
    #: or ``"wilcoxon"`` (scores, and booleans' per-record pass rates with repetitions)
    test: str
    confidence: float
    lower_is_better: bool
    #: :data:`IMPROVED`, :data:`REGRESSED` or :data:`NO_CHANGE`
    verdict: str

    @property
    def significant(self) -> bool:
        return self.verdict != NO_CHANGE

    def interval_text(self) -> str:
        """``-0.3 [-0.425, -0.167]``: the delta and its interval, as every table shows it."""
        return f"{self.delta:+.3g} [{self.ci_low:+.3g}, {self.ci_high:+.3g}]"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PairedDelta:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


def _p_value(kind: str, ma: Sequence[float], mb: Sequence[float]) -> tuple[float, str]:
    from scipy import stats

    diffs = [y - x for x, y in zip(ma, mb, strict=True)]
    if kind == "boolean" and all(v in (0.0, 1.0) for v in (*ma, *mb)):
        # McNemar's exact test: a binomial test on the discordant pairs
        up = sum(1 for d in diffs if d > 0)
        down = sum(1 for d in diffs if d < 0)
        if up + down == 0:
            return 1.0, "mcnemar"
        return float(stats.binomtest(up, up + down, 0.5).pvalue), "mcnemar"
    # scores, and booleans whose repetitions make per-record pass rates: signed ranks
    if not any(d != 0 for d in diffs):
        return 1.0, "wilcoxon"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # few pairs / ties: scipy warns, the p-value stands
        p = float(stats.wilcoxon(diffs, zero_method="wilcox").pvalue)
    return (p if math.isfinite(p) else 1.0), "wilcoxon"


def paired_delta(label: str, a: Mapping[str, Sequence[Any]], b: Mapping[str, Sequence[Any]], *,
                 confidence: float = 0.95, lower_is_better: bool = False) -> PairedDelta | None:
    """Run b against run a for one metric; ``a`` / ``b`` map a dataset record id to its
    values (one per repetition). ``None`` when no record has a numeric value in both.

    The verdict is improved / regressed only when the paired test's p-value is below
    ``1 - confidence`` **and** the delta's interval excludes 0, so a label never
    contradicts the interval printed beside it.
    """
    confidence = _check_confidence(confidence)
    kind = _kind(v for vs in (*a.values(), *b.values()) for v in vs)
    if kind is None:
        return None
    ga, gb = _grouped(a), _grouped(b)
    # sorted keys and exact sums: the same records give the same numbers whatever order
    # the runs finished in (threads), down to the bootstrap's resamples and the ranks' ties
    common = sorted(key for key in ga if key in gb)
    if not common:
        return None
    ma = [math.fsum(ga[k]) / len(ga[k]) for k in common]
    mb = [math.fsum(gb[k]) / len(gb[k]) for k in common]
    diffs = [y - x for x, y in zip(ma, mb, strict=True)]
    delta = math.fsum(diffs) / len(diffs)
    low, high = _bootstrap_mean(diffs, confidence)
    p, test = _p_value(kind, ma, mb)
    alpha = 1.0 - confidence
    verdict = NO_CHANGE
    if p < alpha and (low > 0 or high < 0):
        better = delta < 0 if lower_is_better else delta > 0
        verdict = IMPROVED if better else REGRESSED
    return PairedDelta(label, kind, len(common), math.fsum(ma) / len(ma), math.fsum(mb) / len(mb), delta,
                       low, high, p, test, confidence, lower_is_better, verdict)


def paired_deltas(a: Mapping[str, Mapping[str, Sequence[Any]]],
                  b: Mapping[str, Mapping[str, Sequence[Any]]], *, confidence: float = 0.95,
                  lower_is_better: Iterable[str] = ()) -> list[PairedDelta]:
    """:func:`paired_delta` of every metric label in ``a`` or ``b`` (``{label: {record id:
    [values]}}``), in that order; labels with nothing to pair are left out."""
    lower = frozenset(lower_is_better)
    out: list[PairedDelta] = []
    for label in dict.fromkeys([*a, *b]):
        found = paired_delta(label, a.get(label, {}), b.get(label, {}), confidence=confidence,
                             lower_is_better=label in lower)
        if found is not None:
            out.append(found)
    return out
