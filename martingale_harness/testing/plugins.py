"""Helpers for testing extractor plugins: build transcripts from answers and check the contract.

    from martingale_harness.testing.plugins import check_extractor

    def test_reads_words():
        readings = check_extractor(MyExtractor(), ["Maybe one in four.", "Now about even."])
        assert [r.value for r in readings] == [0.25, 0.5]

No model, no event loop of your own and no torch: ``check_extractor`` runs the extractor's
``extract`` with :func:`asyncio.run`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from martingale_harness.extraction.base import Extractor, contract_problem
from martingale_harness.extraction.beliefs import BeliefReading
from martingale_harness.extraction.transcript import Stage, Transcript, Turn

DEFAULT_QUESTION = "Will the event happen by the end of the year?"


def transcript_from_answers(
    answers: Sequence[str],
    *,
    question: str = DEFAULT_QUESTION,
    stages: Sequence[Stage] | None = None,
    prompts: Sequence[str] | None = None,
    stop_reasons: Sequence[str | None] | None = None,
    reasoning: Sequence[str | None] | None = None,
) -> Transcript:
    """A transcript whose turns answer with ``answers`` in order.

    Stages default to the direct paradigm's: ``prior`` first, ``posterior`` last, ``evidence`` between
    (one answer: a lone prior). ``stop_reasons`` (e.g. ``"max_tokens"`` for a cut-off answer),
    ``prompts`` and ``reasoning`` give one entry per answer.
    """
    n = len(answers)
    if n == 0:
        raise ValueError("a transcript needs at least one answer")
    if stages is None:
        stages = ["prior"] + ["evidence"] * max(0, n - 2) + (["posterior"] if n > 1 else [])
    for name, given in (("stages", stages), ("prompts", prompts), ("stop_reasons", stop_reasons),
                        ("reasoning", reasoning)):
        if given is not None and len(given) != n:
            raise ValueError(f"{name} has {len(given)} entries for {n} answers")
    turns = tuple(
        Turn(stage=stages[i],
             prompt=prompts[i] if prompts is not None else f"{question}\nWhat is your probability now?",
             answer=answers[i],
             reasoning=reasoning[i] if reasoning is not None else None,
             stop_reason=stop_reasons[i] if stop_reasons is not None else "stop")
        for i in range(n)
    )
    return Transcript(question=question, turns=turns)


def check_extractor(extractor: Extractor, answers: Sequence[str] | Transcript) -> list[BeliefReading]:
    """Run ``extractor`` on ``answers`` (or a transcript) and assert the extractor contract.

    The contract: ``name`` is a non-empty string; ``extract`` returns a list with one
    :class:`BeliefReading` per turn; an ``ok`` reading carries a probability in [0, 1]; a ``failed``
    one carries no number, a reason and a kind; the same transcript read twice gives the same
    readings. Fails with an :class:`AssertionError` that says which rule broke; returns the readings.
    """
    name = getattr(extractor, "name", None)
    assert isinstance(name, str) and name, f"{extractor!r}: an extractor needs a non-empty string .name"
    assert isinstance(extractor, Extractor), f"{name!r}: an extractor needs .name and an async .extract(transcript)"
    transcript = answers if isinstance(answers, Transcript) else transcript_from_answers(answers)
    first = asyncio.run(extractor.extract(transcript))
    n = len(transcript.turns)
    assert isinstance(first, list), f"{name!r}: extract returned {type(first).__name__}, not a list"
    assert len(first) == n, f"{name!r}: extract returned {len(first)} readings for {n} turns"
    for i, reading in enumerate(first):
        problem = contract_problem(reading)
        assert problem is None, f"{name!r}, turn {i} ({transcript.turns[i].answer!r}): {problem}"
    second = asyncio.run(extractor.extract(transcript))
    assert second == first, f"{name!r}: reading the same transcript twice gave {first} and then {second}"
    return first
