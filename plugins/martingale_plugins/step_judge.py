"""The ``step_judge`` extractor: the paper's trajectory judge.

One grader call sees the question and the JSON list of the reasoner's steps and returns one belief
per step plus one before any step (element 0). The grader is inspect's model role ``grader``
(``--model-role grader=openai/gpt-4o-mini``, or ``grader=sim/judge`` offline); the evaluated model
never grades itself.

Steps are what happened in the reasoning, in order: for each protocol turn, the debate turns that
led up to it (the reasoner's arguments and its opponent's, labelled by speaker), the paragraphs of
its reasoning content (reasoning models), then the paragraphs of its answer (blank-line separated,
as chain of thought writes them). A turn's belief is the judge's belief after that turn's last
step. Prompts shown *to* the reasoner (the evidence) are not steps: the judge reads the reasoner's
beliefs, not its own reaction to the evidence.

A reply that is not a JSON list of numbers in [0, 1] with exactly one more element than there are
steps is answered with the problem and asked again, at most ``MAX_ATTEMPTS`` calls in all; after
that every belief of the sample is a failure whose reason quotes the grader's last raw answer.

Judge calls go through inspect's model cache (``cache=True``), so re-extracting the same transcripts
with the same grader and settings costs nothing the second time. Set ``MARTINGALE_JUDGE_CACHE=off``
to always call the grader.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from inspect_ai.model import ChatMessage, ChatMessageAssistant, ChatMessageUser, get_model

from martingale_harness.plugin_api import (
    JUDGE_MAX_ATTEMPTS,
    BeliefReading,
    Extractor,
    Transcript,
    hookimpl,
    judge_cache,
)

MAX_ATTEMPTS = JUDGE_MAX_ATTEMPTS

STEPS_HEADER = "Reasoning steps (JSON list, in order):"

JUDGE_INSTRUCTIONS = """\
You will read a question and, step by step, the reasoning of someone answering it. Track how \
strongly that person believes the answer is Yes.

Return a JSON list of {count} numbers between 0 and 1: element 0 is the probability of Yes a \
reasoner would hold from the question alone, before any step; element i (for i = 1..{steps}) is \
the probability of Yes the person holds right after step i, as expressed or implied by the steps \
so far. Reply with the JSON list only."""

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S)
_THINK = re.compile(r"<think(?:ing)?>.*?</think(?:ing)?>", re.S | re.I)


def _paragraphs(text: str) -> list[str]:
    return [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]


def judge_steps(transcript: Transcript) -> tuple[list[str], list[int]]:
    """The steps shown to the judge and, per turn, the index of that turn's last step."""
    steps: list[str] = []
    turn_ends: list[int] = []
    for turn in transcript.turns:
        steps.extend(turn.context)
        if turn.reasoning:
            steps.extend(_paragraphs(turn.reasoning))
        steps.extend(_paragraphs(turn.answer) or ["(no answer)"])
        turn_ends.append(len(steps) - 1)
    return steps, turn_ends


def judge_prompt(question: str, steps: list[str]) -> str:
    """The single grader prompt for one transcript."""
    instructions = JUDGE_INSTRUCTIONS.format(count=len(steps) + 1, steps=len(steps))
    return f"{instructions}\n\nQuestion:\n{question}\n\n{STEPS_HEADER}\n{json.dumps(steps, ensure_ascii=False)}"


def parse_beliefs(reply: str, expected: int) -> tuple[list[float] | None, str]:
    """The grader's list of ``expected`` beliefs, or None and what is wrong with the reply."""
    text = _THINK.sub("", reply).strip()
    fenced = _FENCE.search(text)
    if fenced:
        text = fenced.group(1)
    start, end = text.find("["), text.rfind("]")
    if start < 0 or end < start:
        return None, "no JSON list in the reply"
    try:
        values = json.loads(text[start : end + 1])
    except json.JSONDecodeError as e:
        return None, f"the list is not valid JSON ({e.msg})"
    if not isinstance(values, list) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in values
    ):
        return None, "the list must hold numbers only"
    if len(values) != expected:
        return None, f"expected {expected} numbers, got {len(values)}"
    if not all(0.0 <= v <= 1.0 for v in values):
        return None, "every number must lie between 0 and 1"
    return [float(v) for v in values], ""


class StepJudge:
    """One grader call per transcript, retried with feedback when the reply is malformed."""

    name = "step_judge"
    model_roles = ("grader",)

    async def extract(self, transcript: Transcript) -> list[BeliefReading]:
        steps, turn_ends = judge_steps(transcript)
        grader = get_model(role="grader", required=True)
        messages: list[ChatMessage] = [ChatMessageUser(content=judge_prompt(transcript.question, steps))]
        problem, raw = "", ""
        for _ in range(MAX_ATTEMPTS):
            output = await grader.generate(messages, cache=judge_cache(grader))
            raw = output.completion
            beliefs, problem = parse_beliefs(raw, len(steps) + 1)
            if beliefs is not None:
                return [BeliefReading.ok(beliefs[end + 1], matched=f"judge element {end + 1}") for end in turn_ends]
            messages += [
                ChatMessageAssistant(content=raw),
                ChatMessageUser(content=f"That reply cannot be used: {problem}. Reply with a JSON list of "
                                        f"exactly {len(steps) + 1} numbers between 0 and 1, nothing else."),
            ]
        reason = f"grader failed {MAX_ATTEMPTS} times ({problem}); last reply: {raw[:300]!r}"
        return [BeliefReading.failed(reason) for _ in transcript.turns]


@hookimpl
def martingale_register_extractors(register: Callable[[Extractor], None]) -> None:
    register(StepJudge())
