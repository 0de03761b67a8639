"""The ``single_judge`` extractor: a grader reads one belief from each turn's final answer.

The paper's single-shot judge: for every belief turn, one call to the ``grader`` model role sees
the question and the reasoner's answer for that turn and replies with the probability of Yes that
the answer expresses. The reply is read with the same strict rules as ``self_report``; an
unreadable reply is sent back once more per attempt (``JUDGE_MAX_ATTEMPTS`` calls in all), then recorded
as a failure quoting the reply. Calls use inspect's model cache like ``step_judge``.
"""

from __future__ import annotations

from collections.abc import Callable

from inspect_ai.model import ChatMessage, ChatMessageAssistant, ChatMessageUser, get_model

from martingale_harness.plugin_api import (
    JUDGE_MAX_ATTEMPTS,
    BeliefReading,
    Extractor,
    Transcript,
    hookimpl,
    judge_cache,
    read_probability,
)

SINGLE_JUDGE_PROMPT = """\
Below are a question and someone's answer to it. What probability that the answer to the question \
is Yes does this answer express? Reply with the number only, between 0 and 1.

Question:
{question}

Answer:
{answer}"""


class SingleJudge:
    """One grader call per belief turn."""

    name = "single_judge"
    model_roles = ("grader",)

    async def extract(self, transcript: Transcript) -> list[BeliefReading]:
        grader = get_model(role="grader", required=True)
        readings = []
        for turn in transcript.turns:
            messages: list[ChatMessage] = [
                ChatMessageUser(content=SINGLE_JUDGE_PROMPT.format(question=transcript.question, answer=turn.answer))
            ]
            reading = BeliefReading.failed("grader was not called")
            for _ in range(JUDGE_MAX_ATTEMPTS):
                raw = (await grader.generate(messages, cache=judge_cache(grader))).completion
                reading = read_probability(raw)
                if reading.is_ok:
                    break
                messages += [
                    ChatMessageAssistant(content=raw),
                    ChatMessageUser(content=f"That reply cannot be used ({reading.reason}). "
                                            "Reply with one number between 0 and 1, nothing else."),
                ]
            else:
                reading = BeliefReading.failed(
                    f"grader failed {JUDGE_MAX_ATTEMPTS} times ({reading.reason}); last reply: {raw[:300]!r}")
            readings.append(reading)
        return readings


@hookimpl
def martingale_register_extractors(register: Callable[[Extractor], None]) -> None:
    register(SingleJudge())
