"""The protocol's turn records: the stored form a log holds, written and read back by one pair of methods."""

from __future__ import annotations

from martingale_harness.extraction.transcript import TURNS_KEY
from martingale_harness.protocol.turns import RepeatRecord, TurnRecord, read_turns

STORED = [
    {"stage": "prior", "prompt": "p?", "message": 2, "stop_reason": "stop",
     "probe": {"completion": "Yes", "model": "m", "positions": None},
     "repeats": [{"answer": "40%", "reasoning": None, "stop_reason": "max_tokens"},
                 {"answer": "45%", "reasoning": "r", "stop_reason": "stop", "structured": {"mode": "prompt"}}]},
    {"stage": "posterior", "prompt": "q?", "message": 6, "stop_reason": "stop", "context": ["Yes: a", "No: b"]},
]


def test_stored_turns_read_back_to_the_same_stored_form() -> None:
    turns = read_turns({TURNS_KEY: STORED})
    assert [t.to_store() for t in turns] == STORED
    prior, posterior = turns
    assert prior.repeats[0] == RepeatRecord(answer="40%", stop_reason="max_tokens")
    assert prior.repeats[1].structured == {"mode": "prompt"} and prior.context == ()
    assert posterior.context == ("Yes: a", "No: b") and posterior.probe is None and posterior.repeats == ()


def test_optional_parts_are_left_out_of_the_stored_form_when_absent() -> None:
    stored = TurnRecord(stage="prior", prompt="p", message=1).to_store()
    assert stored == {"stage": "prior", "prompt": "p", "message": 1, "stop_reason": None}
    assert read_turns({}) == []
