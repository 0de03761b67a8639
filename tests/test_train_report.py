"""martingale train-report: the summary says whether the MS term gave any signal, from metrics.jsonl alone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from martingale_harness.cli import main
from martingale_harness.training.train_report import read_training_log, report_markdown


def _run_dir(tmp_path: Path, share_ms: float, no_signal: float, ms: list[float],
             unit: str = "step") -> Path:
    run = tmp_path / "run"
    run.mkdir()
    (run / "training_config.json").write_text(json.dumps({
        "algorithm": "grpo" if unit == "step" else "expert_iteration", "base_model": "base",
        "reward": {"ms_coef": 1.0, "info_term": "brier_gain", "info_coef": 0.5, "format_penalty": 1.0,
                   "extractor": "self_report"}}))
    lines: list[dict[str, Any]] = [{"event": "prior_pass", "step": 0, "priors": 16, "prior_failures": 0,
                                    "prior_mean": 0.5, "prior_sd": 0.2}]
    for i, value in enumerate(ms, 1):
        line = {"step": i, "martingale/batch_ms": value, "martingale/batch_ms_ci_low": value - 0.2,
                "martingale/batch_ms_ci_high": value + 0.2, "martingale/share_ms": share_ms,
                "martingale/share_info": 1 - share_ms, "martingale/share_format": 0.0,
                "martingale/no_signal_groups": no_signal, "martingale/readable_rate": 1.0,
                "martingale/batch_inertia": 0.1, "kl": 0.001 * i, "grad_norm": 0.5, "loss": 0.1}
        if unit == "round":
            line.update(event="round", round=i)
        lines.append(line)
    lines.append({"step": len(ms), "train_runtime": 12.0})  # TRL's summary line: no reward metrics
    (run / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return run


def test_a_run_whose_ms_term_gives_no_within_group_signal_says_so(tmp_path: Path) -> None:
    text = report_markdown(read_training_log(_run_dir(tmp_path, share_ms=0.02, no_signal=0.75, ms=[0.4] * 8)))
    assert "**The MS term gave (almost) no within-group signal**" in text
    assert "supplied 2.0% of the within-group reward variance" in text
    assert "75% of the groups had all-equal rewards" in text
    assert "Batch MS: +0.400 over the first 2 step(s), +0.400 over the last 2." in text
    assert "| MS share of within-group variance | 0.020 | 0.020 | 0.020 |" in text
    # every batch's interval [0.2, 0.6] excludes 0: the bias is detectable within a batch
    assert "excluded 0 in 100% of the steps." in text
    assert "| 0 | 16 | 0 | 0.500 | 0.200 |" in text  # the prior pass


def test_a_run_with_ms_signal_reports_its_share_and_the_ms_trend(tmp_path: Path) -> None:
    log = read_training_log(_run_dir(tmp_path, share_ms=0.6, no_signal=0.1, ms=[0.5, 0.4, 0.3, 0.2], unit="round"))
    assert log.unit == "round" and len(log.points) == 4
    text = report_markdown(log)
    assert "no within-group signal" not in text and "all-equal rewards" not in text
    assert "The MS term supplied on average 60.0% of the within-group reward variance" in text
    assert "+0.500 over the first 1 round(s), +0.200 over the last 1." in text
    assert "KL to the start policy (per token) at the end: 0.0040" in text
    assert "no adapter/martingale_card.json" in text
    # the last interval, [0.0, 0.4], touches 0: three of four exclude it
    assert "excluded 0 in 75% of the rounds." in text


def test_an_overshoot_past_zero_is_named(tmp_path: Path) -> None:
    text = report_markdown(read_training_log(_run_dir(tmp_path, share_ms=0.9, no_signal=0.0, ms=[0.5, -0.4],
                                                      unit="round")))
    assert "The batch MS crossed 0 with both ends clearly away from it: the policy overshot" in text


def test_a_held_out_result_unlike_the_training_batches_is_named(tmp_path: Path) -> None:
    run = _run_dir(tmp_path, share_ms=0.9, no_signal=0.0, ms=[0.5, 0.0], unit="round")
    (run / "adapter").mkdir()
    trained = {"model": "local/base+adapter", "log": "x.eval",
               "metrics": {"ms_slope": 0.45, "ms_slope_ci_low": 0.3, "ms_slope_ci_high": 0.6, "inertia": 0.2,
                           "extraction_failure_rate": 0.0}}
    (run / "adapter" / "martingale_card.json").write_text(json.dumps(
        {"evaluation": {"heldout_samples": 150, "trained": trained}}))
    text = report_markdown(read_training_log(run))
    assert "Held-out (150 samples): trained MS 0.450 [0.300, 0.600]" in text
    assert ("the last batch MS (sampled before the last round's fine-tuning) was +0.000, outside the trained "
            "adapter's held-out interval [0.300, 0.600]") in text
    # one round: its batch MS is the start policy's, so nothing is compared with the held-out result
    (tmp_path / "one").mkdir()
    one = _run_dir(tmp_path / "one", share_ms=0.9, no_signal=0.0, ms=[0.5], unit="round")
    (one / "adapter").mkdir()
    (one / "adapter" / "martingale_card.json").write_text(json.dumps(
        {"evaluation": {"heldout_samples": 150, "trained": trained}}))
    text = report_markdown(read_training_log(one))
    assert "disagree" not in text and "the only measurement of the trained policy" in text


def test_cli_writes_the_report_and_curves(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    run = _run_dir(tmp_path, share_ms=0.3, no_signal=0.2, ms=[0.3, 0.1])
    result = CliRunner().invoke(main, ["train-report", str(run)])
    assert result.exit_code == 0, result.output
    assert "# Training report" in result.output
    assert (run / "report" / "train_report.md").read_text().startswith("# Training report")
    assert (run / "report" / "training_curves.png").read_bytes().startswith(b"\x89PNG")


def test_cli_refuses_a_folder_that_is_not_a_training_run(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["train-report", str(tmp_path)])
    assert result.exit_code == 1 and "no metrics.jsonl" in result.output
    (tmp_path / "metrics.jsonl").write_text("not json\n")
    result = CliRunner().invoke(main, ["train-report", str(tmp_path)])
    assert result.exit_code == 1 and "metrics.jsonl:1: not a JSON line" in result.output
