"""The protocol's record of its belief turns, as kept in a sample's store (and so in the eval log).

The stored form is public (logs written by earlier versions are read back): under
:data:`~martingale_harness.extraction.transcript.TURNS_KEY`, a list of mappings ``{stage, prompt, message,
stop_reason}`` with ``context``, ``probe``, ``structured`` and ``repeats`` only where the turn has them;
``message`` is the index of the turn's answer in the sample's messages. These records are the only code
that writes or reads that form; inspect-free, like the transcript records built from them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from martingale_harness.extraction.transcript import TURNS_KEY


@dataclass(frozen=True)
class RepeatRecord:
    """An independent re-elicitation of the prior (``prior_samples`` >= 2), made on a copy of the conversation."""

    answer: str
    reasoning: str | None = None
    stop_reason: str | None = None
    probe: dict[str, Any] | None = None
    structured: dict[str, Any] | None = None

    def to_store(self) -> dict[str, Any]:
        stored: dict[str, Any] = {"answer": self.answer, "reasoning": self.reasoning, "stop_reason": self.stop_reason}
        for key, value in (("probe", self.probe), ("structured", self.structured)):
            if value is not None:
                stored[key] = value
        return stored

    @classmethod
    def from_store(cls, stored: Mapping[str, Any]) -> RepeatRecord:
        return cls(answer=str(stored.get("answer", "")), reasoning=stored.get("reasoning"),
                   stop_reason=stored.get("stop_reason"), probe=stored.get("probe"),
                   structured=stored.get("structured"))


@dataclass(frozen=True)
class TurnRecord:
    """One belief turn: its stage and prompt, where its answer is, and the side requests made after it."""

    stage: str
    prompt: str
    message: int
    """Index of the turn's answer (an assistant message) in the sample's messages."""
    stop_reason: str | None = None
    context: tuple[str, ...] = ()
    """The debate's labelled arguments before the closing turn (``debate`` only)."""
    probe: dict[str, Any] | None = None
    structured: dict[str, Any] | None = None
    repeats: tuple[RepeatRecord, ...] = ()

    def to_store(self) -> dict[str, Any]:
        stored: dict[str, Any] = {"stage": self.stage, "prompt": self.prompt, "message": self.message,
                                  "stop_reason": self.stop_reason}
        if self.context:
            stored["context"] = list(self.context)
        for key, value in (("probe", self.probe), ("structured", self.structured)):
            if value is not None:
                stored[key] = value
        if self.repeats:
            stored["repeats"] = [r.to_store() for r in self.repeats]
        return stored

    @classmethod
    def from_store(cls, stored: Mapping[str, Any]) -> TurnRecord:
        return cls(stage=str(stored["stage"]), prompt=str(stored.get("prompt", "")), message=int(stored["message"]),
                   stop_reason=stored.get("stop_reason"), context=tuple(stored.get("context") or ()),
                   probe=stored.get("probe"), structured=stored.get("structured"),
                   repeats=tuple(RepeatRecord.from_store(r) for r in stored.get("repeats") or ()))


def read_turns(store: Any) -> list[TurnRecord]:
    """The turn records of a sample's store (a live store, or ``EvalSample.store`` of a log); [] when none."""
    return [TurnRecord.from_store(t) for t in store.get(TURNS_KEY) or []]


def write_turns(store: Any, turns: Sequence[TurnRecord]) -> None:
    """Record ``turns`` in a live sample store (inspect's ``Store``)."""
    store.set(TURNS_KEY, [t.to_store() for t in turns])
