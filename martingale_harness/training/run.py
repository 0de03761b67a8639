"""``martingale train``: prepare (every configuration error before a model loads), then the chosen trainer.

``algorithm: grpo`` or ``rloo`` runs :func:`~martingale_harness.training.grpo.train_policy_gradient`;
``expert_iteration`` runs :func:`~martingale_harness.training.expert_iteration.train_expert_iteration`.
"""

from __future__ import annotations

from martingale_harness.training.config import TrainConfig
from martingale_harness.training.prepare import TrainResult, prepare


def train(config: TrainConfig, *, progress: bool = True) -> TrainResult:
    """Run ``martingale train``; every configuration error is raised before the model loads."""
    prepared = prepare(config)
    if config.algorithm == "expert_iteration":
        from martingale_harness.training.expert_iteration import train_expert_iteration

        return train_expert_iteration(prepared, progress=progress)
    from martingale_harness.training.grpo import train_policy_gradient

    return train_policy_gradient(prepared, progress=progress)
