"""``martingale train``: GRPO (or RLOO) on a peft LoRA with the Martingale reward and KL to the reference.

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
several processes each process fits its own slice.

Outputs in ``output_dir``: ``adapter/`` (the LoRA with ``README.md``, its model card),
``metrics.jsonl`` (one line per optimizer step with TRL's metrics and every reward component, plus
one line per prior pass), ``split.json``, ``training_config.json`` and, with ``evaluation.enabled``,
``eval/`` with the harness's logs of base and adapter on the held-out questions.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from martingale_harness.errors import ConfigError
from martingale_harness.extraction import Extractor
from martingale_harness.plugins import get_extractor, get_reward_term
from martingale_harness.training.config import TrainConfig, check_trainer_keys
from martingale_harness.training.episodes import (
    EpisodePrompts,
    PriorStore,
    Split,
    episode_dataset,
    load_episodes,
    split_episodes,
    write_split,
)
from martingale_harness.training.reward import METRIC_PREFIX, MartingaleReward, RewardWeights
from martingale_harness.training.terms import RewardTerm
from martingale_harness.transcript import Transcript, Turn

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
    """TRL's (config class, trainer class) for ``algorithm``."""
    if algorithm == "rloo":
        from trl import RLOOConfig, RLOOTrainer

        return RLOOConfig, RLOOTrainer
    from trl import GRPOConfig, GRPOTrainer

    return GRPOConfig, GRPOTrainer


def prepare(config: TrainConfig) -> Prepared:
    """Read the data, split it and check the reward's plugins against it; raises ConfigError, loads no model."""
    split = split_episodes(load_episodes(config), config.holdout_fraction, config.split_seed, config.max_items)
    term = get_reward_term(config.reward.info_term) if config.reward.info_coef > 0 else None
    if term is not None:
        term.check([e.label for e in split.train], [e.metadata for e in split.train])
    check_trainer_keys(config, trainer_classes(config.algorithm)[0])
    trainer_args(config, config.output_dir)  # TRL checks its values (batch divisibility, ...) without a model
    return Prepared(config=config, split=split, prompts=EpisodePrompts(config.system_prompt, config.paradigm),
                    extractor=get_extractor(config.reward.extractor), term=term)


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
        "beta": config.beta,
        "report_to": list(config.report_to) or "none",
    }
    try:
        return config_class(**values)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"{config.source}: TRL refuses the trainer settings: {e}") from None


def train(config: TrainConfig, *, progress: bool = True) -> TrainResult:
    """Run ``martingale train``; every configuration error is raised before the model loads."""
    prepared = prepare(config)
    from transformers import TrainerCallback, set_seed

    from martingale_harness.training import models
    from martingale_harness.training.model_card import write_model_card

    out = config.output_dir
    out.mkdir(parents=True, exist_ok=True)
    write_split(prepared.split, out / "split.json")
    (out / "training_config.json").write_text(json.dumps(config.to_dict(), indent=1) + "\n", encoding="utf-8")
    args = trainer_args(config, out, progress)

    set_seed(config.seed)
    tokenizer = models.load_tokenizer(config.base_model)
    model = models.load_model(config.base_model, config.dtype)
    peft_config = None
    if config.init_adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, config.init_adapter, is_trainable=True)
    else:
        peft_config = models.lora_config(config.lora)

    store = PriorStore(prepared.split.train, prepared.prompts)
    metrics_file = out / "metrics.jsonl"
    metrics_file.write_text("", encoding="utf-8")

    def log_line(record: dict[str, Any]) -> None:
        with metrics_file.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record, default=float) + "\n")

    def prior_pass(policy: Any, step: int) -> None:
        record = store.refresh(
            lambda convs: models.generate(policy, tokenizer, convs,
                                          max_new_tokens=config.episodes.prior_max_new_tokens,
                                          progress=f"prior pass (step {step})" if progress else None),
            step, lambda answers: _read_priors(prepared, answers))
        log_line({"event": "prior_pass", **record})
        logger.info("prior pass at step %d: %s", step, record)

    # the first pass asks the starting policy: the base (a fresh adapter is a no-op) or init_adapter
    prior_pass(model, 0)
    if store.refreshes[-1]["prior_failures"] == len(store.episodes):
        logger.warning("the starting model's priors could not be read for any training item: there is no MS "
                       "reward until a prior pass reads some (episodes.prior_refresh_steps)")

    reward = MartingaleReward([prepared.prompts.view(e) for e in prepared.split.train], prepared.extractor,
                              RewardWeights(config.reward.ms_coef, config.reward.info_coef,
                                            config.reward.format_penalty), prepared.term)
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
                log_line({"step": state.global_step, **numbers})

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            every = config.episodes.prior_refresh_steps
            if every and state.global_step % every == 0 and state.global_step < state.max_steps:
                prior_pass(self.trainer.accelerator.unwrap_model(self.trainer.model), state.global_step)

    callbacks = Callbacks()
    _, trainer_class = trainer_classes(config.algorithm)
    trainer = trainer_class(model=model, reward_funcs=[reward], args=args, train_dataset=episode_dataset(store),
                            processing_class=tokenizer, peft_config=peft_config, callbacks=[callbacks])
    callbacks.trainer = trainer
    trainer.train()

    adapter_dir = out / "adapter"
    models.save_adapter(trainer.accelerator.unwrap_model(trainer.model), adapter_dir, config.base_model)
    # the reward's components under their own names, plus TRL's KL and loss at the same step
    final = {k.removeprefix(METRIC_PREFIX): v for k, v in last.items() if k.startswith(METRIC_PREFIX)}
    final.update({k: last[k] for k in ("kl", "loss") if k in last})
    result = TrainResult(output_dir=out, adapter_dir=adapter_dir, metrics_file=metrics_file, final_metrics=final,
                         prior_passes=list(store.refreshes))
    del trainer, model  # free the training copy before the evaluation loads its own
    if config.evaluation.enabled and prepared.split.heldout:
        from martingale_harness.training.evaluate import evaluate_heldout

        result.evaluation = evaluate_heldout(config, prepared.split, adapter_dir, out / "eval",
                                             display="plain" if progress else "none")
    write_model_card(adapter_dir, config, kind="train", split=prepared.split, final_metrics=final,
                     evaluation=result.evaluation, prior_passes=result.prior_passes)
    return result


def _read_priors(prepared: Prepared, answers: list[str]) -> list[float | None]:
    """The belief of each prior answer as the extractor reads a one-turn transcript (for the log)."""
    prompts = prepared.prompts

    async def read_all() -> list[float | None]:
        out: list[float | None] = []
        for episode, answer in zip(prepared.split.train, answers, strict=True):
            view = prompts.view(episode)
            (reading,) = await prepared.extractor.extract(
                Transcript(view.question, (Turn(stage="prior", prompt=view.prior_prompt, answer=answer),)))
            out.append(reading.value if reading.is_ok else None)
        return out

    return asyncio.run(read_all())

