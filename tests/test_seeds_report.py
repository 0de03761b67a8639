"""Several training seeds of one config (``martingale train --seeds``) and their summary (``train-report``).

The summary's statistics are checked against independent computations (``statistics``, scipy's t
interval); the runs are written by hand as ``martingale train`` writes them (card and metrics lines).
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from scipy import stats as scipy_stats

from martingale_harness.cli import main
from martingale_harness.errors import ConfigError, MartingaleError
from martingale_harness.training.seeds_report import read_seed_run, seed_run_dirs, summarise, verdict

# (seed, trained MS, ΔMS, ΔMS CI, inertia, failure rate)
SEEDS = [(0, -0.116, -0.687, (-0.951, -0.433), 0.208, 0.0),
         (1, 0.052, -0.519, (-0.790, -0.240), 0.251, 0.025),
         (2, 0.301, -0.450, (-0.930, 0.030), 0.198, 0.05)]
START = {"ms_slope": 0.571, "ms_slope_ci_low": 0.422, "ms_slope_ci_high": 0.721, "inertia": 0.342,
         "extraction_failure_rate": 0.0, "n_pairs": 120}


def _write_run(run: Path, seed: int, ms: float, delta: float, ci: tuple[float, float], inertia: float,
               failures: float, heldout_rounds: dict[int, dict[str, float]] | None = None, rounds: int = 1) -> Path:
    (run / "adapter").mkdir(parents=True)
    trained = {"ms_slope": ms, "ms_slope_ci_low": ms - 0.2, "ms_slope_ci_high": ms + 0.2, "inertia": inertia,
               "extraction_failure_rate": failures, "n_pairs": 120}
    card = {"seed": seed, "evaluation": {
        "heldout_samples": 120, "start": {"model": "local/base+organism", "log": "start.eval", "metrics": START},
        "trained": {"model": f"local/base+seed-{seed}", "log": f"trained-{seed}.eval", "metrics": trained},
        "comparison": {"n_matched": 120, "ms_difference": delta, "ms_difference_ci": list(ci)}}}
    (run / "adapter" / "martingale_card.json").write_text(json.dumps(card))
    (run / "training_config.json").write_text(json.dumps({
        "algorithm": "expert_iteration", "base_model": "base", "seed": seed,
        "reward": {"ms_coef": 1.0, "info_term": "update_magnitude", "info_coef": 0.5, "format_penalty": 1.0,
                   "extractor": "self_report"}}))
    lines: list[dict[str, Any]] = []
    for r in range(1, rounds + 1):
        lines.append({"event": "round", "round": r, "step": r, "martingale/batch_ms": 0.4,
                      "martingale/share_ms": 0.9, "martingale/readable_rate": 1.0})
        if heldout_rounds and r in heldout_rounds:
            lines.append({"event": "heldout", "round": r, "log": f"round-{r}.eval", "metrics": heldout_rounds[r]})
    (run / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return run


@pytest.fixture
def seeds_dir(tmp_path: Path) -> Path:
    for seed, ms, delta, ci, inertia, failures in SEEDS:
        _write_run(tmp_path / "recipe" / f"seed-{seed}", seed, ms, delta, ci, inertia, failures)
    return tmp_path / "recipe"


def test_mean_and_sd_across_seeds_are_the_sample_statistics(seeds_dir: Path) -> None:
    summary = summarise([read_seed_run(d) for d in seed_run_dirs([seeds_dir])])
    assert [r.seed for r in summary.runs] == [0, 1, 2]
    columns = {"ms_trained": [s[1] for s in SEEDS], "ms_difference": [s[2] for s in SEEDS],
               "inertia": [s[4] for s in SEEDS], "readable": [1 - s[5] for s in SEEDS]}
    for name, values in columns.items():
        spread = getattr(summary, name)
        assert spread.n == 3
        assert spread.mean == pytest.approx(statistics.mean(values), abs=1e-12)
        assert spread.sd == pytest.approx(statistics.stdev(values), abs=1e-12)  # n - 1 in the denominator
    deltas = columns["ms_difference"]
    low, high = scipy_stats.t.interval(0.95, len(deltas) - 1, loc=statistics.mean(deltas),
                                       scale=statistics.stdev(deltas) / len(deltas) ** 0.5)
    assert summary.ms_difference_mean_ci == pytest.approx((low, high), abs=1e-12)
    assert (summary.below_zero, summary.above_zero) == (2, 0)  # seed 2's interval reaches above 0
    assert summary.start_ms == [0.571]
    assert summary.shared_start
    assert "Toward 0 from the start's MS +0.571 means paired ΔMS below 0: 2 of 3 seed(s)" in verdict(summary)
    assert "lies below 0 and so do most seeds' own: the effect survives the seeds." in verdict(summary)
    assert "crossed 0" not in verdict(summary)  # the trained MS's mean, +0.079, is on the start's side


def test_a_mean_interval_across_zero_does_not_survive(tmp_path: Path) -> None:
    for seed, delta in ((0, -0.6), (1, 0.3)):
        _write_run(tmp_path / f"seed-{seed}", seed, 0.1, delta, (delta - 0.2, delta + 0.2), 0.2, 0.0)
    summary = summarise([read_seed_run(d) for d in seed_run_dirs([tmp_path])])
    assert summary.ms_difference.sd == pytest.approx(statistics.stdev([-0.6, 0.3]))
    assert "does not lie below 0: the effect does not survive the seeds" in verdict(summary)
    one = summarise([read_seed_run(tmp_path / "seed-0")])
    assert one.ms_difference.sd is None and "one seed with a comparison: no spread" in verdict(one)


@pytest.mark.parametrize(("deltas", "cis", "expected"), [
    # tight agreement across seeds, but no seed's own interval excludes 0: not established
    ((-0.05, -0.06, -0.055), ((-0.15, 0.05), (-0.16, 0.04), (-0.155, 0.045)),
     "lies below 0, but most seeds' own paired intervals include 0: the effect is not established"),
    # from a negative start, toward 0 is up
    ((0.4, 0.5, 0.45), ((0.2, 0.6), (0.3, 0.7), (0.25, 0.65)), "lies above 0 and so do most seeds' own: the effect "
                                                               "survives the seeds"),
])
def test_the_verdict_needs_the_seeds_own_intervals_and_the_direction_toward_0(
        tmp_path: Path, deltas: tuple[float, ...], cis: tuple[tuple[float, float], ...], expected: str) -> None:
    start = -0.5 if deltas[0] > 0 else 0.571
    for seed, (delta, ci) in enumerate(zip(deltas, cis, strict=True)):
        run = _write_run(tmp_path / f"seed-{seed}", seed, start + delta, delta, ci, 0.2, 0.0)
        card_file = run / "adapter" / "martingale_card.json"
        card = json.loads(card_file.read_text())
        card["evaluation"]["start"]["metrics"] = {**START, "ms_slope": start}
        card_file.write_text(json.dumps(card))
    text = verdict(summarise([read_seed_run(d) for d in seed_run_dirs([tmp_path])]))
    assert expected in text, text
    if start < 0:
        assert "Toward 0 from the start's MS -0.500 means paired ΔMS above 0: 3 of 3" in text


def test_an_overshoot_past_0_is_named(tmp_path: Path) -> None:
    for seed, delta in ((0, -0.9), (1, -1.0)):
        _write_run(tmp_path / f"seed-{seed}", seed, 0.571 + delta, delta, (delta - 0.2, delta + 0.2), 0.2, 0.0)
    text = verdict(summarise([read_seed_run(d) for d in seed_run_dirs([tmp_path])]))
    assert "The trained MS crossed 0 on average (mean -0.379): an overshoot" in text


def test_rounds_evaluated_held_out_are_summarised_per_round(tmp_path: Path) -> None:
    for seed, inertia_1 in ((0, 0.30), (1, 0.40)):
        _write_run(tmp_path / f"seed-{seed}", seed, 0.1, -0.4, (-0.6, -0.2), 0.55, 0.0, rounds=2,
                   heldout_rounds={1: {"ms_slope": 0.2 + seed, "inertia": inertia_1, "extraction_failure_rate": 0.1}})
    summary = summarise([read_seed_run(d) for d in seed_run_dirs([tmp_path])])
    assert sorted(summary.rounds) == [0, 1, 2]
    assert summary.rounds[0]["ms"].mean == pytest.approx(0.571) and summary.rounds[0]["ms"].sd == 0.0
    assert summary.rounds[1]["inertia"].mean == pytest.approx(0.35)
    assert summary.rounds[1]["inertia"].sd == pytest.approx(statistics.stdev([0.30, 0.40]))
    assert summary.rounds[1]["readable"].mean == pytest.approx(0.9)
    assert summary.rounds[2]["inertia"].mean == pytest.approx(0.55)  # the last round is the trained adapter


def test_train_report_on_the_seeds_folder_writes_each_report_and_the_summary(seeds_dir: Path) -> None:
    result = CliRunner().invoke(main, ["train-report", str(seeds_dir), "--no-plots"])
    assert result.exit_code == 0, result.output
    assert "| mean ± SD |" in result.output and "survives the seeds" in result.output
    for seed, *_ in SEEDS:
        assert (seeds_dir / f"seed-{seed}" / "report" / "train_report.md").is_file()
    written = json.loads((seeds_dir / "report" / "seeds_summary.json").read_text())
    assert [r["seed"] for r in written["runs"]] == [0, 1, 2]
    assert written["ms_difference"]["mean"] == pytest.approx(statistics.mean(s[2] for s in SEEDS))
    # the same runs named one by one give the same summary
    named = CliRunner().invoke(main, ["train-report", *(str(seeds_dir / f"seed-{s}") for s in (0, 1, 2)),
                                      "--no-plots", "--output-dir", str(seeds_dir / "again")])
    assert named.exit_code == 0, named.output
    assert json.loads((seeds_dir / "again" / "seeds_summary.json").read_text()) == written


def test_seed_folders_that_are_not_runs_are_refused(tmp_path: Path, seeds_dir: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(MartingaleError, match="neither a training run"):
        seed_run_dirs([tmp_path / "empty"])
    with pytest.raises(MartingaleError, match="given twice"):
        seed_run_dirs([seeds_dir, seeds_dir / "seed-0"])
    (seeds_dir / "seed-1" / "adapter" / "martingale_card.json").unlink()
    with pytest.raises(MartingaleError, match="did not finish"):
        read_seed_run(seeds_dir / "seed-1")
    result = CliRunner().invoke(main, ["train-report", str(tmp_path / "empty")])
    assert result.exit_code != 0 and "neither a training run" in result.output


def _train_config(tmp_path: Path, **changes: Any) -> Any:
    from martingale_harness.training.config import train_config_from_dict

    base = tmp_path / "base"
    base.mkdir(exist_ok=True)
    (base / "config.json").write_text("{}")
    return train_config_from_dict({"base_model": str(base), "output_dir": str(tmp_path / "out"), **changes})


def test_seed_configs_set_the_seed_and_a_folder_each_and_keep_the_evaluation_seed(tmp_path: Path) -> None:
    from martingale_harness.training.run import seed_configs

    config = _train_config(tmp_path, evaluation={"seed": 5})
    configs = seed_configs(config, [3, 0])
    assert [(c.seed, c.output_dir, c.evaluation.seed) for c in configs] == [
        (3, tmp_path / "out" / "seed-3", 5), (0, tmp_path / "out" / "seed-0", 5)]
    with pytest.raises(ConfigError, match="repeats a seed"):
        seed_configs(config, [1, 1])


def test_the_cli_refuses_bad_seed_lists_before_any_model_loads(tmp_path: Path) -> None:
    config = tmp_path / "train.yaml"
    base = tmp_path / "base"
    base.mkdir()
    (base / "config.json").write_text("{}")
    config.write_text(f"base_model: {base}\noutput_dir: {tmp_path / 'out'}\n")
    for seeds, message in (("0,x", "integers separated by commas"), ("1,1", "repeats a seed")):
        result = CliRunner().invoke(main, ["train", str(config), "--seeds", seeds, "--check"])
        assert result.exit_code == 2 and message in result.output, result.output
    both = CliRunner().invoke(main, ["train", str(config), "--seeds", "0,1", "--set", "seed=3", "--check"])
    assert both.exit_code != 0 and "both set the training seed" in both.output
    plan = CliRunner().invoke(main, ["train", str(config), "--seeds", "0,1", "--check"])
    assert plan.exit_code == 0, plan.output
    assert "2 seeds (0, 1)" in plan.output and not (tmp_path / "out").exists()


def _sim_log(config: Any, name: str, tmp_path: Path, **settings: Any) -> Any:
    """An evaluation of sim/bayesian on the config's held-out task (the task a training run evaluates)."""
    from inspect_ai import eval as inspect_eval

    from martingale_harness.training.evaluate import heldout_task

    values = {"seed": 0, "epochs": 1, "temperature": 1.0, "max_tokens": 40, "limit": 4, **settings}
    (log,) = inspect_eval(heldout_task(config, None, "self_report"), model="sim/bayesian", display="none",
                          log_dir=str(tmp_path / name), **values)
    return log


