"""martingale report / compare: lm-eval's results layout and table, samples JSONL, paired comparisons."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from inspect_ai import eval as inspect_eval
from inspect_ai.model import get_model

from martingale_harness.reporting.compare import compare_runs, comparison_table
from martingale_harness.reporting.results import (
    HEADLINE_METRICS,
    results_document,
    results_table,
    run_keys,
    write_report,
)
from martingale_harness.reporting.runs import Run, read_run
from martingale_harness.stats import martingale as stats


def _run(log_dir: Path, model: object, **task_args: object) -> Run:
    log = inspect_eval("martingale/forecast", model=model, task_args=task_args, display="none", log_realtime=False,
                       log_dir=str(log_dir))[0]
    assert log.status == "success", log.error
    return read_run(log.location)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Run, Run]:
    """Two runs on the 64 demo samples: the exact Bayesian and an entrenched reasoner."""
    logs = tmp_path_factory.mktemp("logs")
    return (_run(logs, "sim/bayesian", extractors="self_report,logprob"),
            _run(logs, get_model("sim/entrenched", kappa=0.2), extractors="self_report,logprob"))


def _rows(table: str) -> list[list[str]]:
    """The body rows of a markdown table, cells stripped, the task and version columns left out (they are
    written on a run's first row only, so they move with the row order)."""
    return [[c.strip() for c in line.strip("|").split("|")][2:] for line in table.splitlines()[2:] if line.strip()]


def test_all_metrics_table_has_lm_evals_own_make_table_rows(runs: tuple[Run, Run]) -> None:
    lm_eval_utils = pytest.importorskip("lm_eval.utils")
    for doc in (results_document(list(runs)), json.loads(json.dumps(results_document(list(runs))))):
        ours, theirs = results_table(doc, all_metrics=True), lm_eval_utils.make_table(doc)
        assert ours.splitlines()[0].split("|")[1:3] == theirs.splitlines()[0].split("|")[1:3]
        # the same rows formatted the same way; ours lead with the headline metrics
        assert sorted(map(tuple, _rows(ours))) == sorted(map(tuple, _rows(theirs)))
        assert [r[2] for r in _rows(ours)][:len(HEADLINE_METRICS)] == list(HEADLINE_METRICS)
    # rows in the order the runs were given (here not alphabetical), where make_table sorts tasks
    given = [runs[1], runs[0]]
    table = results_table(results_document(given), all_metrics=True)
    keys = run_keys(given)
    assert keys != sorted(keys) and table.index(keys[0]) < table.index(keys[1])


def test_the_default_table_leads_with_the_headline_metrics(runs: tuple[Run, Run]) -> None:
    doc = results_document(list(runs))
    rows = _rows(results_table(doc))
    # per run, per extractor in the run's order: MS with its CI, n pairs, failure rate, inertia, Brier
    expected = [(extractor, metric) for run in runs for extractor in run.metrics for metric in HEADLINE_METRICS]
    assert [(r[0], r[2]) for r in rows] == expected
    assert len(_rows(results_table(doc, all_metrics=True))) > 4 * len(rows)


def test_results_json_has_lm_evals_layout(runs: tuple[Run, Run], tmp_path: Path) -> None:
    table, files = write_report(list(runs), tmp_path, plots=False)
    doc = json.loads(files.results.read_text())
    assert {"results", "configs", "versions", "n-shot", "higher_is_better", "n-samples", "config"} <= set(doc)
    keys = run_keys(list(runs))
    assert keys == ["martingale/forecast (sim/bayesian)", "martingale/forecast (sim/entrenched)"]
    entrenched = doc["results"][keys[1]]
    assert entrenched["ms_slope,self_report"] == pytest.approx(runs[1].metrics["self_report"]["ms_slope"])
    assert entrenched["ms_slope_stderr,self_report"] == pytest.approx(runs[1].metrics["self_report"]["ms_slope_se"])
    assert entrenched["brier_posterior,self_report"] == pytest.approx(runs[1].metrics["self_report"]["brier_posterior"])
    assert "ms_slope_se,self_report" not in entrenched and "ms_slope,logprob" in entrenched
    assert doc["n-samples"][keys[0]] == {"original": 64, "effective": 64}
    assert doc["higher_is_better"][keys[0]]["brier_posterior"] is False
    assert doc["configs"][keys[0]]["protocol"]["paradigm"] == "direct"
    assert files.table.read_text() == table and "|martingale/forecast (sim/bayesian)" in table


def test_samples_jsonl_has_one_line_per_sample_and_extractor(runs: tuple[Run, Run], tmp_path: Path) -> None:
    _, files = write_report([runs[1]], tmp_path, plots=False)
    lines = [json.loads(line) for line in files.samples[0].read_text().splitlines()]
    assert len(lines) == 2 * 64
    first = next(line for line in lines if line["filter"] == "self_report")
    sample = runs[1].samples["self_report"][0]
    assert (first["id"], first["prior"], first["posterior"]) == (sample.sample_id, sample.prior, sample.posterior)
    assert first["trajectory"] == [sample.prior, sample.posterior] and first["status"] == "ok"
    assert {"label", "question_id", "reasons", "metadata"} <= set(first)


def test_undefined_values_are_written_as_n_a(tmp_path: Path) -> None:
    run = _run(tmp_path, "sim/inert")  # never updates: the slope is not identified, so MS and its p are undefined
    doc = results_document([run])
    entry = doc["results"]["martingale/forecast"]
    assert np.isnan(run.metrics["self_report"]["ms_slope_p"])
    assert entry["ms_slope_p,self_report"] == "N/A" and entry["inertia,self_report"] == 1.0
    assert entry["ms_slope,self_report"] == "N/A" and "updates do not vary" in entry["ms_slope_undefined,self_report"]
    json.dumps(doc, allow_nan=False)


def test_compare_matches_samples_and_tests_the_differences(runs: tuple[Run, Run]) -> None:
    base, entrenched = runs
    rows = compare_runs(base, entrenched, extractors=["self_report"], resamples=500)
    (row,) = rows
    assert row.n_matched == 64
    assert row.ms_a == pytest.approx(base.metrics["self_report"]["ms_slope"])
    assert row.ms_b == pytest.approx(entrenched.metrics["self_report"]["ms_slope"])
    assert row.ms_difference.difference == pytest.approx(row.ms_b - row.ms_a)
    assert row.ms_difference.ci_low < row.ms_difference.difference < row.ms_difference.ci_high
    # the Brier difference and its test, computed independently
    a = [s for s in base.samples["self_report"] if s.label is not None]
    b = {s.sample_id: s for s in entrenched.samples["self_report"]}
    y = np.array([s.label for s in a])
    qa, qb = np.array([s.posterior for s in a]), np.array([b[s.sample_id].posterior for s in a])
    assert row.brier_difference == pytest.approx(np.mean((qb - y) ** 2) - np.mean((qa - y) ** 2))
    from scipy import stats as sps

    assert row.brier_p == pytest.approx(sps.ttest_rel((qa - y) ** 2, (qb - y) ** 2).pvalue)
    assert row.inertia_a == 0.0 and row.inertia_change == 0.0
    # each run's own robust interval, as its log computed it on the same (here: all) samples
    assert row.ms_a_ci == pytest.approx((base.metrics["self_report"]["ms_slope_ci_low"],
                                         base.metrics["self_report"]["ms_slope_ci_high"]))
    assert row.ms_b_ci == pytest.approx((entrenched.metrics["self_report"]["ms_slope_ci_low"],
                                         entrenched.metrics["self_report"]["ms_slope_ci_high"]))
    table = comparison_table(rows)
    assert "ΔMS (B−A)" in table and "95% CI A" in table and "Notes" not in table
    assert f"[{row.ms_b_ci[0]:.4f}, {row.ms_b_ci[1]:.4f}]" in table


def test_compare_split_by_a_metadata_field(runs: tuple[Run, Run]) -> None:
    rows = compare_runs(*runs, extractors=["self_report"], split_by="source", resamples=200)
    overall, *groups = rows
    assert overall.group is None and overall.n_matched == 64
    assert sum(r.n_matched for r in groups) == 64 and len(groups) >= 2
    table = comparison_table(rows, split_by="source")
    assert "source" in table
    assert f"{len(rows)} comparisons (1 extractor(s) × (all + {len(groups)} source groups))" in table
    assert "not adjusted for multiple comparisons" in table
    # a group too small for an interval says why instead of a bare N/A
    for r in groups:
        if r.n_matched < 3:
            assert any("need at least 3 pairs" in n for n in r.notes), r.notes
        if math.isnan(r.ms_difference.ci_low):
            assert r.notes, r


def test_compare_notes_explain_missing_intervals() -> None:
    from martingale_harness.reporting.compare import _compare
    from martingale_harness.reporting.runs import SampleBeliefs

    def sample(i: int, p: float, q: float, question: str) -> SampleBeliefs:
        return SampleBeliefs(sample_id=str(i), question_id=question, prior=p, posterior=q, trajectory=(p, q),
                             label=None, status="ok")

    two = [sample(0, 0.2, 0.3, "q0"), sample(1, 0.6, 0.5, "q1")]
    row = _compare("self_report", "g", [([s], [s]) for s in two], 200, 0)
    assert row.notes == ("MS A: need at least 3 pairs with both beliefs, have 2",
                         "MS B: need at least 3 pairs with both beliefs, have 2", "Brier: no labelled sample")
    one_question = [sample(i, 0.2 + 0.1 * i, 0.3, "q0") for i in range(4)]
    row = _compare("self_report", "g", [([s], [s]) for s in one_question], 200, 0)
    assert "CI of MS A: needs at least 3 questions, have 1" in row.notes
    assert "Notes" in comparison_table([row])


def test_paired_bootstrap_covers_the_true_difference() -> None:
    """Simulation with known truth: two runs on the same questions with slopes 0.0 and 0.2."""
    rng = np.random.default_rng(7)
    covered = 0
    for _ in range(200):
        prior = rng.uniform(0.2, 0.8, 300)
        shared = rng.normal(0, 0.03, 300)  # question effects common to both runs
        post_a = prior + shared + rng.normal(0, 0.03, 300)  # stays inside [0, 1]: no clipping bias
        post_b = prior + 0.2 * (prior - 0.5) + shared + rng.normal(0, 0.03, 300)
        ids = np.arange(300)
        d = stats.paired_slope_difference(prior, post_a, ids, prior, post_b, ids, resamples=300, seed=1)
        covered += d.ci_low < 0.2 < d.ci_high
    assert 0.90 <= covered / 200 <= 0.99


def test_report_and_compare_commands(runs: tuple[Run, Run], tmp_path: Path) -> None:
    from click.testing import CliRunner

    from martingale_harness.cli import main

    logs = [str(r.path) for r in runs]
    out = CliRunner().invoke(main, ["report", *logs, "--output-dir", str(tmp_path / "r")])
    assert out.exit_code == 0, out.output
    written = {p.stem.split("_")[0] for p in (tmp_path / "r").iterdir()}
    assert {"results", "samples", "update", "calibration", "delta"} <= written
    assert "|martingale/forecast (sim/bayesian)" in out.output
    out = CliRunner().invoke(main, ["compare", *logs, "--extractors", "self_report", "--resamples", "200"])
    assert out.exit_code == 0, out.output
    assert "|self_report|" in out.output and "ΔMS (B−A)" in out.output
    out = CliRunner().invoke(main, ["compare", *logs, "--extractors", "step_judge"])
    assert out.exit_code != 0 and "not in both runs" in out.output
    out = CliRunner().invoke(main, ["compare", *logs, "--split-by", "no_such_field"])
    assert out.exit_code != 0 and "no sample has the metadata field 'no_such_field'" in out.output


def test_sim_runs_carry_the_label_note_in_report_and_compare(runs: tuple[Run, Run], tmp_path: Path) -> None:
    from click.testing import CliRunner

    from martingale_harness.cli import main

    table, files = write_report(list(runs), tmp_path, plots=False)
    assert "simulated reasoners (sim/*), whose beliefs are not about the questions' real outcomes" in table
    assert files.table.read_text() == table
    out = CliRunner().invoke(main, ["compare", str(runs[0].path), str(runs[1].path)])
    assert out.exit_code == 0, out.output
    assert out.output.rstrip().endswith("the calibration figures test the code, not a model.")
    assert "Note: sim/" in out.output


def test_no_label_note_for_real_models() -> None:
    from dataclasses import replace

    from martingale_harness.reporting.runs import simulated_label_note

    real = Run(path=Path("a.eval"), task="martingale/forecast", model="openai/gpt-4o", version="1", task_args={},
               metadata={}, metrics={}, samples={})
    assert simulated_label_note([real]) is None
    assert simulated_label_note([replace(real, model="sim/bayesian"), real]) is not None
    assert simulated_label_note([replace(real, model="sim/bayesian", task="martingale/bayes")]) is None
