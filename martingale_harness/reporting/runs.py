"""Finished runs as data: the per-sample beliefs of each extractor, read back from an eval log.

Reports, comparisons and plots work on these records rather than on inspect's log objects, so
they can be tested on records made by hand and never depend on how the log stores a score.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

import numpy as np
from inspect_ai.log import EvalLog, read_eval_log
from numpy.typing import NDArray

from martingale_harness.errors import DataError, LogFileError
from martingale_harness.reporting.display import display_model_name
from martingale_harness.scoring.record import BeliefScore
from martingale_harness.stats import martingale as stats


@dataclass(frozen=True)
class SampleBeliefs:
    """One draw of a sample (the sample in one epoch) as one extractor read it."""

    sample_id: str
    question_id: str
    prior: float | None
    posterior: float | None
    trajectory: tuple[float | None, ...]
    label: float | None
    status: str
    """``ok`` when every belief was read, else ``failed``."""
    reasons: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
    epoch: int = 1
    """Which draw of the sample this is (inspect's epoch, from 1); a run with ``--epochs K`` holds K per sample."""


@dataclass(frozen=True)
class Run:
    """One eval log: what was run, and the samples of each extractor."""

    path: Path
    task: str
    model: str
    version: str
    task_args: dict[str, Any]
    metadata: dict[str, Any]
    metrics: dict[str, dict[str, float]]
    """Per extractor, the metric values the log holds."""
    samples: dict[str, list[SampleBeliefs]]
    """Per extractor, every draw (sample-epoch) in the log's sample order."""
    created: str = ""
    model_args: dict[str, Any] = field(default_factory=dict)

    @property
    def extractors(self) -> list[str]:
        return list(self.samples)

    @property
    def display_model(self) -> str:
        """The model's short name for tables, titles and file names (:func:`display.display_model_name`)."""
        return display_model_name(self.model, self.model_args)

    def ms_reason(self, extractor: str) -> str | None:
        """Why the extractor's ``ms_slope`` is undefined (None when the log holds a number, or no MS at all)."""
        metrics = self.metrics.get(extractor, {})
        if "ms_slope" not in metrics or math.isfinite(metric_value(metrics["ms_slope"])):
            return None
        return ms_undefined_reason(self.samples.get(extractor, [])) or "not identified on these pairs"

    @property
    def epochs(self) -> int:
        """Draws per sample: the most epochs any sample has (1 for a run without ``--epochs``)."""
        return max((s.epoch for draws in self.samples.values() for s in draws), default=1)


@dataclass(frozen=True)
class UpdatePairs:
    """Consecutive belief pairs of one extractor, with the question of each pair."""

    before: NDArray[np.float64]
    after: NDArray[np.float64]
    question: NDArray[np.str_]

    @property
    def delta(self) -> NDArray[np.float64]:
        return self.after - self.before

    def __len__(self) -> int:
        return int(self.before.size)


def valid_belief(value: float | None) -> TypeGuard[float]:
    """A read belief: a finite number in [0, 1]."""
    return value is not None and math.isfinite(value) and 0.0 <= value <= 1.0


def update_pairs(samples: Sequence[SampleBeliefs]) -> UpdatePairs:
    """The (b_t, b_t+1) pairs of every draw's trajectory (the pairs ``ms_slope`` regresses), skipping
    pairs with a missing belief; a draw without a trajectory gives its (prior, posterior)."""
    before: list[float] = []
    after: list[float] = []
    question: list[str] = []
    for s in samples:
        path = s.trajectory or (s.prior, s.posterior)
        for a, b in itertools.pairwise(path):
            if valid_belief(a) and valid_belief(b):
                before.append(float(a))
                after.append(float(b))
                question.append(s.question_id)
    return UpdatePairs(np.array(before, dtype=np.float64), np.array(after, dtype=np.float64),
                       np.array(question, dtype=np.str_))


def ms_undefined_reason(samples: Sequence[SampleBeliefs]) -> str | None:
    """Why ``ms_slope`` is NaN for these draws (:func:`stats.undefined_reason` on their update pairs)."""
    pairs = update_pairs(samples)
    return stats.undefined_reason(pairs.before, pairs.delta)


SIMULATED_LABEL_NOTE = (
    "{models}: simulated reasoners (sim/*), whose beliefs are not about the questions' real outcomes; "
    "the Brier scores, their differences and the calibration figures test the code, not a model."
)


def simulated_label_note(runs: list[Run] | tuple[Run, ...]) -> str | None:
    """The note that goes wherever labels are used (Brier, ΔBrier, calibration) when a run is ``sim/*``.

    Not on ``martingale/bayes``: there the simulated agents act on each problem's exact posteriors and the
    labels are drawn from the same stated model, so their Brier scores mean what they say.
    """
    models = sorted({r.model for r in runs if r.model.startswith("sim/") and r.task.rsplit("/", 1)[-1] != "bayes"})
    return SIMULATED_LABEL_NOTE.format(models=", ".join(models)) if models else None


def metric_value(value: Any) -> float:
    """A metric value as a float, NaN when it is missing or not a number (reports, plots, the leaderboard)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def read_log(path: str | Path, header_only: bool = False) -> EvalLog:
    """Read an inspect eval log; a missing file, a non-log or a cut-short one is a one-line LogFileError."""
    path = Path(path)
    if not path.is_file():
        raise LogFileError(path, "eval log does not exist")
    try:
        return read_eval_log(str(path), header_only=header_only)
    except Exception as e:  # inspect raises ValueError, pydantic's ValidationError, zip and JSON errors
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if reason.startswith("No recorder for location"):  # inspect knows logs by their suffix only
            reason = "inspect reads .eval and .json logs"
        raise LogFileError(path, f"not a readable inspect eval log ({reason})") from None


def finished_logs(folder: str | Path) -> tuple[list[Path], list[tuple[Path, str]]]:
    """The ``*.eval`` logs of ``folder`` (an eval-set log dir) that finished, and the others with their status.

    A folder without any log is an error; a log that is not a readable eval log is one too (as for a file).
    """
    folder = Path(folder)
    paths = sorted(folder.glob("*.eval"))
    if not paths:
        raise LogFileError(folder, "no .eval logs in this folder")
    done: list[Path] = []
    other: list[tuple[Path, str]] = []
    for path in paths:
        status = read_log(path, header_only=True).status
        if status == "success":
            done.append(path)
        else:
            other.append((path, status))
    return done, other


def read_run(path: str | Path) -> Run:
    """Read a martingale eval log; logs of other tasks or without scores are a clear error."""
    path = Path(path)
    return run_from_log(read_log(path), path)


def run_from_log(log: EvalLog, path: Path) -> Run:
    """The :class:`Run` of a log already in memory."""
    metadata = log.eval.metadata or {}
    if "martingale_task" not in metadata:
        raise DataError(path, "this log was not made by a martingale task")
    if log.results is None or not log.samples:
        raise DataError(path, f"the log has no scored samples (status: {log.status})")
    extractors = [s.name for s in log.results.scores]
    samples: dict[str, list[SampleBeliefs]] = {e: [] for e in extractors}
    for sample in log.samples:
        sample_meta = sample.metadata or {}
        for extractor in extractors:
            score = (sample.scores or {}).get(extractor)
            if score is None:
                continue
            record = BeliefScore.from_score(score, extractor)
            complete = record.complete
            reasons = tuple(f"{step.stage}: {step.reading.reason}" for step in record.failed_steps)
            samples[extractor].append(SampleBeliefs(
                sample_id=str(sample.id),
                question_id=str(sample_meta.get("question_id", sample.id)),
                prior=record.prior,
                posterior=record.posterior,
                trajectory=record.trajectory,
                label=record.label,
                status="ok" if complete else "failed",
                reasons=reasons or (() if complete else ("the conversation ended before the posterior",)),
                metadata={k: v for k, v in sample_meta.items() if k not in ("evidence",)},
                epoch=int(sample.epoch),
            ))
    return Run(
        path=path,
        task=str(log.eval.task),
        model=str(log.eval.model),
        version=str(metadata.get("task_version", log.eval.task_version)),
        task_args=dict(log.eval.task_args or {}),
        metadata=dict(metadata),
        metrics={b.name: {k: m.value for k, m in b.metrics.items()} for b in log.results.scores},
        samples=samples,
        created=str(log.eval.created),
        model_args=dict(log.eval.model_args or {}),
    )
