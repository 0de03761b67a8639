"""``algorithm: expert_iteration``: best-of-K rejection sampling with the Martingale reward, then SFT (STaR-style).

Each round (``expert_iteration.rounds``):

1. **Priors.** Round 1 uses the start policy's prior pass; with ``refresh_priors`` every later round
   asks the current policy again (``episodes.prior_temperature`` as in GRPO).
2. **Sample.** The policy writes K = ``samples`` posterior turns per training episode at
   ``temperature``/``top_p`` (the episode prompt is GRPO's: the protocol's conversation up to the
   posterior question, with the policy's own prior answer).
3. **Score.** All n x K completions go through the same :class:`~martingale_harness.training.reward.MartingaleReward`
   as one batch, so the MS shares, the information term and the format term are exactly GRPO's
   (the batch MS is fitted on the n distinct priors, K posteriors each).
4. **Select.** In each episode's group the completion with the highest reward is kept if it beats the
   group's mean reward by more than ``margin``; the others, and groups whose best is not clearly
   better (all equal, or within the margin), are dropped. Ties go to the earliest sample.
5. **Fine-tune.** TRL's ``SFTTrainer`` (the ``trainer`` section is its ``SFTConfig``; a new trainer per
   round, so the learning-rate schedule restarts) trains the LoRA on the kept (prompt, completion)
   pairs, loss on the completion only. With ``replay_priors`` (default) the round's readable prior
   answers are trained on too (prior question -> the policy's own prior answer): trained on posterior
   turns alone, a 135M policy stopped answering the prior question after one round. A round that keeps
   nothing trains nothing and says so.

There is no KL term in the loss; what keeps the policy near its start is the few SFT steps on its own
samples. The KL to the start policy (per token, TRL's k3 estimator, on the first sample of each group,
i.e. samples of the current policy) is measured each round and logged as ``kl``, so runs of both
algorithms can be compared. Each round appends one line to ``metrics.jsonl`` (``event: round``) with
the reward components, the diagnostics of :mod:`~martingale_harness.training.diagnostics`, the kept
count and the SFT's loss and gradient norm; ``rounds/round-N.jsonl`` holds every sample with its
reward parts and whether it was kept.

With ``evaluation.every_round`` the adapter after each round r < ``rounds`` that fine-tuned is saved to
``rounds/round-<r>/adapter`` and run through the same held-out evaluation as the final one (logs in
``eval/round-<r>``), and ``metrics.jsonl`` gets an ``event: heldout`` line with its metrics, so the inertia
trap (an MS-only objective met by not updating) shows in the round it sets in. The last round's evaluation is
the run's own (the model card's ``evaluation.trained``). The evaluation loads its own copy of the model (the
``local`` backend) beside the policy, and the random state is restored after it, so the rounds sample what
they would without it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from martingale_harness.backends.lora import AdapterNotAppliedError
from martingale_harness.errors import MartingaleError
from martingale_harness.training.diagnostics import group_ids, reward_parts

if TYPE_CHECKING:
    from martingale_harness.training.episodes import PriorStore
    from martingale_harness.training.models import Sampled
    from martingale_harness.training.policy_run import PolicyRun
    from martingale_harness.training.prepare import Prepared, TrainResult
    from martingale_harness.training.reward import RewardBreakdown, RewardWeights

logger = logging.getLogger(__name__)
REFERENCE_ADAPTER = "reference"


def select_best(rewards: ArrayLike, groups: ArrayLike, margin: float) -> list[int]:
    """Index of each group's best completion where it beats the group's mean reward by more than ``margin``."""
    r = np.asarray(rewards, dtype=np.float64)
    g = np.asarray(groups)
    kept = []
    for group in dict.fromkeys(g.tolist()):  # groups in order of first appearance
        members = np.flatnonzero(g == group)
        best = int(members[np.argmax(r[members])])
        if r[best] - float(r[members].mean()) > margin:
            kept.append(best)
    return kept


def k3_kl(policy_logprobs: Sequence[Sequence[float]], reference_logprobs: Sequence[Sequence[float]]) -> float:
    """Mean per-token KL(policy || reference) by the k3 estimator ``exp(d) - d - 1``, ``d = ref - policy``.

    The tokens are samples of the policy; this is the estimator TRL's GRPO logs as ``kl``.
    """
    d = np.concatenate([np.asarray(r, dtype=np.float64) - np.asarray(p, dtype=np.float64)
                        for p, r in zip(policy_logprobs, reference_logprobs, strict=True)] or [np.zeros(0)])
    return float(np.mean(np.expm1(d) - d)) if d.size else math.nan


@contextmanager
def _reference(policy: Any, has_reference_adapter: bool) -> Iterator[None]:
    """The start policy: the frozen copy of ``init_adapter``, or the base with the new adapter disabled."""
    if not has_reference_adapter:
        with policy.disable_adapter():
            yield
        return
    policy.set_adapter(REFERENCE_ADAPTER)
    try:
        yield
    finally:
        policy.set_adapter("default")
        for name, param in policy.named_parameters():  # set_adapter may mark the active adapter trainable
            if f".{REFERENCE_ADAPTER}." in name:
                param.requires_grad_(False)


def train_expert_iteration(prepared: Prepared, *, progress: bool = True) -> TrainResult:
    """Run ``martingale train`` with ``algorithm: expert_iteration`` (see the module docstring)."""
    from datasets import Dataset
    from peft import get_peft_model
    from transformers import TrainerCallback
    from trl import SFTTrainer

    from martingale_harness.training import models
    from martingale_harness.training.policy_run import PolicyRun
    from martingale_harness.training.prepare import trainer_args

    config = prepared.config
    settings = config.expert_iteration
    run = PolicyRun(prepared, progress)
    policy = run.model if run.peft_config is None else get_peft_model(run.model, run.peft_config)
    has_reference = config.init_adapter is not None
    if has_reference:
        policy.load_adapter(config.init_adapter, adapter_name=REFERENCE_ADAPTER, is_trainable=False)
    reward = run.reward()
    tokenizer = run.tokenizer
    rounds_dir = run.out / "rounds"
    rounds_dir.mkdir(exist_ok=True)
    last: dict[str, float] = {}
    n = len(run.store.episodes)
    k = settings.samples

    # as PolicyRun.finish: no held-out questions and no evaluation set means nothing to evaluate
    every_round = config.evaluation.every_round and bool(prepared.split.heldout or config.evaluation.data)
    if config.evaluation.every_round and not every_round:
        logger.warning("evaluation.every_round: no held-out questions (holdout_fraction 0, no evaluation.data); "
                       "no round is evaluated")

    run.prior_pass(policy, 0, label="round")
    for round_no in range(1, settings.rounds + 1):
        if round_no > 1 and settings.refresh_priors:
            run.prior_pass(policy, round_no - 1, label="round")
        rows = [run.store.row(i) for i in range(n)]
        samples = models.sample(policy, tokenizer, [r["prompt"] for r in rows], n=k,
                                max_new_tokens=settings.max_new_tokens, temperature=settings.temperature,
                                top_p=settings.top_p, generation_kwargs=dict(settings.generation_kwargs),
                                progress=f"round {round_no}: {k} samples x {n} episodes" if progress else None)
        flat: list[Sampled] = [s for group in samples for s in group]
        items = [i for i in range(n) for _ in range(k)]
        breakdown, metrics = asyncio.run(reward.score(items, [rows[i]["prior_answer"] for i in items],
                                                      [s.text for s in flat]))
        groups = group_ids(items)
        kept = select_best(breakdown.total, groups, settings.margin)
        firsts = [group[0] for group in samples]
        policy_lp = models.completion_logprobs(policy, firsts)
        with _reference(policy, has_reference):
            reference_lp = models.completion_logprobs(policy, firsts)
        record: dict[str, Any] = {"event": "round", "round": round_no, "step": round_no, **metrics,
                                  "kl": k3_kl(policy_lp, reference_lp),
                                  "martingale/kept": float(len(kept)), "martingale/kept_rate": len(kept) / n}
        _write_round(rounds_dir / f"round-{round_no}.jsonl", items, [rows[i]["prior_answer"] for i in items], flat,
                     breakdown, reward.weights, set(kept))

        if kept:
            examples = [{"prompt": rows[items[i]]["prompt"],
                         "completion": [{"role": "assistant", "content": flat[i].text}]} for i in kept]
            replay = _prior_replay(run.store) if settings.replay_priors else []
            record["martingale/replayed_priors"] = float(len(replay))
            sft = _fine_tune(SFTTrainer, TrainerCallback, Dataset, policy, tokenizer,
                             trainer_args(config, run.out, progress), examples + replay)
            record.update(sft)
        else:
            logger.warning("round %d kept no completion (no group's best beat its mean by more than %g): "
                           "nothing to fine-tune on", round_no, settings.margin)
        record = {key: v for key, v in record.items() if not (isinstance(v, float) and math.isnan(v))}
        run.log(record)
        last = {key: v for key, v in record.items() if isinstance(v, int | float)}
        logger.info("round %d: batch MS %s, kept %d of %d", round_no, metrics.get("martingale/batch_ms"), len(kept), n)
        if every_round and kept and round_no < settings.rounds:  # the last round's is the final evaluation
            _evaluate_round(run, policy, round_no)
    return run.finish(policy, last)


def _evaluate_round(run: PolicyRun, policy: Any, round_no: int) -> None:
    """Save the adapter after round ``round_no``, evaluate it as the final evaluation runs, log the metrics."""
    from martingale_harness.training import models
    from martingale_harness.training.evaluate import eval_heldout, heldout_questions, local_model, summary

    config = run.config
    extractor = config.reward.extractor
    adapter_dir = run.out / "rounds" / f"round-{round_no}" / "adapter"
    models.save_adapter(policy, adapter_dir, config.base_model)
    ids, _ = heldout_questions(config, run.prepared.split)
    side, training = run.tokenizer.padding_side, policy.training
    with _random_state_kept():
        try:
            log = eval_heldout(config, local_model(config.base_model, adapter_dir.resolve()), ids,
                               run.out / "eval" / f"round-{round_no}", extractor,
                               display="plain" if run.progress else "none")
        except (MartingaleError, AdapterNotAppliedError) as e:  # e.g. the LoRA canary after a round that
            # changed little: that round goes unevaluated, training goes on
            logger.warning("round %d: the held-out evaluation failed (%s); training goes on", round_no, e)
            run.log({"event": "heldout", "round": round_no, "error": str(e)})
            return
        # the evaluation runs its own copy of the model; the policy goes on as it was (padding side for
        # sampling, train/eval mode; its adapters are not touched)
        finally:
            run.tokenizer.padding_side = side
            policy.train(training)
    metrics = summary(log, extractor)["metrics"]
    run.log({"event": "heldout", "round": round_no, "log": log.location, "metrics": metrics})
    logger.info("round %d: held-out MS %s, inertia %s", round_no, metrics.get("ms_slope"), metrics.get("inertia"))


@contextmanager
def _random_state_kept() -> Iterator[None]:
    """Restore python's, numpy's and torch's (CPU and CUDA) random state on exit, so what runs inside (an
    evaluation loading a model) cannot change what the next round samples."""
    import random

    import torch

    python, legacy_numpy = random.getstate(), np.random.get_state()
    cpu = torch.random.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    try:
        yield
    finally:
        random.setstate(python)
        np.random.set_state(legacy_numpy)
        torch.random.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)


def _fine_tune(trainer_class: Any, callback_class: Any, dataset_class: Any, policy: Any, tokenizer: Any, args: Any,
               examples: list[dict[str, Any]]) -> dict[str, float]:
    """One round's SFT on the kept pairs; its mean loss and gradient norm."""
    records: list[dict[str, float]] = []

    class Record(callback_class):  # type: ignore[misc,valid-type]
        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None,
                   **kwargs: Any) -> None:
            if logs:
                records.append({k: float(v) for k, v in logs.items() if isinstance(v, int | float)})

    tokenizer.padding_side = "right"  # training pads on the right; sampling on the left
    try:
        trainer = trainer_class(model=policy, args=args, train_dataset=dataset_class.from_list(examples),
                                processing_class=tokenizer, callbacks=[Record()])
        output = trainer.train()
    finally:
        tokenizer.padding_side = "left"
    losses = [r["loss"] for r in records if "loss" in r]
    norms = [r["grad_norm"] for r in records if "grad_norm" in r and math.isfinite(r["grad_norm"])]
    return {"loss": float(np.mean(losses)) if losses else float(output.training_loss),
            "grad_norm": float(np.mean(norms)) if norms else math.nan,
            "sft_examples": float(len(examples)), "sft_steps": float(output.global_step)}


