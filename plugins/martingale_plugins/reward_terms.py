"""Built-in reward terms for ``martingale train`` (``reward.info_term``), registered as a plugin.

* ``brier_gain``: ``(p - y)^2 - (q - y)^2``, how much the update improved the Brier score of the
  belief against the label ``y``. Supervised; NaN (no reward) for items without a label.
* ``update_magnitude``: ``min(|q - p|, CAP) / CAP - 1`` in [-1, 0]. Unsupervised anti-inertia: an
  unmoved belief scores -1, any update of at least ``CAP`` scores 0. The cap keeps it from paying
  for ever larger swings, which would reward jumping to 0 or 1 rather than updating at all.
* ``bayes_distance``: ``-(q - b*_T)^2``, the negative squared distance of the posterior to the exact
  Bayesian posterior ``b*_T``, the last entry of ``metadata["exact_posteriors"]`` (b*_0..b*_T, stored
  by the ``bayes`` domain). Every training item must carry it: the term refuses to start otherwise,
  since a reward that silently applies to some items only would train on a different objective.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from martingale_harness.plugin_api import ConfigError, RewardBatch, RewardTerm, hookimpl

CAP = 0.1
"""``update_magnitude`` pays nothing more for updates larger than this (in probability)."""
EXACT_POSTERIORS_KEY = "exact_posteriors"


def _missing(value: float | None) -> bool:
    return value is None or math.isnan(value)


class BrierGain:
    """Improvement of the Brier score from prior to posterior; needs labels."""

    name = "brier_gain"

    def check(self, labels: Sequence[float | None], metadata: Sequence[Mapping[str, Any]]) -> None:
        if all(_missing(y) for y in labels):
            raise ConfigError("reward term 'brier_gain' needs labels, and no training item has one; "
                              "use info_term: update_magnitude for unlabelled data")

    def values(self, batch: RewardBatch) -> NDArray[np.float64]:
        return (batch.prior - batch.label) ** 2 - (batch.posterior - batch.label) ** 2


class UpdateMagnitude:
    """Anti-inertia: -1 for a belief that did not move, 0 for a move of at least ``CAP``."""

    name = "update_magnitude"

    def check(self, labels: Sequence[float | None], metadata: Sequence[Mapping[str, Any]]) -> None:
        return None  # unsupervised: any data will do

    def values(self, batch: RewardBatch) -> NDArray[np.float64]:
        return np.minimum(np.abs(batch.posterior - batch.prior), CAP) / CAP - 1.0


class BayesDistance:
    """Closeness of the posterior to the exact Bayesian posterior of the item's evidence."""

    name = "bayes_distance"

    def check(self, labels: Sequence[float | None], metadata: Sequence[Mapping[str, Any]]) -> None:
        bad = [i for i, m in enumerate(metadata) if _exact_posterior(m) is None]
        if bad:
            raise ConfigError(
                f"reward term 'bayes_distance' needs metadata[{EXACT_POSTERIORS_KEY!r}] (a non-empty list of "
                f"probabilities, as the martingale/bayes task stores) on every training item; {len(bad)} of "
                f"{len(metadata)} lack it (first: item {bad[0]})"
            )

    def values(self, batch: RewardBatch) -> NDArray[np.float64]:
        target = np.array([_exact_posterior(m) for m in batch.metadata], dtype=np.float64)
        if np.isnan(target).any():
            raise ValueError(f"reward term 'bayes_distance': an item without {EXACT_POSTERIORS_KEY!r} reached the "
                             "reward (check() should have refused the data)")
        return -((batch.posterior - target) ** 2)


def _exact_posterior(metadata: Mapping[str, Any]) -> float | None:
    """b*_T, the exact posterior after all the evidence, or None when absent or malformed."""
    path = metadata.get(EXACT_POSTERIORS_KEY)
    if not isinstance(path, list | tuple) or not path:
        return None
    last = path[-1]
    if isinstance(last, bool) or not isinstance(last, int | float) or not 0.0 <= last <= 1.0:
        return None
    return float(last)


@hookimpl
def martingale_register_reward_terms(register: Callable[[RewardTerm], None]) -> None:
    register(BrierGain())
    register(UpdateMagnitude())
    register(BayesDistance())
