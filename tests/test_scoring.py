"""Dataset-level metrics: keys, exclusion of failed extractions, degenerate inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from martingale_harness.scoring.scorer import METRIC_KEYS, summarize
from martingale_harness.stats.martingale import brier, martingale_score


def test_failed_beliefs_are_excluded_and_counted() -> None:
    rng = np.random.default_rng(0)
    prior = list(rng.uniform(0.1, 0.9, 50))
    posterior = [min(1.0, p + 0.05 + 0.02 * (p - 0.5)) for p in prior]  # updates that vary: a defined slope
    label = [float(i % 2) for i in range(50)]
    prior[3] = None
    posterior[7] = None
    posterior[8] = float("nan")
    m = summarize(prior, posterior, label, cluster=list(range(50)))
    assert set(m) == set(METRIC_KEYS)
    keep = [i for i in range(50) if i not in (3, 7, 8)]
    ref = martingale_score([prior[i] for i in keep], [posterior[i] for i in keep])
    assert m["n_pairs"] == 47
    assert m["extraction_failure_rate"] == pytest.approx(3 / 50)
    assert m["ms_slope"] == pytest.approx(ref.slope)
    assert m["ms_slope_ci_low"] == pytest.approx(ref.ci_low)
    assert m["mean_delta"] == pytest.approx(0.05, abs=1e-3)
    assert m["brier_prior"] == pytest.approx(brier([prior[i] for i in keep], [label[i] for i in keep]))


def test_unlabelled_samples_count_for_ms_not_brier() -> None:
    prior = [0.2, 0.4, 0.6, 0.8]
    posterior = [0.1, 0.5, 0.7, 0.9]
    m = summarize(prior, posterior, [None, 1.0, None, 0.0], cluster=["a", "b", "c", "d"])
    assert m["n_pairs"] == 4
    assert m["brier_posterior"] == pytest.approx(((0.5 - 1) ** 2 + 0.9**2) / 2)


def test_clusters_switch_the_interval_to_the_cluster_bootstrap() -> None:
    rng = np.random.default_rng(1)
    prior = list(rng.uniform(0.1, 0.9, 60))
    posterior = list(np.clip(np.array(prior) + rng.normal(0, 0.1, 60), 0, 1))
    singletons = summarize(prior, posterior, [None] * 60, cluster=list(range(60)))
    grouped = summarize(prior, posterior, [None] * 60, cluster=[i // 3 for i in range(60)])
    assert singletons["ms_slope"] == grouped["ms_slope"]
    assert singletons["ms_slope_ci_low"] != grouped["ms_slope_ci_low"]


@pytest.mark.parametrize(
    "prior,posterior",
    [([], []), ([0.3], [0.4]), ([0.3, 0.5], [0.4, 0.5]), ([None, None, None], [0.1, 0.2, 0.3]),
     ([0.5, 0.5, 0.5, 0.5], [0.1, 0.6, 0.7, 0.2])],
)
def test_degenerate_inputs_give_nan_not_errors(prior: list, posterior: list) -> None:
    m = summarize(prior, posterior, [None] * len(prior), cluster=list(range(len(prior))))
    assert set(m) == set(METRIC_KEYS)
    assert math.isnan(m["ms_slope"]) and math.isnan(m["ms_slope_ci_low"])
