"""The ``logprob`` extractor: P(Yes) from the token probabilities of a one-word Yes/No answer.

After every belief turn the protocol asks the evaluated model, on a copy of the conversation,
"Answer with a single word, Yes or No: will the answer to the question be Yes?" with logprobs
requested (``protocol.YES_NO_PROBE``). At the first generated position that is not blank, the
probability mass of the tokens that read "yes" and "no" (case, surrounding spaces and punctuation
ignored) among the top alternatives gives P(Yes) = P(yes) / (P(yes) + P(no)). The probe follows
the model's answer for that turn, so the belief read is the one the turn's reasoning arrived at.

Failures, never a guess: no probe recorded (the log was made without this extractor: probes
exist only at generation time), a backend that returned no logprobs, or neither word among the
top alternatives.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from martingale_harness.plugin_api import BeliefReading, Extractor, Transcript, Turn, hookimpl

_YES, _NO = "yes", "no"


def _word(token: str) -> str:
    return token.strip().strip(".,!:;*\"'`").lower()


def p_yes(top: Sequence[Sequence[Any]]) -> BeliefReading:
    """P(Yes) from one position's ``[[token, logprob], ...]`` alternatives."""
    mass = {_YES: 0.0, _NO: 0.0}
    for token, logprob in top:
        word = _word(str(token))
        if word in mass:
            mass[word] += math.exp(float(logprob))
    total = mass[_YES] + mass[_NO]
    if total <= 0.0:
        shown = ", ".join(repr(str(t)) for t, _ in list(top)[:5])
        return BeliefReading.failed(f"neither 'Yes' nor 'No' among the {len(top)} most likely tokens ({shown})")
    return BeliefReading.ok(
        mass[_YES] / total, matched=f"P(yes)={mass[_YES]:.4g}, P(no)={mass[_NO]:.4g} among top {len(top)}"
    )


def read_probe(turn: Turn) -> BeliefReading:
    """The belief one turn's recorded Yes/No probe expresses, or why there is none."""
    probe = turn.probe
    if probe is None:
        return BeliefReading.failed(
            "no Yes/No probe was recorded for this turn: logprob reads token probabilities at generation "
            "time, so run the eval with logprob among -T extractors (re-scoring an older log cannot add it)"
        )
    positions = probe.get("positions")
    if positions is None:
        return BeliefReading.failed(
            f"the model ({probe.get('model')}) returned no logprobs for the Yes/No probe; use a backend that "
            "returns them (e.g. openai, vllm, sglang, hf)"
        )
    for position in positions:
        if str(position["token"]).strip():
            top = position["top"] or [[position["token"], position["logprob"]]]
            return p_yes(top)
    return BeliefReading.failed(f"the Yes/No probe produced no word: {probe.get('completion')!r}")


class LogprobExtractor:
    """P(Yes) per belief turn from the recorded Yes/No probe."""

    name = "logprob"
    needs_yes_no_probe = True

    async def extract(self, transcript: Transcript) -> list[BeliefReading]:
        return [read_probe(turn) for turn in transcript.turns]


@hookimpl
def martingale_register_extractors(register: Callable[[Extractor], None]) -> None:
    register(LogprobExtractor())
