"""What extractors read: the conversation of one sample, split into the protocol's turns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from inspect_ai.model import ChatMessageAssistant, ContentReasoning
from inspect_ai.solver import TaskState

Stage = Literal["prior", "evidence", "posterior"]
TURNS_KEY = "martingale_turns"
"""Store key under which the protocol records its turns:
``[{"stage", "prompt", "message", "stop_reason", "context"?, "probe"?, "structured"?, "repeats"?}]``."""


@dataclass(frozen=True)
class Turn:
    """One elicitation: the prompt, the model's visible answer, and any reasoning it showed."""

    stage: Stage
    prompt: str
    answer: str
    reasoning: str | None = None
    context: tuple[str, ...] = ()
    """What happened since the previous belief turn that is not this turn's prompt or answer: the
    debate's arguments, each labelled with its speaker (``debate`` paradigm)."""
    repeats: tuple[Turn, ...] = ()
    """Independent re-elicitations of this (prior) turn, with ``prior_samples`` >= 2."""
    probe: dict[str, Any] | None = None
    """The Yes/No probe after this turn, when the run recorded one (see ``protocol.yes_no_probe``):
    ``{"completion", "model", "positions"}``, ``positions`` being ``None`` when the backend returned
    no logprobs, else per generated token ``{"token", "logprob", "top": [[token, logprob], ...]}``."""
    stop_reason: str | None = None
    """Why generation of ``answer`` ended, as inspect records it (``"stop"``, ``"max_tokens"``,
    ``"content_filter"``, ...); ``None`` in logs written before it was recorded. An answer with
    ``"max_tokens"`` was cut off by the token limit and may lack its conclusion."""
    structured: dict[str, Any] | None = None
    """The structured belief probe after this turn, when the run recorded one (see
    ``protocol.structured_probe``): ``{"completion", "model", "mode", "stop_reason"}``, ``completion`` being
    the model's reply to a request for ``{"probability": X}`` and ``mode`` how the JSON schema was enforced:
    ``"constrained"`` (the backend constrains decoding to it), ``"inspect"`` (handed to an inspect
    provider, which passes it to its API) or ``"prompt"`` (written into the request only)."""

    @property
    def truncated(self) -> bool:
        """Whether the answer was cut off by the token limit (``stop_reason == "max_tokens"``)."""
        return self.stop_reason == "max_tokens"


@dataclass(frozen=True)
class Transcript:
    """All belief turns of a sample in order: b_0 (prior) .. b_T (posterior)."""

    question: str
    turns: tuple[Turn, ...]


def readable_reasoning(content: list[Any]) -> str | None:
    """The readable text of a message's reasoning blocks, blank-line separated, or None.

    A redacted block's ``reasoning`` is an opaque payload (Anthropic's thinking signature, OpenAI's
    encrypted reasoning); its readable text, when the provider returned one, is ``summary``.
    """
    parts = [c.summary if c.redacted else c.reasoning for c in content if isinstance(c, ContentReasoning)]
    return "\n\n".join(p for p in parts if p) or None


def transcript_from_state(state: TaskState) -> Transcript:
    """Rebuild the transcript from a task state (live, or re-read from an eval log)."""
    recorded = state.store.get(TURNS_KEY)
    if not recorded:
        raise ValueError("this sample has no recorded protocol turns; was it run by a martingale task?")
    turns = []
    for entry in recorded:
        message = state.messages[entry["message"]]
        if not isinstance(message, ChatMessageAssistant):
            raise ValueError(f"protocol turn {entry} does not point at an assistant message")
        reasoning = None
        if isinstance(message.content, list):
            reasoning = readable_reasoning(message.content)
        turns.append(Turn(stage=entry["stage"], prompt=entry["prompt"], answer=message.text, reasoning=reasoning,
                          context=tuple(entry.get("context") or ()), probe=entry.get("probe"),
                          structured=entry.get("structured"), stop_reason=entry.get("stop_reason"),
                          repeats=tuple(Turn(stage=entry["stage"], prompt=entry["prompt"], answer=r["answer"],
                                             reasoning=r.get("reasoning"), probe=r.get("probe"),
                                             structured=r.get("structured"), stop_reason=r.get("stop_reason"))
                                        for r in entry.get("repeats") or ())))
    return Transcript(question=state.input_text, turns=tuple(turns))
