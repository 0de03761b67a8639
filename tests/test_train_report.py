"""martingale train-report: the summary says whether the MS term gave any signal, from metrics.jsonl alone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from martingale_harness.cli import main
from martingale_harness.stats.power import power_at, required_questions
from martingale_harness.training.diagnostics import slope_noise
from martingale_harness.training.train_report import (
    DEFAULT_EFFECT,
    batch_power_summary,
    heldout_rows,
    read_training_log,
    report_markdown,
    why_finding,
)


def _run_dir(tmp_path: Path, share_ms: float, no_signal: float, ms: list[float],
             unit: str = "step", kl: float | None = None) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    (run / "training_config.json").write_text(json.dumps({
        "algorithm": "grpo" if unit == "step" else "expert_iteration", "base_model": "base",
        "reward": {"ms_coef": 1.0, "info_term": "brier_gain", "info_coef": 0.5, "format_penalty": 1.0,
                   "extractor": "self_report"},
        **({"expert_iteration": {"rounds": len(ms)}} if unit == "round" else {})}))
    lines: list[dict[str, Any]] = [{"event": "prior_pass", "step": 0, "priors": 16, "prior_failures": 0,
                                    "prior_mean": 0.5, "prior_sd": 0.2}]
    for i, value in enumerate(ms, 1):
        line = {"step": i, "martingale/batch_ms": value, "martingale/batch_ms_ci_low": value - 0.2,
                "martingale/batch_ms_ci_high": value + 0.2, "martingale/share_ms": share_ms,
                "martingale/share_info": 1 - share_ms, "martingale/share_format": 0.0,
                "martingale/no_signal_groups": no_signal, "martingale/readable_rate": 1.0,
                "martingale/batch_inertia": 0.1, "kl": 0.001 * i if kl is None else kl, "grad_norm": 0.5,
                "loss": 0.1}
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


# --- held-out per round ----------------------------------------------------------------------------------------


def _heldout(ms: float, inertia: float, failures: float = 0.0, n_pairs: int = 40) -> dict[str, Any]:
    return {"ms_slope": ms, "ms_slope_ci_low": ms - 0.1, "ms_slope_ci_high": ms + 0.1, "inertia": inertia,
            "extraction_failure_rate": failures, "n_pairs": n_pairs}


def _card(run: Path, start: dict[str, Any] | None, trained: dict[str, Any],
          comparison: dict[str, Any] | None = None) -> None:
    (run / "adapter").mkdir(exist_ok=True)
    evaluation: dict[str, Any] = {"heldout_samples": 40, "trained": {"model": "local/base+adapter", "metrics": trained}}
    if start is not None:
        evaluation["start"] = {"model": "local/base", "metrics": start}
    if comparison is not None:
        evaluation["comparison"] = comparison
    (run / "adapter" / "martingale_card.json").write_text(json.dumps({"evaluation": evaluation}))


def _heldout_lines(run: Path, rounds: dict[int, dict[str, Any]]) -> None:
    with (run / "metrics.jsonl").open("a") as f:
        for number, metrics in rounds.items():
            f.write(json.dumps({"event": "heldout", "round": number, "log": f"eval/round-{number}/x.eval",
                                "metrics": metrics}) + "\n")


def test_the_held_out_table_takes_round_0_from_the_start_the_middle_rounds_from_their_lines_the_last_from_the_card(
        tmp_path: Path) -> None:
    run = _run_dir(tmp_path, share_ms=0.6, no_signal=0.0, ms=[0.3, 0.2, 0.1], unit="round")
    _card(run, start=_heldout(0.30, 0.10, failures=0.05), trained=_heldout(0.05, 0.15, n_pairs=38))
    _heldout_lines(run, {2: _heldout(0.12, 0.14, failures=0.25, n_pairs=30), 1: _heldout(0.20, 0.12)})
    log = read_training_log(run)
    assert [(row.x, row.source) for row in heldout_rows(log)] == [(0, "start"), (1, "round"), (2, "round"),
                                                                  (3, "trained")]
    text = report_markdown(log)
    assert "## Held-out per round" in text
    assert "| 0 (start) | 0.300 [0.200, 0.400] | 0.100 | 0.950 | 40 |" in text
    assert "| 1 | 0.200 [0.100, 0.300] | 0.120 | 1.000 | 40 |" in text
    assert "| 2 | 0.120 [0.020, 0.220] | 0.140 | 0.750 | 30 |" in text
    assert "| 3 (trained) | 0.050 [-0.050, 0.150] | 0.150 | 1.000 | 38 |" in text
    assert ("Held-out inertia stayed within +0.10 of the start's (round 0: 0.100, round 1: 0.120, round 2: 0.140, "
            "round 3: 0.150): no inertia trap.") in text


def test_a_round_whose_evaluation_failed_is_said_and_left_out_of_the_rows(tmp_path: Path) -> None:
    from martingale_harness.training.seeds_report import read_seed_run

    run = _run_dir(tmp_path, share_ms=0.6, no_signal=0.0, ms=[0.3, 0.2, 0.1], unit="round")
    _card(run, start=_heldout(0.30, 0.10), trained=_heldout(0.05, 0.15))
    _heldout_lines(run, {2: _heldout(0.12, 0.14)})
    with (run / "metrics.jsonl").open("a") as f:
        f.write(json.dumps({"event": "heldout", "round": 1, "error": "the adapter changed nothing"}) + "\n")
    log = read_training_log(run)
    assert [row.x for row in heldout_rows(log)] == [0, 2, 3]
    assert "- round 1: the held-out evaluation failed: the adapter changed nothing" in report_markdown(log)
    assert sorted(read_seed_run(run).rounds) == [0, 2, 3]


def test_with_the_card_alone_the_table_has_the_start_and_the_last_round(tmp_path: Path) -> None:
    run = _run_dir(tmp_path, share_ms=0.6, no_signal=0.0, ms=[0.3, 0.2], unit="round")
    _card(run, start=_heldout(0.30, 0.10), trained=_heldout(0.10, 0.12))
    text = report_markdown(read_training_log(run))
    table = text.split("## Held-out per round")[1].split("##")[0]
    assert [line.split("|")[1].strip() for line in table.splitlines() if line.startswith("| ")][1:] == [
        "0 (start)", "2 (trained)"]
    # no card at all: no table, no inertia finding
    (tmp_path / "bare").mkdir()
    bare = report_markdown(read_training_log(_run_dir(tmp_path / "bare", 0.6, 0.0, [0.3, 0.2], unit="round")))
    assert "## Held-out per" not in bare and "inertia trap" not in bare.lower()


@pytest.mark.parametrize(("inertias", "trap"), [
    ([0.20, 0.40, 0.25], "rose from 0.200 (start) to 0.400 (round 1), more than 0.10 above the start"),  # then fell
    ([0.20, 0.25, 0.45], "rose from 0.200 (start) to 0.450 (round 2), more than 0.10 above the start"),
    ([0.20, 0.29, 0.28], None),
    ([0.50, 0.10, 0.05], None),  # inertia falling is no trap
])
def test_the_inertia_trap_is_named_when_held_out_inertia_rises_more_than_0_10(
        tmp_path: Path, inertias: list[float], trap: str | None) -> None:
    run = _run_dir(tmp_path, share_ms=0.6, no_signal=0.0, ms=[0.3, 0.2], unit="round")
    _card(run, start=_heldout(0.3, inertias[0]), trained=_heldout(0.1, inertias[2]))
    _heldout_lines(run, {1: _heldout(0.2, inertias[1])})
    text = report_markdown(read_training_log(run))
    each = ", ".join(f"round {r}: {v:.3f}" for r, v in enumerate(inertias))
    if trap:
        assert f"**Inertia trap**: held-out inertia {trap} ({each}): the MS term is being met by not updating." in text
        assert "stayed within" not in text
    else:
        assert "Inertia trap" not in text
        assert f"Held-out inertia stayed within +0.10 of the start's ({each}): no inertia trap." in text


# --- the batch slope's power --------------------------------------------------------------------------------------


def _simulated(episodes: int, draws: int, residual: float, seed: int = 0, within: float = 0.0,
               spread: float = 0.2, slope: float = 0.1) -> tuple[list[int], list[float], list[float]]:
    """A batch with known parts: priors of SD ``spread``, updates ``slope``·(p − 0.5) + an episode part
    (SD ``residual``) + a draw part (SD ``within``)."""
    rng = np.random.default_rng(seed)
    priors = rng.normal(0.5, spread, episodes)
    items = np.repeat(np.arange(episodes), draws)
    p = priors[items]
    q = p + slope * (p - 0.5) + rng.normal(0, residual, episodes)[items] + rng.normal(0, within, p.size)
    return items.tolist(), p.tolist(), q.tolist()


def _write_batches(run: Path, *batches: tuple[list[int], list[Any], list[Any]]) -> None:
    (run / "reward_batches.jsonl").write_text("".join(
        json.dumps({"batch": i, "processes": 1, "items": items, "prior": prior, "posterior": posterior})
        + "\n" for i, (items, prior, posterior) in enumerate(batches)))


def test_slope_noise_recovers_the_simulated_sds() -> None:
    items, prior, posterior = _simulated(episodes=2000, draws=4, residual=0.10, within=0.15, seed=3)
    noise = slope_noise(items, prior, posterior)
    assert noise is not None and (noise.episodes, noise.draws) == (2000, 4)
    assert noise.sd_prior == pytest.approx(0.20, rel=0.05)
    assert noise.sd_delta == pytest.approx(float(np.hypot(0.10, 0.15)), rel=0.05)
    assert noise.sd_within == pytest.approx(0.15, rel=0.05)
    assert slope_noise([0, 1], [0.2, 0.4], [0.3, 0.5]) is None  # under 3 episodes: no slope
    assert slope_noise([0, 1, 2], [0.5, 0.5, 0.5], [0.3, 0.6, 0.5]) is None  # equal priors: no slope


def test_the_batch_power_is_power_at_of_the_batchs_own_numbers(tmp_path: Path) -> None:
    run = _run_dir(tmp_path, share_ms=0.6, no_signal=0.0, ms=[0.3, 0.2], unit="round")
    items, prior, posterior = _simulated(episodes=12, draws=4, residual=0.1, within=0.05, seed=1)
    prior_read: list[float | None] = list(prior)
    posterior_read: list[float | None] = list(posterior)
    posterior_read[5] = None  # an unreadable posterior and an unreadable prior drop out of the pairs
    prior_read[9] = posterior_read[9] = None
    _write_batches(run, (items, prior_read, posterior_read))
    _card(run, start=_heldout(-0.25, 0.1), trained=_heldout(-0.2, 0.1))
    # the same numbers by hand
    keep = [i for i in range(len(items)) if prior_read[i] is not None and posterior_read[i] is not None]
    p = np.array([prior[i] for i in keep])
    q = np.array([posterior[i] for i in keep])
    episode = np.array([items[i] for i in keep])
    firsts = [p[episode == e][0] for e in np.unique(episode)]
    sd_prior = float(np.std(firsts, ddof=1))
    design = np.column_stack([np.ones_like(p), p])
    fitted = design @ np.linalg.lstsq(design, q - p, rcond=None)[0]
    sd_delta = float(np.sqrt(np.sum((q - p - fitted) ** 2) / (p.size - 2)))
    within = sum(float(np.sum((q[episode == e] - q[episode == e].mean()) ** 2)) for e in np.unique(episode))
    sd_within = float(np.sqrt(within / (p.size - 12)))
    expected = power_at(12, 0.25, sd_prior, sd_delta, draws=round(p.size / 12), sd_within=sd_within)
    needed = required_questions(0.25, sd_prior, sd_delta, draws=round(p.size / 12), sd_within=sd_within).n

    log = read_training_log(run)
    summary = batch_power_summary(log)
    assert summary is not None and (summary.batches, summary.episodes, summary.draws) == (1, 12, 4)
    assert (summary.sd_prior, summary.sd_delta, summary.sd_within) == pytest.approx((sd_prior, sd_delta, sd_within))
    assert summary.effect == 0.25 and summary.power == pytest.approx(expected) and summary.needed == needed
    text = report_markdown(log)
    assert (f"At 12 episodes × 4 draws the batch slope has power {expected:.2f} to detect MS = 0.250 (the start "
            f"model's held-out |MS|); it would need {needed} episodes for 80%") in text
    assert f"| power to detect MS = 0.250 | {expected:.3f} |" in text
    assert f"| episodes for 80% power | {needed} |" in text


def test_expert_iteration_rounds_are_its_batches_and_the_default_effect_applies_without_a_start(
        tmp_path: Path) -> None:
    run = _run_dir(tmp_path, share_ms=0.6, no_signal=0.0, ms=[0.3, 0.2], unit="round")
    (run / "rounds").mkdir()
    for number, seed in ((1, 1), (2, 2), (10, 3)):
        items, prior, posterior = _simulated(episodes=8, draws=4, residual=0.1, seed=seed)
        (run / "rounds" / f"round-{number}.jsonl").write_text("".join(
            json.dumps({"item": i, "prior": a, "posterior": b, "completion": "0.5", "kept": False}) + "\n"
            for i, a, b in zip(items, prior, posterior, strict=True)))
    log = read_training_log(run)
    assert len(log.batches) == 3 and len(log.batches[0]["items"]) == 32
    summary = batch_power_summary(log)
    assert summary is not None and summary.effect == DEFAULT_EFFECT == 0.1
    powers = []
    for batch in log.batches:
        noise = slope_noise(batch["items"], batch["prior"], batch["posterior"])
        assert noise is not None
        powers.append(power_at(noise.episodes, 0.1, noise.sd_prior, noise.sd_delta, draws=noise.draws,
                               sd_within=noise.sd_within))
    assert summary.power == pytest.approx(float(np.median(powers)))
    assert "(the default: the smallest MS worth training away)" in report_markdown(log)


# --- why MS did (not) move ------------------------------------------------------------------------------------------

_NOT_MOVED = {"n_matched": 40, "ms_difference": -0.02, "ms_difference_ci": [-0.1, 0.06]}
_MOVED = {"n_matched": 40, "ms_difference": -0.25, "ms_difference_ci": [-0.35, -0.15]}


@pytest.mark.parametrize(("small_batch", "share_ms", "kl", "comparison", "expected"), [
    (True, 0.6, 0.05, _NOT_MOVED, ["**Why MS did not move** (paired held-out ΔMS (trained − start) -0.020 "
                                   "[-0.100, 0.060] includes 0): the numbers support (a) the batch MS is too small "
                                   "to detect at this batch size (power "]),
    (False, 0.02, 0.05, _NOT_MOVED, ["the numbers support (b) the MS term gives little within-group signal (reward "
                                     "shape) (MS share 2.0% < 10%)."]),
    (False, 0.6, 0.001, _NOT_MOVED, ["the numbers support (c) the policy barely moved (gradient/KL too small) "
                                     "(final KL 0.0010 < 0.005, mean gradient norm 0.5)."]),
    (True, 0.02, 0.001, _NOT_MOVED, ["the numbers support (a) the batch MS", "; (b) the MS term gives little",
                                     "; (c) the policy barely moved"]),
    (False, 0.6, 0.05, _NOT_MOVED, ["**Why MS did not move** (paired held-out ΔMS (trained − start) -0.020 "
                                    "[-0.100, 0.060] includes 0): none of the three (batch-slope power 1.00 ≥ 0.5, "
                                    "MS share 60.0% ≥ 10%, final KL 0.0500 ≥ 0.005, mean gradient norm 0.5)."]),
    (False, 0.6, 0.05, _MOVED, ["**Why MS moved** (paired held-out ΔMS (trained − start) -0.250 [-0.350, -0.150] "
                                "excludes 0): none of the three obstacles held (batch-slope power 1.00"]),
    (False, 0.02, 0.05, None, ["**Why MS moved** (held-out MS +0.300 at the start, +0.050 [-0.050, 0.150] trained: "
                               "the start's value lies outside the trained interval): it moved although (b)"]),
])
def test_the_why_finding_names_every_explanation_that_holds_and_none_when_none_does(
        tmp_path: Path, small_batch: bool, share_ms: float, kl: float, comparison: dict[str, Any] | None,
        expected: list[str]) -> None:
    run = _run_dir(tmp_path, share_ms=share_ms, no_signal=0.0, ms=[0.3, 0.2], kl=kl)
    # a small noisy batch (4 episodes) or a large clean one (200) for MS = 0.3
    _write_batches(run, _simulated(4, 2, residual=0.3, seed=4) if small_batch else
                   _simulated(200, 4, residual=0.02, seed=4))
    _card(run, start=_heldout(0.3, 0.1), trained=_heldout(0.05, 0.1), comparison=comparison)
    log = read_training_log(run)
    summary = batch_power_summary(log)
    assert summary is not None and (summary.power < 0.5) == small_batch
    finding = why_finding(log)
    for part in expected:
        assert part in finding
    text = report_markdown(log)
    assert f"- {finding}" in text.split("## What the diagnostics say")[1]
    holds = sum(f"({x}) " in finding for x in "abc")
    assert holds == small_batch + (share_ms < 0.1) + (kl < 0.005)


def test_without_batches_kl_or_card_the_why_finding_says_what_it_could_not_assess(tmp_path: Path) -> None:
    run = _run_dir(tmp_path, share_ms=0.6, no_signal=0.0, ms=[0.3, 0.2])
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    (run / "metrics.jsonl").write_text("".join(json.dumps({k: v for k, v in x.items() if k != "kl"}) + "\n"
                                               for x in lines))
    finding = why_finding(read_training_log(run))
    assert finding == ("**Why MS did (not) move** (no held-out start and trained evaluation to compare: whether it "
                       "moved is not known): none of the three (MS share 60.0% ≥ 10%). Not assessed: (a) (no batch "
                       "with 3 episodes of readable pairs and varying priors), (c) (no KL logged).")


def test_a_one_round_expert_iteration_has_no_kl_of_a_trained_policy_to_judge(tmp_path: Path) -> None:
    """Round r's KL is measured on its samples before its fine-tuning, so round 1's 0 says nothing about (c)."""
    run = _run_dir(tmp_path, share_ms=0.6, no_signal=0.0, ms=[0.3], unit="round", kl=0.0)
    finding = why_finding(read_training_log(run))
    assert "(c) the policy barely moved" not in finding
    assert "Not assessed:" in finding and "a one-round run has none" in finding
    two = tmp_path / "two"
    two.mkdir()
    run = _run_dir(two, share_ms=0.6, no_signal=0.0, ms=[0.3, 0.2], unit="round", kl=0.001)
    assert "(c) the policy barely moved (gradient/KL too small) (final KL 0.0010" in why_finding(read_training_log(run))


def test_curves_draw_intervals_that_do_not_hold_their_point(tmp_path: Path) -> None:
    """A percentile bootstrap interval need not contain its estimate; matplotlib refuses negative error bars."""
    from martingale_harness.training.train_report import write_train_report

    run = _run_dir(tmp_path, share_ms=0.6, no_signal=0.0, ms=[0.3], unit="round")
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    for line in lines:
        if line.get("event") == "round":
            line["martingale/batch_ms_ci_low"] = 0.35  # above the point
    (run / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    _card(run, start={**_heldout(0.30, 0.10), "ms_slope_ci_high": 0.25}, trained=_heldout(0.05, 0.15))
    _, files = write_train_report(run)
    assert files[1].read_bytes().startswith(b"\x89PNG")
