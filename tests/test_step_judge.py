"""The step_judge extractor: prompt and parsing, retries, failures, and the offline sim/judge."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from inspect_ai import eval as inspect_eval
from inspect_ai.event import ModelEvent
from inspect_ai.log import EvalLog
from inspect_ai.model import ModelOutput, ModelUsage, get_model
from martingale_plugins.step_judge import MAX_ATTEMPTS, judge_prompt, judge_steps, parse_beliefs

from martingale_harness.extraction.transcript import Transcript, Turn


@pytest.mark.parametrize(
    "reply,expected",
    [("[0.5, 0.3, 0.8]", [0.5, 0.3, 0.8]), ("```json\n[0.5, 0, 1]\n```", [0.5, 0.0, 1.0]),
     ("<think>maybe [0.1]</think>Here: [0.5, 0.2, 0.25]", [0.5, 0.2, 0.25])],
)
def test_parse_good_replies(reply: str, expected: list[float]) -> None:
    assert parse_beliefs(reply, 3) == (expected, "")


@pytest.mark.parametrize(
    "reply,problem",
    [("no list here", "no JSON list"), ("[0.5, 0.3", "no JSON list"), ("[0.5, 0.3,]", "not valid JSON"),
     ('[0.5, "0.3", 0.8]', "numbers only"), ("[0.5, true, 0.8]", "numbers only"), ("[0.5, 0.3]", "expected 3"),
     ("[0.5, 30, 0.8]", "between 0 and 1"), ("[0.5, -0.1, 0.8]", "between 0 and 1")],
)
def test_parse_bad_replies(reply: str, problem: str) -> None:
    beliefs, why = parse_beliefs(reply, 3)
    assert beliefs is None and problem in why


def test_steps_are_reasoning_paragraphs_then_answers() -> None:
    t = Transcript("Q?", (Turn("prior", "p", "Probability: 0.3", reasoning="First.\n\nSecond."),
                          Turn("posterior", "p", "Probability: 0.6")))
    steps, ends = judge_steps(t)
    assert steps == ["First.", "Second.", "Probability: 0.3", "Probability: 0.6"]
    assert ends == [2, 3]
    prompt = judge_prompt("Q?", steps)
    assert "5 numbers" in prompt and prompt.rstrip().endswith('"Probability: 0.6"]')


def _scripted_grader(*replies: str):  # noqa: ANN202
    outputs = []
    for reply in replies:
        out = ModelOutput.from_content(model="mockllm", content=reply)
        out.usage = ModelUsage(input_tokens=10, output_tokens=5, total_tokens=15)  # no tiktoken download
        outputs.append(out)
    return get_model("mockllm/model", custom_outputs=outputs)


def _judge_run(tmp_path: Path, grader: object, limit: int) -> EvalLog:
    log = inspect_eval("martingale/forecast", model="sim/bayesian", model_roles={"grader": grader},
                       task_args={"extractors": "self_report,step_judge"}, limit=limit, display="none",
                       log_realtime=False, log_dir=str(tmp_path))[0]
    assert log.status == "success", log.error
    assert log.samples is not None
    return log


def _grader_calls(sample) -> int:  # noqa: ANN001
    return sum(isinstance(e, ModelEvent) and e.role == "grader" for e in sample.events)


def test_malformed_reply_is_retried_with_feedback(tmp_path: Path) -> None:
    # each sim answer is two paragraphs (a lead, then the belief): 4 steps, 5 beliefs
    log = _judge_run(tmp_path, _scripted_grader("I think it is likely.", "[0.5, 0.3, 0.25, 0.6, 0.75]"), limit=1)
    sample = log.samples[0]
    assert sample.scores["step_judge"].value["prior"] == 0.25
    assert sample.scores["step_judge"].value["posterior"] == 0.75
    assert _grader_calls(sample) == 2


def test_grader_that_never_complies_is_a_recorded_failure(tmp_path: Path) -> None:
    log = _judge_run(tmp_path, _scripted_grader(*["[0.5, 0.2]"] * MAX_ATTEMPTS), limit=1)
    sample = log.samples[0]
    score = sample.scores["step_judge"]
    assert np.isnan(score.value["prior"]) and np.isnan(score.value["posterior"])
    reasons = {t["reason"] for t in score.metadata["trajectory"]}
    assert reasons == {f"grader failed {MAX_ATTEMPTS} times (expected 5 numbers, got 2); last reply: '[0.5, 0.2]'"}
    assert _grader_calls(sample) == MAX_ATTEMPTS
    metrics = {k: m.value for b in log.results.scores if b.name == "step_judge" for k, m in b.metrics.items()}
    assert metrics["extraction_failure_rate"] == 1.0
    assert not np.isnan(sample.scores["self_report"].value["prior"])  # other extractors are unaffected


@pytest.mark.slow
def test_sim_judge_recovers_entrenchment_with_one_call_per_transcript(forecastbench_dir: Path, tmp_path: Path) -> None:
    log = inspect_eval("martingale/forecast", model="sim/entrenched", model_args={"kappa": 0.2, "seed": 12},
                       model_roles={"grader": "sim/judge"}, limit=1000,
                       task_args={"extractors": "self_report,step_judge",
                                  "data": str(forecastbench_dir / "2025-10-26-llm.json")},
                       display="none", log_realtime=False, log_dir=str(tmp_path))[0]
    assert log.status == "success" and log.samples is not None and log.results is not None
    metrics = {b.name: {k: m.value for k, m in b.metrics.items()} for b in log.results.scores}
    assert abs(metrics["step_judge"]["ms_slope"] - 0.2) < 0.05
    assert metrics["step_judge"]["ms_slope"] == pytest.approx(metrics["self_report"]["ms_slope"], abs=1e-3)
    assert all(_grader_calls(s) == 1 for s in log.samples)
    assert all(any(k.startswith("sim/judge") for k in s.model_usage) for s in log.samples[:20])


def test_single_judge_reads_each_turn_and_retries(tmp_path: Path) -> None:
    grader = _scripted_grader("Probably yes.", "0.3", "Probability: 70%")
    log = inspect_eval("martingale/forecast", model="sim/bayesian", model_roles={"grader": grader},
                       task_args={"extractors": "single_judge"}, limit=1, display="none", log_realtime=False,
                       log_dir=str(tmp_path))[0]
    assert log.status == "success" and log.samples
    sample = log.samples[0]
    assert sample.scores["single_judge"].value["prior"] == 0.3
    assert sample.scores["single_judge"].value["posterior"] == 0.7
    assert _grader_calls(sample) == 3
