"""Training in several processes: the prior pass split and gathered, the MS fitted on the gathered batch.

The slow test runs ``accelerate launch`` with two CPU processes (gloo) on the tiny random model. The
model writes "0.DD" under ``probability_sequence_bias``, so priors and posteriors are readable and
every generation batch has an MS.
"""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from inspect_ai.log import read_eval_log

from martingale_harness.backends.lora import adapter_fingerprint
from martingale_harness.errors import ConfigError
from martingale_harness.stats import martingale as stats
from martingale_harness.testing.tiny_model import probability_sequence_bias
from martingale_harness.training.config import train_config_from_dict
from martingale_harness.training.processes import Processes

pytest.importorskip("trl")
BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class _Rank(Processes):
    """Process ``index`` of ``count``, whose gather hands back what every rank computed (as gather_object)."""

    others: tuple[Any, ...] = ()

    def gather(self, value: Any) -> list[Any]:
        return [value if rank == self.index else self.others[rank] for rank in range(self.count)]


def test_map_split_gives_every_nth_item_to_a_process_and_puts_the_results_back_in_order() -> None:
    items = list(range(11))

    def square(part: list[int]) -> list[int]:
        return [i * i for i in part]

    assert Processes().map_split(items, square) == square(items)
    shares = [square(items[rank::3]) for rank in range(3)]
    seen: list[list[int]] = []

    def compute(part: list[int]) -> list[int]:
        seen.append(part)
        return square(part)

    for rank in range(3):
        assert _Rank(index=rank, count=3, others=tuple(shares)).map_split(items, compute) == square(items)
    # each process asks only its own share, padded to the same length (11 = 4 + 4 + 3)
    assert seen == [[0, 3, 6, 9], [1, 4, 7, 10], [2, 5, 8, 2]]


def test_expert_iteration_refuses_several_processes(tiny_model: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from martingale_harness.training import prepare

    config = train_config_from_dict({"base_model": str(tiny_model), "output_dir": str(tmp_path / "run"),
                                     "algorithm": "expert_iteration", "max_items": 8})
    monkeypatch.setattr(prepare, "current_processes", lambda: Processes(index=0, count=2))
    with pytest.raises(ConfigError, match="expert iteration runs in one process"):
        prepare.prepare(config)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_grpo_on_two_processes_fits_the_ms_on_the_gathered_batch_and_writes_one_adapter(
        tiny_model: Path, tmp_path: Path) -> None:
    bias = probability_sequence_bias(tiny_model)
    out = tmp_path / "run"
    per_device = 8
    config = {
        "base_model": str(tiny_model), "output_dir": str(out), "holdout_fraction": 0.05, "max_items": 8, "seed": 0,
        "reward": {"info_term": "update_magnitude"},
        "episodes": {"prior_max_new_tokens": 4, "prior_temperature": 1.0, "prior_refresh_steps": 1,
                     "prior_generation_kwargs": {"sequence_bias": bias}},
        "evaluation": {"enabled": True, "max_tokens": 4},
        "trainer": {"max_steps": 2, "num_generations": 4, "per_device_train_batch_size": per_device,
                    "max_completion_length": 4, "learning_rate": 1e-2, "generation_kwargs": {"sequence_bias": bias}},
    }
    config_file = tmp_path / "train.yaml"
    config_file.write_text(yaml.safe_dump(config))
    # the shipped two-process CPU config (docs/training.md), on a free port: other tests may run beside it
    accelerate_config = REPO / "examples" / "accelerate" / "cpu_2proc.yaml"
    command = [str(BIN / "accelerate"), "launch", "--config_file", str(accelerate_config),
               "--main_process_port", str(_free_port()), "-m", "martingale_harness.cli", "train", str(config_file)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-4000:]

    # every generation batch the reward scored holds both processes' completions
    batches = [json.loads(line) for line in (out / "reward_batches.jsonl").read_text().splitlines()]
    assert [b["batch"] for b in batches] == [0, 1]
    for b in batches:
        assert b["processes"] == 2 and len(b["items"]) == 2 * per_device == len(b["reward"])
        pairs = [(p, q) for p, q in zip(b["prior"], b["posterior"], strict=True) if p is not None and q is not None]
        assert b["n_pairs"] == len(pairs) >= 8
        # the reward's MS is the MS of the gathered batch
        assert b["batch_ms"] == pytest.approx(stats.martingale_score(*zip(*pairs, strict=True)).slope, abs=1e-12)

    # one metrics file, written once: each step and each prior pass appears one time
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [line for line in lines if "loss" in line]
    assert [line["step"] for line in steps] == [1, 2]
    assert [line["step"] for line in lines if line.get("event") == "prior_pass"] == [0, 1]
    assert all(line["priors"] == 8 for line in lines if line.get("event") == "prior_pass")  # all 8, gathered
    for line, b in zip(steps, batches, strict=True):
        assert line["martingale/batch_ms"] == pytest.approx(b["batch_ms"], rel=1e-6)  # TRL logs float32
        assert not math.isnan(line["grad_norm"]) and line["grad_norm"] > 0

    # one adapter, evaluated through local/<base>+<adapter> by the main process
    adapter = out / "adapter"
    assert (adapter / "adapter_model.safetensors").is_file()
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["adapter", "eval", "metrics.jsonl", "priors", "reward_batches.jsonl", "split.json", "trainer",
         "training_config.json"])
    card = json.loads((adapter / "martingale_card.json").read_text())
    trained = card["evaluation"]["trained"]
    assert trained["model"] == f"local/{tiny_model}+{adapter.resolve()}"
    assert trained["adapter"]["canary"]["canary"] == "passed"
    assert trained["adapter"]["fingerprint"] == adapter_fingerprint(adapter)
    assert read_eval_log(trained["log"], header_only=True).status == "success"
    assert result.stdout.count("wrote ") == 1  # the summary is printed once
