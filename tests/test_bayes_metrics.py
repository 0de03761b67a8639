"""bayes_mae, update_ratio and base_rate_neglect: the statistics, the metric keys, and the sim agents.

The statistics are checked against statsmodels fits on the same pairs (points exactly, bootstrap
intervals against cluster-robust standard errors) and by simulation with a known truth; the sim
agents run the real ``martingale/bayes`` task end to end through inspect.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import statsmodels.api as sm
from inspect_ai import eval as inspect_eval
from inspect_ai.log import EvalLog
from inspect_ai.model import get_model
from inspect_ai.scorer import SampleScore, Score
from scipy.special import expit, logit

from martingale_harness.backends.sim_bayes import DRIFT_BAND, bayes_oracle, oracle_beliefs, revealed_counts
from martingale_harness.backends.simulated import SimAgent
from martingale_harness.extraction.transcript import TURNS_KEY
from martingale_harness.protocol.solver import evidence_prompt, posterior_prompt, prior_prompt
from martingale_harness.scoring.scorer import BAYES_KEYS, FAILURE_KEYS, METRIC_KEYS, martingale_metrics
from martingale_harness.stats import martingale as stats
from martingale_harness.tasks.bayes.dataset import GeneratorSettings, generate

# --- the statistics on constructed data --------------------------------------------------------


def _paths(rng: np.random.Generator, n: int, step_sd: float = 0.5) -> list[np.ndarray]:
    """Exact posterior paths b*_0..b*_T as log-odds random walks that stay well inside (0.01, 0.99)."""
    out = []
    for _ in range(n):
        steps = rng.normal(0.0, step_sd, int(rng.integers(2, 7)))
        path = rng.uniform(-2.0, 2.0) + np.concatenate([[0.0], np.cumsum(steps)])
        out.append(np.clip(path, -4.0, 4.0))
    return out


def test_update_ratio_is_the_through_origin_slope_of_the_log_odds_updates() -> None:
    rng = np.random.default_rng(1)
    exact_lo = _paths(rng, 200)
    stated, exact, dm, db, groups = [], [], [], [], []
    for i, e in enumerate(exact_lo):
        m = e[0] + 0.6 * (e - e[0]) + rng.normal(0, 0.3, e.size)  # conservative, with reporting noise
        m = np.clip(m, -4.5, 4.5)
        b = [float(v) for v in expit(m)]
        drop = rng.random(e.size) < 0.1  # failed readings leave gaps
        b = [None if d else v for v, d in zip(b, drop, strict=True)]
        stated.append(b)
        exact.append(expit(e))
        for t in range(1, e.size):
            if b[t] is not None and b[t - 1] is not None:
                dm.append(m[t] - m[t - 1])
                db.append(e[t] - e[t - 1])
                groups.append(i)
    result = stats.exact_bayes_metrics(stated, exact)
    fit = sm.OLS(np.array(dm), np.array(db)).fit(cov_type="cluster", cov_kwds={"groups": np.array(groups)})
    assert result.update_ratio == pytest.approx(fit.params[0], rel=1e-9)
    assert result.n_steps == len(dm)
    assert 0.5 < result.update_ratio < 0.7
    half = 1.96 * fit.bse[0]
    assert (result.update_ratio_ci_high - result.update_ratio_ci_low) / 2 == pytest.approx(half, rel=0.2)
    assert (result.update_ratio_ci_high + result.update_ratio_ci_low) / 2 == pytest.approx(fit.params[0], abs=half / 4)


def test_update_ratio_recovers_an_exact_scaling() -> None:
    rng = np.random.default_rng(2)
    exact_lo = _paths(rng, 50, step_sd=0.3)
    for c in (0.0, 0.5, 1.0, 1.4):
        stated = [list(expit(e[0] + c * (e - e[0]))) for e in exact_lo]
        assert all(0.01 < min(s) and max(s) < 0.99 for s in stated)  # no clipping in this construction
        result = stats.exact_bayes_metrics(stated, [expit(e) for e in exact_lo])
        assert result.update_ratio == pytest.approx(c, abs=1e-9)


def test_bayes_mae_is_the_pooled_mean_absolute_error() -> None:
    rng = np.random.default_rng(3)
    exact = [expit(e) for e in _paths(rng, 150)]
    stated: list[list[float | None]] = []
    errors, groups = [], []
    for i, e in enumerate(exact):
        b = np.clip(e + rng.normal(0, 0.05 + 0.1 * (i % 3), e.size), 0, 1)
        row: list[float | None] = [None if rng.random() < 0.1 else float(v) for v in b]
        stated.append(row)
        for v, target in zip(row, e, strict=True):
            if v is not None:
                errors.append(abs(v - target))
                groups.append(i)
    result = stats.exact_bayes_metrics(stated, exact, cluster=[f"q{i}" for i in range(len(exact))])
    fit = sm.OLS(np.array(errors), np.ones(len(errors))).fit(cov_type="cluster",
                                                             cov_kwds={"groups": np.array(groups)})
    assert result.bayes_mae == pytest.approx(np.mean(errors), rel=1e-12)
    assert result.n_beliefs == len(errors)
    half = 1.96 * fit.bse[0]
    assert (result.bayes_mae_ci_high - result.bayes_mae_ci_low) / 2 == pytest.approx(half, rel=0.2)


def test_base_rate_neglect_is_one_minus_the_logit_slope() -> None:
    rng = np.random.default_rng(4)
    priors = rng.uniform(0.05, 0.95, 300)
    first = expit(0.2 + 0.4 * logit(priors) + rng.normal(0, 0.4, priors.size))
    stated = [[float(f), 0.5] for f in first]
    exact = [[float(p), 0.6] for p in priors]
    result = stats.exact_bayes_metrics(stated, exact)
    fit = sm.OLS(logit(np.clip(first, 0.01, 0.99)), sm.add_constant(logit(priors))).fit(cov_type="HC1")
    assert result.base_rate_neglect == pytest.approx(1 - fit.params[1], rel=1e-9)
    assert 0.5 < result.base_rate_neglect < 0.7
    half = 1.96 * fit.bse[1]
    assert (result.base_rate_neglect_ci_high - result.base_rate_neglect_ci_low) / 2 == pytest.approx(half, rel=0.2)
    # stating the prior exactly: no neglect; stating 0.5 whatever the prior: complete neglect
    assert stats.exact_bayes_metrics(exact, exact).base_rate_neglect == pytest.approx(0.0, abs=1e-12)
    flat = stats.exact_bayes_metrics([[0.5, 0.5] for _ in priors], exact)
    assert flat.base_rate_neglect == pytest.approx(1.0, abs=1e-12)


def test_bootstrap_interval_covers_a_known_update_ratio() -> None:
    """Coverage by simulation: 150 data sets with a true ratio of 0.7 and heteroscedastic noise."""
    rng = np.random.default_rng(5)
    covered = 0
    reps = 150
    for _ in range(reps):
        exact_lo = _paths(rng, 60, step_sd=0.4)
        stated = []
        for e in exact_lo:
            noise = rng.normal(0, 0.1 + 0.3 * rng.random(), e.size)  # each question its own noise level
            stated.append(list(expit(e[0] + 0.7 * (e - e[0]) + noise)))
        result = stats.exact_bayes_metrics(stated, [expit(e) for e in exact_lo], resamples=300,
                                           seed=int(rng.integers(1e9)))
        covered += result.update_ratio_ci_low <= 0.7 <= result.update_ratio_ci_high
    assert 0.88 <= covered / reps <= 0.99


def test_beliefs_of_zero_and_one_are_clipped_in_log_odds() -> None:
    result = stats.exact_bayes_metrics([[0.0, 1.0, 1.0]], [[0.3, 0.999, 0.9999]])
    up = 2 * math.log(0.99 / 0.01)  # from 0.01 to 0.99 in log-odds
    bayes_first = math.log(0.99 / 0.01) - math.log(0.3 / 0.7)
    # the second step sits beyond the clip on both sides: it adds nothing to either sum
    assert result.update_ratio == pytest.approx(up * bayes_first / bayes_first**2, rel=1e-12)
    assert result.bayes_mae == pytest.approx((0.3 + 0.001 + 0.0001) / 3, rel=1e-12)


def test_degenerate_inputs_give_nan() -> None:
    empty = stats.exact_bayes_metrics([], [])
    assert math.isnan(empty.bayes_mae) and math.isnan(empty.update_ratio) and math.isnan(empty.base_rate_neglect)
    no_update = stats.exact_bayes_metrics([[0.2, 0.3]] * 4, [[0.3, 0.3]] * 4)
    assert math.isnan(no_update.update_ratio) and no_update.bayes_mae == pytest.approx(0.05)
    same_prior = stats.exact_bayes_metrics([[0.2, 0.3], [0.4, 0.5], [0.3, 0.2]], [[0.3, 0.4]] * 3)
    assert math.isnan(same_prior.base_rate_neglect)
    two = stats.exact_bayes_metrics([[0.2, 0.3], [0.4, 0.5]], [[0.3, 0.4], [0.5, 0.6]])
    assert not math.isnan(two.bayes_mae) and math.isnan(two.bayes_mae_ci_low)  # too few questions for a CI
    with pytest.raises(ValueError, match="2 stated beliefs but 3 exact"):
        stats.exact_bayes_metrics([[0.2, 0.3]], [[0.3, 0.4, 0.5]])
    with pytest.raises(ValueError, match="must lie in"):
        stats.exact_bayes_metrics([[0.2, 0.3]], [[0.3, 1.4]])


# --- the metric keys --------------------------------------------------------------------------


def _score(beliefs: list[float], stages: list[str], exact: list[float] | None, sample: int) -> SampleScore:
    trajectory = [{"stage": s, "value": b, "status": "ok"} for s, b in zip(stages, beliefs, strict=True)]
    meta = {"question_id": f"q{sample}", **({"exact_posteriors": exact} if exact is not None else {})}
    return SampleScore(score=Score(value={"prior": beliefs[0], "posterior": beliefs[-1], "label": 1.0},
                                   metadata={"trajectory": trajectory}),
                       sample_id=f"s{sample}", sample_metadata=meta)


def test_bayes_keys_appear_only_for_samples_with_exact_posteriors() -> None:
    compute = martingale_metrics()
    plain = [_score([0.2 + 0.1 * i, 0.3 + 0.05 * i], ["prior", "posterior"], None, i) for i in range(5)]
    assert set(compute(plain)) == set(METRIC_KEYS) | set(FAILURE_KEYS)
    # direct paradigm: the posterior turn is compared with b*_T, not b*_1
    exact = [[0.2 + 0.1 * i, 0.9, 0.3 + 0.1 * i] for i in range(5)]
    bayes = [_score([e[0], e[2]], ["prior", "posterior"], e, i) for i, e in enumerate(exact)]
    metrics = compute(bayes + plain)
    assert set(metrics) == set(METRIC_KEYS) | set(FAILURE_KEYS) | set(BAYES_KEYS)
    assert metrics["bayes_mae"] == pytest.approx(0.0, abs=1e-15)
    assert metrics["update_ratio"] == pytest.approx(1.0, rel=1e-12)
    # evidence paradigm, a belief missing: turn t against b*_t, pairs with the gap left out
    evidence = [_score([e[0], 0.5, e[2]], ["prior", "evidence", "posterior"], e, i) for i, e in enumerate(exact)]
    evidence[0].score.metadata["trajectory"][1]["value"] = None  # type: ignore[index]
    metrics = compute(evidence)
    assert metrics["bayes_mae"] == pytest.approx(0.4 * 4 / 14, rel=1e-12)
    with pytest.raises(ValueError, match="does not match its transcript"):
        compute([_score([0.2, 0.3, 0.4], ["prior", "evidence", "posterior"], [0.2, 0.3], 0)])


# --- the sim agents on the real task ----------------------------------------------------------


def test_oracle_reads_how_far_the_evidence_has_got() -> None:
    evidence = ["Draw 1: red.", "Draw 2: red.", "Draw 3: blue."]
    stepwise = [prior_prompt("Q?"), *(evidence_prompt(e, i, 3) for i, e in enumerate(evidence, 1))]
    assert revealed_counts(stepwise, evidence) == (0, 1, 2, 3)
    assert revealed_counts([prior_prompt("Q?"), posterior_prompt(evidence)], evidence) == (0, 3)
    assert bayes_oracle(SimAgent("bayesian"), [prior_prompt("Will it rain tomorrow?")]) is None


def test_entrenched_oracle_drifts_by_kappa_inside_the_band() -> None:
    """E[b_j - b_{j-1} | past] = kappa (b_{j-1} - 0.5) where the shifted mean needs no clipping."""
    agent = SimAgent("entrenched", kappa=0.2)
    before, after = [], []
    for p in generate(GeneratorSettings(n=2500, seed=6, min_items=3, max_items=6)):
        path = oracle_beliefs(agent, p.exact_posteriors, range(len(p.exact_posteriors)))
        before += path[:-1]
        after += path[1:]
    x, y = np.array(before), np.array(after)
    half_band = (0.5 - DRIFT_BAND[0]) / 1.2
    inside = np.abs(x - 0.5) <= half_band
    fit = stats.martingale_score(x[inside], y[inside])
    assert fit.slope == pytest.approx(0.2, abs=4 * fit.se_robust)
    assert fit.intercept_at_half == pytest.approx(0.0, abs=4 * fit.se_robust)
    assert inside.sum() > 5000


def _run(tmp_path: Path, model: str, **model_args: float) -> dict[str, float]:
    # small: inspect's own overhead per model call dominates these runs
    log: EvalLog = inspect_eval("martingale/bayes", model=get_model(model, **model_args),
                                task_args={"n": 30, "seed": 1, "max_items": 4}, display="none", log_realtime=False,
                                log_dir=str(tmp_path))[0]
    assert log.status == "success", log.error
    assert log.results is not None and log.samples
    metrics = {k: v.value for k, v in log.results.scores[0].metrics.items()}
    metrics["_samples"] = log.samples  # type: ignore[assignment]
    return metrics


def _kind(m: dict[str, float]) -> str:
    """Which reference reasoner produced these metrics, from the metrics alone."""
    kinds = []
    if m["bayes_mae"] < 0.01 and abs(m["update_ratio"] - 1) < 0.05:
        kinds.append("bayesian")
    if m["inertia"] == 1 and math.isnan(m["ms_slope"]) and m["update_ratio"] == 0:
        kinds.append("inert")
    if m["ms_slope_ci_low"] > 0 and m["bayes_mae"] > 0.03:
        kinds.append("entrenched")
    assert len(kinds) == 1, (kinds, m)
    return kinds[0]


def test_sim_agents_are_told_apart_by_the_bayes_metrics(tmp_path: Path) -> None:
    bayesian = _run(tmp_path, "sim/bayesian")
    inert = _run(tmp_path, "sim/inert")
    entrenched = _run(tmp_path, "sim/entrenched", kappa=0.2)

    assert bayesian["bayes_mae"] < 1e-4  # the stated beliefs are rounded to 4 decimals
    assert bayesian["update_ratio"] == pytest.approx(1.0, abs=1e-3)
    assert abs(bayesian["base_rate_neglect"]) < 1e-3
    assert bayesian["ms_slope_ci_low"] < 0 < bayesian["ms_slope_ci_high"]
    assert math.isnan(inert["ms_slope"]) and inert["update_ratio"] == 0 and inert["inertia"] == 1
    assert inert["bayes_mae"] > 0.08
    assert entrenched["ms_slope_ci_low"] > 0 and entrenched["bayes_mae"] > 100 * bayesian["bayes_mae"]
    assert [_kind(m) for m in (bayesian, inert, entrenched)] == ["bayesian", "inert", "entrenched"]
    for m in (bayesian, inert, entrenched):
        assert m["bayes_mae_ci_low"] <= m["bayes_mae"] <= m["bayes_mae_ci_high"]
        assert m["brier_prior"] == pytest.approx(bayesian["brier_prior"], abs=1e-6)  # all start from the prior

    # the harness's numbers are the oracle's own paths, read back through the transcript
    agent = SimAgent("entrenched", kappa=0.2)
    before, after, errors = [], [], []
    for sample in entrenched["_samples"]:  # type: ignore[attr-defined]
        exact = sample.metadata["exact_posteriors"]
        assert len(sample.store[TURNS_KEY]) == len(exact)
        path = oracle_beliefs(agent, exact, range(len(exact)))
        before += path[:-1]
        after += path[1:]
        errors += [abs(round(b, 4) - e) for b, e in zip(path, exact, strict=True)]
    assert entrenched["ms_slope"] == pytest.approx(stats.martingale_score(before, after).slope, abs=1e-3)
    assert entrenched["bayes_mae"] == pytest.approx(np.mean(errors), abs=1e-4)


def test_bayesian_sim_in_the_direct_paradigm_updates_on_all_the_evidence(tmp_path: Path) -> None:
    log = inspect_eval("martingale/bayes", model="sim/bayesian", task_args={"n": 20, "paradigm": "direct"},
                       display="none", log_realtime=False, log_dir=str(tmp_path))[0]
    assert log.status == "success" and log.results is not None
    metrics = {k: v.value for k, v in log.results.scores[0].metrics.items()}
    assert metrics["bayes_mae"] < 1e-4 and metrics["update_ratio"] == pytest.approx(1.0, abs=1e-3)
    assert metrics["n_pairs"] == 20
