"""The simulated reasoners on ``martingale/bayes`` problems: oracles for the problem's own model.

On every other task a ``sim/*`` agent draws its own latent signals and never reads the question.
The bayes problems have exact posteriors, and the must-show checks of that task need agents that
act on them, so when the first user message is the prior question of a generated bayes problem
(found in the generator's table, :func:`martingale_harness.tasks.bayes.dataset.registered`) the agent
reads the problem's exact posteriors b*_0..b*_T instead. It is then an oracle given the problem's
model, not a reasoner: it knows the answer the stated model implies, without parsing the text.

How far the evidence has got is read from the conversation: the number of the problem's evidence
lines shown so far (in order, one per turn in the ``evidence`` paradigm, all at once in ``direct``,
``cot`` and ``debate``) gives the index r_j of the exact posterior at belief turn j.

* ``bayesian``: states b*_{r_j}; ``noisy``: the same with its elicitation noise (the same noise
  model as on other tasks, ``SimAgent``'s); ``inert``: states b*_0 (the exact prior) at every turn.
* ``entrenched`` (``kappa``): starts from the exact prior; each turn moves to
  ``m + lam * (b*_{r_j} - b*_{r_{j-1}})`` with ``m = b + kappa (b - 0.5)`` clipped to
  [0.01, 0.99] and ``lam`` the largest factor in [0, 1] that keeps the result in [0, 1]. The exact
  posteriors are a martingale under the generative process (the truth is drawn from the stated
  prior), and ``lam`` depends only on the past, so ``E[b_j - b_{j-1} | past] = kappa (b_{j-1} - 0.5)``
  exactly while ``|b - 0.5| <= 0.49 / (1 + kappa)``; beyond that the drift is cut at 0.01 and 0.99.
  Its noise (``-M noise``) applies as on other tasks.

``strength`` and ``horizon`` do not apply here (the evidence strength is the problem's). A question
that the task rewrote (``doc_to_text``) is not found in the table and gets the ordinary agent.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from martingale_harness.backends.simulated import DRAW_STREAM, MAX_STEPS, BeliefPath, SimAgent
from martingale_harness.protocol.solver import ANSWER_FORMAT, PRIOR_INSTRUCTION, is_belief_prompt
from martingale_harness.tasks.bayes.dataset import registered

_PRIOR_SUFFIX = f"\n\n{PRIOR_INSTRUCTION} {ANSWER_FORMAT}"
_NOISE_STREAM = 7  # elicitation noise of stated beliefs on bayes problems; repeats use 1000 + k as elsewhere
DRIFT_BAND = (0.01, 0.99)
"""Where ``entrenched``'s shifted mean ``b + kappa (b - 0.5)`` is kept on bayes problems."""


def revealed_counts(user_texts: Sequence[str], evidence: Sequence[str]) -> tuple[int, ...]:
    """Evidence items shown by each belief prompt (0 for the prior), scanning the user turns in order."""
    counts = [0]
    found = 0
    for text in user_texts[1:]:
        start = 0
        while found < len(evidence):
            at = text.find(evidence[found], start)
            if at < 0:
                break
            start = at + len(evidence[found])
            found += 1
        if is_belief_prompt(text):
            counts.append(found)
    return tuple(counts)


def oracle_beliefs(agent: SimAgent, exact: Sequence[float], revealed: Sequence[int]) -> tuple[float, ...]:
    """Latent beliefs per belief turn (see the module docstring for each kind)."""
    if agent.kind == "inert":
        return tuple(float(exact[0]) for _ in revealed)
    if agent.kind != "entrenched":
        return tuple(float(exact[r]) for r in revealed)
    lo, hi = DRIFT_BAND
    beliefs = [float(exact[0])]
    for before, now in zip(revealed[:-1], revealed[1:], strict=True):
        b, star = beliefs[-1], float(exact[before])
        m = min(hi, max(lo, b + agent.kappa * (b - 0.5)))
        lam = min(1.0, m / star if star > 0 else math.inf, (1 - m) / (1 - star) if star < 1 else math.inf)
        beliefs.append(min(1.0, max(0.0, m + lam * (float(exact[now]) - star))))  # min/max: rounding only
    return tuple(beliefs)


@dataclass(frozen=True)
class BayesOracle:
    """A sim agent bound to one bayes problem; answers ``path`` and ``restate`` like a ``SimAgent``."""

    agent: SimAgent
    exact: tuple[float, ...]
    revealed: tuple[int, ...]

    def rng(self, key: str, stream: int = 0) -> np.random.Generator:
        return self.agent.rng(key, stream)

    def _latent(self, steps: int) -> tuple[float, ...]:
        revealed = self.revealed[: steps + 1]
        revealed += (revealed[-1],) * (steps + 1 - len(revealed))  # no further evidence shown
        return oracle_beliefs(self.agent, self.exact, revealed)

    def path(self, key: str, steps: int, draw: int = 0) -> BeliefPath:
        """Beliefs b_0..b_steps, latent and as stated (the oracle's latent beliefs are the problem's
        exact posteriors, so they are the same in every draw; only the elicitation noise is drawn anew)."""
        if not 0 <= steps <= MAX_STEPS:
            raise ValueError(f"steps must lie in [0, {MAX_STEPS}], got {steps}")
        true = self._latent(steps)
        noise = self.agent.rng(key, stream=_NOISE_STREAM + DRAW_STREAM * draw).standard_normal(MAX_STEPS + 1)
        return BeliefPath(true, tuple(self.agent._stated(b, float(noise[i])) for i, b in enumerate(true)))

    def restate(self, key: str, turn: int, elicitation: int, draw: int = 0) -> float:
        """Belief b_turn stated again with fresh noise (elicitation >= 1), as ``SimAgent.restate``."""
        if elicitation < 1:
            raise ValueError("elicitation 0 is the conversation's own statement; repeats count from 1")
        belief = self._latent(turn)[turn]
        if not self.agent.noise:
            return belief
        stream = 1000 + elicitation + DRAW_STREAM * draw
        e = float(self.agent.rng(key, stream=stream).standard_normal(MAX_STEPS + 1)[turn])
        return self.agent._stated(belief, e)


def bayes_oracle(agent: SimAgent, user_texts: Sequence[str]) -> BayesOracle | None:
    """The oracle for the conversation's bayes problem, or ``None`` when it is not one."""
    if not user_texts or not user_texts[0].endswith(_PRIOR_SUFFIX):
        return None
    candidates = registered(user_texts[0][: -len(_PRIOR_SUFFIX)])
    if not candidates:
        return None
    # problems that share a question differ in their evidence: the one whose lines were shown wins
    # (problems agreeing on every line shown so far also agree on every posterior so far)
    scored = [(revealed_counts(user_texts, evidence), exact) for evidence, exact in candidates.items()]
    revealed, exact = max(scored, key=lambda c: c[0][-1])
    return BayesOracle(agent, exact, revealed)
