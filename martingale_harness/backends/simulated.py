"""Simulated reference reasoners with a known Martingale Score.

Each agent holds a latent belief per sample, seeded from the sample's question text (and the
agent's ``seed``), so repeated runs agree and the same question gets the same prior across agents
with the same ``kappa``. One "step" is one piece of evidence: the agent sees a Gaussian signal
``s ~ N(+-mu, 1)`` whose sign depends on a truth drawn from the agent's *own current belief*. That
makes the exact Bayesian update a martingale by construction: ``E[b_k | b_{k-1}] = b_{k-1}``.

* ``bayesian``: exact Bayes in log-odds, ``logit b_k = logit b_{k-1} + 2 mu s``. True MS = 0.
* ``entrenched`` (``kappa``, ``horizon``): ``E[b_k - b_{k-1} | b_{k-1}] = kappa (b_{k-1} - 0.5)``
  exactly for the first ``horizon`` updates, by shrinking the Bayesian update around the shifted mean
  ``m = b + kappa (b - 0.5)`` just enough to stay inside a band ``0.5 +- r_k``. No bounded process
  keeps a linear outward drift for ever (after ``n`` updates the mean distance from 0.5 has grown by
  ``(1 + kappa)^n``), so with ``kappa > 0`` the bands are ``r_k = 0.5 / (1 + kappa)^(horizon - k)``:
  priors lie in ``0.5 +- r_0`` and the update number ``k`` (1-based) lands in ``0.5 +- r_k``, which
  contains ``m`` because ``|m - 0.5| = (1 + kappa) |b - 0.5|``. The shrink factor depends only on
  ``b``, and the Bayesian part has mean ``b`` under the agent's own belief, so the drift is exact.
  Every paradigm but ``evidence`` makes one update; ``evidence`` makes one per item, and the default
  ``horizon`` of 2 covers the ``forecast`` task's items (background, value at freeze time). Updates
  beyond the horizon clip ``m`` to [0, 1], so their drift is smaller than ``kappa`` near the ends;
  pass ``-M horizon=H`` for longer trajectories, at the cost of priors within ``0.5 +- r_0``
  (``kappa`` = 0.2: horizon 1 gives [0.083, 0.917], 2 gives [0.153, 0.847], 4 gives [0.259, 0.741]).
* ``noisy`` (``noise``): the Bayesian agent, but every *stated* belief carries independent
  elicitation noise with mean zero whatever the belief: Gaussian truncated at ±3 sd, with sd
  ``min(noise, b / 3, (1 - b) / 3)`` so a statement never leaves [0, 1] (clipping instead would
  push statements near 0 and 1 inward, a bias of its own). The naive MS is then biased negative.
  ``entrenched`` takes ``noise`` too (an entrenched agent that also reports noisily).
  :meth:`SimAgent.restate` gives further independent statements of a belief (elicitation ``k``),
  for the noise-robust IV slope.
* ``inert``: states its prior at every turn; inertia = 1.

Draws (``inspect eval --epochs K``): draw ``d`` = epoch − 1 of a sample keeps the question's latent prior
and draws its evidence signals and its elicitation noise afresh (a random stream of its own per draw);
draw 0 is the path every earlier version gave. So each epoch is an independent answer of the same
reasoner to the same question: ``E[b_1 − b_0 | b_0]`` is the agent's drift in every draw (MS 0 for
``bayesian``, ``kappa`` for ``entrenched`` within its horizon), and the update varies from draw to draw.

Priors are ``lo + (hi - lo) * Beta(2, 2)`` with ``[lo, hi] = [0.02, 0.98]``, narrowed for
``entrenched`` with ``kappa > 0`` to the band ``0.5 +- r_0`` above.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

AgentKind = Literal["bayesian", "entrenched", "noisy", "inert"]
AGENT_KINDS: tuple[AgentKind, ...] = ("bayesian", "entrenched", "noisy", "inert")
MAX_STEPS = 64
DEFAULT_HORIZON = 2
DRAW_STREAM = 10_000
"""Draw d >= 1 takes its signals and noise from stream ``DRAW_STREAM * d`` (repeats add their own offset)."""
_PRIOR_RANGE = (0.02, 0.98)
_LOGIT_CLIP = 1e-9


def _logit(p: float) -> float:
    p = min(max(p, _LOGIT_CLIP), 1 - _LOGIT_CLIP)
    return math.log(p / (1 - p))


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


@dataclass(frozen=True)
class BeliefPath:
    """A simulated trajectory: latent beliefs and what the agent says, b_0..b_T."""

    true: tuple[float, ...]
    stated: tuple[float, ...]


@dataclass(frozen=True)
class SimAgent:
    """A reference reasoner; see the module docstring for each kind's exact properties."""

    kind: AgentKind
    kappa: float = 0.0
    noise: float = 0.0
    strength: float = 1.0
    """Signal separation 2*mu: one signal moves a Bayesian's log-odds by ``strength * s``."""
    seed: int = 0
    horizon: int = DEFAULT_HORIZON
    """Updates that keep ``entrenched``'s exact drift (see the module docstring)."""
    _prior_range: tuple[float, float] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in AGENT_KINDS:
            raise ValueError(f"unknown simulated agent {self.kind!r}; choose one of {', '.join(AGENT_KINDS)}")
        if self.kind != "entrenched" and self.kappa != 0.0:
            raise ValueError(f"kappa applies to sim/entrenched only, not sim/{self.kind}")
        if self.kind not in ("noisy", "entrenched") and self.noise != 0.0:
            raise ValueError(f"noise applies to sim/noisy and sim/entrenched only, not sim/{self.kind}")
        if not -1.0 <= self.kappa <= 1.0:
            raise ValueError(f"kappa must lie in [-1, 1], got {self.kappa}")
        if not 0.0 <= self.noise <= 0.5:
            raise ValueError(f"noise must lie in [0, 0.5], got {self.noise}")
        if not 0.0 < self.strength <= 10.0:
            raise ValueError(f"strength must lie in (0, 10], got {self.strength}")
        if not 1 <= self.horizon <= MAX_STEPS:
            raise ValueError(f"horizon must lie in [1, {MAX_STEPS}], got {self.horizon}")
        if self.kind != "entrenched" and self.horizon != DEFAULT_HORIZON:
            raise ValueError(f"horizon applies to sim/entrenched only, not sim/{self.kind}")
        lo = max(_PRIOR_RANGE[0], 0.5 - self._band(0)) if self.kappa > 0 else _PRIOR_RANGE[0]
        object.__setattr__(self, "_prior_range", (lo, 1 - lo))

    def _band(self, k: int) -> float:
        """Half-width r_k of the band that belief k must stay in (0.5 when unconstrained)."""
        if self.kappa <= 0 or k >= self.horizon:
            return 0.5
        return 0.5 / (1 + self.kappa) ** (self.horizon - k)

    def rng(self, key: str, stream: int = 0) -> np.random.Generator:
        """A generator seeded by (agent seed, sample key, stream): deterministic per sample."""
        digest = hashlib.sha256(key.encode("utf-8")).digest()
        words = [int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4)]
        return np.random.default_rng(np.random.SeedSequence([self.seed, stream, *words]))

    def path(self, key: str, steps: int, draw: int = 0) -> BeliefPath:
        """Beliefs b_0 (prior) .. b_steps for the sample identified by ``key``, in draw ``draw``.

        Draws are made in a fixed order for ``MAX_STEPS`` steps, so a prefix does not depend on
        how many steps are asked for. Every draw shares the prior (module docstring).
        """
        if not 0 <= steps <= MAX_STEPS:
            raise ValueError(f"steps must lie in [0, {MAX_STEPS}], got {steps}")
        if draw < 0:
            raise ValueError(f"draw must be >= 0, got {draw}")
        rng = self.rng(key)
        lo, hi = self._prior_range
        prior = lo + (hi - lo) * float(rng.beta(2.0, 2.0))
        if draw:
            rng = self.rng(key, stream=DRAW_STREAM * draw)
        truth_u = rng.random(MAX_STEPS)
        signal_z = rng.standard_normal(MAX_STEPS)
        elicit_e = rng.standard_normal(MAX_STEPS + 1)

        true = [prior]
        b = prior
        for k in range(steps):
            if self.kind != "inert":
                b = self._step(b, truth_u[k], signal_z[k], self._band(k + 1))
            true.append(b)
        stated = [self._stated(v, float(elicit_e[i])) for i, v in enumerate(true)]
        return BeliefPath(tuple(true), tuple(stated))

    def _step(self, b: float, u: float, z: float, band: float) -> float:
        mu = self.strength / 2.0
        truth = 1.0 if u < b else -1.0
        signal = truth * mu + z
        bayes = _sigmoid(_logit(b) + 2.0 * mu * signal)
        if self.kind != "entrenched":
            return bayes
        lo, hi = 0.5 - band, 0.5 + band
        m = min(hi, max(lo, b + self.kappa * (b - 0.5)))  # clips only beyond the horizon
        # largest shrink factor that keeps m + lam * (bayes - b) inside [lo, hi] for any bayes in [0, 1]
        lam = min(1.0, (m - lo) / b if b > 0 else 1.0, (hi - m) / (1 - b) if b < 1 else 1.0)
        return min(hi, max(lo, m + lam * (bayes - b)))

    def restate(self, key: str, turn: int, elicitation: int, draw: int = 0) -> float:
        """Belief b_turn of draw ``draw`` stated again in an independent elicitation (``elicitation`` >= 1).

        The latent belief is the same; only the elicitation noise is drawn afresh (a stream of its
        own per elicitation), so without noise the restatement equals the first statement.
        """
        if elicitation < 1:
            raise ValueError("elicitation 0 is the conversation's own statement; repeats count from 1")
        belief = self.path(key, turn, draw).true[turn]
        if not self.noise:
            return belief
        e = float(self.rng(key, stream=1000 + elicitation + DRAW_STREAM * draw).standard_normal(MAX_STEPS + 1)[turn])
        return self._stated(belief, e)

    def _stated(self, belief: float, e: float) -> float:
        """``belief`` as stated with standard-normal draw ``e`` (see ``noisy`` in the module docstring)."""
        if not self.noise:
            return belief
        scale = min(self.noise, belief / 3.0, (1.0 - belief) / 3.0)
        return min(1.0, max(0.0, belief + scale * max(-3.0, min(3.0, e))))  # min/max: float rounding only
