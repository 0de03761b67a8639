"""martingale_harness.stats.martingale against statsmodels, scipy and closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats as sps

from martingale_harness.stats import martingale as stats
from martingale_harness.stats.martingale import (
    brier,
    inertia,
    martingale_score,
    paired_brier_difference,
    paired_loss_difference,
    variance_split,
)


def _random_pairs(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    prior = rng.uniform(0.05, 0.95, n)
    posterior = np.clip(prior + 0.15 * (prior - 0.5) + rng.normal(0, 0.1, n) * (0.3 + prior), 0, 1)
    return prior, posterior


@pytest.mark.parametrize("seed,n", [(0, 12), (1, 200), (2, 3000)])
def test_matches_statsmodels_ols(seed: int, n: int) -> None:
    prior, posterior = _random_pairs(seed, n)
    res = martingale_score(prior, posterior)
    X = sm.add_constant(prior)
    fit = sm.OLS(posterior - prior, X).fit()
    assert res.slope == pytest.approx(fit.params[1], abs=1e-9)
    assert res.intercept == pytest.approx(fit.params[0], abs=1e-9)
    assert res.se == pytest.approx(fit.bse[1], abs=1e-9)
    assert res.t == pytest.approx(fit.tvalues[1], rel=1e-9)
    assert res.p == pytest.approx(fit.pvalues[1], abs=1e-9)
    assert res.r2 == pytest.approx(fit.rsquared, abs=1e-9)
    assert res.signed_r2 == pytest.approx(math.copysign(fit.rsquared, fit.params[1]), abs=1e-9)
    assert res.n == n

    robust = sm.OLS(posterior - prior, X).fit(cov_type="HC3", use_t=True)
    assert res.se_robust == pytest.approx(robust.bse[1], abs=1e-9)
    assert res.p_robust == pytest.approx(robust.pvalues[1], abs=1e-9)
    low, high = robust.conf_int(alpha=0.05)[1]
    assert res.ci_method == "hc3"
    assert (res.ci_low, res.ci_high) == pytest.approx((low, high), abs=1e-9)


def test_intercept_at_half_is_the_centred_fit() -> None:
    prior, posterior = _random_pairs(3, 150)
    res = martingale_score(prior, posterior)
    centred = sm.OLS(posterior - prior, sm.add_constant(prior - 0.5)).fit()
    assert res.intercept_at_half == pytest.approx(centred.params[0], abs=1e-12)
    assert res.slope == pytest.approx(centred.params[1], abs=1e-12)  # slope invariant to centring


def test_exact_linear_updates_closed_form() -> None:
    prior = np.linspace(0.2, 0.8, 9)
    posterior = prior + 0.3 * (prior - 0.5) + 0.02  # delta = 0.3 * prior - 0.13
    res = martingale_score(prior, posterior)
    assert res.slope == pytest.approx(0.3, abs=1e-12)
    assert res.intercept == pytest.approx(-0.13, abs=1e-12)
    assert res.intercept_at_half == pytest.approx(0.02, abs=1e-12)
    assert res.r2 == pytest.approx(1.0, abs=1e-12)
    assert res.se == pytest.approx(0.0, abs=1e-9)


def test_mirror_symmetry_flips_sign() -> None:
    prior, posterior = _random_pairs(4, 100)
    a = martingale_score(prior, posterior)
    b = martingale_score(1 - prior, 1 - posterior)
    assert b.slope == pytest.approx(a.slope, abs=1e-12)  # delta and prior both flip: slope kept
    assert b.intercept_at_half == pytest.approx(-a.intercept_at_half, abs=1e-12)


@pytest.mark.parametrize("n", [0, 1, 2])
def test_too_few_pairs_is_nan_with_reason(n: int) -> None:
    res = martingale_score(np.full(n, 0.3), np.full(n, 0.4))
    assert math.isnan(res.slope) and math.isnan(res.ci_low)
    assert res.n == n and "at least 3" in (res.reason or "")


def test_equal_priors_is_nan_with_reason() -> None:
    res = martingale_score([0.5] * 5, [0.1, 0.9, 0.5, 0.6, 0.2])
    assert math.isnan(res.slope) and "priors are equal" in (res.reason or "")


@pytest.mark.parametrize("shift", [0.0, 0.05])
@pytest.mark.parametrize("cluster", [None, "pairs of questions"])
def test_updates_without_spread_are_undefined_not_a_certain_zero(shift: float, cluster: str | None) -> None:
    # a model repeating its prior word for word (or moving every belief by the same step) once gave
    # MS = 0.0000 [0.0000, 0.0000], which reads as "rational, and certain of it"
    prior = np.linspace(0.1, 0.9, 20)
    labels = np.repeat(np.arange(10), 2) if cluster else None
    res = martingale_score(prior, prior + shift, cluster=labels)
    fields = [res.slope, res.intercept, res.intercept_at_half, res.se, res.t, res.p, res.r2,
              res.se_robust, res.p_robust, res.ci_low, res.ci_high]
    assert all(math.isnan(v) for v in fields) and res.ci_method == "none" and res.n == 20
    assert "updates do not vary" in (res.reason or "")
    assert ("equals the one before it" if shift == 0 else "+0.05") in (res.reason or "")
    # one belief that moves makes the slope identified again
    moved = prior + shift
    moved[3] += 0.01
    assert math.isfinite(martingale_score(prior, moved, cluster=labels).slope)


def test_paired_difference_is_undefined_when_one_side_is() -> None:
    rng = np.random.default_rng(3)
    prior = rng.uniform(0.1, 0.9, 30)
    posterior = np.clip(prior + rng.normal(0, 0.1, 30), 0, 1)
    questions = np.arange(30)
    res = stats.paired_slope_difference(prior, prior, questions, prior, posterior, questions, resamples=200)
    assert math.isnan(res.difference) and math.isnan(res.ci_low) and res.reason.startswith("MS A: updates do not vary")
    ok = stats.paired_slope_difference(prior, posterior, questions, prior, posterior, questions, resamples=200)
    assert ok.difference == 0.0 and ok.reason is None


@pytest.mark.parametrize(
    "prior,posterior,match",
    [([0.1, 1.2, 0.3], [0.1, 0.2, 0.3], "must lie in"), ([0.1, 0.2], [0.1], "differ in length"),
     ([0.1, float("nan"), 0.3], [0.1, 0.2, 0.3], "NaN")],
)
def test_bad_input_raises(prior: list[float], posterior: list[float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        martingale_score(prior, posterior)


def test_cluster_bootstrap_agrees_with_cluster_robust_se() -> None:
    # 200 questions with 4 pairs each that share a question-level shock: pairs are not independent
    rng = np.random.default_rng(5)
    q = np.repeat(np.arange(200), 4)
    prior = rng.uniform(0.1, 0.9, 800)
    shock = rng.normal(0, 0.08, 200)[q]
    posterior = np.clip(prior + 0.1 * (prior - 0.5) + shock + rng.normal(0, 0.03, 800), 0, 1)
    res = martingale_score(prior, posterior, cluster=q)
    assert res.ci_method == "cluster_bootstrap" and res.n_clusters == 200
    fit = sm.OLS(posterior - prior, sm.add_constant(prior)).fit(cov_type="cluster", cov_kwds={"groups": q})
    half_width = (res.ci_high - res.ci_low) / 2
    assert half_width == pytest.approx(1.96 * fit.bse[1], rel=0.15)
    assert res.ci_low < res.slope < res.ci_high
    # deterministic: same seed, same interval
    again = martingale_score(prior, posterior, cluster=q)
    assert (again.ci_low, again.ci_high) == (res.ci_low, res.ci_high)


def test_singleton_clusters_use_hc3() -> None:
    prior, posterior = _random_pairs(6, 50)
    res = martingale_score(prior, posterior, cluster=[f"q{i}" for i in range(50)])
    assert res.ci_method == "hc3" and res.n_clusters == 50


def test_brier_closed_form() -> None:
    assert brier([0.2, 0.9, 0.5], [0, 1, 1]) == pytest.approx((0.04 + 0.01 + 0.25) / 3)
    assert math.isnan(brier([], []))
    with pytest.raises(ValueError, match="0 or 1"):
        brier([0.2], [0.5])


def test_paired_brier_difference_matches_scipy() -> None:
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 60)
    a = np.clip(0.5 + 0.3 * (y - 0.5) + rng.normal(0, 0.2, 60), 0, 1)
    b = np.clip(0.5 + rng.normal(0, 0.2, 60), 0, 1)
    res = paired_brier_difference(a, b, y)
    d = (a - y) ** 2 - (b - y) ** 2
    ref = sps.ttest_1samp(d, 0.0)
    assert res.mean_diff == pytest.approx(brier(a, y) - brier(b, y), abs=1e-12)
    assert res.t == pytest.approx(ref.statistic, rel=1e-9)
    assert res.p == pytest.approx(ref.pvalue, abs=1e-12)
    assert res.se == pytest.approx(d.std(ddof=1) / math.sqrt(60), rel=1e-12)


def test_inertia_counts_unmoved_beliefs() -> None:
    assert inertia([0.1, 0.5, 0.7, 0.2], [0.1, 0.6, 0.7, 0.2 + 1e-12]) == pytest.approx(0.75)
    assert math.isnan(inertia([], []))


def test_cluster_interval_needs_three_questions() -> None:
    # four pairs from one question: a bootstrap over one cluster would give a zero-width "interval"
    prior, posterior = [0.2, 0.4, 0.6, 0.8], [0.3, 0.4, 0.5, 0.9]
    one = martingale_score(prior, posterior, cluster=["q"] * 4)
    assert one.slope == pytest.approx(np.polyfit(prior, np.subtract(posterior, prior), 1)[0])
    assert math.isnan(one.ci_low) and math.isnan(one.ci_high) and one.n_clusters == 1
    rng = np.random.default_rng(3)
    more = np.clip(np.tile(posterior, 3) + rng.normal(0, 0.05, 12), 0, 1)
    three = martingale_score(prior * 3, more, cluster=[c for c in "abc" for _ in range(4)])
    assert three.ci_low < three.slope < three.ci_high


def _grouped(seed: int, sizes: list[int], between: float, within: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(len(sizes)), sizes)
    means = rng.normal(0.1, math.sqrt(between), len(sizes))
    return means[groups] + rng.normal(0, math.sqrt(within), groups.size), groups


def test_variance_split_matches_statsmodels_anova() -> None:
    import pandas as pd
    from statsmodels.formula.api import ols

    values, groups = _grouped(3, [4, 2, 5, 3, 3, 1, 6], between=0.02, within=0.01)  # unbalanced
    table = sm.stats.anova_lm(ols("y ~ C(g)", data=pd.DataFrame({"y": values, "g": groups})).fit())
    msb, msw = table["mean_sq"].iloc[0], table["mean_sq"].iloc[1]
    sizes = np.bincount(groups)
    n0 = (sizes.sum() - (sizes**2).sum() / sizes.sum()) / (len(sizes) - 1)
    split = variance_split(values, groups)
    assert split.within == pytest.approx(msw, rel=1e-10)
    assert split.between == pytest.approx(max((msb - msw) / n0, 0.0), rel=1e-10)
    assert (split.n, split.n_groups) == (values.size, len(sizes))


def test_variance_split_recovers_known_components() -> None:
    """Known truth: 200 questions x 4 draws, between 0.02 and within 0.01; the estimators are unbiased."""
    splits = [variance_split(*_grouped(seed, [4] * 200, between=0.02, within=0.01)) for seed in range(200)]
    assert np.mean([s.within for s in splits]) == pytest.approx(0.01, rel=0.01)
    assert np.mean([s.between for s in splits]) == pytest.approx(0.02, rel=0.03)


def test_variance_split_needs_repeated_draws() -> None:
    one_each = variance_split([0.1, 0.2, 0.3], ["a", "b", "c"])
    assert math.isnan(one_each.between) and "2 or more" in (one_each.reason or "")
    assert "2 groups" in (variance_split([0.1, 0.2], ["a", "a"]).reason or "")
    # identical draws within each sample: all variance is between samples
    exact = variance_split([0.1, 0.1, 0.3, 0.3], ["a", "a", "b", "b"])
    assert exact.within == 0.0 and exact.between == pytest.approx(np.var([0.1, 0.3], ddof=1))


def test_paired_loss_difference_matches_scipy() -> None:
    rng = np.random.default_rng(8)
    a, b = rng.uniform(0, 1, 30), rng.uniform(0, 1, 30)
    test = paired_loss_difference(a, b)
    reference = sps.ttest_rel(a, b)
    assert test.mean_diff == pytest.approx(float(np.mean(a - b)))
    assert (test.t, test.p) == pytest.approx((reference.statistic, reference.pvalue))
