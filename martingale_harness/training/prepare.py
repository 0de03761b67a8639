"""What every ``martingale train`` run does before a model loads: read, split and check; TRL's config.

:func:`prepare` reads the episodes, splits them, and checks the reward's plugins, the trainer settings
(TRL validates them without a model) and the held-out evaluation set, so that every configuration
error is raised before any weights load. :class:`Prepared` and :class:`TrainResult` are what the
trainers (:mod:`~martingale_harness.training.grpo`, :mod:`~martingale_harness.training.expert_iteration`)
take and return; :mod:`~martingale_harness.training.run` dispatches between them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from martingale_harness.errors import ConfigError
from martingale_harness.extraction.base import Extractor
from martingale_harness.plugin.host import get_extractor, get_reward_term
from martingale_harness.plugin.reward_terms import RewardTerm
from martingale_harness.training.config import TrainConfig, check_trainer_keys
from martingale_harness.training.episodes import EpisodePrompts, Split, load_episodes, split_episodes
from martingale_harness.training.processes import current_processes


@dataclass
class Prepared:
    """Everything a run needs that loads no model: data, split and plugins, all checked."""

    config: TrainConfig
    split: Split
    prompts: EpisodePrompts
    extractor: Extractor
    term: RewardTerm | None


@dataclass
class TrainResult:
    """Where a run wrote its outputs, and what it measured."""

    output_dir: Path
    adapter_dir: Path
    metrics_file: Path
    final_metrics: dict[str, float]
    evaluation: dict[str, Any] | None = None
    prior_passes: list[dict[str, Any]] = field(default_factory=list)


def trainer_classes(algorithm: str) -> tuple[type[Any], type[Any]]:
    """TRL's (config class, trainer class) for ``algorithm`` (expert iteration fine-tunes with SFT)."""
    if algorithm == "expert_iteration":
        from trl import SFTConfig, SFTTrainer

        return SFTConfig, SFTTrainer
    if algorithm == "rloo":
        from trl import RLOOConfig, RLOOTrainer

        return RLOOConfig, RLOOTrainer
    from trl import GRPOConfig, GRPOTrainer

    return GRPOConfig, GRPOTrainer


def prepare(config: TrainConfig) -> Prepared:
    """Read the data, split it and check the reward's plugins against it; raises ConfigError, loads no model."""
    processes = current_processes()  # before TRL's config, which would set up a single-process state
    if processes.count > 1 and config.algorithm == "expert_iteration":
        raise ConfigError(f"{config.source}: expert iteration runs in one process (its sampling and selection "
                          f"are not split); run it without accelerate launch, or use algorithm: grpo or rloo")
    split = split_episodes(load_episodes(config), config.holdout_fraction, config.split_seed, config.max_items)
    term = get_reward_term(config.reward.info_term) if config.reward.info_coef > 0 else None
    if term is not None:
        term.check([e.label for e in split.train], [e.metadata for e in split.train])
    check_trainer_keys(config, trainer_classes(config.algorithm)[0])
    check_vllm(config)
    trainer_args(config, config.output_dir)  # TRL checks its values (batch divisibility, ...) without a model
    if config.evaluation.enabled:
        from martingale_harness.training.evaluate import check_start_log, heldout_questions

        heldout_questions(config, split)  # an evaluation set that shares training questions is refused now
        check_start_log(config)  # a start log that cannot be this run's is refused before training, not after
    return Prepared(config=config, split=split, prompts=EpisodePrompts(config.system_prompt, config.paradigm),
                    extractor=get_extractor(config.reward.extractor), term=term)


VLLM_MODES = ("colocate", "server")


def check_vllm(config: TrainConfig) -> None:
    """``trainer.use_vllm`` (TRL generates the completions with vLLM): refused now if it cannot work.

    vLLM must be installed (it needs a CUDA GPU), and ``vllm_mode`` is ``colocate`` (TRL's default:
    vLLM in each training process, sharing its GPU) or ``server`` (``trl vllm-serve --model <base>``
    on other GPUs; whether it answers is found out when training starts). The prior pass and the
    held-out evaluation still generate with transformers.
    """
    trainer = config.trainer
    if not trainer.get("use_vllm"):
        unused = sorted(k for k in trainer if k.startswith("vllm_"))
        if unused:
            raise ConfigError(f"{config.source}: trainer.{', trainer.'.join(unused)} set but trainer.use_vllm is "
                              "not true: vLLM settings apply only with use_vllm: true")
        return
    mode = trainer.get("vllm_mode", "colocate")
    if mode not in VLLM_MODES:
        raise ConfigError(f"{config.source}: trainer.vllm_mode={mode!r} is not allowed; allowed: "
                          f"{', '.join(VLLM_MODES)}")
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        raise ConfigError(f"{config.source}: trainer.use_vllm needs vLLM, which is not installed here "
                          "(pip install vllm, on a machine with a CUDA GPU)")


def trainer_args(config: TrainConfig, output_dir: Path, progress: bool = True) -> Any:
    """TRL's config for the run: the ``trainer`` section plus the keys the harness sets."""
    from martingale_harness.training.models import device_defaults

    config_class, _ = trainer_classes(config.algorithm)
    values: dict[str, Any] = {
        "logging_steps": 1,
        "save_strategy": "no",
        **device_defaults(dict(config.trainer)),
        "disable_tqdm": not progress,
        **config.trainer,
        "output_dir": str(output_dir / "trainer"),
        "seed": config.seed,
        "report_to": list(config.report_to) or "none",
    }
    if config.algorithm != "expert_iteration":
        values["beta"] = config.beta
    try:
        return config_class(**values)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"{config.source}: TRL refuses the trainer settings: {e}") from None
