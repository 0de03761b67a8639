"""Expert iteration (algorithm: expert_iteration): best-of-K selection with the Martingale reward, then SFT.

The run tests use the tiny random model of martingale_harness.testing.tiny_model with sampling biased
toward digits and '.' (``expert_iteration.generation_kwargs``: ``sequence_bias``, as the GRPO test
does), so that some samples are readable and the groups' rewards differ.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from martingale_harness.testing.tiny_model import digit_sequence_bias
from martingale_harness.training.config import train_config_from_dict
from martingale_harness.training.expert_iteration import k3_kl, select_best

pytest.importorskip("trl")


def test_select_best_keeps_only_groups_whose_best_beats_the_mean_by_the_margin() -> None:
    rewards = [0.0, 1.0, 0.0, 0.0,      # best 1.0, mean 0.25: beats it by 0.75
               0.5, 0.5, 0.5, 0.5,      # all equal: nothing to learn
               0.2, 0.3, 0.25, 0.25,    # best beats the mean by 0.05 only
               -1.0, 2.0, 2.0, -1.0]    # a tie: the earlier sample
    groups = np.repeat(np.arange(4), 4)
    assert select_best(rewards, groups, margin=0.1) == [1, 13]
    assert select_best(rewards, groups, margin=0.0) == [1, 9, 13]
    assert select_best(rewards, groups, margin=1.5) == []


def test_k3_kl() -> None:
    assert k3_kl([[-1.0, -2.0]], [[-1.0, -2.0]]) == 0.0
    policy, reference = [[-0.5, -1.0], [-2.0]], [[-0.7, -0.4], [-2.5]]
    d = np.array([-0.2, 0.6, -0.5])
    assert k3_kl(policy, reference) == pytest.approx(float(np.mean(np.exp(d) - d - 1)))
    assert math.isnan(k3_kl([], []))


def _config(model: Path, out: Path, **changes: Any) -> Any:
    raw: dict[str, Any] = {
        "base_model": str(model), "output_dir": str(out), "holdout_fraction": 0.05, "max_items": 8,
        "algorithm": "expert_iteration", "reward": {"info_term": "update_magnitude"},
        "episodes": {"prior_max_new_tokens": 4, "prior_temperature": 1.0},
        "expert_iteration": {"rounds": 2, "samples": 4, "margin": 0.05, "max_new_tokens": 4,
                             "generation_kwargs": {"sequence_bias": digit_sequence_bias(model)}},
        "evaluation": {"enabled": False},
        "trainer": {"num_train_epochs": 1, "learning_rate": 1e-2, "per_device_train_batch_size": 4},
        **changes,
    }
    return train_config_from_dict(raw)


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.slow
def test_rounds_keep_only_above_margin_samples_and_fine_tune_on_exactly_those(
        tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch
    from safetensors.torch import load_file

    from martingale_harness.training import expert_iteration
    from martingale_harness.training.run import train

    trained_on: list[list[dict[str, Any]]] = []
    real = expert_iteration._fine_tune

    def spy(*args: Any) -> dict[str, float]:
        trained_on.append(args[-1])
        return real(*args)

    monkeypatch.setattr(expert_iteration, "_fine_tune", spy)
    result = train(_config(tiny_model, tmp_path / "run"), progress=False)

    rounds = [line for line in _lines(result.metrics_file) if line.get("event") == "round"]
    assert [r["round"] for r in rounds] == [1, 2]
    # the prior pass ran before each round (refresh_priors), and its answers are kept with how they were read
    passes = [line for line in _lines(result.metrics_file) if line.get("event") == "prior_pass"]
    assert [line["step"] for line in passes] == [0, 1]
    for line in passes:
        priors = _lines(tmp_path / "run" / "priors" / f"pass-{line['step']}.jsonl")
        assert len(priors) == 8 and sum(p["prior"] is None for p in priors) == line["prior_failures"]
        assert all(p["failure"] and p["reason"] for p in priors if p["prior"] is None)
        assert sum(line.get("prior_failure_kinds", {}).values()) == line["prior_failures"]
    for number, record in enumerate(rounds, 1):
        samples = _lines(tmp_path / "run" / "rounds" / f"round-{number}.jsonl")
        assert len(samples) == 8 * 4
        shown = {p["item"]: p["answer"] for p in _lines(tmp_path / "run" / "priors" / f"pass-{number - 1}.jsonl")}
        assert all(s["prior_answer"] == shown[s["item"]] for s in samples)  # the prior the prompt showed
        kept = [i for i, s in enumerate(samples) if s["kept"]]
        assert record["martingale/kept"] == len(kept) and record["martingale/kept_rate"] == len(kept) / 8
        for item in range(8):
            group = [s for s in samples if s["item"] == item]
            rewards = [s["reward"] for s in group]
            best_beats = max(rewards) - float(np.mean(rewards)) > 0.05
            assert sum(s["kept"] for s in group) == (1 if best_beats else 0)
            for s in group:
                if s["kept"]:
                    assert s["reward"] == max(rewards)
                assert s["reward"] == pytest.approx(s["reward_ms"] + s["reward_info"] + s["reward_format"])
        # the round's fine-tuning saw exactly the kept completions, each after its episode's prompt
        assert kept, "the digit bias should make some group's best clearly better than its mean"
        examples = trained_on[number - 1]
        posterior_turns, replayed = examples[:len(kept)], examples[len(kept):]
        assert [e["completion"][0]["content"] for e in posterior_turns] == [samples[i]["completion"] for i in kept]
        # replay_priors: then every readable prior of the round's pass, after the bare prior question
        pass_file = tmp_path / "run" / "priors" / f"pass-{number - 1}.jsonl"
        readable = [p for p in _lines(pass_file) if p["prior"] is not None]
        assert [e["completion"][0]["content"] for e in replayed] == [p["answer"] for p in readable]
        assert all([m["role"] for m in e["prompt"]] == ["user"] for e in replayed)
        assert record["martingale/replayed_priors"] == len(readable)
        assert record["sft_examples"] == len(kept) + len(readable) and record["grad_norm"] > 0
        for key in ("martingale/share_format", "martingale/no_signal_groups", "martingale/readable_rate", "kl"):
            assert key in record
    assert rounds[0]["kl"] == 0.0  # a new LoRA starts as the base: sampled from the start policy itself
    assert rounds[1]["kl"] > 0

    weights = load_file(str(result.adapter_dir / "adapter_model.safetensors"))
    assert any(float(v.abs().max()) > 0 for k, v in weights.items() if "lora_B" in k)  # B = 0 at the start
    card = json.loads((result.adapter_dir / "martingale_card.json").read_text())
    assert card["algorithm"] == "expert_iteration" and card["expert_iteration"]["samples"] == 4
    assert "beta" not in card

    # continuing the adapter: the KL is to a frozen copy of it, so it starts at 0, and only the trained
    # adapter is saved
    more = train(_config(tiny_model, tmp_path / "more", init_adapter=str(result.adapter_dir),
                         expert_iteration={"rounds": 1, "samples": 4, "margin": 0.05, "max_new_tokens": 4,
                                           "generation_kwargs": {"sequence_bias": digit_sequence_bias(tiny_model)}}),
                 progress=False)
    (record,) = [line for line in _lines(more.metrics_file) if line.get("event") == "round"]
    assert record["kl"] == pytest.approx(0.0, abs=1e-6)
    saved = load_file(str(more.adapter_dir / "adapter_model.safetensors"))
    assert not any("reference" in k for k in saved)
    assert saved.keys() == weights.keys()
    if record["martingale/kept"]:  # the trained adapter is the continued one, not its frozen copy
        assert any(not torch.equal(saved[k], weights[k]) for k in saved)


@pytest.mark.slow
def test_every_round_evaluates_the_rounds_before_the_last_and_samples_as_a_run_without_it(
        tiny_model: Path, tmp_path: Path) -> None:
    from martingale_harness.training.run import train
    from martingale_harness.training.train_report import heldout_rows, read_training_log, report_markdown

    evaluation = {"enabled": True, "max_tokens": 4, "temperature": 1.0, "limit": 4, "every_round": True}
    result = train(_config(tiny_model, tmp_path / "every", evaluation=evaluation), progress=False)
    lines = _lines(result.metrics_file)
    # round 1's adapter is evaluated after its round; round 2's evaluation is the run's own (the card's)
    assert [(x["event"], x["round"]) for x in lines if x.get("event") in ("round", "heldout")] == [
        ("round", 1), ("heldout", 1), ("round", 2)]
    (held,) = [x for x in lines if x.get("event") == "heldout"]
    assert Path(held["log"]).is_file() and Path(held["log"]).parent == tmp_path / "every" / "eval" / "round-1"
    assert 0 < held["metrics"]["n_draws"] <= 4
    round_adapter = tmp_path / "every" / "rounds" / "round-1" / "adapter"
    assert json.loads((round_adapter / "adapter_config.json").read_text())["base_model_name_or_path"] == str(
        tiny_model)
    assert not (tmp_path / "every" / "rounds" / "round-2").exists()
    assert result.evaluation is not None and {"start", "trained"} <= set(result.evaluation)
    log = read_training_log(tmp_path / "every")
    assert [(row.x, row.source) for row in heldout_rows(log)] == [(0, "start"), (1, "round"), (2, "trained")]
    text = report_markdown(log)
    assert "## Held-out per round" in text and "| 1 |" in text and "| 2 (trained) |" in text

    # the evaluation leaves the random state as it found it: the same seed samples the same round 2 without it
    train(_config(tiny_model, tmp_path / "plain"), progress=False)
    every, plain = (_lines(tmp_path / name / "rounds" / "round-2.jsonl") for name in ("every", "plain"))
    assert [s["completion"] for s in every] == [s["completion"] for s in plain]
    assert [s["prior_answer"] for s in every] == [s["prior_answer"] for s in plain]
