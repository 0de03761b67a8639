"""End to end: `martingale/forecast` through inspect with the simulated reasoners.

The simulated reasoners have known Martingale Scores, so these runs check the whole pipeline
(dataset -> protocol -> sim model text -> self_report extraction -> scorer -> metrics) against
the truth, on the real ForecastBench files.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
from inspect_ai import eval as inspect_eval
from inspect_ai.log import EvalLog

QUESTION_SET = "2025-10-26-llm.json"


def _run(
    model: str, log_dir: Path, data: Path | None = None, limit: int | None = None, **model_args: object
) -> EvalLog:
    logs = inspect_eval(
        "martingale/forecast",
        model=model,
        model_args=model_args,
        task_args={"data": str(data)} if data else {},
        limit=limit,
        display="none",
        log_realtime=False,  # the realtime event buffer only serves live viewers
        log_dir=str(log_dir),
    )
    assert len(logs) == 1 and logs[0].status == "success", logs[0].error
    return logs[0]


def _metrics(log: EvalLog, extractor: str = "self_report") -> dict[str, float]:
    assert log.results is not None
    block = next(s for s in log.results.scores if s.name == extractor)
    return {k: v.value for k, v in block.metrics.items()}


@pytest.fixture(scope="module")
def real_set(forecastbench_dir: Path) -> Path:
    return forecastbench_dir / QUESTION_SET


@pytest.mark.slow
def test_bayesian_ci_covers_zero(real_set: Path, tmp_path: Path) -> None:
    m = _metrics(_run("sim/bayesian", tmp_path, real_set, seed=11))
    assert m["ms_slope_ci_low"] < 0 < m["ms_slope_ci_high"]
    assert m["extraction_failure_rate"] == 0.0 and m["n_pairs"] == 2246
    assert m["inertia"] < 0.01


@pytest.mark.slow
def test_entrenched_recovers_kappa(real_set: Path, tmp_path: Path) -> None:
    m = _metrics(_run("sim/entrenched", tmp_path, real_set, kappa=0.2, seed=12))
    assert abs(m["ms_slope"] - 0.2) < 0.05
    assert m["ms_slope_p"] < 0.01
    assert m["ms_slope_ci_low"] > 0.1


@pytest.mark.slow
def test_noisy_is_biased_negative(real_set: Path, tmp_path: Path) -> None:
    m = _metrics(_run("sim/noisy", tmp_path, real_set, noise=0.1, seed=13))
    assert m["ms_slope_ci_high"] < -0.05


def test_inert_has_full_inertia(real_set: Path, tmp_path: Path) -> None:
    log = _run("sim/inert", tmp_path, real_set, limit=300)
    m = _metrics(log)
    # nothing moved: the slope is not identified (NaN), never a certain 0
    assert m["inertia"] == 1.0 and math.isnan(m["ms_slope"]) and math.isnan(m["ms_slope_ci_low"])
    assert math.isnan(m["ms_r2"])


def test_demo_run_scores_carry_beliefs_trajectory_and_label(tmp_path: Path) -> None:
    log = _run("sim/bayesian", tmp_path)  # the bundled demo set: 64 samples, 5 unlabelled
    assert log.samples is not None and len(log.samples) == 64
    for sample in log.samples:
        score = sample.scores["self_report"]
        traj = score.metadata["trajectory"]
        assert [t["stage"] for t in traj] == ["prior", "posterior"]
        assert score.value["prior"] == traj[0]["value"] and score.value["posterior"] == traj[1]["value"]
        assert score.value["delta"] == pytest.approx(score.value["posterior"] - score.value["prior"])
        label = sample.metadata["label"]
        assert (math.isnan(score.value["label"]) if label is None else score.value["label"] == float(label))
    assert log.eval.metadata["extractors"] == ["self_report"]
    # Brier only over labelled samples: recomputed from the samples themselves
    labelled = [s for s in log.samples if s.metadata["label"] is not None]
    assert len(labelled) == 59
    expected = sum((s.scores["self_report"].value["prior"] - s.metadata["label"]) ** 2 for s in labelled) / 59
    assert _metrics(log)["brier_prior"] == pytest.approx(expected, rel=1e-12)


def test_cli_quickstart_prints_metrics(tmp_path: Path) -> None:
    inspect = Path(sys.executable).with_name("inspect")
    out = subprocess.run(
        [str(inspect), "eval", "martingale/forecast", "--model", "sim/bayesian", "--display", "plain",
         "--log-dir", str(tmp_path), "--limit", "20"],
        capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert "ms_slope" in out.stdout + out.stderr


@pytest.mark.parametrize(
    "args,message",
    [(["-T", "data=/no/such/set.json"], "does not exist"),
     (["-T", "extractors=telepathy"], "unknown extractor 'telepathy'"),
     (["-T", "paradigm=séance"], "paradigm='séance' is not allowed; allowed: direct, cot, debate, evidence"),
     (["-T", "rounds=0"], "protocol.rounds=0 is not allowed; allowed: an integer from 1 to 10"),
     (["-M", "kappa=0.2"], "kappa applies to sim/entrenched only"),
     (["--model", "sim/oracle"], "unknown simulated agent 'sim/oracle'"),
     (["-T", "extractors=step_judge"], "extractor 'step_judge' needs a model for the role 'grader'")],
)
def test_cli_user_mistakes_are_one_clear_line(tmp_path: Path, args: list[str], message: str) -> None:
    inspect = Path(sys.executable).with_name("inspect")
    out = subprocess.run(
        [str(inspect), "eval", "martingale/forecast", "--model", "sim/bayesian", "--log-dir", str(tmp_path), *args],
        capture_output=True, text=True, timeout=300,
    )
    text = out.stdout + out.stderr
    assert out.returncode != 0
    text = " ".join(text.split())  # rich wraps long lines
    assert message in text and "Traceback" not in text
