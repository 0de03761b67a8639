"""A run in which nothing moved is said to be degenerate everywhere, never shown as MS = 0.0000 [0, 0].

``sim/inert`` states its prior at every turn (inertia 1), as SmolLM2-135M did at temperature 0.1.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from inspect_ai import eval as inspect_eval

from martingale_harness.cli import main
from martingale_harness.reporting import figures as plots
from martingale_harness.reporting.compare import compare_runs, comparison_table
from martingale_harness.reporting.leaderboard import leaderboard_document, leaderboard_rows, leaderboard_table
from martingale_harness.reporting.results import write_report
from martingale_harness.reporting.runs import Run, read_run

REASON = "updates do not vary (every one of the 12 beliefs equals the one before it)"


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("degenerate")
    paths = {}
    for kind in ("inert", "bayesian"):
        (log,) = inspect_eval("martingale/forecast", model=f"sim/{kind}",
                              task_args={"extractors": "self_report,logprob"}, limit=12, display="none",
                              log_dir=str(out / kind))
        assert log.status == "success", log.error
        paths[kind] = Path(log.location)
    return paths


@pytest.fixture(scope="module")
def inert(logs: dict[str, Path]) -> Run:
    return read_run(logs["inert"])


def test_the_log_holds_nan_for_ms_its_interval_and_tests(inert: Run) -> None:
    for extractor in ("self_report", "logprob"):
        m = inert.metrics[extractor]
        assert m["inertia"] == 1.0 and m["n_pairs"] == 12
        for key in ("ms_slope", "ms_slope_ci_low", "ms_slope_ci_high", "ms_slope_p", "ms_slope_p_robust", "ms_r2"):
            assert math.isnan(m[key]), (extractor, key, m[key])
        assert REASON in (inert.ms_reason(extractor) or "")


def test_the_reason_is_logged_where_inspect_shows_warnings(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="martingale_harness.scoring.scorer"):
        inspect_eval("martingale/forecast", model="sim/inert", limit=5, display="none", log_dir=str(tmp_path))
    assert "self_report: MS undefined: updates do not vary" in caplog.text


def test_summary_says_undefined_with_the_reason(logs: dict[str, Path]) -> None:
    result = CliRunner().invoke(main, ["summary", str(logs["inert"])])
    assert result.exit_code == 0, result.output
    assert "self_report: MS = nan (95% CI nan .. nan, OLS p = nan)" in result.output
    assert f"self_report: MS undefined: {REASON}" in result.output
    assert "0.0000 .. 0.0000" not in result.output


def test_report_table_and_json_say_na_with_the_reason(inert: Run, tmp_path: Path) -> None:
    table, files = write_report([inert], tmp_path, plots=False)
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in table.splitlines() if line.startswith("|")]
    ms_rows = [r for r in rows if r[4] in ("ms_slope", "ms_slope_ci_low", "ms_slope_ci_high")]
    assert len(ms_rows) == 6 and all(r[6] == "N/A" for r in ms_rows)
    assert f"MS N/A for martingale/forecast / self_report: {REASON}" in table
    entry = json.loads(files.results.read_text())["results"]["martingale/forecast"]
    assert entry["ms_slope,self_report"] == "N/A" and REASON in entry["ms_slope_undefined,self_report"]


def test_leaderboard_says_na_with_a_numbered_reason(logs: dict[str, Path]) -> None:
    rows = leaderboard_rows([read_run(p) for p in logs.values()])
    table = leaderboard_table(rows)
    inert_rows = [r for r in rows if r.model == "sim/inert"]
    assert all(math.isnan(r.ms) and REASON in (r.ms_reason or "") and not r.significant for r in inert_rows)
    assert table.count("N/A (") == 2 and f"MS N/A for sim/inert / martingale/forecast / logprob: {REASON}" in table
    assert all(r.ms_reason is None for r in rows if r.model == "sim/bayesian")
    document = leaderboard_document(rows)
    assert {r["ms"] for r in document["rows"] if r["model"] == "sim/inert"} == {"N/A"}


def test_compare_gives_no_difference_from_an_undefined_score(logs: dict[str, Path]) -> None:
    (row,) = compare_runs(read_run(logs["inert"]), read_run(logs["bayesian"]), extractors=["self_report"],
                          resamples=200)
    assert math.isnan(row.ms_a) and math.isfinite(row.ms_b)
    assert math.isnan(row.ms_difference.difference) and math.isnan(row.ms_difference.ci_low)
    assert row.ms_difference.reason and row.ms_difference.reason.startswith("MS A: updates do not vary")
    assert f"MS A: {REASON}" in comparison_table([row])


def test_agreement_calls_the_signs_undefined_and_says_why(logs: dict[str, Path]) -> None:
    # both slopes were exactly 0 before, and the signs of 0 and 0 "agreed"
    result = CliRunner().invoke(main, ["agreement", str(logs["inert"]), "--extractors", "self_report,logprob"])
    assert result.exit_code == 0, result.output
    assert "| slope signs agree | undefined |" in result.output
    assert f"MS of self_report undefined: {REASON}" in result.output
    assert f"MS of logprob undefined: {REASON}" in result.output


def test_figures_say_so_and_draw_no_scale_of_rounding_noise(inert: Run) -> None:
    fig = plots.update_vs_prior_figure([inert])
    for ax in fig.axes:
        assert "MS undefined (updates do not vary)" in ax.get_title()
        (note,) = [t.get_text() for t in ax.texts if t.get_gid() == plots.GID_NOTE]
        assert "updates do not vary" in note.replace("\n", " ")
        assert not [line for line in ax.lines if line.get_gid() == plots.GID_FIT]
        low, high = ax.get_ylim()
        assert high - low >= plots.MIN_UPDATE_SPAN - 1e-12 and low < 0 < high
        fig.canvas.draw()
        assert ax.yaxis.get_offset_text().get_text() == ""  # no "1e-17" above the axis
    calibration = plots.calibration_figure([inert])
    for ax in calibration.axes:
        prior, posterior = ([c for c in ax.collections if c.get_gid() == f"calibration_{name}"][0]
                            for name in ("prior", "posterior"))
        # the beliefs did not move, so every prior point lies exactly under a posterior point
        assert np.allclose(prior.get_offsets(), posterior.get_offsets())
        assert np.all(prior.get_facecolors()[:, 3] == 0)  # rings: the posterior's dot shows inside
        assert np.all(prior.get_sizes() > posterior.get_sizes())
