"""The logprob extractor: P(Yes) from a Yes/No probe's token probabilities, and its failures."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from inspect_ai import eval as inspect_eval
from inspect_ai.event import ModelEvent
from inspect_ai.log import EvalLog
from inspect_ai.model import ChatMessageAssistant, ModelOutput, ModelUsage, get_model
from martingale_plugins.logprob import p_yes, read_probe

from martingale_harness.errors import ConfigError
from martingale_harness.extraction.transcript import Turn
from martingale_harness.protocol.solver import YES_NO_PROBE
from martingale_harness.reporting.rescore import rescore


def test_p_yes_pools_spellings_and_normalises_over_yes_and_no() -> None:
    top = [[" Yes", math.log(0.5)], ["yes", math.log(0.1)], ["No", math.log(0.2)], ["NO.", math.log(0.1)],
           ["Maybe", math.log(0.05)]]
    reading = p_yes(top)
    assert reading.is_ok
    assert reading.value == pytest.approx(0.6 / 0.9)


def test_p_yes_without_either_word_is_a_failure() -> None:
    reading = p_yes([["Maybe", -0.1], ["It", -2.0]])
    assert not reading.is_ok and "neither 'Yes' nor 'No'" in (reading.reason or "")


def _turn(probe: dict | None) -> Turn:
    return Turn("prior", "p", "Probability: 0.3", probe=probe)


def test_read_probe_skips_blank_tokens_and_reports_missing_logprobs() -> None:
    positions = [{"token": "\n", "logprob": -0.01, "top": [["\n", -0.01]]},
                 {"token": "No", "logprob": math.log(0.7), "top": [["No", math.log(0.7)], ["Yes", math.log(0.3)]]}]
    reading = read_probe(_turn({"completion": "\nNo", "model": "m", "positions": positions}))
    assert reading.value == pytest.approx(0.3)
    no_logprobs = read_probe(_turn({"completion": "No", "model": "somewhere/model", "positions": None}))
    assert not no_logprobs.is_ok and "somewhere/model" in (no_logprobs.reason or "")
    assert "no logprobs" in (no_logprobs.reason or "")
    never_probed = read_probe(_turn(None))
    assert not never_probed.is_ok and "generation time" in (never_probed.reason or "")


def _run(tmp_path: Path, model: object, extractors: str, limit: int = 12) -> EvalLog:
    log = inspect_eval("martingale/forecast", model=model, task_args={"extractors": extractors}, limit=limit,
                       display="none", log_realtime=False, log_dir=str(tmp_path))[0]
    assert log.status == "success", log.error
    assert log.samples is not None
    return log


def test_logprob_reads_the_sim_agents_beliefs_with_one_probe_per_turn(tmp_path: Path) -> None:
    log = _run(tmp_path, get_model("sim/entrenched", kappa=0.2, seed=3), "self_report,logprob")
    for sample in log.samples or []:
        stated, probed = sample.scores["self_report"].value, sample.scores["logprob"].value
        # the agent states 4 decimals; its token probabilities carry the unrounded belief
        assert probed["prior"] == pytest.approx(stated["prior"], abs=6e-5)
        assert probed["posterior"] == pytest.approx(stated["posterior"], abs=6e-5)
        # the probe is a side call: the conversation holds only the two belief turns
        assert sum(isinstance(m, ChatMessageAssistant) for m in sample.messages) == 2
        assert not any(YES_NO_PROBE in m.text for m in sample.messages)
        assert sum(isinstance(e, ModelEvent) for e in sample.events) == 4
    metrics = {s.name: s.metrics for s in log.results.scores}  # type: ignore[union-attr]
    assert metrics["logprob"]["ms_slope"].value == pytest.approx(metrics["self_report"]["ms_slope"].value, abs=1e-4)


def test_no_probe_calls_unless_an_extractor_needs_them(tmp_path: Path) -> None:
    log = _run(tmp_path, "sim/bayesian", "self_report", limit=3)
    assert all(sum(isinstance(e, ModelEvent) for e in s.events) == 2 for s in log.samples or [])


def test_backend_without_logprobs_is_a_recorded_failure_per_turn(tmp_path: Path) -> None:
    outputs = []
    for text in ["Probability: 0.3", "No", "Probability: 0.4", "No"]:  # one sample: calls come in this order
        out = ModelOutput.from_content(model="mockllm", content=text)
        out.usage = ModelUsage(input_tokens=10, output_tokens=2, total_tokens=12)  # no tiktoken download
        outputs.append(out)
    log = _run(tmp_path, get_model("mockllm/model", custom_outputs=outputs), "self_report,logprob", limit=1)
    for sample in log.samples or []:
        assert sample.scores["self_report"].value["posterior"] == 0.4
        trajectory = sample.scores["logprob"].metadata["trajectory"]
        assert [t["status"] for t in trajectory] == ["failed", "failed"]
        assert all("returned no logprobs" in t["reason"] for t in trajectory)
    metrics = {s.name: s.metrics for s in log.results.scores}  # type: ignore[union-attr]
    assert metrics["logprob"]["extraction_failure_rate"].value == 1.0
    assert metrics["self_report"]["extraction_failure_rate"].value == 0.0


def test_rescoring_a_log_without_probes_is_refused(tmp_path: Path) -> None:
    log = _run(tmp_path, "sim/bayesian", "self_report", limit=2)
    with pytest.raises(ConfigError, match="Yes/No probe made at generation"):
        rescore(log.location, "logprob")
