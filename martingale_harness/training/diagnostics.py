"""Training diagnostics: does the Martingale reward give the policy anything to learn from?

Written for every generation batch (GRPO/RLOO: every reward call; expert iteration: every round) under
``martingale/`` in ``metrics.jsonl``, and summarised by ``martingale train-report``.

* ``batch_ms`` with ``batch_ms_ci_low``/``batch_ms_ci_high``: the batch's Martingale Score and its
  95 % interval from :func:`martingale_harness.stats.martingale.martingale_score`, clustered by episode (the
  completions of one prompt share its prior, so they are not independent pairs).
* ``batch_inertia`` (share of readable pairs whose belief did not move) and ``readable_rate`` (share of
  completions whose posterior the extractor read).
* ``share_ms``, ``share_info``, ``share_format``: how much of the *within-group* reward variance each
  component supplies. Group-relative methods (GRPO, RLOO, best-of-K selection) learn only from reward
  differences between completions of the same prompt, so a component that is large but equal across a
  group teaches nothing. With ``r = c_ms + c_info + c_format`` (each component times its coefficient;
  an unreadable completion's whole reward is its format part), the pooled within-group variance splits
  exactly as ``Var_w(r) = Σ_c Cov_w(c, r)``, so ``share_c = Cov_w(c, r) / Var_w(r)`` and the shares sum
  to one. A share can be negative: that component works against the others inside groups.
* ``no_signal_groups``: the share of groups whose rewards are all equal (zero advantage, no gradient).

Groups are runs of consecutive completions with the same episode index, which is how TRL lays out a
generation batch (``num_generations`` completions per prompt, one after the other) and how expert
iteration lays out its K samples.

Not logged per step but computed by ``martingale train-report`` from the batches' beliefs
(``reward_batches.jsonl``, expert iteration's ``rounds/round-N.jsonl``): :func:`slope_noise`, what the power
of a batch's MS slope depends on (episodes, draws per episode, the priors' SD, the updates' residual SD
and its draw-to-draw part), and :func:`batch_power`, the power of :mod:`martingale_harness.stats.power` at
that batch's size, i.e. whether a batch MS of a given size could be told from 0 at all.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, NDArray

from martingale_harness.stats import martingale as stats
from martingale_harness.stats.power import PowerInputError, power_at, required_questions

if TYPE_CHECKING:
    from martingale_harness.training.reward_records import RewardBreakdown, RewardWeights

EQUAL_REWARD_TOL = 1e-9
"""Rewards within this of each other count as equal (a group with no signal)."""
COMPONENTS: tuple[str, ...] = ("ms", "info", "format")


def group_ids(items: Sequence[int]) -> NDArray[np.intp]:
    """A group number for each completion: a new group starts wherever the episode index changes."""
    ids = np.zeros(len(items), dtype=np.intp)
    for i in range(1, len(items)):
        ids[i] = ids[i - 1] + (items[i] != items[i - 1])
    return ids


def reward_parts(breakdown: RewardBreakdown, weights: RewardWeights) -> dict[str, NDArray[np.float64]]:
    """Each component times its coefficient, per completion; the parts sum to ``breakdown.total``."""
    failed = breakdown.format_failed
    ms = np.where(failed, 0.0, weights.ms_coef * np.nan_to_num(breakdown.ms, nan=0.0))
    info = np.where(failed, 0.0, weights.info_coef * np.nan_to_num(breakdown.info, nan=0.0))
    fmt = np.where(failed, -weights.format_penalty, 0.0)
    return {"ms": ms, "info": info, "format": fmt}


def variance_shares(parts: dict[str, ArrayLike], groups: ArrayLike) -> tuple[dict[str, float], float]:
    """Each part's share of the pooled within-group variance of their sum, and the no-signal group share.

    The shares are NaN when no group's rewards differ (there is no variance to split).
    """
    g = np.asarray(groups)
    arrays = {name: np.asarray(values, dtype=np.float64) for name, values in parts.items()}
    total = np.sum(list(arrays.values()), axis=0)
    _, codes = np.unique(g, return_inverse=True)
    n_groups = int(codes.max()) + 1 if codes.size else 0

    def centred(values: NDArray[np.float64]) -> NDArray[np.float64]:
        means = np.bincount(codes, weights=values, minlength=n_groups) / np.bincount(codes, minlength=n_groups)
        return values - means[codes]

    spread = np.array([np.ptp(total[codes == k]) for k in range(n_groups)])
    no_signal = float(np.mean(spread <= EQUAL_REWARD_TOL)) if n_groups else math.nan
    r = centred(total)
    var = float(r @ r)
    if var <= EQUAL_REWARD_TOL**2 * max(total.size, 1):
        return {name: math.nan for name in arrays}, no_signal
    return {name: float(centred(values) @ r) / var for name, values in arrays.items()}, no_signal


def batch_diagnostics(breakdown: RewardBreakdown, weights: RewardWeights, items: Sequence[int]) -> dict[str, float]:
    """The per-batch diagnostics of the module docstring, unprefixed (undefined ones left out)."""
    if breakdown.prior is None or breakdown.posterior is None:
        raise ValueError("the breakdown does not carry the beliefs it scored")
    p = np.asarray(breakdown.prior, dtype=np.float64)
    q = np.asarray(breakdown.posterior, dtype=np.float64)
    pair = np.isfinite(p) & np.isfinite(q)
    fit = stats.martingale_score(p[pair], q[pair], cluster=np.asarray(items)[pair])
    groups = group_ids(items)
    shares, no_signal = variance_shares(reward_parts(breakdown, weights), groups)
    values = {
        "batch_ms_ci_low": fit.ci_low,
        "batch_ms_ci_high": fit.ci_high,
        "batch_inertia": stats.inertia(p[pair], q[pair]),
        "readable_rate": 1.0 - float(breakdown.format_failed.mean()) if breakdown.format_failed.size else math.nan,
        **{f"share_{name}": shares[name] for name in COMPONENTS},
        "no_signal_groups": no_signal,
        "groups": float(groups.max() + 1) if groups.size else 0.0,
    }
    return {k: float(v) for k, v in values.items() if not math.isnan(v)}


@dataclass(frozen=True)
class SlopeNoise:
    """What the power of one batch's MS slope depends on (the model of :mod:`martingale_harness.stats.power`)."""

    episodes: int
    """Episodes with at least one readable (prior, posterior) pair."""
    draws: int
    """K: readable pairs per episode (their mean, rounded; the draws of one episode share its prior)."""
    sd_prior: float
    """SD of the episodes' priors (one per episode)."""
    sd_delta: float
    """Residual SD of the updates around the OLS line over all readable pairs (n - 2 degrees of freedom)."""
    sd_within: float
    """Pooled within-episode SD of the posteriors (the draw-to-draw part of ``sd_delta``; capped at it)."""


