"""The belief score record: the one place that writes and reads the log's per-sample score layout."""

from __future__ import annotations

import math

from inspect_ai.scorer import Score

from martingale_harness.extraction.beliefs import BeliefReading
from martingale_harness.scoring.record import BeliefScore


def _record(repeats: tuple[BeliefReading, ...] = ()) -> BeliefScore:
    readings = [BeliefReading.ok(0.3, "30%"), BeliefReading.failed("no number", "no_number"), BeliefReading.ok(0.6)]
    return BeliefScore.from_readings("self_report", ["prior", "evidence", "posterior"], readings, 1, repeats)


def test_the_score_holds_the_documented_layout() -> None:
    score = _record().to_score()
    assert set(score.value) == {"prior", "posterior", "delta", "label"}
    assert score.value["prior"] == 0.3 and score.value["posterior"] == 0.6 and score.value["label"] == 1.0
    assert math.isclose(score.value["delta"], 0.3)
    assert [s["stage"] for s in score.metadata["trajectory"]] == ["prior", "evidence", "posterior"]
    assert score.metadata["trajectory"][1] == {"stage": "evidence", "value": None, "status": "failed",
                                               "reason": "no number", "matched": None, "kind": "no_number"}
    assert score.answer == "0.3 -> ? -> 0.6" and score.explanation == "evidence: no number"


def test_a_record_survives_the_round_trip_through_a_score() -> None:
    repeats = (BeliefReading.ok(0.2), BeliefReading.failed("refused", "refusal"), BeliefReading.ok(0.4))
    record = _record(repeats)
    assert math.isclose(record.prior_repeat or 0, 0.3)
    back = BeliefScore.from_score(record.to_score())
    assert back == record
    assert back.trajectory == (0.3, None, 0.6) and not back.complete and back.readable


def test_unread_beliefs_are_nan_in_the_score_and_none_in_the_record() -> None:
    readings = [BeliefReading.failed("cut off", "truncated")]
    record = BeliefScore.from_readings("x", ["prior"], readings, None)
    score = record.to_score()
    assert all(math.isnan(score.value[k]) for k in ("prior", "posterior", "delta", "label"))
    assert "posterior: the conversation ended before the posterior turn" in (score.explanation or "")
    back = BeliefScore.from_score(score)
    assert back.prior is None and back.posterior is None and back.label is None and not back.readable


def test_a_score_written_without_a_trajectory_reads_as_its_prior_and_posterior() -> None:
    back = BeliefScore.from_score(Score(value={"prior": 0.25, "posterior": float("nan"), "label": 0.0}), "old")
    assert back.extractor == "old" and back.trajectory == (0.25, None) and back.stages == ("prior", "posterior")
    assert back.label == 0.0 and not back.has_repeats
