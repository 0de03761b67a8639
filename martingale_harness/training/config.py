"""Configs of ``martingale train`` and ``martingale distill``: YAML files, checked before any model loads.

A config is a YAML mapping (``project_files.load_yaml``, a safe loader); every key is listed below and
anything else is an error naming the file, the key and what is allowed. The classes below are pydantic
dataclasses: types, ranges and rules across keys are declared on them and checked when a config is made
(``project_files.validate_config``). Relative paths are relative to the working directory.
``examples/train.yaml`` and ``examples/distill.yaml`` show every key with its default.

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
  ``null`` for unseeded), ``epochs`` (1; inspect's ``--epochs``: draws per held-out sample, all of
  which enter the metrics), ``start_log`` (null; an eval log of the start model with these settings,
  reused instead of evaluating the start model again) and ``every_round`` (false; expert iteration only:
  also evaluate the adapter after every round but the last, whose evaluation is the run's own, logged as
  ``event: heldout`` lines of ``metrics.jsonl``, with logs in ``eval/round-<r>``).
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
import re
from collections.abc import Mapping
from dataclasses import fields, replace
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    AllowInfNan,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    StrictBool,
    StrictInt,
    StringConstraints,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
    model_validator,
)
from pydantic.dataclasses import dataclass as config_class
from pydantic_core import PydanticCustomError

from martingale_harness.errors import ConfigError
from martingale_harness.project_files import (
    apply_overrides,
    config_keys,
    invalid,
    read_yaml,
    refused,
    validate_config,
)
from martingale_harness.protocol.solver import SystemPrompt

TrainParadigm = Literal["direct", "cot"]
TRAIN_PARADIGMS: tuple[str, ...] = get_args(TrainParadigm)
"""Paradigms with one posterior turn: the trained completion is that turn."""
Algorithm = Literal["grpo", "rloo", "expert_iteration"]
ALGORITHMS: tuple[str, ...] = get_args(Algorithm)
GRPO_ONLY_TRAINER_KEYS: tuple[str, ...] = (
    "num_generations", "steps_per_generation", "generation_batch_size", "max_completion_length",
    "temperature", "top_p", "top_k", "generation_kwargs", "epsilon", "epsilon_high", "loss_type",
    "scale_rewards", "num_iterations", "use_vllm", "reward_weights", "mask_truncated_completions")
"""Generation and policy-gradient keys of GRPOConfig/RLOOConfig: named in the error when an
expert-iteration config (whose ``trainer`` is TRL's SFTConfig) carries them."""
Dtype = Literal["auto", "float32", "bfloat16", "float16"]
DTYPES: tuple[str, ...] = get_args(Dtype)
RESERVED_TRAINER_KEYS: tuple[str, ...] = ("output_dir", "seed", "beta", "report_to")
"""TRL arguments the top-level keys of the same name set (``beta``: ``martingale train`` only)."""
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_KEYS = ConfigDict(extra="forbid")


# --- value types ---------------------------------------------------------------------------------------------


def _as_written(value: Any, check: ValidatorFunctionWrapHandler) -> Any:
    # an int stays an int, so training_config.json and the training report show what the file said
    number = check(value)
    return value if isinstance(value, int) else number


def _not_negative(value: float) -> float:
    if value < 0:
        raise PydanticCustomError("negative", "negative")
    return value


def _none_as_empty(value: Any) -> Any:
    return {} if value is None else value  # an empty YAML section (``lora:``) means its defaults


def _path(value: Any) -> Path:
    if isinstance(value, Path) or (isinstance(value, str) and value):
        return Path(value)
    raise invalid("must be a path")


def _modules(value: Any) -> str | tuple[str, ...]:
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple):
        return tuple(str(m) for m in value)
    raise invalid("must be 'all-linear' or a list of module names")


def _model_string(value: str) -> str:
    if "/" not in value:
        raise invalid("must be an inspect model string such as sim/entrenched")
    return value


def _distinct_seeds(seeds: tuple[int, ...]) -> tuple[int, ...]:
    if not seeds or len(set(seeds)) != len(seeds):
        raise invalid("must be a list of distinct integers")
    return seeds


