"""How many questions a run needs to detect a given Martingale Score (power of the slope t-test).

Model. Each question gives one (prior, posterior) pair. The prior p has standard deviation
``sd_prior`` across questions and the update is

    Δ = E · (p − mean p) + ε,        sd(ε) = sd_delta,

so E is the true Martingale Score and ``sd_delta`` is the SD of the update around the fitted line
(the residual SD; about the SD of Δ itself when E is small, since sd(Δ)² = E²·sd_prior² + sd_delta²).

Test. MS is called significant by the classic two-sided OLS t-test of slope = 0 with n − 2 degrees
of freedom (``ms_slope_p``, as in the paper). Given the priors, t = β̂1 / se(β̂1) follows a noncentral
t distribution with df = n − 2 and noncentrality E·√Sxx / sd_delta, where Sxx = Σ(p − p̄)² =
(n − 1)·s² and s is the priors' sample SD. Treating s as ``sd_prior``:

    δ = E · sd_prior · √(n − 1) / sd_delta
    power(n) = P(|T| > t_{1−α/2, n−2}),   T ~ nct(df = n − 2, nc = δ)

(√(n − 1) rather than √n because Sxx has n − 1 degrees of freedom; the difference is about one
question.) This is exactly statsmodels' one-sample ``TTestPower`` with effect size
d = E·sd_prior/sd_delta and nobs = n − 1. The answer is the smallest n ≥ 3 with power(n) ≥ the target,
found by doubling from the normal approximation and then bisecting (power(n) increases with n).
For reference the normal approximation

    n ≈ ((z_{1−α/2} + z_{power}) · sd_delta / (|E| · sd_prior))² + 2

is reported too; it runs one to a few questions below the exact n (more at small α).

What the model leaves out: random priors make Sxx vary around (n − 1)·sd_prior² (a loss of well under
a percentage point of power at the sizes that matter), and real updates are heteroscedastic, which
the classic t-test does not model (see the README on the HC3 interval). Questions whose beliefs fail
to extract drop out, so ask for n / (1 − failure rate) questions.

Draws per question (``inspect eval --epochs K``). Split the residual SD of one draw's update into a
part that belongs to the question and a draw-to-draw part: sd_delta² = σ_q² + sd_within². K draws of a
question share its prior, and the pooled slope over all K·n pairs equals the slope over the questions'
mean updates, whose residual variance is σ_q² + sd_within²/K. So K draws act as one draw with

    sd_delta(K) = √(sd_delta² − sd_within² · (1 − 1/K))

and the formulas above apply with sd_delta(K); the test is then the one on question means (the
cluster bootstrap's view), not the classic t-test over K·n pairs as if they were independent. More draws
help only as far as the draw-to-draw part reaches: the floor is σ_q. A pilot run with ``--epochs 2`` or
more reports both parts (``delta_var_between``, ``delta_var_within``; their sum estimates sd_delta² up to
the slope's share).

Defaults (assumptions, not measurements of any real model; estimate both from a pilot run): the
priors' SD is ``sd_prior`` and the residual SD of the pilot's MS regression is ``sd_delta``.
``sd_prior`` = 0.20: on the bundled demo sets the simulated reasoners' priors have SDs of 0.18-0.23
(forecast, cmv, openreview), and the 250 market questions of ForecastBench 2025-10-26 have crowd
probabilities with SD 0.29; a model asked before seeing the evidence hedges towards 0.5, so its priors
spread less than markets'. ``sd_delta`` = 0.17: the residual SD of the simulated reasoners' updates on
the same demo sets is 0.16-0.19. Both lean conservative (a smaller ``sd_prior`` and a larger
``sd_delta`` ask for more questions); n scales with (sd_delta / sd_prior)².
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats as sps

DEFAULT_SD_PRIOR = 0.20
DEFAULT_SD_DELTA = 0.17
DEFAULT_ALPHA = 0.05
DEFAULT_POWER = 0.80
MIN_QUESTIONS = 3  # the slope's t-test needs n - 2 >= 1 degrees of freedom
MAX_QUESTIONS = 10**12  # beyond this the effect is, for any run, undetectable


class PowerInputError(ValueError):
    """An input of the power calculation is out of range; ``param`` names it."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(f"{param}: {message}")
        self.param = param
        self.message = message


@dataclass(frozen=True)
class PowerResult:
    """Questions needed to detect Martingale Score ``effect``, with the inputs that produced the number."""

    n: int
    achieved_power: float
    n_normal_approx: float
    effect: float
    sd_prior: float
    sd_delta: float
    alpha: float
    power: float
    draws: int = 1
    sd_within: float = 0.0

    @property
    def sd_per_question(self) -> float:
        """The residual SD of a question's mean update over its draws (module docstring)."""
        return per_question_sd(self.sd_delta, self.sd_within, self.draws)


