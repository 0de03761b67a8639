"""Noise-robust MS: repeated prior elicitations and the instrumental-variable slope."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from inspect_ai import eval as inspect_eval
from inspect_ai.model import ChatMessageAssistant, get_model

from martingale_harness.backends.simulated import SimAgent
from martingale_harness.extraction.transcript import TURNS_KEY
from martingale_harness.scoring.scorer import IV_KEYS
from martingale_harness.stats import martingale as stats


def _noisy_data(rng: np.random.Generator, n: int, kappa: float, noise: float) -> tuple[np.ndarray, ...]:
    truth = rng.uniform(0.25, 0.75, n)
    posterior = truth + kappa * (truth - 0.5) + rng.normal(0, 0.03, n)
    return truth + rng.normal(0, noise, n), posterior, truth + rng.normal(0, noise, n), truth


def test_iv_slope_equals_statsmodels_two_stage_least_squares() -> None:
    from statsmodels.sandbox.regression.gmm import IV2SLS

    prior, posterior, repeat, _ = _noisy_data(np.random.default_rng(3), 400, 0.2, 0.05)
    ours = stats.iv_slope(prior, posterior, repeat)
    exog = np.column_stack([np.ones_like(prior), prior])
    instruments = np.column_stack([np.ones_like(prior), repeat])
    reference = IV2SLS(posterior - prior, exog, instruments).fit().params[1]
    assert ours.slope == pytest.approx(reference, rel=1e-10)


def test_iv_removes_the_noise_bias_that_ols_has() -> None:
    """Known truth: slope 0.2, elicitation noise u; OLS tends to (0.2 Var t - Var u) / (Var t + Var u)."""
    prior, posterior, repeat, truth = _noisy_data(np.random.default_rng(4), 20000, 0.2, 0.05)
    var_t, var_u = np.var(truth), 0.05**2
    assert stats.martingale_score(prior, posterior).slope == pytest.approx((0.2 * var_t - var_u) / (var_t + var_u),
                                                                           abs=0.01)
    assert stats.iv_slope(prior, posterior, repeat).slope == pytest.approx(0.2, abs=0.01)


def test_iv_bootstrap_ci_covers_the_truth_about_95_percent() -> None:
    rng = np.random.default_rng(5)
    covered = 0
    for _ in range(200):
        result = stats.iv_slope(*_noisy_data(rng, 300, 0.2, 0.05)[:3], resamples=300, seed=1)
        covered += result.ci_low < 0.2 < result.ci_high
    assert 0.90 <= covered / 200 <= 0.99


def test_iv_is_undefined_without_an_informative_instrument() -> None:
    prior = np.linspace(0.2, 0.8, 10)
    result = stats.iv_slope(prior, prior, np.full(10, 0.5))
    assert np.isnan(result.slope) and "Cov(p, p')" in (result.reason or "")
    assert "at least 3" in (stats.iv_slope([0.5, 0.6], [0.5, 0.6], [0.5, 0.6]).reason or "")


def test_restated_priors_share_the_belief_but_not_the_noise() -> None:
    agent = SimAgent("noisy", noise=0.1)
    keys = [f"q{i}" for i in range(2000)]
    first = np.array([agent.path(k, 0).stated[0] for k in keys])
    again = np.array([agent.restate(k, 0, 1) for k in keys])
    truth = np.array([agent.path(k, 0).true[0] for k in keys])
    assert np.corrcoef(first - truth, again - truth)[0, 1] == pytest.approx(0.0, abs=0.06)
    assert np.mean(again - truth) == pytest.approx(0.0, abs=0.005)  # noise has mean zero: no clipping bias
    assert SimAgent("bayesian").restate("q", 0, 1) == SimAgent("bayesian").path("q", 0).stated[0]


def test_prior_samples_adds_independent_side_elicitations(tmp_path: Path) -> None:
    log = inspect_eval("martingale/forecast", model=get_model("sim/noisy", noise=0.1), limit=5, display="none",
                       task_args={"prior_samples": 3}, log_dir=str(tmp_path))[0]
    assert log.status == "success", log.error
    for sample in log.samples or []:
        prior_turn = sample.store[TURNS_KEY][0]
        assert len(prior_turn["repeats"]) == 2
        assert sum(isinstance(m, ChatMessageAssistant) for m in sample.messages) == 2  # side calls only
        repeats = sample.scores["self_report"].metadata["prior_repeats"]
        values = [r["value"] for r in repeats]
        assert sample.scores["self_report"].value["prior_repeat"] == pytest.approx(np.mean(values))
    metrics = {k: v.value for k, v in log.results.scores[0].metrics.items()}  # type: ignore[union-attr]
    assert set(IV_KEYS) <= set(metrics) and metrics["n_iv"] == 5


def test_no_iv_keys_without_repeats(tmp_path: Path) -> None:
    log = inspect_eval("martingale/forecast", model="sim/bayesian", limit=3, display="none", log_dir=str(tmp_path))[0]
    assert not set(IV_KEYS) & set(log.results.scores[0].metrics)  # type: ignore[union-attr]


@pytest.mark.slow
@pytest.mark.parametrize("agent,args,truth", [("noisy", {"noise": 0.1}, 0.0),
                                               ("entrenched", {"kappa": 0.2, "noise": 0.1}, 0.2)])
def test_iv_recovers_the_sim_agents_ms_under_noise(tmp_path: Path, forecastbench_dir: Path, agent: str,
                                                   args: dict[str, float], truth: float) -> None:
    log = inspect_eval("martingale/forecast", model=get_model(f"sim/{agent}", **args), display="none",
                       log_realtime=False, log_dir=str(tmp_path),
                       task_args={"prior_samples": 2, "data": str(forecastbench_dir / "2025-10-26-llm.json")})[0]
    assert log.status == "success", log.error
    m = {k: v.value for k, v in log.results.scores[0].metrics.items()}  # type: ignore[union-attr]
    assert m["ms_slope_ci_high"] < truth - 0.05  # the naive MS is biased negative by the noise
    assert m["ms_slope_iv_ci_low"] < truth < m["ms_slope_iv_ci_high"]
    assert m["ms_slope_iv"] == pytest.approx(truth, abs=0.05)
