"""``martingale train``: GRPO (or RLOO) on a peft LoRA with the Martingale reward and KL to the reference.

``algorithm: expert_iteration`` runs :mod:`martingale_harness.training.expert_iteration` instead
(best-of-K selection with the same reward, then SFT); :mod:`martingale_harness.training.run` dispatches,
and everything before and after training is shared (:mod:`martingale_harness.training.prepare`,
:mod:`martingale_harness.training.policy_run`).

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
from typing import Any

from martingale_harness.training.episodes import episode_dataset
from martingale_harness.training.prepare import Prepared, TrainResult, trainer_args, trainer_classes
from martingale_harness.training.reward import METRIC_PREFIX

logger = logging.getLogger(__name__)


def train_policy_gradient(prepared: Prepared, *, progress: bool = True) -> TrainResult:
    """GRPO or RLOO (``config.algorithm``) on a prepared run: the policy, the reward and TRL's trainer."""
    config = prepared.config
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
