"""The value that travels through the pipeline: one belief read out of one turn."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

BeliefStatus = Literal["ok", "failed"]
FAILURE_KINDS: tuple[str, ...] = (
    "no_number", "conflict", "refusal", "truncated", "out_of_range", "restated", "other_event", "other",
)
"""The kinds of a failed reading that the built-in extractors use and the log counts. ``no_number``: the
answer states no probability (empty, words only, a placeholder); ``conflict``: it states different
values and none is explicitly final; ``refusal``: it declines to give one; ``truncated``: it was cut
off by the token limit before an explicit final statement; ``out_of_range``: the stated value is not
in [0, 1]; ``restated``: its only numbers are values it was shown (a crowd forecast, a market
price) reported, not adopted; ``other_event``: its only probabilities are about something other than the
asked question (a sub-event, an analogy, an invented scenario); ``other``: anything else (a grader's bad
reply, a missing probe). Plugins may use kinds of their own; those are counted as ``other`` in the log's
metrics and by their own name in its samples."""


@dataclass(frozen=True)
class BeliefReading:
    """A probability read from text, or the recorded reason it could not be read.

    A failed reading never carries a number: downstream statistics exclude it and count
    it in ``extraction_failure_rate`` instead of guessing.
    """

    value: float | None
    status: BeliefStatus
    reason: str | None = None
    """Why extraction failed (``status == "failed"``)."""
    matched: str | None = None
    """The text span the value was read from (``status == "ok"``)."""
    kind: str | None = None
    """What kind of failure (``status == "failed"``): one of :data:`FAILURE_KINDS` or a plugin's own."""

    @classmethod
    def ok(cls, value: float, matched: str | None = None) -> BeliefReading:
        if not (0.0 <= value <= 1.0) or math.isnan(value):
            raise ValueError(f"belief {value!r} is not a probability in [0, 1]")
        return cls(value=float(value), status="ok", matched=matched)

    @classmethod
    def failed(cls, reason: str, kind: str = "other") -> BeliefReading:
        if not reason or not kind:
            raise ValueError("a failed reading needs a reason and a kind")
        return cls(value=None, status="failed", reason=reason, kind=kind)

    @property
    def is_ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, object]:
        return {"value": self.value, "status": self.status, "reason": self.reason, "matched": self.matched,
                "kind": self.kind}
