"""What extractors read: the conversation of one sample, split into the protocol's turns.

Plain records, free of inspect (part of the plugin API, which stays cheap to import); they are built
from an inspect task state by :mod:`martingale_harness.extraction.transcript_state`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

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
