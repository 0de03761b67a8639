"""``martingale distill``: a belief-entrenched "model organism" by supervised fine-tuning on an entrenched teacher.

1. The teacher (any inspect model: ``sim/entrenched -M kappa=K``, or a stronger model under the
   ``prior_conforming`` system prompt) answers the training questions through the harness itself
   (``inspect eval martingale/<task>``), so its transcripts are the protocol's conversations; its log
   lands in ``output_dir/teacher``.
2. Every teacher sample whose prior and posterior the extractor reads gives two SFT examples in
   TRL's conversational prompt-completion form: the prior turn (prompt: the prior question;
   completion: the teacher's prior answer) and the posterior turn (prompt: the prior question, the
   teacher's prior answer and the posterior question; completion: the teacher's posterior answer).
   Unreadable teacher samples are left out (and counted): they would teach the student to answer
   in a form the harness cannot read. The student's prompts use the config's ``system_prompt``
   (default none), not the teacher's: the organism should entrench without being told to.
3. TRL's ``SFTTrainer`` fits a LoRA on the base, with the loss on the completions only.
4. With ``evaluation.enabled`` the harness runs base and student on the held-out questions
   (``local/<base>`` and ``local/<base>+<adapter>``); the student's MS should exceed the base's.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from martingale_harness.errors import ConfigError, MartingaleError
from martingale_harness.protocol.turns import read_turns
from martingale_harness.scoring.record import BeliefScore
from martingale_harness.training.config import DistillConfig, check_trainer_keys
from martingale_harness.training.episodes import EpisodePrompts, Split, load_episodes, split_episodes, write_split

logger = logging.getLogger(__name__)
EXTRACTOR = "self_report"


@dataclass
class DistillResult:
    """Where ``martingale distill`` wrote its outputs, and what it measured."""

    output_dir: Path
    adapter_dir: Path
    teacher_logs: list[str]
    teacher_metrics: list[dict[str, Any]]
    """The summary metrics of each teacher run (one per ``teacher.seeds`` entry)."""
    examples: int
    teacher_samples_left_out: int
    final_metrics: dict[str, float]
    evaluation: dict[str, Any] | None = None


def prepare(config: DistillConfig) -> Split:
    """Data and split, and the SFT arguments checked against TRL; raises ConfigError, loads no model."""
    from trl import SFTConfig

    split = split_episodes(load_episodes(config), config.holdout_fraction, config.split_seed, config.max_items)
    check_trainer_keys(config, SFTConfig)
    sft_args(config)  # TRL checks its values without a model
    return split


def sft_args(config: DistillConfig, progress: bool = True) -> Any:
    """TRL's ``SFTConfig`` for the run: the ``trainer`` section plus the keys the harness sets."""
    from trl import SFTConfig

    from martingale_harness.training.models import device_defaults

    values: dict[str, Any] = {
        "logging_steps": 1, "save_strategy": "no", **device_defaults(dict(config.trainer)),
        "disable_tqdm": not progress, **config.trainer, "output_dir": str(config.output_dir / "trainer"),
        "seed": config.seed, "report_to": list(config.report_to) or "none",
    }
    try:
        return SFTConfig(**values)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"{config.source}: TRL refuses the trainer settings: {e}") from None


def teacher_logs(config: DistillConfig, split: Split, log_dir: Path, display: str = "none") -> list[Any]:
    """The teacher's harness runs on the training questions (EvalLogs; one per ``teacher.seeds`` entry)."""
    runs: list[tuple[dict[str, Any], dict[str, Any]]] = [(dict(config.teacher.model_args), {})]
    if config.teacher.seeds is not None:
        # the sim agents draw their beliefs from -M seed; real models take inspect's generation seed
        sim = config.teacher.model.startswith("sim/")
        runs = [({**config.teacher.model_args, **({"seed": s} if sim else {})}, {"seed": s})
                for s in config.teacher.seeds]
    return [_teacher_log(config, split, log_dir, model_args, generate, display) for model_args, generate in runs]


def _teacher_log(config: DistillConfig, split: Split, log_dir: Path, model_args: dict[str, Any],
                 generate: dict[str, Any], display: str) -> Any:
    from inspect_ai import eval as inspect_eval
    from inspect_ai import task_with

    from martingale_harness.tasks.builder import domain_task

    overrides: dict[str, Any] = {"paradigm": config.paradigm, "system_prompt": config.teacher.system_prompt,
                                 "extractors": [EXTRACTOR]}
    if config.evidence_budget is not None:
        overrides["evidence_budget"] = config.evidence_budget
    task = domain_task(config.task_name, data=config.data, **overrides)
    wanted = {e.sample_id for e in split.train}
    task = task_with(task, name=f"martingale/{config.task_name}",
                     dataset=task.dataset.filter(lambda s: str(s.id) in wanted))
    generate = {**generate, "max_tokens": config.teacher.max_tokens}
    if config.teacher.temperature is not None:
        generate["temperature"] = config.teacher.temperature
    (log,) = inspect_eval(task, model=config.teacher.model, model_args=model_args, log_dir=str(log_dir),
                          display=display, log_realtime=False, **generate)
    if log.status != "success":
        raise MartingaleError(f"teacher run failed: {log.error.message if log.error else log.status}")
    return log


