"""The simulated reasoners have the properties they claim (simulations with known truth)."""

from __future__ import annotations

import numpy as np
import pytest

from martingale_harness.backends.simulated import SimAgent
from martingale_harness.stats.martingale import martingale_score

KEYS = [f"question {i}" for i in range(6000)]


def _pairs(agent: SimAgent, stated: bool = True) -> tuple[np.ndarray, np.ndarray]:
    paths = [agent.path(k, 1) for k in KEYS]
    beliefs = np.array([p.stated if stated else p.true for p in paths])
    return beliefs[:, 0], beliefs[:, 1]


def test_bayesian_beliefs_are_a_martingale() -> None:
    prior, posterior = _pairs(SimAgent("bayesian", seed=1))
    res = martingale_score(prior, posterior)
    assert res.ci_low < 0 < res.ci_high
    assert abs(res.slope) < 0.02
    # E[delta | prior] = 0 in every prior bin, not just on average
    bins = np.digitize(prior, [0.25, 0.5, 0.75])
    for b in range(4):
        d = (posterior - prior)[bins == b]
        assert abs(d.mean()) < 4 * d.std(ddof=1) / np.sqrt(d.size)


def test_bayesian_updates_are_substantial() -> None:
    prior, posterior = _pairs(SimAgent("bayesian", seed=1))
    assert np.mean(np.abs(posterior - prior)) > 0.1


@pytest.mark.parametrize("kappa", [0.2, 0.5, -0.3])
def test_entrenched_conditional_mean_is_kappa(kappa: float) -> None:
    prior, posterior = _pairs(SimAgent("entrenched", kappa=kappa, seed=2))
    res = martingale_score(prior, posterior)
    assert res.slope == pytest.approx(kappa, abs=3 * res.se_robust + 1e-3)
    assert res.intercept_at_half == pytest.approx(0.0, abs=4 * res.se_robust)


@pytest.mark.parametrize("horizon", [2, 4])
def test_entrenched_drift_is_exact_for_every_update_within_the_horizon(horizon: int) -> None:
    agent = SimAgent("entrenched", kappa=0.2, horizon=horizon, seed=4)
    paths = np.array([agent.path(k, horizon).true for k in KEYS])
    lo, hi = paths.min(), paths.max()
    for k in range(horizon):  # each update separately: E[b_{k+1} - b_k | b_k] = kappa (b_k - 0.5)
        res = martingale_score(paths[:, k], paths[:, k + 1])
        assert res.slope == pytest.approx(0.2, abs=3 * res.se_robust + 1e-3)
        assert res.intercept_at_half == pytest.approx(0.0, abs=4 * res.se_robust)
    assert 0.0 < lo and hi < 1.0
    # beyond the horizon the band is [0, 1] and the drift is cut near the ends
    beyond = np.array([agent.path(k, horizon + 3).true for k in KEYS[:3000]])
    res = martingale_score(beyond[:, horizon:-1].ravel(), beyond[:, horizon + 1:].ravel())
    assert res.ci_high < 0.2


def test_entrenched_prior_band_narrows_with_the_horizon() -> None:
    for horizon in (1, 2, 4):
        priors = [SimAgent("entrenched", kappa=0.2, horizon=horizon).path(k, 0).true[0] for k in KEYS[:2000]]
        band = 0.5 / 1.2**horizon
        assert 0.5 - band <= min(priors) and max(priors) <= 0.5 + band
        assert max(priors) - min(priors) > 1.6 * band  # Beta(2, 2) over the whole band


def test_noisy_agent_has_negative_naive_slope_but_martingale_truth() -> None:
    agent = SimAgent("noisy", noise=0.1, seed=3)
    naive = martingale_score(*_pairs(agent))
    truth = martingale_score(*_pairs(agent, stated=False))
    assert naive.ci_high < -0.05
    assert truth.ci_low < 0 < truth.ci_high


def test_inert_agent_never_moves() -> None:
    prior, posterior = _pairs(SimAgent("inert"))
    assert np.array_equal(prior, posterior)


def test_paths_are_deterministic_and_prefix_stable() -> None:
    agent = SimAgent("entrenched", kappa=0.2, seed=9)
    assert agent.path("q", 5) == agent.path("q", 5)
    assert agent.path("q", 5).true[:3] == agent.path("q", 2).true
    assert agent.path("q", 1) != SimAgent("entrenched", kappa=0.2, seed=10).path("q", 1)
    # same question, same prior for agents that share the prior range
    assert SimAgent("bayesian").path("q", 0).true == SimAgent("inert").path("q", 0).true


@pytest.mark.parametrize(
    "kwargs,match",
    [({"kind": "bayesian", "kappa": 0.2}, "kappa applies"), ({"kind": "noisy", "noise": 0.9}, "noise must"),
     ({"kind": "oracle"}, "unknown simulated agent"), ({"kind": "entrenched", "kappa": 3.0}, "kappa must"),
     ({"kind": "entrenched", "kappa": 0.2, "horizon": 0}, "horizon must"),
     ({"kind": "bayesian", "horizon": 4}, "horizon applies")],
)
def test_invalid_agents_are_rejected(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SimAgent(**kwargs)


@pytest.mark.slow
def test_null_calibration_of_the_robust_interval() -> None:
    """1000 runs of sim/bayesian at n = 300: the 95 % CI covers the true MS (0) in 93–97 %."""
    covered = 0
    runs = 1000
    keys = KEYS[:300]
    for seed in range(runs):
        agent = SimAgent("bayesian", seed=seed)
        beliefs = np.array([agent.path(k, 1).stated for k in keys])
        res = martingale_score(beliefs[:, 0], beliefs[:, 1])
        covered += res.ci_low <= 0.0 <= res.ci_high
    assert 0.93 <= covered / runs <= 0.97, covered / runs
