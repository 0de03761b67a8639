"""Extractors turn a transcript into a belief trajectory; they are plugins (see ``hookspecs``)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from martingale_harness.beliefs import BeliefReading
from martingale_harness.transcript import Transcript


@runtime_checkable
class Extractor(Protocol):
    """Reads one belief per protocol turn (b_0 .. b_T) out of a transcript.

    Must return exactly one :class:`BeliefReading` per turn of ``transcript``; a belief that
    cannot be read is ``BeliefReading.failed(reason, kind)``, never a guessed number, with a kind
    from :data:`~martingale_harness.beliefs.FAILURE_KINDS` (or one of the plugin's own) so the log
    can count failures by kind. ``Turn.stop_reason`` says whether an answer was cut off by the token
    limit (``Turn.truncated``); ``Turn.prompt`` holds what the model was shown at that turn.

    An extractor that calls models may declare ``model_roles = ("grader",)``: tasks then refuse to
    start unless each role is bound (``--model-role grader=...``).

    An extractor that reads token probabilities may declare ``needs_yes_no_probe = True``: the
    protocol then asks the evaluated model a one-word Yes/No question after every belief turn
    (a side call, not part of the conversation) with logprobs requested, and records the result in
    ``Turn.probe``. Probes are made at generation time only; re-scoring cannot add them.
    """

    name: str

    async def extract(self, transcript: Transcript) -> list[BeliefReading]: ...
