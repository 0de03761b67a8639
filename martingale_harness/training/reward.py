"""The harness scorer as an RL reward: MS term, information term, format term.

The reward reads beliefs exactly as an evaluation does: the completion is the posterior turn of a
protocol transcript (the same prompts as :mod:`martingale_harness.protocol.solver`), an extractor plugin
reads one belief per turn, and the batch Martingale Score comes from
:func:`martingale_harness.stats.martingale.martingale_score`. So training and evaluation cannot drift apart.

Per completion ``i`` of a generation batch, with ``p`` the prior and ``q`` the posterior read by the
extractor:

* **MS term** (``ms_coef``). The batch MS is the OLS slope of ``Δ = q - p`` on ``p``; it splits into
  per-sample shares ``s_i = (Δ_i - mean Δ)(p_i - mean p) / Σ_j (p_j - mean p)²`` with ``Σ s_i = MS``.
  The term is ``-sign(MS) · n · s_i``: samples that pull the slope away from 0 lose reward, on
  whichever side of 0 the batch is, and the term's batch mean is exactly ``-|MS|``. It is 0 when
  the batch slope is 0 or undefined (fewer than 3 readable pairs, all priors equal, no update that
  varies). A batch in which nothing moves has an undefined slope (every ``s_i`` would be 0 anyway): the
  MS term cannot tell inertia from rationality, which is why the information term exists.
* **Information term** (``info_coef`` · a :class:`~martingale_harness.plugin.reward_terms.RewardTerm`
  plugin chosen by ``info_term``; ``info_coef = 0`` is the ablation). NaN values (not applicable)
  count as 0.
* **Format term**: a completion whose posterior the extractor cannot read gets ``-format_penalty``
  and nothing else; it never gets a made-up belief and is left out of the MS fit.

An item whose *prior* could not be read still gets the format term for its completion, no MS reward
(there is no update to judge) and only information terms that do not use the prior (NaN arithmetic:
``brier_gain`` and ``update_magnitude`` give NaN, ``bayes_distance`` still scores the posterior).
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from martingale_harness.extraction.base import Extractor
from martingale_harness.extraction.beliefs import BeliefReading
from martingale_harness.extraction.transcript import Transcript, Turn
from martingale_harness.plugin.reward_terms import RewardBatch, RewardTerm
from martingale_harness.stats import martingale as stats
from martingale_harness.training.diagnostics import batch_diagnostics
from martingale_harness.training.processes import Processes
from martingale_harness.training.reward_records import METRIC_PREFIX, RewardBreakdown, RewardWeights


def ms_shares(prior: ArrayLike, posterior: ArrayLike) -> tuple[NDArray[np.float64], float]:
    """Per-sample shares of the batch Martingale Score, and the score from :mod:`~martingale_harness.stats.martingale`.

    ``s_i = (Δ_i - mean Δ)(p_i - mean p) / Σ_j (p_j - mean p)²`` sums to the OLS slope. Where the
    slope is undefined (see ``stats.martingale_score``) the shares are all 0 and the slope is NaN.
    """
    p = np.asarray(prior, dtype=np.float64)
    q = np.asarray(posterior, dtype=np.float64)
    fit = stats.martingale_score(p, q)
    if math.isnan(fit.slope):
        return np.zeros_like(p), math.nan
    dx = p - p.mean()
    delta = q - p
    return (delta - delta.mean()) * dx / float(dx @ dx), fit.slope


def combine(batch: RewardBatch, weights: RewardWeights, term: RewardTerm | None) -> RewardBreakdown:
    """The reward of each completion from the beliefs read out of it (see the module docstring)."""
    n = len(batch.prior)
    prior_failed = np.isnan(batch.prior)
    format_failed = np.isnan(batch.posterior)
    pair = ~prior_failed & ~format_failed

    shares = np.zeros(n)
    ms = np.full(n, math.nan)
    s, slope = ms_shares(batch.prior[pair], batch.posterior[pair])
    shares[pair] = s
    if not math.isnan(slope):
        ms[pair] = -np.sign(slope) * pair.sum() * s

    info = np.full(n, math.nan)
    if term is not None:
        values = np.asarray(term.values(batch), dtype=np.float64)
        if values.shape != (n,):
            raise ValueError(f"reward term {term.name!r} returned {values.shape} values for {n} completions")
        info = np.where(format_failed, math.nan, values)

    total = (weights.ms_coef * np.nan_to_num(ms, nan=0.0) + weights.info_coef * np.nan_to_num(info, nan=0.0))
    total = np.where(format_failed, -weights.format_penalty, total)
    return RewardBreakdown(total=total, ms=ms, info=info, format_failed=format_failed, prior_failed=prior_failed,
                           batch_ms=slope, shares=shares, n_pairs=int(pair.sum()), prior=batch.prior,
                           posterior=batch.posterior)


@dataclass(frozen=True)
class EpisodeView:
    """What the reward needs to know about a training item besides the completion."""

    question: str
    prior_prompt: str
    posterior_prompt: str
    label: float | None
    metadata: Mapping[str, Any]


def _text(completion: Any) -> str:
    """A TRL completion (plain text, or conversational: a list of messages) as the answer's text."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion and isinstance(completion[-1], Mapping):
        content = completion[-1].get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):  # content blocks
            return "".join(str(c.get("text", "")) for c in content if isinstance(c, Mapping))
    raise TypeError(f"cannot read the text of completion {completion!r}")


