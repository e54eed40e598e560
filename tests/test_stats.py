"""otel_experiments.stats: intervals that cover at their level, exact pass@k, verdicts that
flip between a real and a null difference, and reproducible output."""

from __future__ import annotations

import math
import random

import pytest
from scipy import stats as sps

from otel_experiments import stats


def _noisy_booleans(seed: int, records: int, runs: int, rate: float) -> dict[str, list[bool]]:
    rng = random.Random(seed)
    return {f"r{i}": [rng.random() < rate for _ in range(runs)] for i in range(records)}


def _noisy_scores(seed: int, records: int, mean: float) -> dict[str, list[float]]:
    rng = random.Random(seed)
    return {f"r{i}": [rng.gauss(mean, 0.2)] for i in range(records)}


def _tolerance(seeds: int, level: float) -> float:
    """Three binomial standard deviations of a coverage measured over ``seeds`` runs."""
    return 3 * math.sqrt(level * (1 - level) / seeds)


@pytest.mark.parametrize("rate", [0.3, 0.7])
def test_boolean_interval_covers_the_true_rate_at_its_level(rate: float) -> None:
    seeds, level = 200, 0.95
    covered = 0
    for seed in range(seeds):
        d = stats.describe(_noisy_booleans(seed, 40, 3, rate), confidence=level)
        assert d is not None
        covered += d["ci_low"] <= rate <= d["ci_high"]
    assert abs(covered / seeds - level) <= _tolerance(seeds, level), covered


def test_score_interval_covers_the_true_mean_at_its_level() -> None:
    seeds, level, mean = 200, 0.95, 0.6
    covered = sum(
        d["ci_low"] <= mean <= d["ci_high"]
        for d in (stats.describe(_noisy_scores(seed, 40, mean), confidence=level)
                  for seed in range(seeds)) if d is not None)
    assert abs(covered / seeds - level) <= _tolerance(seeds, level), covered


def test_a_90_percent_interval_is_narrower_and_covers_less() -> None:
    values = _noisy_booleans(7, 50, 2, 0.5)
    wide, narrow = stats.describe(values, confidence=0.95), stats.describe(values, confidence=0.9)
    assert wide is not None and narrow is not None
    assert wide["ci_low"] < narrow["ci_low"] < narrow["ci_high"] < wide["ci_high"]


def test_describe_reports_mean_std_and_counts() -> None:
    d = stats.describe({"a": [True, False], "b": [True, True]})
    assert d is not None
    assert d["type"] == "boolean" and d["mean"] == 0.75 and d["trials"] == 4 and d["records"] == 2
    assert d["std"] == pytest.approx(0.5)  # sample standard deviation of 1, 0, 1, 1
    ci = sps.binomtest(3, 4).proportion_ci(0.95, method="wilson")
    assert (d["ci_low"], d["ci_high"]) == (pytest.approx(ci.low), pytest.approx(ci.high))
    assert stats.describe({"a": ["x", "y"]}) is None


def test_pass_at_k_and_pass_hat_k_match_exact_values() -> None:
    # n=5 runs, c=2 passes: pass@2 = 1 - C(3,2)/C(5,2) = 1 - 3/10; pass^2 = C(2,2)/C(5,2)
    assert stats.pass_at_k(5, 2, 2) == pytest.approx(0.7)
    assert stats.pass_hat_k(5, 2, 2) == pytest.approx(0.1)
    assert stats.pass_at_k(5, 0, 3) == 0.0 and stats.pass_at_k(5, 3, 3) == 1.0
    assert stats.pass_hat_k(5, 5, 5) == 1.0 and stats.pass_hat_k(5, 4, 5) == 0.0
    assert stats.pass_at_k(4, 1, 1) == pytest.approx(0.25) == stats.pass_hat_k(4, 1, 1)
    with pytest.raises(ValueError):
        stats.pass_at_k(3, 1, 4)
    # averaged over records: r1 passes 2 of 3, r2 passes 1 of 3
    d = stats.describe({"r1": [True, True, False], "r2": [False, True, False]})
    assert d is not None
    assert d["pass_at_k"] == {"1": pytest.approx(0.5), "2": pytest.approx((1 + 2 / 3) / 2),
                              "3": pytest.approx(1.0)}
    assert d["pass_hat_k"] == {"1": pytest.approx(0.5), "2": pytest.approx((1 / 3 + 0) / 2),
                               "3": pytest.approx(0.0)}


