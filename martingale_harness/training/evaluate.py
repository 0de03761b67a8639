"""The held-out evaluation after training: the harness itself on ``local/<base>+<adapter>``.

Nothing here re-implements evaluation: it is ``inspect eval martingale/<task>`` with the training
config's protocol settings, restricted to the held-out questions of ``split.json`` (or run on the
evaluation set of ``evaluation.data``, questions from another source), once for the starting model and
once for the trained adapter; ``martingale compare`` gives the paired difference.
The same runs from the shell (``-T``/``--sample-id`` as in the README's training section)::

    inspect eval martingale/forecast --model local/<base>+<output_dir>/adapter --sample-id <held-out ids>

The ``local`` backend checks that the adapter belongs to the base and runs the LoRA canary before
the first sample, so an adapter that changes nothing is refused rather than evaluated as the base.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

from martingale_harness.errors import ConfigError, MartingaleError
from martingale_harness.training.config import CommonConfig, TrainConfig
from martingale_harness.training.episodes import Split, load_episodes

SUMMARY_KEYS: tuple[str, ...] = ("ms_slope", "ms_slope_ci_low", "ms_slope_ci_high", "ms_slope_p", "inertia",
                                 "mean_delta", "brier_prior", "brier_posterior", "n_pairs",
                                 "extraction_failure_rate", "n_draws", "n_questions", "delta_var_between",
                                 "delta_var_within",
                                 # martingale/bayes only (absent elsewhere): distance to the exact posteriors
                                 "bayes_mae", "bayes_mae_ci_low", "bayes_mae_ci_high", "update_ratio",
                                 "update_ratio_ci_low", "update_ratio_ci_high", "base_rate_neglect")


def local_model(base_model: str, adapter: str | Path | None) -> str:
    """The ``local`` backend's model string (absolute paths keep their slash: ``local//abs/...``)."""
    return f"local/{base_model}" + (f"+{adapter}" if adapter is not None else "")


def heldout_task(config: CommonConfig, sample_ids: list[str] | None, extractor: str) -> Any:
    """The inspect task of the held-out evaluation: the config's task, data and protocol settings, on
    ``sample_ids`` (None: all of ``evaluation.data``). ``benchmarks/repeatability.py`` runs this same task."""
    from inspect_ai import task_with

    from martingale_harness.tasks.builder import domain_task

    settings = config.evaluation
    overrides: dict[str, Any] = {"paradigm": config.paradigm, "system_prompt": config.system_prompt,
                                 "extractors": [extractor]}
    if config.evidence_budget is not None:
        overrides["evidence_budget"] = config.evidence_budget
    task = domain_task(config.task_name, data=settings.data or config.data, **overrides)
    if sample_ids is not None:
        wanted = set(sample_ids)
        return task_with(task, name=f"martingale/{config.task_name}",
                         dataset=task.dataset.filter(lambda s: str(s.id) in wanted))
    return task_with(task, name=f"martingale/{config.task_name}")


def heldout_eval_settings(config: CommonConfig) -> dict[str, Any]:
    """inspect ``eval`` settings of the held-out evaluation (generation, sample selection, seed, epochs)."""
    settings = config.evaluation
    return {"max_tokens": settings.max_tokens, "temperature": settings.temperature, "limit": settings.limit,
            "sample_shuffle": settings.sample_shuffle, "seed": settings.seed, "epochs": settings.epochs}


def eval_heldout(config: CommonConfig, model: str, sample_ids: list[str] | None, log_dir: Path, extractor: str,
                 display: str = "none") -> Any:
    """One harness run of ``model`` with the config's protocol settings (an EvalLog).

    ``sample_ids`` restricts the task's samples (the held-out split); None runs the evaluation set of
    ``evaluation.data`` as a whole, with ``evaluation.limit`` and ``evaluation.sample_shuffle``.
    """
    from inspect_ai import eval as inspect_eval

    (log,) = inspect_eval(heldout_task(config, sample_ids, extractor), model=model, log_dir=str(log_dir),
                          display=display, log_realtime=False, **heldout_eval_settings(config))
    if log.status != "success":
        raise MartingaleError(f"evaluation of {model} failed: {log.error.message if log.error else log.status}")
    return log


def summary(log: Any, extractor: str) -> dict[str, Any]:
    """The metrics of one extractor in a log, the log's path and the adapter record (if the backend left one)."""
    block = next(b for b in log.results.scores if b.name == extractor)
    metrics = {k: block.metrics[k].value for k in SUMMARY_KEYS if k in block.metrics}
    records = [s.metadata.get("adapter") for s in log.samples or [] if isinstance(s.metadata, dict)]
    record = next((r for r in records if isinstance(r, dict)), None)
    return {"model": str(log.eval.model), "log": log.location,
            "metrics": {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in metrics.items()},
            "adapter": record}


