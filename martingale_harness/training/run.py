"""``martingale train``: prepare (every configuration error before a model loads), then the chosen trainer.

``algorithm: grpo`` or ``rloo`` runs :func:`~martingale_harness.training.grpo.train_policy_gradient`;
``expert_iteration`` runs :func:`~martingale_harness.training.expert_iteration.train_expert_iteration`.
:func:`train_seeds` runs one config over several training seeds (``martingale train --seeds``).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from martingale_harness.errors import ConfigError
from martingale_harness.training.config import TrainConfig
from martingale_harness.training.prepare import TrainResult, prepare

logger = logging.getLogger(__name__)
SEED_DIR = "seed-{seed}"
"""The folder of one training seed under the config's ``output_dir``."""


def train(config: TrainConfig, *, progress: bool = True) -> TrainResult:
    """Run ``martingale train``; every configuration error is raised before the model loads."""
    prepared = prepare(config)
    if config.algorithm == "expert_iteration":
        from martingale_harness.training.expert_iteration import train_expert_iteration

        return train_expert_iteration(prepared, progress=progress)
    from martingale_harness.training.grpo import train_policy_gradient

    return train_policy_gradient(prepared, progress=progress)


def seed_configs(config: TrainConfig, seeds: Sequence[int]) -> list[TrainConfig]:
    """One config per training seed: ``seed`` set, output in ``<output_dir>/seed-<seed>``; all are prepared
    (checked) before any runs. The held-out evaluation's own seed (``evaluation.seed``) is left as it is, so
    every seed's adapter is evaluated on the same draws of the same samples as the start model."""
    if not seeds:
        raise ConfigError(f"{config.source}: --seeds needs at least one seed")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"{config.source}: --seeds {','.join(map(str, seeds))} repeats a seed")
    configs = [dataclasses.replace(config, seed=seed, output_dir=Path(config.output_dir) / SEED_DIR.format(seed=seed))
               for seed in seeds]
    for each in configs:
        prepare(each)
    return configs


def train_seeds(config: TrainConfig, seeds: Sequence[int], *, progress: bool = True,
                on_result: Callable[[int, TrainResult], None] | None = None) -> list[TrainResult]:
    """Train ``config`` once per seed, one after the other (see :func:`seed_configs`).

    The start model is evaluated once: the first seed's start evaluation is reused by the others
    (``evaluation.start_log``), since with the same evaluation settings it would give the same log again.
    """
    results: list[TrainResult] = []
    start_log: str | None = config.evaluation.start_log
    for each in seed_configs(config, seeds):
        if start_log is not None and each.evaluation.start and each.evaluation.enabled:
            each = dataclasses.replace(each, evaluation=dataclasses.replace(each.evaluation, start_log=start_log))
        logger.info("training seed %d into %s", each.seed, each.output_dir)
        result = train(each, progress=progress)
        _free_memory()  # the next seed loads its own policy
        start = (result.evaluation or {}).get("start") or {}
        start_log = start_log or start.get("log")
        results.append(result)
        if on_result is not None:
            on_result(each.seed, result)
    return results


def _free_memory() -> None:
    import gc

    gc.collect()  # a trainer and its callbacks hold each other: only the cycle collector frees the policy
    try:
        import torch
    except ImportError:
        return
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