class MartingaleReward:
    """TRL reward function (``reward_funcs=[MartingaleReward(...)]``) over one generation batch.

    TRL passes the dataset's columns as keyword lists: ``item`` (the episode index) and
    ``prior_answer`` (the prior turn shown in the prompt) come from the episode dataset. Each
    component's batch mean is reported through TRL's ``log_metric`` under ``martingale/...`` and so
    reaches every ``report_to`` integration and the per-step metrics JSONL.

    Under several processes TRL calls the reward in each process with that process's slice of the
    generation batch. The MS is a property of the whole batch, so each process reads its own
    completions, the beliefs of all slices are gathered (``processes.gather``, in process order: the
    order of TRL's own gather of the rewards), every process fits the same MS on the gathered batch
    and returns the rewards of its own slice. ``on_batch`` and the metrics see the gathered batch.
    """

    __name__ = "martingale"

    def __init__(self, episodes: Sequence[EpisodeView], extractor: Extractor, weights: RewardWeights,
                 term: RewardTerm | None, on_batch: Callable[[RewardBreakdown], None] | None = None,
                 processes: Processes | None = None) -> None:
        self.episodes = episodes
        self.extractor = extractor
        self.weights = weights
        self.term = term
        self.on_batch = on_batch
        self.processes = processes or Processes()

    async def read(self, items: Sequence[int], prior_answers: Sequence[str],
                   completions: Sequence[Any]) -> RewardBatch:
        """Beliefs of each (prior answer, completion) pair, read as the evaluation's scorer reads them."""

        async def one(index: int, prior_answer: str, completion: Any) -> list[BeliefReading]:
            ep = self.episodes[index]
            transcript = Transcript(question=ep.question, turns=(
                Turn(stage="prior", prompt=ep.prior_prompt, answer=prior_answer),
                Turn(stage="posterior", prompt=ep.posterior_prompt, answer=_text(completion)),
            ))
            readings = await self.extractor.extract(transcript)
            if len(readings) != 2:
                raise RuntimeError(f"extractor {self.extractor.name!r} returned {len(readings)} beliefs for 2 turns")
            return readings

        readings = await asyncio.gather(*(one(i, a, c) for i, a, c in zip(items, prior_answers, completions,
                                                                            strict=True)))
        return self._batch(items, [_value(r[0]) for r in readings], [_value(r[1]) for r in readings])

    def _batch(self, items: Sequence[int], prior: Sequence[float], posterior: Sequence[float]) -> RewardBatch:
        eps = [self.episodes[i] for i in items]
        return RewardBatch(
            prior=np.array(prior, dtype=np.float64),
            posterior=np.array(posterior, dtype=np.float64),
            label=np.array([math.nan if e.label is None else float(e.label) for e in eps]),
            metadata=tuple(e.metadata for e in eps),
        )

    async def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], *, item: Sequence[int],
                       prior_answer: Sequence[str], log_metric: Callable[[str, float], None] | None = None,
                       **_: Any) -> list[float]:
        local = await self.read(item, prior_answer, completions)
        parts = self.processes.gather((list(item), local.prior.tolist(), local.posterior.tolist()))
        start = sum(len(part[0]) for part in parts[: self.processes.index])
        items = [i for part in parts for i in part[0]]
        batch = self._batch(items, [v for part in parts for v in part[1]], [v for part in parts for v in part[2]])
        breakdown, metrics = self.fit(batch, items)
        if log_metric is not None:
            for name, value in metrics.items():
                log_metric(name, value)
        if self.on_batch is not None:
            self.on_batch(breakdown)
        return [float(v) for v in breakdown.total[start:start + len(item)]]

    async def score(self, items: Sequence[int], prior_answers: Sequence[str],
                    completions: Sequence[Any]) -> tuple[RewardBreakdown, dict[str, float]]:
        """The reward breakdown of one batch (in this process) and its metrics: components and diagnostics.

        Completions of one episode must be consecutive (see :mod:`~martingale_harness.training.diagnostics`).
        """
        return self.fit(await self.read(items, prior_answers, completions), items)

    def fit(self, batch: RewardBatch, items: Sequence[int]) -> tuple[RewardBreakdown, dict[str, float]]:
        """The breakdown of a batch whose beliefs are read, and its metrics."""
        breakdown = dataclasses.replace(combine(batch, self.weights, self.term), items=tuple(items))
        diagnostics = batch_diagnostics(breakdown, self.weights, list(items))
        return breakdown, {**breakdown.metrics(), **{METRIC_PREFIX + k: v for k, v in diagnostics.items()}}


def _value(reading: BeliefReading) -> float:
    return reading.value if reading.is_ok and reading.value is not None else math.nan
