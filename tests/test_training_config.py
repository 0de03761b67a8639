"""Training configs (martingale_harness.training.config): bad configs are refused before any model loads.

The model loaders are replaced by functions that fail the test if called, so "refused before any
model loads" is checked, not assumed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from martingale_harness.cli import main
from martingale_harness.errors import ConfigError
from martingale_harness.tasks.config import read_yaml
from martingale_harness.training import models
from martingale_harness.training.config import (
    apply_overrides,
    check_trainer_keys,
    distill_config_from_dict,
    load_distill_config,
    load_train_config,
    train_config_from_dict,
)
from martingale_harness.training.episodes import Episode, split_episodes

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture()
def base_dir(tmp_path: Path) -> Path:
    """A stand-in model directory: configs only check that it looks like a save_pretrained folder."""
    path = tmp_path / "base"
    path.mkdir()
    (path / "config.json").write_text("{}")
    return path


@pytest.fixture(autouse=True)
def no_model_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a model or tokenizer was loaded")

    monkeypatch.setattr(models, "load_model", refuse)
    monkeypatch.setattr(models, "load_tokenizer", refuse)


def _raw(base: Path, tmp_path: Path, **changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {"base_model": str(base), "output_dir": str(tmp_path / "out")}
    for key, value in changes.items():
        raw[key] = value
    return raw


def test_defaults(base_dir: Path, tmp_path: Path) -> None:
    config = train_config_from_dict(_raw(base_dir, tmp_path))
    assert (config.algorithm, config.beta, config.task_name) == ("grpo", 0.04, "forecast")
    assert (config.reward.ms_coef, config.reward.info_term, config.reward.info_coef) == (1.0, "brier_gain", 0.5)
    assert config.base_model == str(base_dir.resolve())
    assert json.loads(json.dumps(config.to_dict()))["reward"]["format_penalty"] == 1.0


@pytest.mark.parametrize(("changes", "message"), [
    ({"bogus": 1}, r"unknown key\(s\) bogus; allowed: .*base_model"),
    ({"reward": {"ms_coeff": 1}}, r"unknown key\(s\) reward.ms_coeff; allowed: ms_coef"),
    ({"reward": {"info_term": "no_such_term"}}, r"unknown reward term 'no_such_term'; available: .*bayes_distance"),
    ({"reward": {"ms_coef": -0.5}}, r"reward.ms_coef=-0.5 is negative"),
    ({"reward": {"info_coef": -1}}, r"reward.info_coef=-1 is negative"),
    ({"reward": {"format_penalty": -1.0}}, r"reward.format_penalty=-1.0 is negative"),
    ({"reward": {"ms_coef": 0, "info_coef": 0}}, "both 0: nothing to train for"),
    ({"beta": -0.1}, r"beta=-0.1 must be >= 0"),
    ({"lora": {"dropout": -0.1}}, r"lora.dropout=-0.1 is negative"),
    ({"algorithm": "ppo"}, r"algorithm='ppo' is not allowed; allowed: grpo, rloo"),
    ({"paradigm": "debate"}, r"paradigm='debate' is not supported for training; allowed: direct, cot"),
    ({"reward": {"extractor": "step_judge"}}, r"calls a grader model"),
    ({"reward": {"extractor": "logprob"}}, r"needs a Yes/No logprob probe"),
    ({"reward": {"extractor": "nope"}}, r"unknown extractor 'nope'"),
    ({"trainer": {"beta": 0.1}}, r"trainer.beta is set by the top-level key 'beta'"),
    ({"trainer": {"output_dir": "x"}}, r"trainer.output_dir is set by the top-level key"),
    ({"holdout_fraction": 1.0}, r"holdout_fraction must lie in \[0, 1\)"),
    ({"report_to": ["not_an_integration"]}, r"report_to 'not_an_integration' is not a transformers integration"),
    ({"init_adapter": "/no/such/adapter"}, r"is not a peft adapter directory"),
])
def test_bad_configs_are_refused(base_dir: Path, tmp_path: Path, changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        train_config_from_dict(_raw(base_dir, tmp_path, **changes), "cfg.yaml")


def test_missing_base_model_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        train_config_from_dict({"base_model": str(tmp_path / "nothing.gguf"), "output_dir": "x"})
    with pytest.raises(ConfigError, match="without config.json"):
        train_config_from_dict({"base_model": str(tmp_path), "output_dir": "x"})
    # a hub id is taken as given (checked when it loads, never at config time: no network here)
    assert train_config_from_dict({"base_model": "HuggingFaceTB/SmolLM2-135M-Instruct", "output_dir": "x"}
                                  ).base_model == "HuggingFaceTB/SmolLM2-135M-Instruct"


def test_report_to_needs_the_package_installed(base_dir: Path, tmp_path: Path) -> None:
    from transformers.integrations.integration_utils import (
        INTEGRATION_TO_CALLBACK,
        get_available_reporting_integrations,
    )

    missing = sorted(set(INTEGRATION_TO_CALLBACK) - set(get_available_reporting_integrations()))
    if not missing:
        pytest.skip("every report_to integration is installed here")
    with pytest.raises(ConfigError, match=f"report_to '{missing[0]}' needs its package installed"):
        train_config_from_dict(_raw(base_dir, tmp_path, report_to=[missing[0]]))
    assert train_config_from_dict(_raw(base_dir, tmp_path, report_to="none")).report_to == ()


def _adapter(tmp_path: Path, base: str) -> Path:
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": base, "peft_type": "LORA"}))
    return adapter


def test_adapter_must_match_the_base(base_dir: Path, tmp_path: Path) -> None:
    adapter = _adapter(tmp_path, "Qwen/Qwen2.5-0.5B-Instruct")
    with pytest.raises(ConfigError, match=r"was trained on 'Qwen/Qwen2.5-0.5B-Instruct', but base_model is"):
        train_config_from_dict(_raw(base_dir, tmp_path, init_adapter=str(adapter)))
    # the same base, named by a relative path, is the same base
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": str(base_dir)}))
    config = train_config_from_dict(_raw(base_dir, tmp_path, init_adapter=str(adapter)))
    assert config.init_adapter == str(adapter)


def test_trainer_keys_are_trls(base_dir: Path, tmp_path: Path) -> None:
    from trl import GRPOConfig, SFTConfig

    config = train_config_from_dict(_raw(base_dir, tmp_path, trainer={"max_stepz": 3, "learning_rate": 1e-5}))
    with pytest.raises(ConfigError, match=r"unknown trainer key\(s\) max_stepz for GRPOConfig"):
        check_trainer_keys(config, GRPOConfig)
    check_trainer_keys(distill_config_from_dict(_raw(base_dir, tmp_path, trainer={"max_length": 512})), SFTConfig)


@pytest.mark.parametrize(("changes", "message"), [
    ({"teacher": {"model": "entrenched"}}, "teacher.model must be an inspect model string"),
    ({"teacher": {"system_prompt": "nice"}}, r"teacher.system_prompt='nice' is not allowed"),
    ({"teacher": {"temperature": -1}}, r"teacher.temperature=-1 is negative"),
    ({"reward": {"ms_coef": 1}}, r"unknown key\(s\) reward"),
    ({"teacher": {"seeds": [1, 1]}}, "teacher.seeds must be a list of distinct integers"),
    ({"teacher": {"seeds": ["a"]}}, r"teacher.seeds\[\] must be an integer"),
    ({"teacher": {"seeds": [0], "model_args": {"seed": 3}}}, "either in teacher.model_args or in teacher.seeds"),
    ({"evaluation": {"every_round": True}}, "evaluation.every_round applies to martingale train with algorithm: "
                                            "expert_iteration; distillation has no rounds"),
])
def test_bad_distill_configs_are_refused(base_dir: Path, tmp_path: Path, changes: dict[str, Any],
                                         message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        distill_config_from_dict(_raw(base_dir, tmp_path, **changes))


def test_example_configs_are_valid(base_dir: Path) -> None:
    from trl import GRPOConfig, SFTConfig

    train = load_train_config(REPO / "examples" / "train.yaml", ["init_adapter=null"])
    assert (train.algorithm, train.reward.info_term, train.task_name) == ("grpo", "brier_gain", "bayes")
    check_trainer_keys(train, GRPOConfig)
    distill = load_distill_config(REPO / "examples" / "distill.yaml")
    assert distill.teacher.model_args == {"kappa": 0.8}
    check_trainer_keys(distill, SFTConfig)
    # the two must hold out the same questions, or the organism's evaluation would see trained questions
    assert (train.task, train.data, train.holdout_fraction, train.split_seed) == (
        distill.task, distill.data, distill.holdout_fraction, distill.split_seed)
    cpu = load_distill_config(REPO / "examples" / "distill_cpu.yaml", [f"base_model={base_dir}"])
    assert cpu.dtype == "float32"
    check_trainer_keys(cpu, SFTConfig)
    with pytest.raises(ConfigError, match="SET-WITH--set"):
        load_distill_config(REPO / "examples" / "distill_cpu.yaml")
    # the CPU recipe continues the CPU organism on its training questions
    organism = _adapter(base_dir.parent, str(base_dir))
    recipe = load_train_config(REPO / "examples" / "recipe_cpu.yaml",
                               [f"base_model={base_dir}", f"init_adapter={organism}"])
    assert (recipe.algorithm, recipe.reward.info_term, recipe.expert_iteration.samples) == (
        "expert_iteration", "update_magnitude", 4)
    assert (recipe.task, recipe.data, recipe.holdout_fraction, recipe.split_seed) == (
        cpu.task, cpu.data, cpu.holdout_fraction, cpu.split_seed)
    check_trainer_keys(recipe, SFTConfig)
    assert recipe.evaluation.data is not None and recipe.evaluation.data.endswith("2025-11-09-llm.json")
    assert recipe.expert_iteration.replay_priors is False  # as the documented run 2 was measured
    # the ForecastBench recipe trains and evaluates on the two halves of one question set
    fb = load_train_config(REPO / "examples" / "recipe_fb_cpu.yaml",
                           [f"base_model={base_dir}", f"init_adapter={organism}"])
    check_trainer_keys(fb, SFTConfig)
    assert fb.data is not None and fb.data.endswith("2025-11-09-llm.json") and fb.evaluation.data is None
    assert (fb.expert_iteration.replay_priors, fb.reward) == (True, recipe.reward)
    grpo = load_train_config(REPO / "examples" / "recipe_grpo_cpu.yaml",
                             [f"base_model={base_dir}", f"init_adapter={organism}"])
    check_trainer_keys(grpo, GRPOConfig)
    assert (grpo.algorithm, grpo.reward, grpo.evaluation, grpo.holdout_fraction) == (
        "grpo", recipe.reward, recipe.evaluation, recipe.holdout_fraction)
    # its ForecastBench version: the same data, split, reward and evaluation as recipe_fb_cpu.yaml
    grpo_fb = load_train_config(REPO / "examples" / "recipe_grpo_fb_cpu.yaml",
                                [f"base_model={base_dir}", f"init_adapter={organism}"])
    check_trainer_keys(grpo_fb, GRPOConfig)
    assert (grpo_fb.algorithm, grpo_fb.reward, grpo_fb.evaluation) == ("grpo", fb.reward, fb.evaluation)
    assert (grpo_fb.data, grpo_fb.holdout_fraction, grpo_fb.max_items, grpo_fb.split_seed) == (
        fb.data, fb.holdout_fraction, fb.max_items, fb.split_seed)


def test_overrides() -> None:
    raw = apply_overrides({"reward": {"ms_coef": 1.0}}, ["reward.info_coef=0", "trainer.max_steps=3", "data=null"])
    assert raw == {"reward": {"ms_coef": 1.0, "info_coef": 0}, "trainer": {"max_steps": 3}, "data": None}
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        apply_overrides({}, ["reward.info_coef"])
    with pytest.raises(ConfigError, match="'reward' is not a mapping"):
        apply_overrides({"reward": 3}, ["reward.info_coef=0"])


@pytest.mark.parametrize("written,value", [("1e-2", 0.01), ("5E-4", 0.0005), ("1.0e-3", 0.001), ("2e5", 200000.0)])
def test_exponent_floats_are_numbers_in_files_and_overrides(tmp_path: Path, written: str, value: float) -> None:
    # PyYAML's YAML 1.1 reads 1e-2 as the string '1e-2': --check passed and the optimizer crashed at step 1
    raw = apply_overrides({}, [f"trainer.learning_rate={written}"])
    assert raw["trainer"]["learning_rate"] == value and isinstance(raw["trainer"]["learning_rate"], float)
    path = tmp_path / "c.yaml"
    path.write_text(f"trainer:\n  learning_rate: {written}\n  run_name: '1e-2'\n")
    assert read_yaml(path)["trainer"] == {"learning_rate": value, "run_name": "1e-2"}


def _write(tmp_path: Path, raw: dict[str, Any]) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize(("changes", "message"), [
    ({"reward": {"info_term": "no_such_term"}}, "unknown reward term 'no_such_term'"),
    ({"reward": {"ms_coef": -1}}, "reward.ms_coef=-1 is negative"),
    ({"reward": {"info_term": "bayes_distance"}}, "bayes_distance' needs metadata"),  # forecast has no exact posteriors
    ({"init_adapter": "ADAPTER"}, "was trained on 'other/base'"),
    ({"trainer": {"num_generations": 3, "per_device_train_batch_size": 4}}, "TRL refuses the trainer settings"),
    ({"trainer": {"use_vllm": True, "vllm_mode": "remote"}}, "trainer.vllm_mode='remote' is not allowed"),
    ({"trainer": {"vllm_mode": "server"}}, "vLLM settings apply only with use_vllm: true"),
    # vLLM is not installed here (it needs a CUDA GPU): named, before any model loads
    ({"trainer": {"use_vllm": True, "vllm_mode": "server"}}, "trainer.use_vllm needs vLLM, which is not installed"),
])
def test_cli_refuses_bad_configs_before_any_model_loads(base_dir: Path, tmp_path: Path, changes: dict[str, Any],
                                                         message: str) -> None:
    if changes.get("init_adapter") == "ADAPTER":
        changes = {"init_adapter": str(_adapter(tmp_path, "other/base"))}
    result = CliRunner().invoke(main, ["train", str(_write(tmp_path, _raw(base_dir, tmp_path, **changes)))])
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert not (tmp_path / "out").exists()


def test_train_api_refuses_data_the_term_cannot_use(base_dir: Path, tmp_path: Path) -> None:
    from martingale_harness.training.run import train

    config = train_config_from_dict(_raw(base_dir, tmp_path, task="cmv", reward={"info_term": "brier_gain"}))
    with pytest.raises(ConfigError, match="brier_gain' needs labels"):  # r/ChangeMyView has no labels
        train(config)


def test_cli_check_prints_the_plan_and_loads_nothing(base_dir: Path, tmp_path: Path) -> None:
    path = _write(tmp_path, _raw(base_dir, tmp_path))
    result = CliRunner().invoke(main, ["train", str(path), "--check", "--set", "reward.info_coef=0"])
    assert result.exit_code == 0, result.output
    assert "grpo on" in result.output and "48 training, 16 held-out samples" in result.output
    assert "beta = 0.04" in result.output
    assert "brier_gain x 0" in result.output
    result = CliRunner().invoke(main, ["distill", str(path), "--check"])
    assert result.exit_code == 0, result.output
    assert "distill sim/entrenched" in result.output


def _episodes(questions: int, per_question: int) -> list[Episode]:
    return [Episode(sample_id=f"q{q}-{k}", question_id=f"q{q}", question=f"question {q}", evidence=(), label=None,
                    metadata={}) for q in range(questions) for k in range(per_question)]


def test_split_keeps_questions_together_and_is_seeded() -> None:
    episodes = _episodes(20, 3)
    split = split_episodes(episodes, 0.25, seed=1)
    held = {e.question_id for e in split.heldout}
    assert len(held) == 5 and not held & {e.question_id for e in split.train}
    assert len(split.train) + len(split.heldout) == 60
    assert split_episodes(episodes, 0.25, seed=1).to_dict() == split.to_dict()
    assert split_episodes(episodes, 0.25, seed=2).to_dict() != split.to_dict()
    assert len(split_episodes(episodes, 0.25, seed=1, max_items=7).train) == 7
    with pytest.raises(ConfigError, match="only 2 training item"):
        split_episodes(_episodes(3, 1), 0.25, seed=0)


# --- expert iteration ------------------------------------------------------------------------------------------

_EI = {"algorithm": "expert_iteration"}


@pytest.mark.parametrize(("changes", "message"), [
    ({**_EI, "trainer": {"num_generations": 4, "max_completion_length": 8}},
     r"trainer.max_completion_length, trainer.num_generations: GRPO/RLOO key\(s\)"),
    ({**_EI, "beta": 0.04}, r"beta is GRPO/RLOO's KL coefficient"),
    ({**_EI, "expert_iteration": {"replay_priors": "yes"}}, r"expert_iteration.replay_priors must be true or false"),
    ({**_EI, "episodes": {"prior_refresh_steps": 5}}, r"expert iteration refreshes the priors between rounds"),
    ({**_EI, "expert_iteration": {"samples": 1}}, r"expert_iteration.samples=1 must be >= 2"),
    ({**_EI, "expert_iteration": {"temperature": 0}}, r"expert_iteration.temperature must be > 0"),
    ({**_EI, "expert_iteration": {"margin": -0.1}}, r"expert_iteration.margin=-0.1 is negative"),
    ({**_EI, "expert_iteration": {"k": 4}}, r"unknown key\(s\) expert_iteration.k"),
    ({"expert_iteration": {"rounds": 2}}, r"expert_iteration section applies to algorithm: expert_iteration only"),
    ({"evaluation": {"limit": 0}}, r"evaluation.limit=0 must be >= 1"),
    ({"evaluation": {"epochs": 0}}, r"evaluation.epochs=0 must be >= 1"),
    ({"evaluation": {"seed": -1}}, r"evaluation.seed=-1 must be >= 0"),
    ({"evaluation": {"seed": "x"}}, r"evaluation.seed"),
    ({"evaluation": {"every_round": True}}, r"evaluation.every_round evaluates the adapter after each "
                                            r"expert-iteration round; algorithm 'grpo' has no rounds"),
    ({"algorithm": "rloo", "evaluation": {"every_round": True}}, r"algorithm 'rloo' has no rounds"),
    ({**_EI, "evaluation": {"enabled": False, "every_round": True}},
     r"evaluation.every_round needs evaluation.enabled: true"),
    ({**_EI, "evaluation": {"every_round": "yes"}}, r"evaluation.every_round must be true or false"),
])
def test_bad_expert_iteration_configs_are_refused(base_dir: Path, tmp_path: Path, changes: dict[str, Any],
                                                  message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        train_config_from_dict(_raw(base_dir, tmp_path, **changes), "cfg.yaml")


def test_expert_iteration_config_with_grpo_keys_is_refused_by_the_cli_before_any_model_loads(
        base_dir: Path, tmp_path: Path) -> None:
    raw = _raw(base_dir, tmp_path, **_EI, trainer={"num_generations": 4})
    result = CliRunner().invoke(main, ["train", str(_write(tmp_path, raw))])
    assert result.exit_code == 1, result.output
    assert "trainer.num_generations: GRPO/RLOO key(s)" in result.output
    assert not (tmp_path / "out").exists()
    # the SFT keys an expert-iteration run does take are TRL's SFTConfig's, checked the same way
    raw = _raw(base_dir, tmp_path, **_EI, trainer={"not_an_sft_key": 1})
    result = CliRunner().invoke(main, ["train", str(_write(tmp_path, raw))])
    assert result.exit_code == 1 and "unknown trainer key(s) not_an_sft_key for SFTConfig" in result.output


def test_expert_iteration_plan(base_dir: Path, tmp_path: Path) -> None:
    config = train_config_from_dict(_raw(base_dir, tmp_path, **_EI, expert_iteration={"rounds": 2, "samples": 6}))
    assert config.evaluation.every_round is False
    assert train_config_from_dict(_raw(base_dir, tmp_path, **_EI, evaluation={"every_round": True})
                                  ).evaluation.every_round is True
    assert (config.expert_iteration.rounds, config.expert_iteration.samples, config.expert_iteration.margin) == (
        2, 6, 0.1)
    result = CliRunner().invoke(main, ["train", str(_write(tmp_path, _raw(base_dir, tmp_path, **_EI))), "--check"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("expert_iteration on")
    assert "3 round(s) x 4 samples" in result.output and "beta" not in result.output  # EI has no beta


def test_an_evaluation_set_that_shares_training_questions_is_refused(base_dir: Path, tmp_path: Path) -> None:
    from martingale_harness.training.prepare import prepare

    # evaluation.data = the training data itself: every held-out question is also a training question
    demo = REPO / "martingale_harness" / "tasks" / "forecast" / "demo" / "2022-06-01-demo.json"
    config = train_config_from_dict(_raw(base_dir, tmp_path, evaluation={"data": str(demo)}))
    with pytest.raises(ConfigError, match=r"evaluation.data .* shares \d+ question\(s\) with the training items"):
        prepare(config)


@pytest.mark.parametrize("mode", ["colocate", "server"])
def test_vllm_generation_passes_through_to_trl_where_vllm_is_installed(base_dir: Path, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch,
                                                                      mode: str) -> None:
    import importlib.util

    from martingale_harness.training.prepare import prepare, trainer_args

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: object() if name == "vllm" else real(name, *a))  # as if installed
    config = train_config_from_dict(_raw(base_dir, tmp_path, trainer={
        "use_vllm": True, "vllm_mode": mode, "max_steps": 1, "num_generations": 2, "per_device_train_batch_size": 2}))
    prepare(config)
    args = trainer_args(config, tmp_path)
    assert (args.use_vllm, args.vllm_mode) == (True, mode)


def test_the_gpu_examples_load_though_they_are_not_run_here() -> None:
    """The 32B recipe and the accelerate configs of docs/training.md: checked by loading, not by running."""
    from accelerate.commands.config.config_args import load_config_from_file
    from trl import GRPOConfig

    vllm = ["trainer.use_vllm=true", "trainer.vllm_mode=colocate", "trainer.vllm_tensor_parallel_size=2",
            "trainer.vllm_gpu_memory_utilization=0.5", "trainer.vllm_enable_sleep_mode=true"]
    for overrides in ([], vllm):  # as the file's header gives them
        recipe = load_train_config(REPO / "examples" / "recipe_32b.yaml", overrides)
        check_trainer_keys(recipe, GRPOConfig)
    t = recipe.trainer
    # 8 distinct priors per MS fit on 2 processes, as the file says
    assert 2 * t["per_device_train_batch_size"] * t["steps_per_generation"] // t["num_generations"] == 8
    zero3 = load_config_from_file(str(REPO / "examples" / "accelerate" / "deepspeed_zero3.yaml"))
    assert (zero3.distributed_type, zero3.num_processes, zero3.mixed_precision) == ("DEEPSPEED", 2, "bf16")
    assert zero3.deepspeed_config["zero_stage"] == 3 and zero3.deepspeed_config["zero3_save_16bit_model"]
    fsdp = load_config_from_file(str(REPO / "examples" / "accelerate" / "fsdp.yaml"))
    assert (fsdp.distributed_type, fsdp.num_processes) == ("FSDP", 2)
    assert fsdp.fsdp_config["fsdp_state_dict_type"] == "FULL_STATE_DICT"
    cpu = load_config_from_file(str(REPO / "examples" / "accelerate" / "cpu_2proc.yaml"))
    assert (cpu.distributed_type, cpu.num_processes) == ("MULTI_GPU", 2)
