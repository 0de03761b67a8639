"""Transcripts out of inspect: a sample's recorded protocol turns, read from its task state or log."""

from __future__ import annotations

from typing import Any

from inspect_ai.model import ChatMessageAssistant, ContentReasoning
from inspect_ai.solver import TaskState

from martingale_harness.extraction.transcript import Transcript, Turn
from martingale_harness.protocol.turns import read_turns


def readable_reasoning(content: list[Any]) -> str | None:
    """The readable text of a message's reasoning blocks, blank-line separated, or None.

    A redacted block's ``reasoning`` is an opaque payload (Anthropic's thinking signature, OpenAI's
    encrypted reasoning); its readable text, when the provider returned one, is ``summary``.
    """
    parts = [c.summary if c.redacted else c.reasoning for c in content if isinstance(c, ContentReasoning)]
    return "\n\n".join(p for p in parts if p) or None


def transcript_from_state(state: TaskState) -> Transcript:
    """Rebuild the transcript from a task state (live, or re-read from an eval log)."""
    recorded = read_turns(state.store)
    if not recorded:
        raise ValueError("this sample has no recorded protocol turns; was it run by a martingale task?")
    turns = []
    for entry in recorded:
        message = state.messages[entry.message]
        if not isinstance(message, ChatMessageAssistant):
            raise ValueError(f"protocol turn {entry.to_store()} does not point at an assistant message")
        reasoning = None
        if isinstance(message.content, list):
            reasoning = readable_reasoning(message.content)
        turns.append(Turn(stage=entry.stage, prompt=entry.prompt, answer=message.text,  # type: ignore[arg-type]
                          reasoning=reasoning, context=entry.context, probe=entry.probe,
                          structured=entry.structured, stop_reason=entry.stop_reason,
                          repeats=tuple(Turn(stage=entry.stage, prompt=entry.prompt,  # type: ignore[arg-type]
                                             answer=r.answer, reasoning=r.reasoning, probe=r.probe,
                                             structured=r.structured, stop_reason=r.stop_reason)
                                        for r in entry.repeats)))
    return Transcript(question=state.input_text, turns=tuple(turns))
