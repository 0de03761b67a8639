"""The belief score: one typed record per (sample draw, extractor), written to and read from inspect's ``Score``.

The log layout is public (docs/architecture.md, section 3), so the record keeps it: ``Score.value`` is
``{prior, posterior, delta, label}`` (+ ``prior_repeat`` when the prior was elicited more than once), NaN
where a belief was not read (inspect's reducers would turn ``None`` into 0), and ``Score.metadata`` holds
``extractor``, the ``trajectory`` (one step per belief turn, with its stage and reading) and
``prior_repeats``. This module is the only code that knows that layout: the scorer writes through
:meth:`BeliefScore.to_score`, and the metrics, ``runs``, ``agreement``, ``rescore`` and training read
through :meth:`BeliefScore.from_score`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from inspect_ai.scorer import Score

from martingale_harness.extraction.beliefs import BeliefReading


def _number(value: Any) -> float | None:
    """A belief or label from a log: a float, or None for missing, NaN and non-numbers."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _nan(value: float | None) -> float:
    return math.nan if value is None else float(value)


@dataclass(frozen=True)
class BeliefStep:
    """One belief turn of the trajectory: its stage and what the extractor read there."""

    stage: str
    reading: BeliefReading

    @classmethod
    def from_dict(cls, step: Mapping[str, Any]) -> BeliefStep:
        def text(key: str) -> str | None:
            return None if step.get(key) is None else str(step[key])

        status = "ok" if step.get("status") == "ok" else "failed"
        reading = BeliefReading(value=_number(step.get("value")), status=status, reason=text("reason"),
                                matched=text("matched"), kind=text("kind"))
        return cls(stage=str(step.get("stage", "")), reading=reading)

    def to_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, **self.reading.to_dict()}

    @property
    def value(self) -> float | None:
        return self.reading.value


@dataclass(frozen=True)
class BeliefScore:
    """What one extractor read from one sample draw: the trajectory b_0..b_T, the prior and posterior, the label."""

    extractor: str
    steps: tuple[BeliefStep, ...]
    prior: float | None
    """b_0 when the first turn is the prior and was read, else None."""
    posterior: float | None
    """b_T when the last turn is the posterior and was read, else None."""
    label: float | None = None
    prior_repeat: float | None = None
    """Mean of the repeated priors that were read (``prior_samples`` >= 2); None when none was, or none asked."""
    prior_repeats: tuple[BeliefStep, ...] = ()
    has_repeats: bool = False
    """Whether the prior was elicited more than once (``prior_repeat`` is then written, NaN when unread)."""

    @classmethod
    def from_readings(cls, extractor: str, stages: Sequence[str], readings: Sequence[BeliefReading],
                      label: float | None, repeats: Sequence[BeliefReading] = ()) -> BeliefScore:
        """The record of a transcript's readings (``stages[i]`` is the stage of the turn ``readings[i]`` read)."""
        steps = tuple(BeliefStep(stage, r) for stage, r in zip(stages, readings, strict=True))
        prior = steps[0].value if steps and steps[0].stage == "prior" else None
        posterior = steps[-1].value if steps and steps[-1].stage == "posterior" else None
        read = [r.value for r in repeats if r.value is not None]
        return cls(extractor=extractor, steps=steps, prior=prior, posterior=posterior,
                   label=None if label is None else float(label),
                   prior_repeat=float(np.mean(read)) if read else None,
                   prior_repeats=tuple(BeliefStep("prior", r) for r in repeats), has_repeats=bool(repeats))

    @classmethod
    def from_score(cls, score: Score, extractor: str | None = None) -> BeliefScore:
        """Read a score back; scores written without a trajectory give (prior, posterior) as the trajectory."""
        value = score.value if isinstance(score.value, dict) else {}
        metadata = score.metadata or {}
        prior, posterior = _number(value.get("prior")), _number(value.get("posterior"))
        path = metadata.get("trajectory")
        if isinstance(path, list):
            steps = tuple(BeliefStep.from_dict(s if isinstance(s, dict) else {}) for s in path)
        else:
            steps = tuple(BeliefStep.from_dict({"stage": stage, "value": belief, "status": "ok" if belief is not None
                                                else "failed"}) for stage, belief in (("prior", prior),
                                                                                     ("posterior", posterior)))
        repeats = metadata.get("prior_repeats") or []
        return cls(
            extractor=str(extractor if extractor is not None else metadata.get("extractor", "?")),
            steps=steps, prior=prior, posterior=posterior, label=_number(value.get("label")),
            prior_repeat=_number(value.get("prior_repeat")),
            prior_repeats=tuple(BeliefStep.from_dict({"stage": "prior", **r}) for r in repeats if isinstance(r, dict)),
            has_repeats="prior_repeat" in value,
        )

    def to_score(self) -> Score:
        """The inspect ``Score`` in the log's layout (module docstring)."""
        value: dict[str, float] = {
            "prior": _nan(self.prior),
            "posterior": _nan(self.posterior),
            "delta": _nan(self.posterior) - _nan(self.prior),
            "label": _nan(self.label),
        }
        metadata: dict[str, Any] = {"extractor": self.extractor, "trajectory": [s.to_dict() for s in self.steps]}
        if self.has_repeats:
            value["prior_repeat"] = _nan(self.prior_repeat)
            metadata["prior_repeats"] = [s.reading.to_dict() for s in self.prior_repeats]
        problems = [f"{s.stage}: {s.reading.reason}" for s in self.steps if not s.reading.is_ok]
        if not self.steps or self.steps[-1].stage != "posterior":
            problems.append("posterior: the conversation ended before the posterior turn")
        return Score(
            value=value,
            answer=" -> ".join("?" if s.value is None else f"{s.value:.4g}" for s in self.steps),
            explanation="; ".join(problems) or None,
            metadata=metadata,
        )

    @property
    def trajectory(self) -> tuple[float | None, ...]:
        """b_0..b_T, None where a belief was not read."""
        return tuple(s.value for s in self.steps)

    @property
    def stages(self) -> tuple[str, ...]:
        return tuple(s.stage for s in self.steps)

    @property
    def failed_steps(self) -> tuple[BeliefStep, ...]:
        return tuple(s for s in self.steps if not s.reading.is_ok)

    @property
    def complete(self) -> bool:
        """Every belief read, and the posterior among them."""
        return bool(self.steps) and all(s.value is not None for s in self.steps) and self.posterior is not None

    @property
    def readable(self) -> bool:
        """Prior and posterior both read (the pair the Martingale Score uses)."""
        return self.prior is not None and self.posterior is not None
