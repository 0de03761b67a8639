"""The value that travels through the pipeline: one belief read out of one turn."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

BeliefStatus = Literal["ok", "failed"]


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

    @classmethod
    def ok(cls, value: float, matched: str | None = None) -> BeliefReading:
        if not (0.0 <= value <= 1.0) or math.isnan(value):
            raise ValueError(f"belief {value!r} is not a probability in [0, 1]")
        return cls(value=float(value), status="ok", matched=matched)

    @classmethod
    def failed(cls, reason: str) -> BeliefReading:
        return cls(value=None, status="failed", reason=reason)

    @property
    def is_ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, object]:
        return {"value": self.value, "status": self.status, "reason": self.reason, "matched": self.matched}