def _report_to(value: Any) -> tuple[str, ...]:
    """``report_to`` as the integrations' names (``all``: every installed one; ``none`` or ``[]``: none)."""
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list | tuple) or not all(isinstance(n, str) for n in names):
        raise invalid("must be a list of integration names, 'all' or 'none'")
    if list(names) in (["none"], []):
        return ()
    from transformers.integrations.integration_utils import (
        INTEGRATION_TO_CALLBACK,
        get_available_reporting_integrations,
    )

    installed = get_available_reporting_integrations()
    if list(names) == ["all"]:
        return tuple(installed)
    for name in names:
        if name not in INTEGRATION_TO_CALLBACK:
            raise refused(f"report_to {name!r} is not a transformers integration; known: "
                          f"{', '.join(sorted(INTEGRATION_TO_CALLBACK))}")
        if name not in installed:
            raise refused(f"report_to {name!r} needs its package installed (e.g. pip install {name})")
    return tuple(names)


Number = Annotated[float, Strict(), AllowInfNan(False), WrapValidator(_as_written)]
"""A finite int or float (not a bool), kept as written."""
NonNegative = Annotated[Number, AfterValidator(_not_negative)]
Text = Annotated[str, StringConstraints(strict=True, min_length=1)]
Kwargs = dict[str, Any]
_EMPTY_IS_DEFAULT = BeforeValidator(_none_as_empty)


# --- the config classes --------------------------------------------------------------------------------------


@config_class(frozen=True, config=_KEYS)
class LoraSettings:
    """The peft ``LoraConfig`` of the trained adapter."""

    r: StrictInt = Field(16, ge=1)
    alpha: StrictInt = Field(32, ge=1)
    dropout: NonNegative = 0.05
    target_modules: Annotated[str | tuple[str, ...], BeforeValidator(_modules)] = "all-linear"


@config_class(frozen=True, config=_KEYS)
class RewardSettings:
    """Coefficients and plugins of the reward (:mod:`martingale_harness.training.reward`)."""

    ms_coef: NonNegative = 1.0
    info_term: Text = Field("brier_gain", description="a reward term plugin name")
    info_coef: NonNegative = 0.5
    format_penalty: NonNegative = 1.0
    extractor: Text = Field("self_report", description="an extractor plugin name")

    @model_validator(mode="after")
    def _something_to_train_for(self) -> RewardSettings:
        if self.ms_coef == 0 and self.info_coef == 0:
            raise refused("reward.ms_coef and reward.info_coef are both 0: nothing to train for")
        return self


@config_class(frozen=True, config=_KEYS)
class EpisodeSettings:
    """How the prior turn of each episode is produced (:mod:`martingale_harness.training.episodes`)."""

    prior_refresh_steps: StrictInt = Field(0, ge=0)
    prior_max_new_tokens: StrictInt = Field(128, ge=1)
    prior_temperature: NonNegative = 0.0
    """0 = greedy priors; above 0 the prior pass samples (so a model whose greedy prior is always the
    same still shows the spread of priors it states when sampled, as an evaluation at that temperature does)."""
    prior_generation_kwargs: Kwargs = Field(default_factory=dict)
    """Extra keyword arguments for transformers' ``generate`` in the prior pass (e.g. a ``sequence_bias``)."""


@config_class(frozen=True, config=_KEYS)
class EvalSettings:
    """The held-out evaluation through the harness after training."""

    enabled: StrictBool = True
    max_tokens: StrictInt = Field(256, ge=1)
    temperature: NonNegative = 0.0
    data: Text | None = Field(None, description="a data file, or omit the key")
    """Evaluate on this data file (another source) instead of the held-out part of the training data."""
    limit: StrictInt | None = Field(None, ge=1)
    sample_shuffle: StrictInt | None = None
    """As inspect's ``--limit`` and ``--sample-shuffle SEED``: which samples of the evaluation set run."""
    start: StrictBool = True
    """Also evaluate the start model (false: only the trained adapter, e.g. for an ablation whose start
    model another run already evaluated on the same questions)."""
    seed: StrictInt | None = Field(0, ge=0)
    """inspect's ``--seed`` for both evaluations (None: unseeded, each run draws anew)."""
    epochs: StrictInt = Field(1, ge=1)
    """inspect's ``--epochs``: draws per held-out sample; every draw enters the metrics."""
    start_log: Text | None = Field(None, description="an eval log path, or omit the key")
    """An eval log of the start model made with these evaluation settings, reused instead of evaluating the
    start model again (``martingale train --seeds`` passes the first seed's to the others). It must name the
    start model and hold the samples, seed, epochs, temperature and max_tokens this evaluation would use."""
    every_round: StrictBool = False
    """Expert iteration only: also save (``rounds/round-<r>/adapter``) and evaluate the adapter after every
    round r < rounds that fine-tuned, so a drift such as rising inertia shows when it comes rather than only
    at the end (the last round's evaluation is the run's own)."""


