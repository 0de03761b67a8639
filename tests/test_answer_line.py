"""The strict ``answer_line`` extractor, failure kinds in the log, and the stop reason reaching extractors."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from inspect_ai import eval as inspect_eval
from inspect_ai.model import Model, ModelOutput, ModelUsage, get_model
from martingale_plugins.answer_line import read_answer_line

from martingale_harness.cli import main


@pytest.mark.parametrize("text,expected", [
    ("Some reasoning.\n\nProbability: 0.3", 0.3),
    ("Probability: 0.3\nProbability: 0.45", 0.45),  # the last such line
    ("Probability: .7.", 0.7),
    ("  Probability: 1  ", 1.0),
    ("<think>Probability: 0.9</think>\nProbability: 0.2", 0.2),
])
def test_reads_the_protocols_line(text: str, expected: float) -> None:
    reading = read_answer_line(text)
    assert reading.status == "ok" and reading.value == expected


@pytest.mark.parametrize("text,kind", [
    ("Probability: 30%", "no_number"),  # strict: no percentages
    ("**Probability:** 0.3", "no_number"),  # no markdown
    ("probability: 0.3", "no_number"),  # the protocol's capitalisation
    ("I'd say 0.3", "no_number"),
    ("Probability: 0.3 because of the polls", "no_number"),  # nothing else on the line
    ("Probability: 70", "out_of_range"),
    ("", "no_number"),
])
def test_anything_else_fails_with_its_kind(text: str, kind: str) -> None:
    reading = read_answer_line(text)
    assert reading.status == "failed" and reading.kind == kind and reading.reason


def test_truncated_answer_without_the_line() -> None:
    assert read_answer_line("The evidence suggests", truncated=True).kind == "truncated"
    assert read_answer_line("Probability: 0.4\nBecause", truncated=True).value == 0.4


def _scripted(outputs: list[tuple[str, str]]) -> Model:
    made = []
    for text, stop_reason in outputs:
        output = ModelOutput.from_content(model="mockllm", content=text, stop_reason=stop_reason)  # type: ignore[arg-type]
        output.usage = ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2)  # no tiktoken download
        made.append(output)
    return get_model("mockllm/model", custom_outputs=made)


def test_stop_reason_reaches_extractors_and_failures_are_counted_by_kind(tmp_path: Path) -> None:
    # sample 1: a clean pair; sample 2: the posterior was cut off mid-reasoning;
    # sample 3: a percentage (self_report reads it, answer_line does not) and a conflict
    model = _scripted([
        ("Probability: 0.3", "stop"), ("Probability: 0.6", "stop"),
        ("Probability: 0.4", "stop"), ("There is a 70% chance that the", "max_tokens"),
        ("There is a 20% chance.", "stop"), ("Probability: 0.3, which is approximately 3%", "stop"),
    ])
    log = inspect_eval("martingale/forecast", model=model, limit=3, display="none", log_realtime=False,
                       max_connections=1, log_dir=str(tmp_path),
                       task_args={"extractors": "self_report,answer_line"})[0]
    assert log.status == "success" and log.samples and log.results
    turns = log.samples[1].store["martingale_turns"]
    assert [t["stop_reason"] for t in turns] == ["stop", "max_tokens"]
    metrics = {b.name: {k: m.value for k, m in b.metrics.items()} for b in log.results.scores}
    assert metrics["self_report"]["failures_truncated"] == 1
    assert metrics["self_report"]["failures_conflict"] == 1
    assert metrics["self_report"]["failures_no_number"] == 0
    assert metrics["answer_line"]["failures_truncated"] == 1
    assert metrics["answer_line"]["failures_no_number"] == 2  # "20% chance" and the line with more on it
    trajectory = log.samples[1].scores["self_report"].metadata["trajectory"]  # type: ignore[index]
    assert trajectory[1]["kind"] == "truncated" and trajectory[1]["value"] is None

    out = CliRunner().invoke(main, ["summary", log.location])
    assert out.exit_code == 0, out.output
    assert "self_report: failed readings by kind: conflict 1, truncated 1" in out.output
    assert "answer_line: failed readings by kind: no_number 2, truncated 1" in out.output