def _check(effect: float, sd_prior: float, sd_delta: float, alpha: float) -> None:
    for name, value in (("effect", effect), ("sd_prior", sd_prior), ("sd_delta", sd_delta), ("alpha", alpha)):
        if not math.isfinite(value):
            raise PowerInputError(name, f"must be a finite number, got {value}")
    if effect == 0:
        raise PowerInputError("effect", "must be non-zero: MS = 0 is the null hypothesis, no sample size detects it")
    if sd_prior <= 0:
        raise PowerInputError("sd_prior", f"must be > 0 (the SD of the priors across questions), got {sd_prior}")
    if sd_delta <= 0:
        raise PowerInputError("sd_delta", f"must be > 0 (the residual SD of the updates), got {sd_delta}")
    if not 0 < alpha < 1:
        raise PowerInputError("alpha", f"must lie in (0, 1), got {alpha}")


def per_question_sd(sd_delta: float, sd_within: float = 0.0, draws: int = 1) -> float:
    """sd_delta(K): the residual SD of a question's mean update over ``draws`` draws (module docstring)."""
    if isinstance(draws, bool) or int(draws) != draws or draws < 1:
        raise PowerInputError("draws", f"must be an integer >= 1, got {draws}")
    if not (math.isfinite(sd_within) and 0 <= sd_within <= sd_delta):
        raise PowerInputError("sd_within", f"must lie in [0, sd_delta = {sd_delta:g}] (the draw-to-draw part of "
                                           f"the residual SD), got {sd_within}")
    return math.sqrt(sd_delta**2 - sd_within**2 * (1 - 1 / draws))


def power_at(
    n: int,
    effect: float,
    sd_prior: float = DEFAULT_SD_PRIOR,
    sd_delta: float = DEFAULT_SD_DELTA,
    alpha: float = DEFAULT_ALPHA,
    draws: int = 1,
    sd_within: float = 0.0,
) -> float:
    """Power of the two-sided OLS slope t-test (df = n − 2) with ``n`` questions when the true MS is ``effect``.

    With ``draws`` K > 1 each question is answered K times, ``sd_within`` of ``sd_delta`` being draw to draw.
    """
    _check(effect, sd_prior, sd_delta, alpha)
    sd_delta = per_question_sd(sd_delta, sd_within, draws)
    if isinstance(n, bool) or int(n) != n or n < MIN_QUESTIONS:
        raise PowerInputError("n", f"must be an integer >= {MIN_QUESTIONS}, got {n}")
    df = n - 2
    nc = abs(effect) * sd_prior * math.sqrt(n - 1) / sd_delta
    crit = float(sps.t.isf(alpha / 2, df))
    upper = float(sps.nct.sf(crit, df, nc))
    # P(T < -crit) as the mirrored upper tail: scipy's nct.cdf(-crit, df, nc) turns NaN once nc is
    # large (~6 and up), nct.sf(crit, df, -nc) stays finite. It can never exceed P(T < 0) = Φ(-nc).
    lower = min(max(float(sps.nct.sf(crit, df, -nc)), 0.0), float(sps.norm.cdf(-nc)))
    return min(upper + lower, 1.0)


def required_questions(
    effect: float,
    sd_prior: float = DEFAULT_SD_PRIOR,
    sd_delta: float = DEFAULT_SD_DELTA,
    alpha: float = DEFAULT_ALPHA,
    power: float = DEFAULT_POWER,
    draws: int = 1,
    sd_within: float = 0.0,
) -> PowerResult:
    """Smallest number of questions at which the slope t-test detects MS = ``effect`` with probability ``power``.

    A negative ``effect`` (regression toward 0.5) needs as many questions as its absolute value. With
    ``draws`` K > 1 (``--epochs K``), ``sd_within`` is the draw-to-draw part of ``sd_delta``.
    """
    _check(effect, sd_prior, sd_delta, alpha)
    single_sd = sd_delta
    sd_delta = per_question_sd(sd_delta, sd_within, draws)
    if not (math.isfinite(power) and 0 < power < 1):
        raise PowerInputError("power", f"must lie in (0, 1), got {power}")

    z = float(sps.norm.isf(alpha / 2) + sps.norm.ppf(power))
    n_normal = (z * sd_delta / (abs(effect) * sd_prior)) ** 2 + 2 if z > 0 else 2.0
    if n_normal > MAX_QUESTIONS:
        raise PowerInputError("effect", f"{effect} is too small to detect: it needs about {n_normal:.3g} questions")

    def reached(n: int) -> bool:
        return power_at(n, effect, sd_prior, sd_delta, alpha) >= power

    # the normal approximation is close to the answer; double until power is reached, then bisect
    lo, hi = MIN_QUESTIONS - 1, max(MIN_QUESTIONS, math.ceil(n_normal))
    while not reached(hi):
        lo, hi = hi, 2 * hi
        if hi > 2 * MAX_QUESTIONS:
            raise PowerInputError("effect", f"{effect} is too small to detect with up to {MAX_QUESTIONS} questions")
    while hi - lo > 1:  # invariant: power(lo) < target (lo = 2 stands for "no test"), power(hi) >= target
        mid = (lo + hi) // 2
        if reached(mid):
            hi = mid
        else:
            lo = mid
    return PowerResult(
        n=hi,
        achieved_power=power_at(hi, effect, sd_prior, sd_delta, alpha),
        n_normal_approx=n_normal,
        effect=effect,
        sd_prior=sd_prior,
        sd_delta=single_sd,
        alpha=alpha,
        power=power,
        draws=draws,
        sd_within=sd_within,
    )