@config_class(frozen=True, config=_KEYS)
class ExpertIterationSettings:
    """``algorithm: expert_iteration`` (:mod:`martingale_harness.training.expert_iteration`)."""

    rounds: StrictInt = Field(3, ge=1)
    samples: StrictInt = Field(4, ge=2)
    """K: posterior completions sampled per episode and round."""
    margin: NonNegative = 0.1
    """A group's best completion is kept only if its reward exceeds the group's mean by more than this."""
    temperature: Number = Field(1.0, gt=0)
    """Above 0: the K samples must differ."""
    top_p: Number = Field(1.0, gt=0, le=1)
    max_new_tokens: StrictInt = Field(128, ge=1)
    refresh_priors: StrictBool = True
    """Run the prior pass again with the current policy before every round after the first."""
    replay_priors: StrictBool = True
    """Also fine-tune on the round's readable prior answers (the policy's own, from the prior pass), so that
    training on posterior turns alone cannot wear away the prior turn (measured: after one round without
    it, 48 of 64 ForecastBench priors came back empty)."""
    generation_kwargs: Kwargs = Field(default_factory=dict)
    """Extra keyword arguments for transformers' ``generate`` when sampling (as TRL's ``generation_kwargs``)."""


@config_class(frozen=True, config=_KEYS)
class TeacherSettings:
    """The entrenched teacher whose transcripts ``martingale distill`` imitates."""

    model: Annotated[Text, AfterValidator(_model_string)] = "sim/entrenched"
    model_args: Kwargs = Field(default_factory=dict)
    system_prompt: SystemPrompt = "none"
    max_tokens: StrictInt = Field(256, ge=1)
    temperature: NonNegative | None = None
    seeds: Annotated[tuple[StrictInt, ...], AfterValidator(_distinct_seeds)] | None = None
    """One teacher run per seed (see the module docstring); None = a single run."""

    @model_validator(mode="after")
    def _one_seed_source(self) -> TeacherSettings:
        if self.seeds is not None and "seed" in self.model_args:
            raise refused("give the teacher's seed either in teacher.model_args or in teacher.seeds")
        return self


