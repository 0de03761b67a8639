"""martingale_harness.stats.power against simulation, statsmodels and its own closed form."""

from __future__ import annotations

import math

import numpy as np
import pytest
from click.testing import CliRunner
from statsmodels.stats.power import TTestPower

from martingale_harness.cli import main
from martingale_harness.stats import power as pw
from martingale_harness.stats.martingale import martingale_score
from martingale_harness.stats.power import PowerInputError, power_at, required_questions

REPLICATIONS = 2000
MC_TOL = 0.03  # about 3.4 Monte Carlo SEs of a rejection rate near 0.8 over 2000 replications


def _rejection_rate(seed: int, n: int, effect: float, sd_prior: float, sd_delta: float, priors: str) -> float:
    """Share of simulated runs of n questions where martingale_score's classic p is below 0.05."""
    rng = np.random.default_rng(seed)
    rejected = 0
    for _ in range(REPLICATIONS):
        if priors == "normal":
            prior = rng.normal(0.5, sd_prior, n)
        else:  # Beta(a, a) has mean 0.5 and SD sd_prior: skew-free but bounded and flatter than normal
            a = (1 / (4 * sd_prior**2) - 1) / 2
            prior = rng.beta(a, a, n)
        posterior = prior + effect * (prior - prior.mean()) + rng.normal(0, sd_delta, n)
        # martingale_score wants beliefs in [0, 1]; shrinking prior and posterior by the same affine map
        # scales Δ and the prior alike, which leaves the slope's t statistic exactly unchanged
        scale = 0.5 / max(np.abs(prior - 0.5).max(), np.abs(posterior - 0.5).max(), 0.5)
        res = martingale_score(0.5 + scale * (prior - 0.5), 0.5 + scale * (posterior - 0.5))
        rejected += res.p < 0.05
    return rejected / REPLICATIONS


@pytest.mark.parametrize(
    "seed,effect,sd_prior,sd_delta,priors",
    [
        (11, 0.2, pw.DEFAULT_SD_PRIOR, pw.DEFAULT_SD_DELTA, "normal"),  # the CLI defaults: n = 145
        (12, -0.15, 0.25, 0.15, "beta"),  # regression toward 0.5, bounded priors: n = 129
    ],
)
def test_simulated_power_matches_at_n_and_falls_below(
    seed: int, effect: float, sd_prior: float, sd_delta: float, priors: str
) -> None:
    result = required_questions(effect, sd_prior=sd_prior, sd_delta=sd_delta)
    at_n = _rejection_rate(seed, result.n, effect, sd_prior, sd_delta, priors)
    assert at_n == pytest.approx(0.80, abs=MC_TOL)
    assert at_n == pytest.approx(result.achieved_power, abs=MC_TOL)

    smaller = round(0.6 * result.n)
    below = _rejection_rate(seed + 100, smaller, effect, sd_prior, sd_delta, priors)
    assert below < 0.70  # about 0.58 expected: 40 % fewer questions is clearly underpowered
    assert below == pytest.approx(power_at(smaller, effect, sd_prior, sd_delta), abs=MC_TOL)


@pytest.mark.parametrize(
    "effect,sd_prior,sd_delta,alpha,power",
    [
        (0.05, 0.2, 0.17, 0.05, 0.8),
        (0.1, 0.25, 0.15, 0.05, 0.9),
        (-0.08, 0.15, 0.2, 0.01, 0.8),
        (0.08, 0.2, 0.17, 0.1, 0.5),
    ],
)
def test_normal_approximation_is_close_for_large_n(
    effect: float, sd_prior: float, sd_delta: float, alpha: float, power: float
) -> None:
    r = required_questions(effect, sd_prior=sd_prior, sd_delta=sd_delta, alpha=alpha, power=power)
    assert r.n > 200
    assert abs(r.n - r.n_normal_approx) <= 4


def test_answer_is_the_smallest_n_reaching_the_target() -> None:
    for effect in (0.03, 0.1, 0.3, 1.0, 5.0):
        r = required_questions(effect)
        assert r.achieved_power >= 0.8
        assert r.achieved_power == power_at(r.n, effect)
        if r.n > 3:
            assert power_at(r.n - 1, effect) < 0.8
    assert required_questions(50.0).n == 3  # an enormous effect is detected by the smallest fit with a test


