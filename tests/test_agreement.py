"""Agreement between two extraction pipelines on the same transcripts."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from inspect_ai import eval as inspect_eval
from inspect_ai.model import get_model
from scipy import stats as sps

from martingale_harness.cli import main
from martingale_harness.reporting.agreement import agreement
from martingale_harness.stats.martingale import martingale_score


def test_agreement_figures_match_references() -> None:
    rng = np.random.default_rng(3)
    p = rng.uniform(0.1, 0.9, 80)
    q = np.clip(p + 0.2 * (p - 0.5) + rng.normal(0, 0.05, 80), 0, 1)
    pb, qb = np.clip(p + rng.normal(0, 0.05, 80), 0, 1), np.clip(q + rng.normal(0, 0.05, 80), 0, 1)
    qb[:4] = np.nan  # four samples where only extractor b failed
    res = agreement("a", "b", p, q, pb, qb)
    ok = ~np.isnan(qb)
    assert res.ms_a.slope == pytest.approx(martingale_score(p, q).slope)
    assert res.ms_b.slope == pytest.approx(martingale_score(pb[ok], qb[ok]).slope)
    x, y = np.r_[p, q[ok]], np.r_[pb, qb[ok]]
    assert res.n_beliefs == 156
    assert res.pearson == pytest.approx(sps.pearsonr(x, y).statistic)
    assert res.spearman == pytest.approx(sps.spearmanr(x, y).statistic)
    assert res.mean_difference == pytest.approx(np.mean(x - y))
    assert res.only_one_succeeded == pytest.approx(4 / 80)
    assert res.signs_agree is True


def test_undefined_slopes_give_undefined_sign_agreement() -> None:
    res = agreement("a", "b", [0.2, 0.4], [0.3, 0.5], [0.2, 0.4], [0.3, 0.5])
    assert res.signs_agree is None and math.isnan(res.ms_a.slope)
    assert res.pearson == pytest.approx(1.0)  # four beliefs are enough for a correlation


def _judged_log(tmp_path: Path, noise: float) -> str:
    grader = get_model("sim/judge", noise=noise, memoize=False)
    log = inspect_eval("martingale/forecast", model="sim/entrenched", model_args={"kappa": 0.2},
                       model_roles={"grader": grader}, task_args={"extractors": "self_report,step_judge"},
                       display="none", log_realtime=False, log_dir=str(tmp_path / str(noise)))[0]
    assert log.status == "success" and log.location
    return log.location


def test_noisy_judge_agrees_less(tmp_path: Path) -> None:
    # both runs share one model cache: the noisy judge must not read the exact judge's cached replies
    exact = CliRunner().invoke(main, ["agreement", _judged_log(tmp_path, 0.0)])
    noisy_log = _judged_log(tmp_path, 0.1)
    noisy = CliRunner().invoke(main, ["agreement", noisy_log, "--extractors", "self_report,step_judge"])
    assert exact.exit_code == 0 and noisy.exit_code == 0, exact.output + noisy.output

    def pearson(output: str) -> float:
        return float(next(line for line in output.splitlines() if "Pearson" in line).split("|")[2])

    assert pearson(exact.output) == pytest.approx(1.0, abs=1e-6)
    assert 0.5 < pearson(noisy.output) < 0.99
    assert "| slope signs agree | yes |" in exact.output


def test_agreement_names_missing_extractors(tmp_path: Path) -> None:
    log = _judged_log(tmp_path, 0.0)
    out = CliRunner().invoke(main, ["agreement", log, "--extractors", "self_report,logprob"])
    assert out.exit_code != 0 and "no scores for logprob" in out.output