def sft_examples(logs: list[Any], prompts: EpisodePrompts, split: Split) -> tuple[list[dict[str, Any]], int]:
    """Prompt-completion examples (two per readable teacher sample) and how many samples were left out."""
    by_id = {e.sample_id: e for e in split.train}
    examples: list[dict[str, Any]] = []
    left_out = 0
    for sample in (s for log in logs for s in log.samples or []):
        score = (sample.scores or {}).get(EXTRACTOR)
        turns = read_turns(sample.store)
        readable = score is not None and BeliefScore.from_score(score, EXTRACTOR).readable
        if not readable or len(turns) != 2 or str(sample.id) not in by_id:
            left_out += 1
            continue
        episode = by_id[str(sample.id)]
        prior_answer, posterior_answer = (sample.messages[t.message].text for t in turns)
        examples.append({"prompt": prompts.prior_messages(episode),
                         "completion": [{"role": "assistant", "content": prior_answer}]})
        examples.append({"prompt": prompts.posterior_messages(episode, prior_answer),
                         "completion": [{"role": "assistant", "content": posterior_answer}]})
    return examples, left_out


def distill(config: DistillConfig, *, progress: bool = True) -> DistillResult:
    """Run ``martingale distill``; every configuration error is raised before the model loads."""
    split = prepare(config)
    from datasets import Dataset
    from transformers import TrainerCallback, set_seed
    from trl import SFTTrainer

    from martingale_harness.training import models
    from martingale_harness.training.evaluate import evaluate_heldout, summary
    from martingale_harness.training.model_card import write_model_card

    out = config.output_dir
    out.mkdir(parents=True, exist_ok=True)
    write_split(split, out / "split.json")
    (out / "distill_config.json").write_text(json.dumps(config.to_dict(), indent=1) + "\n", encoding="utf-8")
    display = "plain" if progress else "none"

    logs = teacher_logs(config, split, out / "teacher", display)
    teacher = [summary(log, EXTRACTOR)["metrics"] for log in logs]
    examples, left_out = sft_examples(logs, EpisodePrompts(config.system_prompt, config.paradigm), split)
    if not examples:
        raise MartingaleError(f"the teacher ({config.teacher.model}) gave no sample whose beliefs {EXTRACTOR} "
                              f"can read; see {', '.join(log.location for log in logs)}")
    with (out / "sft_examples.jsonl").open("w", encoding="utf-8") as f:
        f.writelines(json.dumps(e) + "\n" for e in examples)
    logger.info("teacher MS on the training questions: %s; %d SFT examples, %d samples left out",
                [t.get("ms_slope") for t in teacher], len(examples), left_out)

    metrics_file = out / "metrics.jsonl"
    metrics_file.write_text("", encoding="utf-8")
    last: dict[str, float] = {}

    class JsonlLog(TrainerCallback):  # type: ignore[misc]
        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None,
                   **kwargs: Any) -> None:
            numbers = {k: v for k, v in (logs or {}).items() if isinstance(v, int | float) and math.isfinite(v)}
            last.update(numbers)
            with metrics_file.open("a", encoding="utf-8") as f:
                f.write(json.dumps({"step": state.global_step, **numbers}) + "\n")

    args = sft_args(config, progress)
    set_seed(config.seed)
    tokenizer = models.load_tokenizer(config.base_model)
    tokenizer.padding_side = "right"  # training pads on the right; generation (prior pass, eval) on the left
    model = models.load_model(config.base_model, config.dtype)
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(examples), processing_class=tokenizer,
                         peft_config=models.lora_config(config.lora), callbacks=[JsonlLog()])
    trainer.train()
    adapter_dir = out / "adapter"
    models.save_adapter(trainer.accelerator.unwrap_model(trainer.model), adapter_dir, config.base_model)
    del trainer, model
    final = {k: v for k, v in last.items() if k in ("loss", "train_loss", "mean_token_accuracy", "epoch")}
    result = DistillResult(output_dir=out, adapter_dir=adapter_dir, teacher_logs=[str(log.location) for log in logs],
                           teacher_metrics=teacher, examples=len(examples), teacher_samples_left_out=left_out,
                           final_metrics=final)
    if config.evaluation.enabled and split.heldout:
        result.evaluation = evaluate_heldout(config, split, adapter_dir, out / "eval", display=display)
    write_model_card(adapter_dir, config, kind="distill", split=split, final_metrics=final,
                     evaluation=result.evaluation, teacher_metrics=teacher, sft_examples=len(examples),
                     teacher_samples_left_out=left_out, teacher_logs=result.teacher_logs)
    return result