def test_power_is_monotone_and_saturates() -> None:
    by_n = [power_at(n, 0.1) for n in range(3, 600, 7)]
    assert all(b > a for a, b in zip(by_n, by_n[1:], strict=False))
    by_effect = [power_at(100, e) for e in np.linspace(0.01, 0.5, 40)]
    assert all(b > a for a, b in zip(by_effect, by_effect[1:], strict=False))
    saturating = [power_at(n, e) for n in (3, 10, 50) for e in np.linspace(0.5, 20.0, 40)]
    assert all(0.0 <= p <= 1.0 for p in saturating)  # no NaN from scipy's tails when δ is large
    assert power_at(100, -0.3) == power_at(100, 0.3)  # the test is two-sided
    assert power_at(1000, 2.0) == pytest.approx(1.0, abs=1e-12)  # δ ≈ 74
    assert power_at(50, 1e-9) == pytest.approx(0.05, abs=1e-6)  # no effect: power is the size α


def test_negative_effect_needs_as_many_questions() -> None:
    neg, pos = required_questions(-0.12), required_questions(0.12)
    assert (neg.n, neg.achieved_power, neg.n_normal_approx) == (pos.n, pos.achieved_power, pos.n_normal_approx)
    assert neg.effect == -0.12


@pytest.mark.parametrize("n,effect,sd_prior,sd_delta,alpha", [(20, 0.3, 0.2, 0.17, 0.05), (300, -0.1, 0.25, 0.1, 0.01)])
def test_power_at_is_statsmodels_one_sample_t_power(
    n: int, effect: float, sd_prior: float, sd_delta: float, alpha: float
) -> None:
    # one-sample t power with nobs = n - 1 has df = n - 2 and nc = d·√(n − 1): the slope test's exactly
    d = abs(effect) * sd_prior / sd_delta
    expected = TTestPower().power(effect_size=d, nobs=n - 1, alpha=alpha, alternative="two-sided")
    assert power_at(n, effect, sd_prior, sd_delta, alpha) == pytest.approx(expected, abs=1e-10)
    nobs = TTestPower().solve_power(effect_size=d, alpha=alpha, power=0.8)
    assert required_questions(effect, sd_prior, sd_delta, alpha).n == math.ceil(nobs + 1)


@pytest.mark.parametrize(
    "kwargs,param",
    [
        ({"effect": 0.0}, "effect"),
        ({"effect": math.nan}, "effect"),
        ({"effect": 0.1, "sd_prior": 0.0}, "sd_prior"),
        ({"effect": 0.1, "sd_delta": -0.1}, "sd_delta"),
        ({"effect": 0.1, "alpha": 1.0}, "alpha"),
        ({"effect": 0.1, "power": 0.0}, "power"),
        ({"effect": 1e-12}, "effect"),  # would need more than 10^12 questions
    ],
)
def test_bad_inputs_name_the_parameter(kwargs: dict[str, float], param: str) -> None:
    with pytest.raises(PowerInputError) as info:
        required_questions(**kwargs)
    assert info.value.param == param


def test_power_at_rejects_too_few_questions() -> None:
    with pytest.raises(PowerInputError, match="n: must be an integer >= 3"):
        power_at(2, 0.1)


def test_cli_prints_the_answer() -> None:
    result = CliRunner().invoke(main, ["power", "--effect", "0.1"])
    assert result.exit_code == 0, result.output
    r = required_questions(0.1)
    assert result.output.startswith(f"questions needed: {r.n} ")
    assert f"achieved power at n = {r.n}: {r.achieved_power:.4f}" in result.output
    assert f"sd_prior = {pw.DEFAULT_SD_PRIOR:g}" in result.output  # the CLI's defaults are the module's
    assert f"sd_delta = {pw.DEFAULT_SD_DELTA:g}" in result.output