def test_a_start_log_is_reused_only_if_it_is_this_runs_start_evaluation(tmp_path: Path) -> None:
    """``evaluation.start_log``: the model, task, samples, prompts, seed, epochs, temperature and max_tokens
    must all match."""
    import dataclasses

    from martingale_harness.training.evaluate import reused_start_log

    config = _train_config(tmp_path, evaluation={"temperature": 1.0, "max_tokens": 40, "seed": 0})
    start = _sim_log(config, "start", tmp_path)
    trained = _sim_log(config, "trained", tmp_path, seed=1)  # the adapter's run: its samples are what must match
    assert reused_start_log(config, start.location, "sim/bayesian", trained, "self_report").location == start.location
    with pytest.raises(ConfigError, match=r"model 'sim/bayesian' \(this run: 'local/other'\)"):
        reused_start_log(config, start.location, "local/other", trained, "self_report")
    for name, change, message in (("seed", {"seed": 7}, r"seed 7 \(this run: 0\)"),
                                  ("epochs", {"epochs": 2}, r"epochs 2 \(this run: 1\)"),
                                  ("temperature", {"temperature": 0.5}, r"temperature 0.5 \(this run: 1.0\)"),
                                  ("tokens", {"max_tokens": 30}, r"max_tokens 30 \(this run: 40\)"),
                                  ("fewer", {"limit": 3}, "1 sample id")):
        other = _sim_log(config, name, tmp_path, **change)
        with pytest.raises(ConfigError, match=message):
            reused_start_log(config, other.location, "sim/bayesian", trained, "self_report")
    prompted = dataclasses.replace(config, system_prompt="prior_conforming")
    with pytest.raises(ConfigError, match="other prompts on 4 sample"):
        reused_start_log(config, _sim_log(prompted, "prompted", tmp_path).location, "sim/bayesian", trained,
                         "self_report")
    with pytest.raises(ConfigError, match="no logprob scores"):
        reused_start_log(config, start.location, "sim/bayesian", trained, "logprob")
    with pytest.raises(ConfigError, match="no such file"):
        reused_start_log(config, tmp_path / "missing.eval", "sim/bayesian", trained, "self_report")


