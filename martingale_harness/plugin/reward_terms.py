"""Reward terms: the pluggable "information" part of the Martingale reward.

The MS term alone has a trivial optimum: an agent that never updates has MS = 0. A reward term
adds what a good update looks like (closer to the truth, closer to the exact Bayesian posterior,
or simply not inert). Terms are plugins: a module's ``martingale_register_reward_terms(register)``
hook (see :mod:`martingale_harness.plugin.hookspecs`) calls ``register(term)``; the built-ins
(``brier_gain``, ``update_magnitude``, ``bayes_distance``) live in
``plugins/martingale_plugins/reward_terms.py`` and are registered exactly that way.

numpy only: part of the plugin API (:mod:`martingale_harness.plugin_api`), importable without torch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class RewardBatch:
    """One generation batch as a reward term sees it: one entry per completion.

    Failed readings are NaN (never a made-up belief); a term returns NaN wherever it has nothing
    to say, and the reward treats NaN as "not applicable" (0 in the total, left out of the logged mean).
    """

    prior: NDArray[np.float64]
    """b_0, read by the extractor from the prior turn shown in the prompt."""
    posterior: NDArray[np.float64]
    """b_1, read by the extractor from the completion (the trained posterior turn)."""
    label: NDArray[np.float64]
    """The resolution (0 or 1) where the item has one."""
    metadata: tuple[Mapping[str, Any], ...]
    """Each item's sample metadata (domain fields such as ``exact_posteriors``)."""

    def __post_init__(self) -> None:
        n = len(self.prior)
        if not (len(self.posterior) == len(self.label) == len(self.metadata) == n):
            raise ValueError("prior, posterior, label and metadata must have one entry per completion")


@runtime_checkable
class RewardTerm(Protocol):
    """A per-completion reward component, weighted by ``info_coef`` in the training config.

    ``check`` runs on the training items before any model loads and raises
    :class:`~martingale_harness.errors.ConfigError` when the data cannot support the term (e.g. no
    labels for ``brier_gain``). ``values`` returns one float per completion of ``batch``, larger =
    better, NaN where the term does not apply.
    """

    name: str

    def check(self, labels: Sequence[float | None], metadata: Sequence[Mapping[str, Any]]) -> None: ...

    def values(self, batch: RewardBatch) -> NDArray[np.float64]: ...
