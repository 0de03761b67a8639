"""What every ``martingale train`` algorithm shares: outputs, the policy, the prior pass and the end of a run.

A :class:`PolicyRun` writes ``split.json`` and ``training_config.json``, loads the tokenizer and the
start policy (the base with a new LoRA to come, or the base with ``init_adapter``), keeps the prior
answers (:class:`~martingale_harness.training.episodes.PriorStore`) and ``metrics.jsonl``, builds the
reward, and at the end saves the adapter, runs the held-out evaluation and writes the model card.

Under ``accelerate launch`` every process holds a PolicyRun: the prior pass is split across them and
its answers gathered, and only the main process writes files, evaluates and writes the card
(:mod:`~martingale_harness.training.processes`). ``reward_batches.jsonl`` holds every generation
batch the reward scored (gathered from all processes): items, beliefs, rewards and the batch MS.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from martingale_harness.extraction.beliefs import BeliefReading
from martingale_harness.extraction.transcript import Transcript, Turn
from martingale_harness.training.episodes import PriorStore, write_split
from martingale_harness.training.processes import current_processes
from martingale_harness.training.reward import METRIC_PREFIX, MartingaleReward, RewardBreakdown, RewardWeights

if TYPE_CHECKING:
    from martingale_harness.training.prepare import Prepared, TrainResult

logger = logging.getLogger(__name__)


class PolicyRun:
    """One training run's state and outputs (see the module docstring)."""

    def __init__(self, prepared: Prepared, progress: bool) -> None:
        from transformers import set_seed

        from martingale_harness.training import models

        config = prepared.config
        self.prepared = prepared
        self.config = config
        self.progress = progress
        self.processes = current_processes()
        self.out: Path = config.output_dir
        self.metrics_file = self.out / "metrics.jsonl"
        self.batches_file = self.out / "reward_batches.jsonl"
        if self.processes.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            write_split(prepared.split, self.out / "split.json")
            (self.out / "training_config.json").write_text(json.dumps(config.to_dict(), indent=1) + "\n",
                                                           encoding="utf-8")
            self.metrics_file.write_text("", encoding="utf-8")
            self.batches_file.write_text("", encoding="utf-8")
        self.processes.wait()
        set_seed(config.seed)
        self.tokenizer = models.load_tokenizer(config.base_model)
        model = models.load_model(config.base_model, config.dtype)
        self.peft_config = None
        if config.init_adapter is not None:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, config.init_adapter, is_trainable=True)
        else:
            self.peft_config = models.lora_config(config.lora)
        self.model: Any = model
        self.store = PriorStore(prepared.split.train, prepared.prompts)
        self._prior_readings: list[BeliefReading] = []
        self._batches = 0

    def log(self, record: dict[str, Any]) -> None:
        """Append one line to ``metrics.jsonl`` (the main process's; the others log nothing)."""
        if self.processes.is_main:
            with self.metrics_file.open("a", encoding="utf-8") as f:
                f.write(json.dumps(record, default=float) + "\n")

    def prior_pass(self, policy: Any, step: int, label: str = "step") -> None:
        """Ask ``policy`` every training item's prior question again (see ``episodes``)."""
        from martingale_harness.training import models

        settings = self.config.episodes
        progress = f"prior pass ({label} {step})" if self.progress and self.processes.is_main else None

        def ask(convs: list[Any]) -> list[str]:  # this process's share of the episodes
            return models.generate(policy, self.tokenizer, convs, max_new_tokens=settings.prior_max_new_tokens,
                                   temperature=settings.prior_temperature,
                                   generation_kwargs=dict(settings.prior_generation_kwargs), progress=progress)

        record = self.store.refresh(lambda convs: self.processes.map_split(convs, ask), step,
                                    lambda answers: self.processes.from_main(lambda: self._read_priors(answers)))
        kinds = Counter(r.kind for r in self._prior_readings if not r.is_ok)
        if kinds:
            record["prior_failure_kinds"] = dict(sorted(kinds.items()))
        if self.processes.is_main:
            self._write_priors(step)
        self.log({"event": "prior_pass", **record})
        logger.info("prior pass at %s %d: %s", label, step, record)
        if record["prior_failures"] == len(self.store.episodes):
            logger.warning("no prior answer of this pass could be read (%s %d): there is no MS reward until a "
                           "later prior pass reads some", label, step)

    def reward(self) -> MartingaleReward:
        """The Martingale reward over the training episodes, with the config's coefficients."""
        r = self.config.reward
        return MartingaleReward([self.prepared.prompts.view(e) for e in self.prepared.split.train],
                                self.prepared.extractor, RewardWeights(r.ms_coef, r.info_coef, r.format_penalty),
                                self.prepared.term, on_batch=self._record_batch, processes=self.processes)

    def _record_batch(self, breakdown: RewardBreakdown) -> None:
        """One line of ``reward_batches.jsonl``: the gathered generation batch as the reward scored it."""
        if not self.processes.is_main:
            return

        def floats(values: Any) -> list[float | None]:
            return [None if math.isnan(v) else float(v) for v in values]

        record = {"batch": self._batches, "processes": self.processes.count, "items": list(breakdown.items),
                  "prior": floats(breakdown.prior), "posterior": floats(breakdown.posterior),
                  "reward": floats(breakdown.total), "batch_ms": None if math.isnan(breakdown.batch_ms)
                  else breakdown.batch_ms, "n_pairs": breakdown.n_pairs}
        with self.batches_file.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        self._batches += 1

    def finish(self, policy: Any, last: dict[str, float], state_dict: dict[str, Any] | None = None,
               **card: Any) -> TrainResult:
        """Save the adapter of ``policy``, evaluate it on the held-out questions and write the model card.

        ``last`` holds the metrics of the last step (``martingale/...`` plus TRL's ``kl`` and ``loss``);
        ``state_dict`` the policy's full state, gathered from all processes, under several of them.
        """
        from martingale_harness.training import models
        from martingale_harness.training.model_card import write_model_card
        from martingale_harness.training.prepare import TrainResult

        config = self.config
        adapter_dir = self.out / "adapter"
        if self.processes.is_main:
            models.save_adapter(policy, adapter_dir, config.base_model, state_dict=state_dict)
        # the reward's components under their own names, plus the KL and loss at the same step
        final = {k.removeprefix(METRIC_PREFIX): v for k, v in last.items() if k.startswith(METRIC_PREFIX)}
        final.update({k: last[k] for k in ("kl", "loss") if k in last})
        result = TrainResult(output_dir=self.out, adapter_dir=adapter_dir, metrics_file=self.metrics_file,
                             final_metrics=final, prior_passes=list(self.store.refreshes))
        del policy
        self.model = None  # free the training copy before the evaluation loads its own
        # every process waits until the adapter is on disk; then only the main process goes on, with no
        # collective pending while it evaluates (which may take longer than any collective timeout)
        self.processes.wait()
        if not self.processes.is_main:  # one adapter, one evaluation, one card: the main process's
            return result
        if config.evaluation.enabled and (self.prepared.split.heldout or config.evaluation.data):
            from martingale_harness.training.evaluate import evaluate_heldout

            result.evaluation = evaluate_heldout(config, self.prepared.split, adapter_dir, self.out / "eval",
                                                 display="plain" if self.progress else "none")
        write_model_card(adapter_dir, config, kind="train", split=self.prepared.split, final_metrics=final,
                         evaluation=result.evaluation, prior_passes=result.prior_passes, **card)
        return result

    def _write_priors(self, step: int) -> None:
        """``priors/pass-<step>.jsonl``: every prior answer of the pass and how it was read."""
        folder = self.out / "priors"
        folder.mkdir(exist_ok=True)
        with (folder / f"pass-{step}.jsonl").open("w", encoding="utf-8") as f:
            for item, (answer, reading) in enumerate(zip(self.store.answers or [], self._prior_readings,
                                                         strict=True)):
                f.write(json.dumps({"item": item, "sample_id": self.store.episodes[item].sample_id,
                                    "answer": answer, "prior": reading.value if reading.is_ok else None,
                                    "failure": None if reading.is_ok else reading.kind,
                                    "reason": None if reading.is_ok else reading.reason}) + "\n")

    def _read_priors(self, answers: list[str]) -> list[float | None]:
        """The belief of each prior answer as the extractor reads a one-turn transcript (for the log)."""
        prompts = self.prepared.prompts
        extractor = self.prepared.extractor

        async def read_all() -> list[BeliefReading]:
            out: list[BeliefReading] = []
            for episode, answer in zip(self.prepared.split.train, answers, strict=True):
                view = prompts.view(episode)
                (reading,) = await extractor.extract(
                    Transcript(view.question, (Turn(stage="prior", prompt=view.prior_prompt, answer=answer),)))
                out.append(reading)
            return out

        self._prior_readings = asyncio.run(read_all())
        return [r.value if r.is_ok else None for r in self._prior_readings]
