"""The ``answer_line`` extractor: the protocol's answer line and nothing else (lm-eval's strict filter).

Every belief prompt asks the model to end with a final line ``Probability: X``, X between 0 and 1. This
extractor reads exactly that: the last line of the visible answer (``<think>`` reasoning dropped, as
for ``self_report``) that is, apart from surrounding spaces and a closing full stop, ``Probability:``
followed by a decimal number. No percentages, fractions, words, markdown or other labels. Run it
beside ``self_report`` in the same eval (``-T extractors=self_report,answer_line``) to see how much of a
score rests on answers that did not follow the format.

Failures: ``no_number`` (no such line), ``out_of_range`` (the line's number is above 1), ``truncated``
(no such line in an answer cut off by the token limit).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from martingale_harness.plugin_api import BeliefReading, Extractor, Transcript, hookimpl, strip_reasoning

__all__ = ["AnswerLineExtractor", "read_answer_line"]

_ANSWER_LINE = re.compile(r"^[ \t]*Probability:[ \t]*(\d+(?:\.\d+)?|\.\d+)[ \t]*\.?[ \t]*$", re.M)


def read_answer_line(text: str, *, truncated: bool = False) -> BeliefReading:
    """The value of the last ``Probability: X`` line of ``text``, or a failure with its kind."""
    lines = list(_ANSWER_LINE.finditer(strip_reasoning(text or "")))
    if not lines:
        if truncated:
            return BeliefReading.failed("cut off by the token limit before a 'Probability: X' line", "truncated")
        return BeliefReading.failed("no line of the form 'Probability: X'", "no_number")
    last = lines[-1]
    value = float(last.group(1))
    if not 0 <= value <= 1:
        return BeliefReading.failed(f"value outside [0, 1]: {last.group().strip()!r}", "out_of_range")
    return BeliefReading.ok(value, last.group().strip())


class AnswerLineExtractor:
    """Reads each turn's ``Probability: X`` line with :func:`read_answer_line`."""

    name = "answer_line"

    async def extract(self, transcript: Transcript) -> list[BeliefReading]:
        return [read_answer_line(turn.answer, truncated=turn.truncated) for turn in transcript.turns]


@hookimpl
def martingale_register_extractors(register: Callable[[Extractor], None]) -> None:
    register(AnswerLineExtractor())