def _prior_replay(store: PriorStore) -> list[dict[str, Any]]:
    """SFT pairs (prior question, the policy's own prior answer) for every readable prior of the current pass."""
    answers = store.answers or []
    return [{"prompt": store.prompts.prior_messages(episode),
             "completion": [{"role": "assistant", "content": answer}]}
            for episode, answer, belief in zip(store.episodes, answers, store.beliefs, strict=True)
            if belief is not None]


def _write_round(path: Path, items: list[int], prior_answers: list[str], samples: Sequence[Sampled],
                 breakdown: RewardBreakdown, weights: RewardWeights, kept: set[int]) -> None:
    """Every sample of a round with its beliefs, reward parts and whether it was kept."""
    parts = reward_parts(breakdown, weights)

    def belief(values: Any, i: int) -> float | None:
        return None if values is None or math.isnan(values[i]) else float(values[i])

    with path.open("w", encoding="utf-8") as f:
        for i, (item, s) in enumerate(zip(items, samples, strict=True)):
            f.write(json.dumps({"item": item, "prior_answer": prior_answers[i], "completion": s.text,
                                "prior": belief(breakdown.prior, i),
                                "posterior": belief(breakdown.posterior, i), "reward": float(breakdown.total[i]),
                                **{f"reward_{name}": float(v[i]) for name, v in parts.items()},
                                "kept": i in kept}) + "\n")