def test_pass_at_k_estimator_is_unbiased() -> None:
    """Averaged over many seeds, the estimate of pass@2 from 5 runs is 1 - (1 - p)^2."""
    p, total, seeds = 0.3, 0.0, 2000
    rng = random.Random(3)
    for _ in range(seeds):
        c = sum(rng.random() < p for _ in range(5))
        total += stats.pass_at_k(5, c, 2)
    assert total / seeds == pytest.approx(1 - (1 - p) ** 2, abs=0.02)


def _pair(seed: int, rate_a: float, rate_b: float, records: int = 200
          ) -> tuple[dict[str, list[bool]], dict[str, list[bool]]]:
    return (_noisy_booleans(seed, records, 1, rate_a),
            _noisy_booleans(seed + 10_000, records, 1, rate_b))


def test_verdict_flips_between_a_real_and_a_null_difference() -> None:
    a, b = _pair(1, 0.6, 0.85)
    up = stats.paired_delta("ok", a, b)
    assert up is not None and up.test == "mcnemar"
    assert up.verdict == stats.IMPROVED and up.p_value < 0.05 and up.ci_low > 0
    down = stats.paired_delta("ok", b, a)
    assert down is not None and down.verdict == stats.REGRESSED and down.ci_high < 0
    # lower is better (an error count): the same rise is a regression
    worse = stats.paired_delta("errors", a, b, lower_is_better=True)
    assert worse is not None and worse.verdict == stats.REGRESSED
    # the same rates on both sides: noise, labelled as such in nearly every seed
    flagged = 0
    for seed in range(100):
        a0, b0 = _pair(seed, 0.7, 0.7, records=60)
        null = stats.paired_delta("ok", a0, b0)
        assert null is not None
        flagged += null.significant
        assert null.ci_low <= null.delta <= null.ci_high
    assert flagged <= 10  # 5 % expected at 95 %; the interval requirement only lowers it


def test_scores_use_wilcoxon_and_detect_a_shift() -> None:
    rng = random.Random(5)
    a = {f"r{i}": [rng.uniform(0, 1)] for i in range(50)}
    b = {k: [v[0] + 0.05 + rng.gauss(0, 0.05)] for k, v in a.items()}
    shifted = stats.paired_delta("score", a, b)
    assert shifted is not None and shifted.test == "wilcoxon"
    assert shifted.verdict == stats.IMPROVED
    assert shifted.p_value == pytest.approx(
        sps.wilcoxon([b[k][0] - a[k][0] for k in a]).pvalue)
    c = {k: [v[0] + rng.gauss(0, 0.05)] for k, v in a.items()}
    same = stats.paired_delta("score", a, c)
    assert same is not None and same.verdict == stats.NO_CHANGE


def test_pairs_by_record_and_averages_repetitions() -> None:
    a = {"r1": [True, False], "r2": [True, True], "only-a": [False]}
    b = {"r1": [True, True, True], "r2": [False, True], "only-b": [True]}
    d = stats.paired_delta("ok", a, b)
    assert d is not None
    assert d.pairs == 2 and d.test == "wilcoxon"  # pass rates, not 0/1: signed ranks
    assert d.a == pytest.approx(0.75) and d.b == pytest.approx(0.75)
    assert d.delta == pytest.approx(0.0) and d.verdict == stats.NO_CHANGE
    assert stats.paired_delta("ok", {"x": [True]}, {"y": [True]}) is None


def test_same_inputs_give_the_same_output() -> None:
    a, b = _pair(9, 0.5, 0.6, records=80)
    first = stats.paired_delta("ok", a, b)
    assert first is not None
    assert stats.paired_delta("ok", a, b) == first
    assert stats.PairedDelta.from_dict(first.to_dict()) == first
    scores = _noisy_scores(4, 30, 0.5)
    assert stats.describe(scores) == stats.describe(scores)


def test_confidence_is_checked() -> None:
    for bad in (0, 1, 1.5, True, "0.95"):
        with pytest.raises(ValueError, match="confidence"):
            stats.describe({"a": [True]}, confidence=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("n", [500, 3000])  # BCa below BCA_MAX_UNITS, percentile above
def test_large_samples_agree_with_the_normal_interval(n: int) -> None:
    rng = random.Random(n)
    values = {f"r{i}": [rng.expovariate(1.0)] for i in range(n)}
    d = stats.describe(values)
    assert d is not None
    half = 1.96 * d["std"] / math.sqrt(n)
    assert d["ci_low"] == pytest.approx(d["mean"] - half, abs=0.15 * half)
    assert d["ci_high"] == pytest.approx(d["mean"] + half, abs=0.15 * half)
