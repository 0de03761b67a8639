"""Paradigms (direct, cot, debate, evidence) and system prompts, run end to end with the sim agents."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from inspect_ai import eval as inspect_eval
from inspect_ai.event import ModelEvent
from inspect_ai.log import EvalLog
from inspect_ai.model import ChatMessageAssistant, ChatMessageSystem, get_model

from martingale_harness.backends.simulated import SimAgent
from martingale_harness.extraction.transcript import TURNS_KEY
from martingale_harness.protocol.solver import PARADIGMS, SYSTEM_PROMPT_TEXTS, SYSTEM_PROMPTS, prior_prompt
from martingale_harness.scoring.scorer import FAILURE_KEYS, METRIC_KEYS
from martingale_harness.stats import martingale as stats

TASKS = ("forecast", "cmv", "openreview")


@pytest.fixture
def shared_data(request: pytest.FixtureRequest) -> dict[str, str]:
    """The real data file of each task (skips when ../shared/data is absent)."""
    return {
        "forecast": str(request.getfixturevalue("forecastbench_dir") / "2025-10-26-llm.json"),
        "cmv": str(request.getfixturevalue("cmv_file")),
        "openreview": str(request.getfixturevalue("openreview_file")),
    }


def _run(tmp_path: Path, task: str, model: object, limit: int | None, **task_args: object) -> EvalLog:
    log = inspect_eval(f"martingale/{task}", model=model, task_args=task_args, limit=limit, display="none",
                       log_realtime=False, log_dir=str(tmp_path))[0]
    assert log.status == "success", log.error
    assert log.samples and log.results is not None
    return log


def _metrics(log: EvalLog, extractor: str = "self_report") -> dict[str, float]:
    block = next(s for s in log.results.scores if s.name == extractor)  # type: ignore[union-attr]
    return {k: v.value for k, v in block.metrics.items()}


def _run_judged(tmp_path: Path, task: str, model: object, limit: int | None, **task_args: object) -> EvalLog:
    log = inspect_eval(f"martingale/{task}", model=model, model_roles={"grader": "sim/judge"},
                       task_args={"extractors": "self_report,step_judge", **task_args}, limit=limit,
                       display="none", log_realtime=False, log_dir=str(tmp_path))[0]
    assert log.status == "success", log.error
    assert log.samples and log.results is not None
    return log


@pytest.mark.parametrize("task,paradigm,system_prompt", list(itertools.product(TASKS, PARADIGMS, SYSTEM_PROMPTS)))
def test_every_task_paradigm_and_system_prompt_runs(tmp_path: Path, shared_data: dict[str, str], task: str,
                                                    paradigm: str, system_prompt: str) -> None:
    log = _run_judged(tmp_path, task, "sim/entrenched", 4, paradigm=paradigm, system_prompt=system_prompt,
                      data=shared_data[task])
    for extractor in ("self_report", "step_judge"):
        metrics = _metrics(log, extractor)
        assert set(metrics) == set(METRIC_KEYS) | set(FAILURE_KEYS)
        assert metrics["extraction_failure_rate"] == 0.0
    for sample in log.samples or []:
        system = [m.text for m in sample.messages if isinstance(m, ChatMessageSystem)]
        assert system == ([] if system_prompt == "none" else [SYSTEM_PROMPT_TEXTS[system_prompt]])
        turns = sample.store[TURNS_KEY]
        evidence = sample.metadata["evidence"]
        expected = len(evidence) + 1 if paradigm == "evidence" else 2
        assert [t["stage"] for t in turns] == ["prior", *["evidence"] * (expected - 2), "posterior"]
        # every belief turn is a message in the sample, so inspect view shows it
        assert all(isinstance(sample.messages[t["message"]], ChatMessageAssistant) for t in turns)
        judged = sample.scores["step_judge"].metadata["trajectory"]
        stated = sample.scores["self_report"].metadata["trajectory"]
        assert [j["value"] for j in judged] == pytest.approx([s["value"] for s in stated], abs=1e-4)


def test_debate_runs_rounds_against_a_clone(tmp_path: Path) -> None:
    log = _run_judged(tmp_path, "forecast", "sim/bayesian", 2, paradigm="debate", rounds=3)  # demo data
    for sample in log.samples or []:
        turns = sample.store[TURNS_KEY]
        context = turns[-1]["context"]
        assert len(context) == 6
        assert [c.split(" (")[0] for c in context] == ["Reasoner", "Opponent"] * 3
        # prior, 3 arguments, posterior in the conversation; the clone's 3 replies are its own calls
        assert sum(isinstance(m, ChatMessageAssistant) for m in sample.messages) == 5
        assert sum(isinstance(e, ModelEvent) and e.role != "grader" for e in sample.events) == 8
        assert "Opponent" not in sample.messages[turns[0]["message"]].text


def _sim_truth(log: EvalLog, agent: SimAgent) -> tuple[float, float]:
    """Consecutive-pair and endpoint MS computed straight from the agent's own belief paths."""
    before, after, first, last = [], [], [], []
    for sample in log.samples or []:
        steps = len(sample.store[TURNS_KEY]) - 1
        assert isinstance(sample.input, str)
        path = agent.path(prior_prompt(sample.input), steps).stated
        before += path[:-1]
        after += path[1:]
        first.append(path[0])
        last.append(path[-1])
    pairs = stats.martingale_score(np.array(before), np.array(after)).slope
    return pairs, stats.martingale_score(np.array(first), np.array(last)).slope


@pytest.mark.parametrize("paradigm", PARADIGMS)
def test_entrenched_sim_is_recovered_in_every_paradigm(tmp_path: Path, forecastbench_dir: Path,
                                                       paradigm: str) -> None:
    data = str(forecastbench_dir / "2025-10-26-llm.json")
    log = _run(tmp_path, "forecast", get_model("sim/entrenched", kappa=0.2), 500, data=data, paradigm=paradigm)
    metrics = _metrics(log)
    pairs, endpoints = _sim_truth(log, SimAgent("entrenched", kappa=0.2))
    assert metrics["ms_slope"] == pytest.approx(pairs, abs=2e-3)
    assert metrics["ms_slope_endpoints"] == pytest.approx(endpoints, abs=2e-3)
    # the forecast items (background, value at freeze) fit in the sim's default horizon of 2 updates,
    # so the drift is exact in every paradigm, the evidence paradigm's consecutive pairs included
    assert metrics["ms_slope_ci_low"] < 0.2 < metrics["ms_slope_ci_high"]
    if paradigm == "evidence":
        assert metrics["n_pairs"] > metrics["n_pairs_endpoints"]
    else:
        assert metrics["ms_slope"] == pytest.approx(metrics["ms_slope_endpoints"], abs=1e-12)
    assert metrics["ms_slope_ci_low"] > 0.1


@pytest.mark.parametrize("paradigm", PARADIGMS)
def test_bayesian_sim_ci_covers_zero_in_every_paradigm(tmp_path: Path, forecastbench_dir: Path,
                                                       paradigm: str) -> None:
    data = str(forecastbench_dir / "2025-10-26-llm.json")
    metrics = _metrics(_run(tmp_path, "forecast", "sim/bayesian", 500, data=data, paradigm=paradigm))
    assert metrics["ms_slope_ci_low"] < 0.0 < metrics["ms_slope_ci_high"]
    assert abs(metrics["ms_slope"]) < 0.05
