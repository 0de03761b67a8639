"""The plugin API's contract: fault isolation of extractors, the testing helpers, the scripted model."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import pytest
from inspect_ai import eval as inspect_eval

from martingale_harness.backends.scripted import ScriptedAnswers
from martingale_harness.extraction import base as extraction
from martingale_harness.extraction.base import safe_extract
from martingale_harness.plugin.host import get_extractor
from martingale_harness.plugin_api import PLUGIN_ERROR_KIND, BeliefReading, Transcript
from martingale_harness.testing.plugins import check_extractor, transcript_from_answers


@dataclass
class Returns:
    """An extractor that returns whatever it is given (or raises it)."""

    result: object
    name: str = "returns"

    async def extract(self, transcript: Transcript) -> list[BeliefReading]:
        if isinstance(self.result, Exception):
            raise self.result
        return self.result  # type: ignore[return-value]


def _safe(extractor: Returns, n: int = 2) -> list[BeliefReading]:
    extraction._warned.discard(f"None/{extractor.name}")
    return asyncio.run(safe_extract(extractor, transcript_from_answers(["30%", "40%"][:n])))


def test_safe_extract_passes_valid_readings_through() -> None:
    valid = [BeliefReading.ok(0.3, "30%"), BeliefReading.failed("no number", "no_number")]
    assert _safe(Returns(valid)) == valid


@pytest.mark.parametrize(("result", "reason"), [
    (ValueError("boom"), "extractor 'returns' raised ValueError: boom"),
    ([BeliefReading.ok(0.3)], "extractor 'returns' returned 1 readings for 2 turns"),
    (None, "extractor 'returns' returned 'NoneType' for 2 turns"),
])
def test_a_raising_or_miscounting_extractor_fails_every_turn(result: object, reason: str,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="martingale_harness.extraction.base"):
        readings = _safe(Returns(result))
        _safe_again = asyncio.run(safe_extract(Returns(result), transcript_from_answers(["1", "2"])))
    expected = ("failed", None, PLUGIN_ERROR_KIND, reason)
    assert [(r.status, r.value, r.kind, r.reason) for r in readings] == [expected] * 2
    assert _safe_again == readings
    assert len(caplog.records) == 1  # warned once per extractor, not per sample
    if isinstance(result, Exception):
        assert "Traceback" in caplog.records[0].getMessage()


@pytest.mark.parametrize(("bad", "problem"), [
    (BeliefReading(value=1.5, status="ok"), "an ok reading needs a probability in [0, 1], got 1.5"),
    (BeliefReading(value=None, status="ok"), "an ok reading needs a probability in [0, 1], got None"),
    (BeliefReading(value=float("nan"), status="ok"), "got nan"),
    (BeliefReading(value=0.2, status="failed", reason="x", kind="other"), "a failed reading carries no number"),
    (BeliefReading(value=None, status="failed"), "a failed reading needs a reason and a kind"),
    (0.3, "returned float, not a BeliefReading"),
])
def test_a_reading_that_breaks_the_contract_is_replaced_by_a_failure(bad: object, problem: str) -> None:
    first, second = _safe(Returns([bad, BeliefReading.ok(0.4)]))
    assert first.status == "failed" and first.value is None and first.kind == PLUGIN_ERROR_KIND
    assert problem in (first.reason or "") and (first.reason or "").startswith("extractor 'returns', turn 0: ")
    assert second == BeliefReading.ok(0.4)


def test_transcript_from_answers_uses_the_direct_paradigm_stages() -> None:
    assert [t.stage for t in transcript_from_answers(["a"]).turns] == ["prior"]
    assert [t.stage for t in transcript_from_answers(["a", "b", "c"]).turns] == ["prior", "evidence", "posterior"]
    cut = transcript_from_answers(["a", "b"], stop_reasons=["stop", "max_tokens"])
    assert [t.truncated for t in cut.turns] == [False, True]
    with pytest.raises(ValueError, match="stages has 1 entries for 2 answers"):
        transcript_from_answers(["a", "b"], stages=["prior"])


@pytest.mark.parametrize("name", ["self_report", "answer_line", "logprob"])
def test_builtin_extractors_keep_the_contract(name: str) -> None:
    answers = ["Probability: 0.3", "I won't say.", "My estimate is 45%.", "", "Final answer: 0.9 or 0.1?"]
    readings = check_extractor(get_extractor(name), answers)
    assert len(readings) == len(answers)


def test_self_report_reads_the_expected_values_through_check_extractor() -> None:
    readings = check_extractor(get_extractor("self_report"), ["Probability: 0.3", "My estimate is 45%."])
    assert [r.value for r in readings] == [0.3, 0.45]


@pytest.mark.parametrize(("result", "message"), [
    ([BeliefReading.ok(0.3)], "returned 1 readings for 2 turns"),
    ((BeliefReading.ok(0.3), BeliefReading.ok(0.3)), "returned tuple, not a list"),
    ([BeliefReading.ok(0.3), BeliefReading(value=None, status="failed", reason="", kind="x")],
     "turn 1 ('40%'): a failed reading needs a reason and a kind"),
])
def test_check_extractor_names_the_broken_rule(result: object, message: str) -> None:
    with pytest.raises(AssertionError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_extractor(Returns(result), ["30%", "40%"])


def test_check_extractor_catches_a_nondeterministic_extractor() -> None:
    class Drifting:
        name = "drifting"
        calls = 0

        async def extract(self, transcript: Transcript) -> list[BeliefReading]:
            self.calls += 1
            return [BeliefReading.ok(0.1 * self.calls) for _ in transcript.turns]

    with pytest.raises(AssertionError, match="reading the same transcript twice"):
        check_extractor(Drifting(), ["30%"])


def _script(tmp_path: Path, *rows: dict[str, object]) -> Path:
    path = tmp_path / "answers.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_scripted_answers_most_specific_entry_wins(tmp_path: Path) -> None:
    script = ScriptedAnswers.load(_script(
        tmp_path, {"answer": "default"}, {"turn": 1, "answer": "turn 1"}, {"id": "a", "answer": "a, any turn"},
        {"id": "a", "turn": 1, "answer": "a, turn 1", "stop_reason": "max_tokens"},
        {"turn": "other", "answer": "an argument"}))
    assert script.answer("a", 1).text == "a, turn 1" and script.answer("a", 1).stop_reason == "max_tokens"
    assert script.answer("a", 0).text == "a, any turn"
    assert script.answer("b", 1).text == "turn 1"
    assert script.answer(7, 0).text == "default"
    assert script.answer("a", None).text == "an argument"


@pytest.mark.parametrize(("line", "message"), [
    ("not json", r"answers.jsonl:1: not JSON"),
    ('{"answer": 3}', "'answer' must be a string"),
    ('{"answer": "x", "turn": -1}', "'turn' must be a belief turn index"),
    ('{"answer": "x", "sample": 1}', r"unknown fields \['sample'\]"),
    ('{"answer": "x", "stop_reason": "length"}', "'stop_reason' must be one of stop, max_tokens"),
    ('{"answer": "x"}\n{"answer": "y"}', "answers.jsonl:2: a second answer for id=None, turn=None"),
])
def test_scripted_answers_refuse_bad_lines(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "answers.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(ValueError, match=message):
        ScriptedAnswers.load(path)


def test_scripted_answers_without_a_matching_entry_is_an_error(tmp_path: Path) -> None:
    script = ScriptedAnswers.load(_script(tmp_path, {"id": "a", "turn": 0, "answer": "x"}))
    with pytest.raises(ValueError, match="no answer for sample 'b', belief turn 0"):
        script.answer("b", 0)


def test_scripted_model_answers_each_sample_and_turn_as_written(tmp_path: Path) -> None:
    from martingale.tasks import forecast

    task = forecast()
    first, second = (s.id for s in task.dataset[:2])
    path = _script(tmp_path, {"id": first, "turn": 0, "answer": "Probability: 0.2"},
                   {"id": first, "turn": 1, "answer": "Probability: 0.6"},
                   {"id": second, "turn": 0, "answer": "I'd say about 70%."},
                   {"id": second, "turn": 1, "answer": "Probability: 0.", "stop_reason": "max_tokens"})
    (log,) = inspect_eval(task, model="sim/scripted", model_args={"answers": str(path)}, limit=2,
                          log_dir=str(tmp_path / "logs"), display="none")
    assert log.status == "success", log.error
    by_id = {s.id: s for s in log.samples or []}
    assert by_id[first].scores["self_report"].answer == "0.2 -> 0.6"  # type: ignore[index]
    cut = by_id[second].scores["self_report"]  # type: ignore[index]
    assert cut.answer == "0.7 -> ?"
    assert cut.metadata["trajectory"][1]["kind"] == "truncated"
    assert by_id[second].output.stop_reason == "max_tokens"
    assert (log.stats.model_usage["sim/scripted"].output_tokens or 0) > 0  # usage counted, no tokenizer download


def test_scripted_model_needs_an_answers_file() -> None:
    from inspect_ai._util.error import PrerequisiteError
    from inspect_ai.model import get_model

    with pytest.raises(PrerequisiteError, match=r"sim/scripted needs -M answers=FILE"):
        get_model("sim/scripted")
    with pytest.raises(PrerequisiteError, match="does not exist"):
        get_model("sim/scripted", answers="/nonexistent/answers.jsonl")