@config_class(frozen=True, config=_KEYS)
class CommonConfig:
    """Keys shared by both commands (see the module docstring)."""

    base_model: Text = Field(description="a path")
    output_dir: Annotated[Path, BeforeValidator(_path)] = Field(description="a path")
    task: Text = Field("forecast", description="a task name such as forecast")
    data: Text | None = Field(None, description="a path, or omit the key")
    system_prompt: SystemPrompt = "none"
    paradigm: Annotated[str, StringConstraints(strict=True)] = "direct"
    evidence_budget: StrictInt | None = Field(None, ge=0)
    holdout_fraction: float = Field(0.25, ge=0, lt=1, strict=True, allow_inf_nan=False)
    split_seed: StrictInt = 0
    max_items: StrictInt | None = Field(None, ge=3)
    seed: StrictInt = 0
    dtype: Dtype = "auto"
    report_to: Annotated[tuple[str, ...], BeforeValidator(_report_to)] = ()
    lora: Annotated[LoraSettings, _EMPTY_IS_DEFAULT] = LoraSettings()
    evaluation: Annotated[EvalSettings, _EMPTY_IS_DEFAULT] = EvalSettings()
    trainer: Annotated[Kwargs, _EMPTY_IS_DEFAULT] = Field(default_factory=dict)
    source: str = Field("<dict>", exclude=True)
    """The file the config came from (for messages); set by the loader, not a key of the file."""

    @field_validator("paradigm")
    @classmethod
    def _one_posterior_turn(cls, paradigm: str) -> str:
        if paradigm not in TRAIN_PARADIGMS:
            raise refused(f"paradigm={paradigm!r} is not supported for training; allowed: "
                          f"{', '.join(TRAIN_PARADIGMS)} (one posterior turn, which is the trained completion)")
        return paradigm

    @field_validator("trainer")
    @classmethod
    def _no_reserved_keys(cls, trainer: dict[str, Any]) -> dict[str, Any]:
        reserved = sorted(set(trainer) & set(RESERVED_TRAINER_KEYS) & set(cls.__pydantic_fields__))
        if reserved:
            raise refused(f"trainer.{reserved[0]} is set by the top-level key {reserved[0]!r}; "
                          "remove it from 'trainer'")
        return trainer

    @property
    def task_name(self) -> str:
        """The registry name (``forecast``) of ``task`` (``forecast`` or ``martingale/forecast``)."""
        return self.task.removeprefix("martingale/")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (for the model card and ``training_config.json``)."""
        return json.loads(json.dumps(_plain(self), default=str))


@config_class(frozen=True, config=_KEYS)
class TrainConfig(CommonConfig):
    """``martingale train``: GRPO, RLOO or expert iteration with the Martingale reward on a LoRA."""

    algorithm: Algorithm = "grpo"
    beta: float = Field(0.04, ge=0, strict=True, allow_inf_nan=False)
    init_adapter: Text | None = Field(None, description="a LoRA adapter directory, or omit the key")
    reward: Annotated[RewardSettings, _EMPTY_IS_DEFAULT] = RewardSettings()
    episodes: Annotated[EpisodeSettings, _EMPTY_IS_DEFAULT] = EpisodeSettings()
    expert_iteration: Annotated[ExpertIterationSettings, _EMPTY_IS_DEFAULT] = ExpertIterationSettings()

    @model_validator(mode="before")
    @classmethod
    def _keys_of_one_algorithm(cls, data: Any) -> Any:
        # judged on the mapping as written: a config made in code (dataclasses.replace) carries every key
        if not isinstance(data, Mapping):
            return data
        algorithm = data.get("algorithm", "grpo")
        if algorithm in ("grpo", "rloo") and "expert_iteration" in data:
            raise refused(f"the expert_iteration section applies to algorithm: expert_iteration only "
                          f"(algorithm is {algorithm!r})")
        if algorithm == "expert_iteration" and "beta" in data:
            raise refused("beta is GRPO/RLOO's KL coefficient; expert iteration has no KL term in its loss (it "
                          "fine-tunes on selected samples; the KL to the start is logged per round). Remove beta")
        return data

    @model_validator(mode="after")
    def _expert_iteration_is_not_grpo(self) -> TrainConfig:
        if self.evaluation.every_round and self.algorithm != "expert_iteration":
            raise refused(f"evaluation.every_round evaluates the adapter after each expert-iteration round; "
                          f"algorithm {self.algorithm!r} has no rounds (remove the key)")
        if self.evaluation.every_round and not self.evaluation.enabled:
            raise refused("evaluation.every_round needs evaluation.enabled: true (it adds evaluations after the "
                          "rounds to the final one)")
        if self.algorithm != "expert_iteration":
            return self
        if self.episodes.prior_refresh_steps:
            raise refused("episodes.prior_refresh_steps counts GRPO steps; expert iteration refreshes the priors "
                          "between rounds (expert_iteration.refresh_priors)")
        grpo_only = sorted(set(self.trainer) & set(GRPO_ONLY_TRAINER_KEYS))
        if grpo_only:
            raise refused(f"trainer.{', trainer.'.join(grpo_only)}: GRPO/RLOO key(s); expert iteration samples "
                          "with the expert_iteration section (samples, temperature, top_p, max_new_tokens, "
                          "generation_kwargs) and fine-tunes with TRL's SFTConfig")
        return self


@config_class(frozen=True, config=_KEYS)
class DistillConfig(CommonConfig):
    """``martingale distill``: SFT of a LoRA on an entrenched teacher's transcripts."""

    teacher: Annotated[TeacherSettings, _EMPTY_IS_DEFAULT] = TeacherSettings()

    @model_validator(mode="after")
    def _no_rounds(self) -> DistillConfig:
        if self.evaluation.every_round:
            raise refused("evaluation.every_round applies to martingale train with algorithm: expert_iteration; "
                          "distillation has no rounds (remove the key)")
        return self


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


def _read(path: str | Path) -> dict[str, Any]:
    return read_yaml(Path(path))


def train_config_from_dict(raw: Mapping[str, Any], where: str = "<dict>") -> TrainConfig:
    """A :class:`TrainConfig` from a mapping laid out like the YAML file, with every value checked."""
    config = _validated(TrainConfig, raw, where)
    check_plugins(config)
    if config.init_adapter is not None:
        check_adapter_base(config.init_adapter, config.base_model, where)
    return config


def distill_config_from_dict(raw: Mapping[str, Any], where: str = "<dict>") -> DistillConfig:
    """A :class:`DistillConfig` from a mapping laid out like the YAML file, with every value checked."""
    return _validated(DistillConfig, raw, where)


def _validated(cls: type[Any], raw: Mapping[str, Any], where: str) -> Any:
    """``raw`` as a ``cls``, recording ``where`` as its source, with the base model found."""
    if "source" in raw:  # a field of the class but not a key of the file
        raise ConfigError(f"{where}: unknown key(s) source; allowed: {', '.join(config_keys(cls))}")
    config = validate_config(cls, {**raw, "source": where}, where)
    return replace(config, base_model=check_base_model(config.base_model, where))


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
