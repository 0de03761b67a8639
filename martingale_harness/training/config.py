"""Configs of ``martingale train`` and ``martingale distill``: YAML files, checked before any model loads.

A config is a YAML mapping (``project_files.load_yaml``, a safe loader); every key is listed below and
anything else is an error naming the file, the key and what is allowed. Relative paths are relative to the working
directory. ``examples/train.yaml`` and ``examples/distill.yaml`` show every key with its default.

Shared keys (both commands):

* ``base_model``: a model directory (``save_pretrained`` layout), a ``.gguf`` file (dequantised by
  transformers' GGUF loader; the tokenizer is read from the same file) or a Hugging Face model id.
* ``output_dir``: where the adapter (with its model card), ``metrics.jsonl``, ``split.json`` and
  the held-out evaluation logs go.
* ``task`` (``forecast``; also ``martingale/forecast``), ``data`` (default: the task's bundled set),
  ``system_prompt`` (``none``; the protocol's system prompts), ``paradigm`` (``direct`` or ``cot``:
  the two with a single posterior turn), ``evidence_budget`` (default: the task's).
* ``holdout_fraction`` (0.25) and ``split_seed`` (0): questions (by ``question_id``, so the samples
  of one question stay together) held out from training for the evaluation; ``max_items`` caps the
  training items (for short CPU runs).
* ``seed`` (0), ``dtype`` (``auto``: bfloat16 on a CUDA GPU that supports it, else float32;
  ``float32``, ``bfloat16``, ``float16``), ``report_to`` (``[]``; TRL/transformers integrations such as
  ``tensorboard`` or ``wandb``, each of which must be installed; ``all`` = every installed one).
* ``lora``: ``r`` (16), ``alpha`` (32), ``dropout`` (0.05), ``target_modules`` (``all-linear`` or a list).
* ``evaluation``: ``enabled`` (true), ``max_tokens`` (256), ``temperature`` (0.0): the held-out run of
  the harness on ``local/<base>+<adapter>`` after training; ``data`` (a data file of another source to
  evaluate on instead of the held-out part of the training data; a question it shares with the training
  items is refused), ``limit`` and ``sample_shuffle`` (inspect's ``--limit`` and ``--sample-shuffle``),
  ``start`` (true; false evaluates the trained adapter only), ``seed`` (0; inspect's ``--seed``: every
  call of the evaluation gets its own seed derived from it, so a sampled evaluation repeats exactly;
  ``null`` for unseeded) and ``epochs`` (1; inspect's ``--epochs``: draws per held-out sample, all of
  which enter the metrics).
* ``trainer``: passed to TRL's config class (``GRPOConfig``, ``RLOOConfig``, ``SFTConfig``); keys
  are checked against that class. ``output_dir``, ``seed``, ``beta`` and ``report_to`` are set from the
  keys above and may not appear here. ``bf16`` and ``activation_checkpointing`` default to on with a
  CUDA GPU and off on CPU.

``martingale train`` only: ``algorithm`` (``grpo``, ``rloo`` or ``expert_iteration``), ``beta`` (0.04,
KL to the reference, >= 0; GRPO/RLOO only), ``init_adapter`` (a LoRA adapter directory to keep training,
e.g. a distilled organism; its
``adapter_config.json`` must name the same base model), ``reward`` (``ms_coef`` 1.0, ``info_term``
``brier_gain``, ``info_coef`` 0.5, ``format_penalty`` 1.0, all coefficients >= 0, ``extractor``
``self_report``) and ``episodes`` (``prior_refresh_steps`` 0 = priors elicited once, K = refreshed
every K optimizer steps, GRPO/RLOO only; ``prior_max_new_tokens`` 128; ``prior_temperature`` 0 = greedy;
``prior_generation_kwargs`` {}, extra arguments of the prior pass's ``generate``)
and, for ``algorithm: expert_iteration``, ``expert_iteration`` (``rounds`` 3, ``samples`` K = 4,
``margin`` 0.1, ``temperature`` 1.0, ``top_p`` 1.0, ``max_new_tokens`` 128, ``refresh_priors`` true,
``replay_priors`` true, ``generation_kwargs`` {}); its ``trainer`` section is TRL's ``SFTConfig``, and
GRPO-only keys (``beta``, ``num_generations``, ``max_completion_length``, ...) are refused.

``martingale distill`` only: ``teacher``: ``model`` (an inspect model string, e.g. ``sim/entrenched``),
``model_args`` ({} ; ``-M`` values, e.g. ``{kappa: 0.5}``), ``system_prompt`` (``none``; e.g.
``prior_conforming`` for a prompted stronger model), ``max_tokens`` (256), ``temperature`` (null = the
provider's default), ``seeds`` (null; a list runs the teacher once per seed on every training
question, as inspect's ``--seed`` and, for the ``sim/*`` agents, whose beliefs are drawn from
``-M seed``, as that model argument too: several answers per question, so the student must read its
own prior rather than memorise one direction per question).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from martingale_harness.errors import ConfigError
from martingale_harness.project_files import load_yaml, read_yaml
from martingale_harness.protocol.solver import SYSTEM_PROMPTS

TRAIN_PARADIGMS: tuple[str, ...] = ("direct", "cot")
"""Paradigms with one posterior turn: the trained completion is that turn."""
ALGORITHMS: tuple[str, ...] = ("grpo", "rloo", "expert_iteration")
GRPO_ONLY_TRAINER_KEYS: tuple[str, ...] = (
    "num_generations", "steps_per_generation", "generation_batch_size", "max_completion_length",
    "temperature", "top_p", "top_k", "generation_kwargs", "epsilon", "epsilon_high", "loss_type",
    "scale_rewards", "num_iterations", "use_vllm", "reward_weights", "mask_truncated_completions")
"""Generation and policy-gradient keys of GRPOConfig/RLOOConfig: named in the error when an
expert-iteration config (whose ``trainer`` is TRL's SFTConfig) carries them."""
DTYPES: tuple[str, ...] = ("auto", "float32", "bfloat16", "float16")
RESERVED_TRAINER_KEYS: tuple[str, ...] = ("output_dir", "seed", "beta", "report_to")
"""TRL arguments the top-level keys of the same name set (``beta``: ``martingale train`` only)."""
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class LoraSettings:
    """The peft ``LoraConfig`` of the trained adapter."""

    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: str | tuple[str, ...] = "all-linear"


@dataclass(frozen=True)
class RewardSettings:
    """Coefficients and plugins of the reward (:mod:`martingale_harness.training.reward`)."""

    ms_coef: float = 1.0
    info_term: str = "brier_gain"
    info_coef: float = 0.5
    format_penalty: float = 1.0
    extractor: str = "self_report"


@dataclass(frozen=True)
class EpisodeSettings:
    """How the prior turn of each episode is produced (:mod:`martingale_harness.training.episodes`)."""

    prior_refresh_steps: int = 0
    prior_max_new_tokens: int = 128
    prior_temperature: float = 0.0
    """0 = greedy priors; above 0 the prior pass samples (so a model whose greedy prior is always the
    same still shows the spread of priors it states when sampled, as an evaluation at that temperature does)."""
    prior_generation_kwargs: Mapping[str, Any] = field(default_factory=dict)
    """Extra keyword arguments for transformers' ``generate`` in the prior pass (e.g. a ``sequence_bias``)."""


@dataclass(frozen=True)
class EvalSettings:
    """The held-out evaluation through the harness after training."""

    enabled: bool = True
    max_tokens: int = 256
    temperature: float = 0.0
    data: str | None = None
    """Evaluate on this data file (another source) instead of the held-out part of the training data."""
    limit: int | None = None
    sample_shuffle: int | None = None
    """As inspect's ``--limit`` and ``--sample-shuffle SEED``: which samples of the evaluation set run."""
    start: bool = True
    """Also evaluate the start model (false: only the trained adapter, e.g. for an ablation whose start
    model another run already evaluated on the same questions)."""
    seed: int | None = 0
    """inspect's ``--seed`` for both evaluations (None: unseeded, each run draws anew)."""
    epochs: int = 1
    """inspect's ``--epochs``: draws per held-out sample; every draw enters the metrics."""


@dataclass(frozen=True)
class ExpertIterationSettings:
    """``algorithm: expert_iteration`` (:mod:`martingale_harness.training.expert_iteration`)."""

    rounds: int = 3
    samples: int = 4
    """K: posterior completions sampled per episode and round."""
    margin: float = 0.1
    """A group's best completion is kept only if its reward exceeds the group's mean by more than this."""
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 128
    refresh_priors: bool = True
    """Run the prior pass again with the current policy before every round after the first."""
    replay_priors: bool = True
    """Also fine-tune on the round's readable prior answers (the policy's own, from the prior pass), so that
    training on posterior turns alone cannot wear away the prior turn (measured: after one round without
    it, 48 of 64 ForecastBench priors came back empty)."""
    generation_kwargs: Mapping[str, Any] = field(default_factory=dict)
    """Extra keyword arguments for transformers' ``generate`` when sampling (as TRL's ``generation_kwargs``)."""


@dataclass(frozen=True)
class TeacherSettings:
    """The entrenched teacher whose transcripts ``martingale distill`` imitates."""

    model: str = "sim/entrenched"
    model_args: Mapping[str, Any] = field(default_factory=dict)
    system_prompt: str = "none"
    max_tokens: int = 256
    temperature: float | None = None
    seeds: tuple[int, ...] | None = None
    """One teacher run per seed (see the module docstring); None = a single run."""


@dataclass(frozen=True)
class CommonConfig:
    """Keys shared by both commands (see the module docstring)."""

    base_model: str
    output_dir: Path
    task: str = "forecast"
    data: str | None = None
    system_prompt: str = "none"
    paradigm: str = "direct"
    evidence_budget: int | None = None
    holdout_fraction: float = 0.25
    split_seed: int = 0
    max_items: int | None = None
    seed: int = 0
    dtype: str = "auto"
    report_to: tuple[str, ...] = ()
    lora: LoraSettings = LoraSettings()
    evaluation: EvalSettings = EvalSettings()
    trainer: Mapping[str, Any] = field(default_factory=dict)
    source: str = "<dict>"
    """The file the config came from (for messages)."""

    @property
    def task_name(self) -> str:
        """The registry name (``forecast``) of ``task`` (``forecast`` or ``martingale/forecast``)."""
        return self.task.removeprefix("martingale/")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (for the model card and ``training_config.json``)."""
        return json.loads(json.dumps(_plain(self), default=str))


@dataclass(frozen=True)
class TrainConfig(CommonConfig):
    """``martingale train``: GRPO, RLOO or expert iteration with the Martingale reward on a LoRA."""

    algorithm: str = "grpo"
    beta: float = 0.04
    init_adapter: str | None = None
    reward: RewardSettings = RewardSettings()
    episodes: EpisodeSettings = EpisodeSettings()
    expert_iteration: ExpertIterationSettings = ExpertIterationSettings()


@dataclass(frozen=True)
class DistillConfig(CommonConfig):
    """``martingale distill``: SFT of a LoRA on an entrenched teacher's transcripts."""

    teacher: TeacherSettings = TeacherSettings()


def _plain(value: Any) -> Any:
    if hasattr(value, "__dataclass_fields__"):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


# --- reading -------------------------------------------------------------------------------------------------


def load_train_config(path: str | Path, overrides: list[str] | None = None) -> TrainConfig:
    """Read and check a ``martingale train`` YAML file (no model, data or trainer is touched).

    ``overrides`` are ``key=value`` strings (``--set``): a dotted key into the mapping, a YAML value.
    """
    return train_config_from_dict(apply_overrides(_read(path), overrides or []), str(path))


def load_distill_config(path: str | Path, overrides: list[str] | None = None) -> DistillConfig:
    """Read and check a ``martingale distill`` YAML file (``overrides`` as for :func:`load_train_config`)."""
    return distill_config_from_dict(apply_overrides(_read(path), overrides or []), str(path))


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """``raw`` with each ``a.b=value`` applied (``value`` read as YAML: ``0``, ``null``, ``[a, b]``)."""
    merged = json.loads(json.dumps(raw, default=str))  # a deep copy; the file's values are plain YAML
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. reward.info_coef=0")
        try:
            value = load_yaml(text)
        except yaml.YAMLError as e:
            raise ConfigError(f"--set {item!r}: the value is not valid YAML ({e})") from None
        *parents, leaf = key.strip().split(".")
        target = merged
        for part in parents:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                raise ConfigError(f"--set {item!r}: {part!r} is not a mapping in the config")
        target[leaf] = value
    return merged


def _read(path: str | Path) -> dict[str, Any]:
    return read_yaml(Path(path))


def train_config_from_dict(raw: Mapping[str, Any], where: str = "<dict>") -> TrainConfig:
    """A :class:`TrainConfig` from a mapping laid out like the YAML file, with every value checked."""
    values = _common(raw, where, TrainConfig)
    algorithm = _choice(raw, "algorithm", ALGORITHMS, where, "grpo")
    beta = _number(raw, "beta", where, 0.04, minimum=0.0)
    init_adapter = _optional_str(raw, "init_adapter", where)
    reward = _section(raw, "reward", RewardSettings, where)
    for key in ("ms_coef", "info_coef", "format_penalty"):
        _check_nonnegative(getattr(reward, key), f"reward.{key}", where)
    if reward.ms_coef == 0 and reward.info_coef == 0:
        raise ConfigError(f"{where}: reward.ms_coef and reward.info_coef are both 0: nothing to train for")
    for key in ("info_term", "extractor"):
        if not isinstance(getattr(reward, key), str) or not getattr(reward, key):
            raise ConfigError(f"{where}: reward.{key} must be a plugin name, got {getattr(reward, key)!r}")
    episodes = _section(raw, "episodes", EpisodeSettings, where)
    _check_int(episodes.prior_refresh_steps, "episodes.prior_refresh_steps", where, minimum=0)
    _check_int(episodes.prior_max_new_tokens, "episodes.prior_max_new_tokens", where, minimum=1)
    _check_nonnegative(episodes.prior_temperature, "episodes.prior_temperature", where)
    if not isinstance(episodes.prior_generation_kwargs, Mapping):
        raise ConfigError(f"{where}: episodes.prior_generation_kwargs must be a mapping")
    episodes = replace(episodes, prior_generation_kwargs=dict(episodes.prior_generation_kwargs))
    expert = _expert_iteration(raw, algorithm, values["trainer"], episodes, where)
    config = TrainConfig(**values, algorithm=algorithm, beta=beta, init_adapter=init_adapter, reward=reward,
                         episodes=episodes, expert_iteration=expert)
    check_plugins(config)
    if config.init_adapter is not None:
        check_adapter_base(config.init_adapter, config.base_model, where)
    return config


def _expert_iteration(raw: Mapping[str, Any], algorithm: str, trainer: Mapping[str, Any],
                       episodes: EpisodeSettings, where: str) -> ExpertIterationSettings:
    """The ``expert_iteration`` section, and the keys that belong to one algorithm only."""
    if algorithm != "expert_iteration":
        if "expert_iteration" in raw:
            raise ConfigError(f"{where}: the expert_iteration section applies to algorithm: expert_iteration only "
                              f"(algorithm is {algorithm!r})")
        return ExpertIterationSettings()
    if "beta" in raw:
        raise ConfigError(f"{where}: beta is GRPO/RLOO's KL coefficient; expert iteration has no KL term in its "
                          "loss (it fine-tunes on selected samples; the KL to the start is logged per round). "
                          "Remove beta")
    if episodes.prior_refresh_steps:
        raise ConfigError(f"{where}: episodes.prior_refresh_steps counts GRPO steps; expert iteration refreshes "
                          "the priors between rounds (expert_iteration.refresh_priors)")
    grpo_only = sorted(set(trainer) & set(GRPO_ONLY_TRAINER_KEYS))
    if grpo_only:
        raise ConfigError(f"{where}: trainer.{', trainer.'.join(grpo_only)}: GRPO/RLOO key(s); expert iteration "
                          "samples with the expert_iteration section (samples, temperature, top_p, max_new_tokens, "
                          "generation_kwargs) and fine-tunes with TRL's SFTConfig")
    settings = _section(raw, "expert_iteration", ExpertIterationSettings, where)
    _check_int(settings.rounds, "expert_iteration.rounds", where, minimum=1)
    _check_int(settings.samples, "expert_iteration.samples", where, minimum=2)
    _check_int(settings.max_new_tokens, "expert_iteration.max_new_tokens", where, minimum=1)
    _check_nonnegative(settings.margin, "expert_iteration.margin", where)
    if isinstance(settings.temperature, bool) or not isinstance(settings.temperature, int | float) \
            or not settings.temperature > 0:
        raise ConfigError(f"{where}: expert_iteration.temperature must be > 0 (the K samples must differ), "
                          f"got {settings.temperature!r}")
    if isinstance(settings.top_p, bool) or not isinstance(settings.top_p, int | float) or not 0 < settings.top_p <= 1:
        raise ConfigError(f"{where}: expert_iteration.top_p must lie in (0, 1], got {settings.top_p!r}")
    for flag in ("refresh_priors", "replay_priors"):
        if not isinstance(getattr(settings, flag), bool):
            raise ConfigError(f"{where}: expert_iteration.{flag} must be true or false")
    if not isinstance(settings.generation_kwargs, Mapping):
        raise ConfigError(f"{where}: expert_iteration.generation_kwargs must be a mapping")
    return replace(settings, generation_kwargs=dict(settings.generation_kwargs))


def distill_config_from_dict(raw: Mapping[str, Any], where: str = "<dict>") -> DistillConfig:
    """A :class:`DistillConfig` from a mapping laid out like the YAML file, with every value checked."""
    values = _common(raw, where, DistillConfig)
    teacher = _section(raw, "teacher", TeacherSettings, where)
    if not isinstance(teacher.model, str) or "/" not in teacher.model:
        raise ConfigError(f"{where}: teacher.model must be an inspect model string such as sim/entrenched, "
                          f"got {teacher.model!r}")
    if not isinstance(teacher.model_args, Mapping):
        raise ConfigError(f"{where}: teacher.model_args must be a mapping of -M values, got {teacher.model_args!r}")
    if teacher.system_prompt not in SYSTEM_PROMPTS:
        raise ConfigError(f"{where}: teacher.system_prompt={teacher.system_prompt!r} is not allowed; "
                          f"allowed: {', '.join(SYSTEM_PROMPTS)}")
    _check_int(teacher.max_tokens, "teacher.max_tokens", where, minimum=1)
    if teacher.temperature is not None:
        _check_nonnegative(teacher.temperature, "teacher.temperature", where)
    seeds = teacher.seeds
    if seeds is not None:
        if not isinstance(seeds, list | tuple) or not seeds or len(set(seeds)) != len(seeds):
            raise ConfigError(f"{where}: teacher.seeds must be a list of distinct integers, got {seeds!r}")
        for seed in seeds:
            _check_int(seed, "teacher.seeds[]", where)
        if "seed" in teacher.model_args:
            raise ConfigError(f"{where}: give the teacher's seed either in teacher.model_args or in teacher.seeds")
        seeds = tuple(seeds)
    return DistillConfig(**values, teacher=replace(teacher, model_args=dict(teacher.model_args), seeds=seeds))


def _common(raw: Mapping[str, Any], where: str, cls: type[CommonConfig]) -> dict[str, Any]:
    allowed = [f.name for f in fields(cls) if f.name != "source"]
    unknown = sorted(set(raw) - set(allowed))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}")
    for key in ("base_model", "output_dir"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise ConfigError(f"{where}: missing key {key!r} (a path)")
    base_model = check_base_model(raw["base_model"], where)
    task = raw.get("task", "forecast")
    if not isinstance(task, str) or not task:
        raise ConfigError(f"{where}: task must be a task name such as forecast, got {task!r}")
    data = _optional_str(raw, "data", where)
    system_prompt = _choice(raw, "system_prompt", SYSTEM_PROMPTS, where, "none")
    paradigm = raw.get("paradigm", "direct")
    if paradigm not in TRAIN_PARADIGMS:
        raise ConfigError(f"{where}: paradigm={paradigm!r} is not supported for training; allowed: "
                          f"{', '.join(TRAIN_PARADIGMS)} (one posterior turn, which is the trained completion)")
    evidence_budget = raw.get("evidence_budget")
    if evidence_budget is not None:
        _check_int(evidence_budget, "evidence_budget", where, minimum=0)
    holdout = _number(raw, "holdout_fraction", where, 0.25, minimum=0.0)
    if holdout >= 1.0:
        raise ConfigError(f"{where}: holdout_fraction must lie in [0, 1), got {holdout}")
    split_seed = raw.get("split_seed", 0)
    _check_int(split_seed, "split_seed", where)
    max_items = raw.get("max_items")
    if max_items is not None:
        _check_int(max_items, "max_items", where, minimum=3)
    seed = raw.get("seed", 0)
    _check_int(seed, "seed", where)
    dtype = _choice(raw, "dtype", DTYPES, where, "auto")
    report_to = _report_to(raw.get("report_to", []), where)
    lora = _section(raw, "lora", LoraSettings, where)
    _check_int(lora.r, "lora.r", where, minimum=1)
    _check_int(lora.alpha, "lora.alpha", where, minimum=1)
    _check_nonnegative(lora.dropout, "lora.dropout", where)
    if isinstance(lora.target_modules, list):
        lora = replace(lora, target_modules=tuple(str(m) for m in lora.target_modules))
    elif not isinstance(lora.target_modules, str):
        raise ConfigError(f"{where}: lora.target_modules must be 'all-linear' or a list of module names")
    evaluation = _section(raw, "evaluation", EvalSettings, where)
    if not isinstance(evaluation.enabled, bool):
        raise ConfigError(f"{where}: evaluation.enabled must be true or false, got {evaluation.enabled!r}")
    _check_int(evaluation.max_tokens, "evaluation.max_tokens", where, minimum=1)
    _check_nonnegative(evaluation.temperature, "evaluation.temperature", where)
    if not isinstance(evaluation.start, bool):
        raise ConfigError(f"{where}: evaluation.start must be true or false")
    if evaluation.data is not None and (not isinstance(evaluation.data, str) or not evaluation.data):
        raise ConfigError(f"{where}: evaluation.data must be a data file or omitted, got {evaluation.data!r}")
    if evaluation.limit is not None:
        _check_int(evaluation.limit, "evaluation.limit", where, minimum=1)
    if evaluation.sample_shuffle is not None:
        _check_int(evaluation.sample_shuffle, "evaluation.sample_shuffle", where)
    if evaluation.seed is not None:
        _check_int(evaluation.seed, "evaluation.seed", where, minimum=0)
    _check_int(evaluation.epochs, "evaluation.epochs", where, minimum=1)
    trainer = raw.get("trainer") or {}
    if not isinstance(trainer, Mapping):
        raise ConfigError(f"{where}: trainer must be a mapping of TRL config keys")
    reserved = sorted(set(trainer) & (set(RESERVED_TRAINER_KEYS) & set(allowed)))
    if reserved:
        raise ConfigError(f"{where}: trainer.{reserved[0]} is set by the top-level key {reserved[0]!r}; "
                          "remove it from 'trainer'")
    return dict(base_model=base_model, output_dir=Path(raw["output_dir"]), task=task, data=data,
                system_prompt=system_prompt, paradigm=paradigm, evidence_budget=evidence_budget,
                holdout_fraction=holdout, split_seed=split_seed, max_items=max_items, seed=seed, dtype=dtype,
                report_to=report_to, lora=lora, evaluation=evaluation, trainer=dict(trainer), source=where)


def _section(raw: Mapping[str, Any], key: str, cls: type[Any], where: str) -> Any:
    value = raw.get(key) or {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: {key} must be a mapping")
    allowed = [f.name for f in fields(cls)]
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(f'{key}.{u}' for u in unknown)}; "
                          f"allowed: {', '.join(allowed)}")
    return cls(**value)


