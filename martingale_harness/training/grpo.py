"""``martingale train``: GRPO (or RLOO) on a peft LoRA with the Martingale reward and KL to the reference.

``algorithm: expert_iteration`` runs :mod:`martingale_harness.training.expert_iteration` instead
(best-of-K selection with the same reward, then SFT); everything before and after training is shared
(:mod:`martingale_harness.training.policy_run`).

TRL 1.x no longer ships a PPO trainer; GRPO's objective is PPO's clipped surrogate with a
group-relative advantage (the mean reward of the prompt's other completions replaces a value
model), plus ``beta`` times the KL to a reference policy. With a new LoRA the reference is the base
with the adapter disabled; with ``init_adapter`` (e.g. a distilled organism) TRL keeps a frozen copy
of the starting adapter as the reference, so the KL is to the starting point of training. RLOO
(``algorithm: rloo``) uses leave-one-out baselines instead.

The MS term is computed per batch, and the batch is TRL's *generation batch*: the reward function is
called once per generation batch with all its completions (``generation_batch_size`` =
``per_device_train_batch_size`` x ``steps_per_generation``, ``num_generations`` completions per
prompt), so the MS slope is fitted on ``generation_batch_size / num_generations`` distinct priors.
Keep that at 8 or more: with few distinct priors the slope (and so the reward) is noisy. Under
``accelerate launch`` the generation batch is that of all processes together (``per_device_train_batch_size``
x ``steps_per_generation`` x processes): each process scores its slice, and the reward gathers the
beliefs of all slices before it fits the MS (:class:`~martingale_harness.training.reward.MartingaleReward`).

Outputs in ``output_dir``: ``adapter/`` (the LoRA with ``README.md``, its model card),
``metrics.jsonl`` (one line per optimizer step with TRL's metrics and every reward component, plus
one line per prior pass), ``split.json``, ``training_config.json`` and, with ``evaluation.enabled``,
``eval/`` with the harness's logs of base and adapter on the held-out questions.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from martingale_harness.errors import ConfigError
from martingale_harness.extraction import Extractor
from martingale_harness.plugins import get_extractor, get_reward_term
from martingale_harness.reward_terms import RewardTerm
from martingale_harness.training.config import TrainConfig, check_trainer_keys
from martingale_harness.training.episodes import (
    EpisodePrompts,
    Split,
    episode_dataset,
    load_episodes,
    split_episodes,
)
from martingale_harness.training.processes import current_processes
from martingale_harness.training.reward import METRIC_PREFIX

logger = logging.getLogger(__name__)


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
        from martingale_harness.training.evaluate import heldout_questions

        heldout_questions(config, split)  # an evaluation set that shares training questions is refused now
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


def train(config: TrainConfig, *, progress: bool = True) -> TrainResult:
    """Run ``martingale train``; every configuration error is raised before the model loads."""
    prepared = prepare(config)
    if config.algorithm == "expert_iteration":
        from martingale_harness.training.expert_iteration import train_expert_iteration

        return train_expert_iteration(prepared, progress=progress)
    from transformers import TrainerCallback

    from martingale_harness.training.policy_run import PolicyRun

    # TRL's config first: under an accelerate DeepSpeed ZeRO-3 config it is what makes transformers
    # shard the weights while the policy loads (and it must stay alive until then)
    args = trainer_args(config, config.output_dir, progress)
    run = PolicyRun(prepared, progress)
    # the first pass asks the starting policy: the base (a fresh adapter is a no-op) or init_adapter
    run.prior_pass(run.model, 0)
    reward = run.reward()
    last: dict[str, float] = {}

    class Callbacks(TrainerCallback):  # type: ignore[misc]
        """Per-step metrics to JSONL; the prior pass every ``prior_refresh_steps`` steps."""

        trainer: Any = None

        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None,
                   **kwargs: Any) -> None:
            if logs:
                numbers = {k: v for k, v in logs.items() if isinstance(v, int | float) and math.isfinite(v)}
                if any(k.startswith(METRIC_PREFIX) for k in numbers):
                    last.update(numbers)
                run.log({"step": state.global_step, **numbers})

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            every = config.episodes.prior_refresh_steps
            if every and state.global_step % every == 0 and state.global_step < state.max_steps:
                run.prior_pass(self.trainer.accelerator.unwrap_model(self.trainer.model), state.global_step)

    callbacks = Callbacks()
    _, trainer_class = trainer_classes(config.algorithm)
    trainer = trainer_class(model=run.model, reward_funcs=[reward], args=args,
                            train_dataset=episode_dataset(run.store), processing_class=run.tokenizer,
                            peft_config=run.peft_config, callbacks=[callbacks])
    callbacks.trainer = trainer
    trainer.train()
    policy = trainer.accelerator.unwrap_model(trainer.model)
    # under DeepSpeed ZeRO-3 or FSDP each process holds a shard: every process takes part in gathering
    # the state, which the main process then saves (with DDP it is the unsharded state as it is)
    state = trainer.accelerator.get_state_dict(trainer.model_wrapped) if run.processes.count > 1 else None
    del trainer
    return run.finish(policy, last, state_dict=state)