def heldout_questions(config: CommonConfig, split: Split) -> tuple[list[str] | None, set[str]]:
    """The sample ids to evaluate (None: all of ``evaluation.data``) and their question ids.

    An evaluation set from another source must not share a question with the training items: that
    would be evaluating on training data, so it is refused (ConfigError), never silently dropped.
    """
    if config.evaluation.data is None:
        return [e.sample_id for e in split.heldout], {e.question_id for e in split.heldout}
    episodes = load_episodes(dataclasses.replace(config, data=config.evaluation.data))
    questions = {e.question_id for e in episodes}
    shared = sorted(questions & {e.question_id for e in split.train})
    if shared:
        raise ConfigError(f"{config.source}: evaluation.data {config.evaluation.data} shares {len(shared)} "
                          f"question(s) with the training items (e.g. {', '.join(shared[:3])}); evaluate on "
                          "questions the policy was not trained on")
    return None, questions


def evaluate_heldout(config: CommonConfig, split: Split, adapter_dir: Path, log_dir: Path,
                     start_adapter: str | None = None, display: str = "none") -> dict[str, Any]:
    """Start model and trained adapter on the held-out questions, and their paired comparison.

    The start model is the base, or the base with ``init_adapter`` for a :class:`TrainConfig` that
    continues training an adapter (the organism), so the comparison is "before vs after training".
    With ``evaluation.start: false`` only the adapter runs (compare it with ``martingale compare``).
    With ``evaluation.start_log`` the start model's evaluation is read from that log instead of run again
    (checked by :func:`reused_start_log`; ``martingale train --seeds`` reuses the first seed's this way).
    """
    from martingale_harness.reporting.compare import compare_runs
    from martingale_harness.reporting.runs import run_from_log

    if isinstance(config, TrainConfig):
        extractor = config.reward.extractor
        start_adapter = start_adapter or config.init_adapter
    else:
        extractor = "self_report"
    ids, _ = heldout_questions(config, split)
    trained = eval_heldout(config, local_model(config.base_model, adapter_dir.resolve()), ids, log_dir, extractor,
                           display)
    result: dict[str, Any] = {"heldout_samples": len({s.id for s in trained.samples or []}),
                              "heldout_data": config.evaluation.data or "the held-out split",
                              "seed": config.evaluation.seed, "epochs": config.evaluation.epochs,
                              "trained": summary(trained, extractor)}
    if not config.evaluation.start:
        return json_safe(result)
    start_model = local_model(config.base_model, start_adapter)
    if config.evaluation.start_log is not None:
        start = reused_start_log(config, config.evaluation.start_log, start_model, trained, extractor)
        result["start_reused"] = True
    else:
        start = eval_heldout(config, start_model, ids, log_dir, extractor, display)
    result["start"] = summary(start, extractor)
    try:
        (row,) = compare_runs(run_from_log(start, Path(start.location)), run_from_log(trained, Path(trained.location)),
                              extractors=[extractor], seed=config.seed)
    except MartingaleError as e:  # e.g. no sample read in both runs: recorded, the runs themselves still count
        result["comparison"] = {"error": str(e)}
    else:
        d = row.ms_difference
        result["comparison"] = {
            "n_matched": row.n_matched, "ms_start": row.ms_a, "ms_trained": row.ms_b,
            "ms_difference": d.difference, "ms_difference_ci": [d.ci_low, d.ci_high],
            "n_labelled": row.n_labelled, "brier_start": row.brier_a, "brier_trained": row.brier_b,
            "brier_difference": row.brier_difference, "brier_p": row.brier_p,
            "inertia_start": row.inertia_a, "inertia_trained": row.inertia_b,
        }
    return json_safe(result)


def _model_parts(model: str) -> tuple[str, ...]:
    """``local/<base>[+<adapter>]`` as (base, adapter), each path made absolute where it exists, so the same
    files named by relative and absolute paths compare equal."""
    from martingale_harness.training.config import normalize_model_ref

    return tuple(normalize_model_ref(part) for part in model.removeprefix("local/").split("+", 1))


