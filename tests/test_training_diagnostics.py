"""Training diagnostics (martingale_harness.training.diagnostics): variance shares, no-signal groups, batch MS CI."""

from __future__ import annotations

import math

import numpy as np
import pytest

from martingale_harness.plugin.reward_terms import RewardBatch
from martingale_harness.stats import martingale as stats
from martingale_harness.training.diagnostics import (
    batch_diagnostics,
    group_ids,
    reward_parts,
    variance_shares,
)
from martingale_harness.training.reward import RewardWeights, combine


def _within_cov(a: np.ndarray, b: np.ndarray, groups: np.ndarray) -> float:
    """Pooled within-group covariance, one group at a time (the reference for the vectorised version)."""
    total = 0.0
    for g in np.unique(groups):
        m = groups == g
        total += float(np.sum((a[m] - a[m].mean()) * (b[m] - b[m].mean())))
    return total


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_shares_sum_to_one_and_match_a_per_group_computation(seed: int) -> None:
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(12), 4)
    parts = {"ms": rng.normal(size=48) + groups, "info": 0.3 * rng.normal(size=48), "format": np.zeros(48)}
    parts["format"][rng.choice(48, 6, replace=False)] = -1.0
    shares, no_signal = variance_shares(parts, groups)
    assert sum(shares.values()) == pytest.approx(1.0, abs=1e-12)
    total = sum(parts.values())
    var = _within_cov(total, total, groups)
    for name, values in parts.items():
        assert shares[name] == pytest.approx(_within_cov(values, total, groups) / var, rel=1e-10)
    assert no_signal == 0.0


def test_a_component_constant_within_groups_has_no_share() -> None:
    # the MS part differs between groups only: a group-relative method learns nothing from it
    groups = np.repeat(np.arange(5), 3)
    ms = np.repeat([5.0, -3.0, 2.0, 0.0, 1.0], 3)
    info = np.tile([0.0, 0.1, 0.2], 5)
    shares, _ = variance_shares({"ms": ms, "info": info, "format": np.zeros(15)}, groups)
    assert shares == pytest.approx({"ms": 0.0, "info": 1.0, "format": 0.0})


def test_uncorrelated_components_split_by_their_variances() -> None:
    # within each group a = (1, -1, 1, -1) and b = (1, 1, -1, -1) are orthogonal: shares are var(a) : var(b)
    groups = np.repeat(np.arange(3), 4)
    a = np.tile([1.0, -1.0, 1.0, -1.0], 3) * 2.0
    b = np.tile([1.0, 1.0, -1.0, -1.0], 3)
    shares, _ = variance_shares({"ms": a, "info": b}, groups)
    assert shares["ms"] == pytest.approx(4 / 5) and shares["info"] == pytest.approx(1 / 5)


def test_no_signal_share_is_exact() -> None:
    groups = np.repeat(np.arange(8), 4)
    total = np.arange(32, dtype=float)
    for g in (1, 4, 6):  # three groups with all-equal rewards
        total[groups == g] = -1.0
    shares, no_signal = variance_shares({"ms": total}, groups)
    assert no_signal == 3 / 8 and shares["ms"] == pytest.approx(1.0)
    # every group flat: no variance to split, so the shares are undefined, never a made-up 0
    shares, no_signal = variance_shares({"ms": np.repeat([1.0, 2.0], 4)}, np.repeat([0, 1], 4))
    assert no_signal == 1.0 and math.isnan(shares["ms"])


def test_groups_are_runs_of_the_same_episode() -> None:
    assert group_ids([3, 3, 3, 0, 0, 7, 3, 3]).tolist() == [0, 0, 0, 1, 1, 2, 3, 3]


def test_batch_diagnostics_of_a_constructed_batch() -> None:
    rng = np.random.default_rng(5)
    items = np.repeat(np.arange(10), 4)
    prior = np.repeat(rng.uniform(0.1, 0.9, 10), 4)
    posterior = np.clip(prior + 0.5 * (prior - 0.5) + rng.normal(0, 0.05, 40), 0, 1)
    posterior[[3, 17]] = np.nan  # unreadable
    posterior[[5, 6]] = prior[[5, 6]]  # unmoved
    batch = RewardBatch(prior=prior, posterior=posterior, label=np.full(40, np.nan), metadata=({},) * 40)
    weights = RewardWeights(ms_coef=1.0, info_coef=0.0, format_penalty=1.0)
    breakdown = combine(batch, weights, None)
    d = batch_diagnostics(breakdown, weights, items.tolist())
    ok = ~np.isnan(posterior)
    fit = stats.martingale_score(prior[ok], posterior[ok], cluster=items[ok])
    assert (d["batch_ms_ci_low"], d["batch_ms_ci_high"]) == (fit.ci_low, fit.ci_high)
    assert fit.ci_low < breakdown.batch_ms < fit.ci_high and fit.n_clusters == 10
    assert d["readable_rate"] == 38 / 40 and d["batch_inertia"] == 2 / 38
    parts = reward_parts(breakdown, weights)
    assert np.allclose(sum(parts.values()), breakdown.total)
    assert d["share_ms"] + d["share_format"] + d.get("share_info", 0.0) == pytest.approx(1.0)
    # a group whose four posteriors all clipped to the same value has equal rewards: no signal
    flat = [g for g in range(10) if np.ptp(breakdown.total[items == g]) == 0]
    assert flat and d["groups"] == 10 and d["no_signal_groups"] == len(flat) / 10