def test_cli_rejects_a_zero_effect() -> None:
    result = CliRunner().invoke(main, ["power", "--effect", "0"])
    assert result.exit_code == 2
    assert "Invalid value for --effect: must be non-zero" in result.output
    bad = CliRunner().invoke(main, ["power", "--effect", "0.1", "--power", "1"])
    assert bad.exit_code == 2 and "Invalid value for --power: must lie in (0, 1)" in bad.output


def _draws_rejection_rate(seed: int, n: int, draws: int, effect: float, sd_prior: float, sd_q: float,
                          sd_within: float) -> float:
    """K draws per question sharing its prior; the test of the slope over the questions' mean updates."""
    rng = np.random.default_rng(seed)
    prior = rng.normal(0.5, sd_prior, (REPLICATIONS, n))
    centred = prior - prior.mean(axis=1, keepdims=True)
    delta = (effect * centred[..., None] + rng.normal(0, sd_q, (REPLICATIONS, n, 1))
             + rng.normal(0, sd_within, (REPLICATIONS, n, draws)))
    mean_delta = delta.mean(axis=2)
    sxx = (centred**2).sum(axis=1)
    slope = (centred * mean_delta).sum(axis=1) / sxx
    resid = mean_delta - mean_delta.mean(axis=1, keepdims=True) - slope[:, None] * centred
    se = np.sqrt((resid**2).sum(axis=1) / (n - 2) / sxx)
    from scipy import stats as sps

    return float(np.mean(np.abs(slope / se) > sps.t.isf(0.025, n - 2)))


def test_draws_act_as_one_draw_with_the_reduced_residual_sd() -> None:
    """Closed form: K draws = one draw with sd_delta(K)² = sd_delta² − sd_within²(1 − 1/K); K = 1 changes nothing."""
    sd_delta, sd_within = 0.17, 0.12
    for draws in (1, 2, 4, 16):
        reduced = math.sqrt(sd_delta**2 - sd_within**2 * (1 - 1 / draws))
        assert power_at(200, 0.1, 0.2, sd_delta, draws=draws, sd_within=sd_within) == pytest.approx(
            power_at(200, 0.1, 0.2, reduced))
    assert required_questions(0.1, draws=1, sd_within=0.12).n == required_questions(0.1).n
    many = required_questions(0.1, draws=4, sd_within=0.12)
    assert many.n < required_questions(0.1).n and many.sd_per_question < 0.17


def test_simulated_power_with_draws_matches() -> None:
    """Known truth: question part 0.1, draw part 0.14 of the residual SD, 3 draws per question."""
    sd_q, sd_within, draws = 0.10, 0.14, 3
    sd_delta = math.sqrt(sd_q**2 + sd_within**2)
    result = required_questions(0.15, sd_prior=0.2, sd_delta=sd_delta, draws=draws, sd_within=sd_within)
    rate = _draws_rejection_rate(21, result.n, draws, 0.15, 0.2, sd_q, sd_within)
    assert rate == pytest.approx(result.achieved_power, abs=MC_TOL)
    single = required_questions(0.15, sd_prior=0.2, sd_delta=sd_delta)
    assert _draws_rejection_rate(22, result.n, 1, 0.15, 0.2, sd_q, sd_within) < 0.7  # one draw: underpowered
    assert single.n > 1.3 * result.n


def test_cli_draws_need_the_within_sd() -> None:
    missing = CliRunner().invoke(main, ["power", "--effect", "0.1", "--draws", "4"])
    assert missing.exit_code == 2 and "--sd-within" in missing.output
    too_big = CliRunner().invoke(main, ["power", "--effect", "0.1", "--draws", "4", "--sd-within", "0.3"])
    assert too_big.exit_code == 2 and "must lie in [0, sd_delta" in too_big.output
    ok = CliRunner().invoke(main, ["power", "--effect", "0.1", "--draws", "4", "--sd-within", "0.12"])
    r = required_questions(0.1, draws=4, sd_within=0.12)
    assert ok.exit_code == 0 and ok.output.startswith(f"questions needed: {r.n} ")
    assert f"({r.n * 4} answers)" in ok.output