def start_log_problems(config: CommonConfig, log: Any, start_model: str, extractor: str) -> list[str]:
    """How the header of ``log`` differs from the start evaluation this run would make (model, task, seed,
    epochs, temperature, max_tokens, status, extractor); empty when it matches."""
    settings = config.evaluation
    generate = log.plan.config
    wanted = {"model": _model_parts(start_model), "task": f"martingale/{config.task_name}", "seed": settings.seed,
              "epochs": settings.epochs, "temperature": settings.temperature, "max_tokens": settings.max_tokens}
    found = {"model": _model_parts(str(log.eval.model)), "task": str(log.eval.task), "seed": generate.seed,
             "epochs": log.eval.config.epochs or 1, "temperature": generate.temperature,
             "max_tokens": generate.max_tokens}
    shown = {"model": (str(log.eval.model), start_model)}
    differ = [f"{k} {shown.get(k, (found[k], wanted[k]))[0]!r} (this run: {shown.get(k, (found[k], wanted[k]))[1]!r})"
              for k in wanted if found[k] != wanted[k]]
    if log.status != "success":
        differ.append(f"status {log.status!r}")
    if log.results is None or not any(b.name == extractor for b in log.results.scores):
        differ.append(f"no {extractor} scores")
    return differ


def check_start_log(config: TrainConfig) -> None:
    """``evaluation.start_log``, checked before training from the log's header (ConfigError): a log that cannot
    be this run's start evaluation would otherwise be found only after the training it was meant to save."""
    settings = config.evaluation
    if not (settings.enabled and settings.start and settings.start_log is not None):
        return
    log = _read_start_log(config, settings.start_log, header_only=True)
    differ = start_log_problems(config, log, local_model(config.base_model, config.init_adapter),
                                config.reward.extractor)
    if differ:
        raise ConfigError(f"{config.source}: evaluation.start_log {settings.start_log} is not this run's start "
                          "evaluation: " + "; ".join(differ))


def _read_start_log(config: CommonConfig, path: str | Path, header_only: bool) -> Any:
    from inspect_ai.log import read_eval_log

    where = f"{config.source}: evaluation.start_log {path}"
    if not Path(path).is_file():
        raise ConfigError(f"{where}: no such file")
    try:
        return read_eval_log(str(path), header_only=header_only)
    except Exception as e:  # inspect raises several kinds for a file that is not a log
        raise ConfigError(f"{where}: not an eval log ({type(e).__name__}: {e})") from None


def _prompts(sample: Any) -> list[str]:
    """What the protocol showed the model before its answers could matter (the system turns, the prior question
    and the evidence with the posterior question): the same for two models only if the data, paradigm, system
    prompt and evidence were the same."""
    system = [m.text for m in sample.messages if m.role == "system"]
    return system + [m.text for m in sample.messages if m.role == "user"][:2]


def reused_start_log(config: CommonConfig, path: str | Path, start_model: str, trained: Any, extractor: str) -> Any:
    """The start model's evaluation read from ``path`` (``evaluation.start_log``), checked to be the one this run
    would make: its header as :func:`start_log_problems` checks it, the trained run's samples, the same prompts
    on each of them (data, paradigm, system prompt, evidence), and, for a start adapter, the same adapter files
    (by fingerprint, not path).

    Anything else would make the paired comparison compare different things, so it is refused (ConfigError).
    """
    log = _read_start_log(config, path, header_only=False)
    differ = start_log_problems(config, log, start_model, extractor)
    start_samples = {(str(s.id), s.epoch): s for s in log.samples or []}
    trained_samples = {(str(s.id), s.epoch): s for s in trained.samples or []}
    start_ids, trained_ids = {k[0] for k in start_samples}, {k[0] for k in trained_samples}
    if start_ids != trained_ids:
        differ.append(f"{len(start_ids ^ trained_ids)} sample id(s) not in both (e.g. "
                      f"{', '.join(sorted(start_ids ^ trained_ids)[:3])})")
    shown = sorted(k for k in start_samples.keys() & trained_samples.keys()
                   if _prompts(start_samples[k]) != _prompts(trained_samples[k]))
    if shown:
        differ.append(f"other prompts on {len(shown)} sample(s) (e.g. {shown[0][0]}): another data file, "
                      "system prompt or protocol")
    adapter = getattr(config, "init_adapter", None)
    records = [s.metadata.get("adapter") for s in log.samples or [] if isinstance(s.metadata, dict)]
    record = next((r for r in records if isinstance(r, dict)), None)
    if adapter is not None and record is not None and Path(adapter).is_dir():
        from martingale_harness.backends.lora import adapter_fingerprint

        if record.get("fingerprint") != adapter_fingerprint(adapter):
            differ.append(f"its adapter's files differ from {adapter} (fingerprint {record.get('fingerprint')})")
    if differ:
        raise ConfigError(f"{config.source}: evaluation.start_log {path} is not this run's start evaluation: "
                          + "; ".join(differ))
    return log


def json_safe(value: Any) -> Any:
    """NaN -> None, so the result is valid JSON (undefined stays undefined, never 0)."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return json_safe(dataclasses.asdict(value))
    return value
