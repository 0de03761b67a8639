"""The live display never shows a Martingale metric that disagrees with the result: it shows none.

inspect's live display recomputes metrics at most every 0.9 s, so the value beside "Samples: 64/64" can
be for a handful of samples (scoring._live_display_call). These tests drive inspect's own display path
(``update_metrics_display_fn``) and its final path (``eval_results``) on the same sample lists.
"""

from __future__ import annotations

import numpy as np
import pytest
from inspect_ai import eval as inspect_eval
from inspect_ai._eval.task.results import eval_results
from inspect_ai._eval.task.run import update_metrics_display_fn
from inspect_ai.log import EvalLog
from inspect_ai.scorer import SampleScore

from martingale.tasks import forecast
from martingale_harness.scoring.scorer import belief_scorer


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> EvalLog:
    (log,) = inspect_eval(forecast(), model="sim/entrenched", model_args={"kappa": 0.3}, limit=30,
                          log_dir=str(tmp_path_factory.mktemp("logs")), display="none")
    assert log.status == "success"
    return log


def _scores(log: EvalLog) -> list[dict[str, SampleScore]]:
    return [{"self_report": SampleScore(score=s.scores["self_report"], sample_id=s.id,  # type: ignore[index]
                                        sample_metadata=s.metadata)} for s in log.samples or []]


def _live(scores: list[dict[str, SampleScore]]) -> dict[str, object]:
    shown: list[dict[str, object]] = []
    compute = update_metrics_display_fn(lambda metrics: shown.append({m.name: m.value for m in metrics}))
    compute(len(scores), scores, [belief_scorer("self_report")], ["self_report"], None, None)
    assert len(shown) == 1  # the first call is never throttled
    return shown[0]


def _final(scores: list[dict[str, SampleScore]]) -> dict[str, float]:
    results, _ = eval_results(len(scores), scores, None, [belief_scorer("self_report")], None, ["self_report"])
    return {k: m.value for k, m in results.scores[0].metrics.items()}


@pytest.mark.parametrize("n", [12, 30])
def test_live_display_shows_no_martingale_metric_and_the_final_path_is_the_ols_of_those_samples(
        run: EvalLog, n: int) -> None:
    scores = _scores(run)[:n]
    assert _live(scores) == {}
    final = _final(scores)
    prior = np.array([s["self_report"].score.value["prior"] for s in scores])  # type: ignore[index]
    posterior = np.array([s["self_report"].score.value["posterior"] for s in scores])  # type: ignore[index]
    assert final["n_pairs"] == n
    assert final["ms_slope"] == pytest.approx(np.polyfit(prior, posterior - prior, 1)[0], abs=1e-12)


def test_the_complete_list_reproduces_the_logged_result(run: EvalLog) -> None:
    assert run.results is not None
    logged = {k: m.value for k, m in run.results.scores[0].metrics.items()}
    assert _final(_scores(run)) == pytest.approx(logged, nan_ok=True)


def test_outside_the_live_display_the_metric_is_computed(run: EvalLog) -> None:
    # the same compute function, called the way `martingale rescore` and reports call it
    from martingale_harness.scoring.scorer import martingale_metrics

    sample_scores = [s["self_report"] for s in _scores(run)]
    assert martingale_metrics()(sample_scores)["n_pairs"] == 30