def _choice(raw: Mapping[str, Any], key: str, allowed: tuple[str, ...], where: str, default: str) -> str:
    value = raw.get(key, default)
    if value not in allowed:
        raise ConfigError(f"{where}: {key}={value!r} is not allowed; allowed: {', '.join(allowed)}")
    return str(value)


def _optional_str(raw: Mapping[str, Any], key: str, where: str) -> str | None:
    value = raw.get(key)
    if value is not None and (not isinstance(value, str) or not value):
        raise ConfigError(f"{where}: {key} must be a path or omitted, got {value!r}")
    return value


def _number(raw: Mapping[str, Any], key: str, where: str, default: float, minimum: float | None = None) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{where}: {key} must be a number, got {value!r}")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{where}: {key}={value} must be >= {minimum:g}")
    return float(value)


def _check_nonnegative(value: Any, name: str, where: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{where}: {name} must be a number, got {value!r}")
    if value < 0:
        raise ConfigError(f"{where}: {name}={value} is negative; it must be >= 0")


def _check_int(value: Any, name: str, where: str, minimum: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{where}: {name} must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{where}: {name}={value} must be >= {minimum}")


def _report_to(value: Any, where: str) -> tuple[str, ...]:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ConfigError(f"{where}: report_to must be a list of integration names, 'all' or 'none'")
    if names in (["none"], []):
        return ()
    from transformers.integrations.integration_utils import (
        INTEGRATION_TO_CALLBACK,
        get_available_reporting_integrations,
    )

    installed = get_available_reporting_integrations()
    if names == ["all"]:
        return tuple(installed)
    for name in names:
        if name not in INTEGRATION_TO_CALLBACK:
            raise ConfigError(f"{where}: report_to {name!r} is not a transformers integration; known: "
                              f"{', '.join(sorted(INTEGRATION_TO_CALLBACK))}")
        if name not in installed:
            raise ConfigError(f"{where}: report_to {name!r} needs its package installed (e.g. pip install {name})")
    return tuple(names)


# --- checks against the installed plugins and files ----------------------------------------------------------


def check_base_model(value: str, where: str) -> str:
    """The base model as recorded everywhere: an absolute path for local files, else the hub id."""
    path = Path(value).expanduser()
    if path.exists():
        if path.is_file() and path.suffix != ".gguf":
            raise ConfigError(f"{where}: base_model {value!r} is a file but not a .gguf model")
        if path.is_dir() and not (path / "config.json").is_file():
            raise ConfigError(f"{where}: base_model {value!r} is a directory without config.json "
                              "(not a save_pretrained model)")
        return str(path.resolve())
    if value.endswith(".gguf") or value.startswith((".", "/", "~")) or not _HUB_ID.match(value):
        raise ConfigError(f"{where}: base_model {value!r} does not exist (a model directory, a .gguf file or a "
                          "Hugging Face model id such as HuggingFaceTB/SmolLM2-135M-Instruct)")
    return value


def normalize_model_ref(value: str) -> str:
    """A model reference in the form :func:`check_base_model` records (absolute path where it exists)."""
    path = Path(value).expanduser()
    return str(path.resolve()) if path.exists() else value


def check_adapter_base(adapter: str, base_model: str, where: str) -> None:
    """Refuse an adapter whose ``adapter_config.json`` names a different base model."""
    config_file = Path(adapter).expanduser() / "adapter_config.json"
    if not config_file.is_file():
        raise ConfigError(f"{where}: init_adapter {adapter!r} is not a peft adapter directory "
                          "(no adapter_config.json)")
    try:
        recorded = json.loads(config_file.read_text(encoding="utf-8")).get("base_model_name_or_path")
    except (json.JSONDecodeError, AttributeError):
        raise ConfigError(f"{config_file}: not a valid adapter_config.json") from None
    if not recorded:
        raise ConfigError(f"{config_file}: names no base_model_name_or_path, so it cannot be checked against "
                          f"base_model {base_model!r}")
    if normalize_model_ref(str(recorded)) != normalize_model_ref(base_model):
        raise ConfigError(f"{where}: init_adapter {adapter!r} was trained on {recorded!r}, but base_model is "
                          f"{base_model!r}; an adapter only fits the base it was trained on")


def check_plugins(config: TrainConfig) -> None:
    """The reward's extractor and term exist and can run inside a training loop."""
    from martingale_harness.plugin.host import get_extractor, get_reward_term

    where = config.source
    extractor = get_extractor(config.reward.extractor)
    if getattr(extractor, "model_roles", ()):
        raise ConfigError(f"{where}: reward.extractor {config.reward.extractor!r} calls a grader model "
                          f"({', '.join(extractor.model_roles)}); training reads beliefs without model calls "
                          "(use self_report)")
    if getattr(extractor, "needs_yes_no_probe", False):
        raise ConfigError(f"{where}: reward.extractor {config.reward.extractor!r} needs a Yes/No logprob probe, "
                          "which training completions do not have (use self_report)")
    get_reward_term(config.reward.info_term)


def check_trainer_keys(config: CommonConfig, config_class: type[Any]) -> None:
    """``trainer`` keys are fields of TRL's ``config_class`` (imports trl, loads no model)."""
    allowed = {f.name for f in fields(config_class)}
    unknown = sorted(set(config.trainer) - allowed)
    if unknown:
        raise ConfigError(f"{config.source}: unknown trainer key(s) {', '.join(unknown)} for "
                          f"{config_class.__name__} (TRL's training arguments)")