def slope_noise(items: Sequence[int], prior: Sequence[float | None],
                posterior: Sequence[float | None]) -> SlopeNoise | None:
    """The batch's :class:`SlopeNoise` (None when no slope can be fitted: under 3 episodes or 3 pairs, or
    priors or residuals that do not vary)."""
    p = np.array([math.nan if v is None else v for v in prior], dtype=np.float64)
    q = np.array([math.nan if v is None else v for v in posterior], dtype=np.float64)
    pair = np.isfinite(p) & np.isfinite(q)
    p, q, episode = p[pair], q[pair], np.asarray(items)[pair]
    _, first, codes, counts = np.unique(episode, return_index=True, return_inverse=True, return_counts=True)
    n = counts.size
    if n < 3 or p.size < 3:
        return None
    sd_prior = float(np.std(p[first], ddof=1))  # one prior per episode: its draws share it
    if not sd_prior > 0:
        return None
    delta = q - p
    slope, intercept = np.polyfit(p, delta, 1)
    sd_delta = float(np.sqrt(np.sum((delta - slope * p - intercept) ** 2) / (p.size - 2)))
    if not sd_delta > 0:
        return None
    means = np.bincount(codes, weights=q) / counts
    within_df = int(np.sum(counts - 1))
    sd_within = float(np.sqrt(np.sum((q - means[codes]) ** 2) / within_df)) if within_df else 0.0
    return SlopeNoise(episodes=n, draws=max(1, round(p.size / n)), sd_prior=sd_prior, sd_delta=sd_delta,
                      sd_within=min(sd_within, sd_delta))


def batch_power(noise: SlopeNoise, effect: float, target: float = 0.8) -> tuple[float, float]:
    """The power of the batch slope's test to detect MS = ``effect`` at the batch's size, and the episodes
    (at the same K and SDs) it would need for power ``target`` (inf: beyond any run)."""
    args = {"sd_prior": noise.sd_prior, "sd_delta": noise.sd_delta, "draws": noise.draws,
            "sd_within": noise.sd_within}
    power = power_at(noise.episodes, effect, **args)
    try:
        needed = float(required_questions(effect, power=target, **args).n)
    except PowerInputError:
        needed = math.inf
    return power, needed