def test_a_start_log_that_cannot_be_this_runs_is_refused_before_training(tmp_path: Path) -> None:
    from martingale_harness.training.prepare import prepare

    config = _train_config(tmp_path, evaluation={"temperature": 1.0, "max_tokens": 40})
    log = _sim_log(config, "start", tmp_path)
    with_log = _train_config(tmp_path, evaluation={"temperature": 1.0, "max_tokens": 40, "start_log": log.location})
    with pytest.raises(ConfigError, match=r"is not this run's start evaluation: model 'sim/bayesian' \(this run: "
                                          r"'local/.*base'\)"):
        prepare(with_log)
    prepare(_train_config(tmp_path, evaluation={"start_log": log.location, "start": False}))  # not used: not read


def test_model_strings_compare_by_the_files_they_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from martingale_harness.training.evaluate import _model_parts

    (tmp_path / "base").mkdir()
    (tmp_path / "runs" / "adapter").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    absolute = f"local/{tmp_path / 'base'}+{tmp_path / 'runs' / 'adapter'}"
    assert _model_parts("local/base+runs/adapter") == _model_parts("local/./base+runs/../runs/adapter") \
        == _model_parts(absolute)
    assert _model_parts("local/base+runs/adapter") != _model_parts("local/base")


@pytest.mark.slow
def test_train_seeds_evaluates_the_start_once_and_summarises(tiny_model: Path, tmp_path: Path) -> None:
    """``martingale train --seeds 0,1`` on the tiny model: a folder per seed, the start model evaluated by the
    first seed only (the second reuses its log), different adapters, and the seeds report at the end."""
    from safetensors.torch import load_file

    from martingale_harness.testing.tiny_model import digit_sequence_bias

    config = tmp_path / "ei.yaml"
    config.write_text(json.dumps({
        "base_model": str(tiny_model), "output_dir": str(tmp_path / "seeds"), "holdout_fraction": 0.05,
        "max_items": 6, "algorithm": "expert_iteration", "reward": {"info_term": "update_magnitude"},
        "episodes": {"prior_max_new_tokens": 4, "prior_temperature": 1.0},
        "expert_iteration": {"rounds": 1, "samples": 2, "margin": 0.0, "max_new_tokens": 4,
                             "generation_kwargs": {"sequence_bias": digit_sequence_bias(tiny_model)}},
        "evaluation": {"enabled": True, "max_tokens": 4, "temperature": 1.0, "seed": 3},
        "trainer": {"num_train_epochs": 1, "learning_rate": 1e-2, "per_device_train_batch_size": 4}}))
    result = CliRunner().invoke(main, ["train", str(config), "--seeds", "0,1"])
    assert result.exit_code == 0, result.output
    cards = [json.loads((tmp_path / "seeds" / f"seed-{s}" / "adapter" / "martingale_card.json").read_text())
             for s in (0, 1)]
    assert [c["seed"] for c in cards] == [0, 1]
    first, second = (c["evaluation"] for c in cards)
    assert second["start_reused"] and "start_reused" not in first
    assert second["start"]["log"] == first["start"]["log"] and second["start"] == first["start"]
    assert len(list((tmp_path / "seeds" / "seed-0" / "eval").glob("*.eval"))) == 2
    assert len(list((tmp_path / "seeds" / "seed-1" / "eval").glob("*.eval"))) == 1  # its adapter only
    assert "ms_difference" in second["comparison"] or "error" in second["comparison"]
    weights = [load_file(str(tmp_path / "seeds" / f"seed-{s}" / "adapter" / "adapter_model.safetensors"))
               for s in (0, 1)]
    assert any(not (weights[0][k] == weights[1][k]).all() for k in weights[0])  # the seeds trained differently
    summary = json.loads((tmp_path / "seeds" / "report" / "seeds_summary.json").read_text())
    assert [r["seed"] for r in summary["runs"]] == [0, 1] and "| mean ± SD |" in result.output
