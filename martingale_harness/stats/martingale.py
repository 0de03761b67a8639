"""Statistics of belief updates: the Martingale Score and its companions.

Pure functions on arrays (numpy/scipy only, nothing from inspect), so they can be checked
against statsmodels and closed forms and reused unchanged by evaluation, reporting and training.

The Martingale Score (He, Qiu, Shirado, Sap, NeurIPS 2025) is the OLS slope of the update
``delta = posterior - prior`` on ``prior``. A rational Bayesian's updates are unpredictable from
its prior, so its slope is 0; a positive slope is belief entrenchment.

Inference choices (see docs/architecture.md, section 2):

* ``se``, ``t``, ``p`` are the classic OLS t-test, as reported in the paper.
* The 95 % interval (``ci_low``, ``ci_high``) is robust: HC3 standard error with a t(n-2)
  quantile when each question contributes one pair, and a cluster (question) bootstrap when a
  question contributes several pairs. Bayesian updates are heteroscedastic (|delta| depends on the
  prior), which makes the classic interval badly calibrated.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats as sps
from threadpoolctl import threadpool_limits

MIN_PAIRS = 3
"""Below this many (prior, posterior) pairs a slope has no residual degrees of freedom."""

INERTIA_TOL = 1e-9
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 20251202


@dataclass(frozen=True)
class MartingaleResult:
    """The Martingale Score fit. Undefined quantities are NaN and ``reason`` says why."""

    slope: float
    intercept: float
    intercept_at_half: float
    se: float
    t: float
    p: float
    r2: float
    signed_r2: float
    n: int
    se_robust: float
    p_robust: float
    ci_low: float
    ci_high: float
    ci_method: str
    """``"hc3"``, ``"cluster_bootstrap"`` or ``"none"`` (not computable)."""
    n_clusters: int
    reason: str | None = None

    def to_dict(self) -> dict[str, float | int | str | None]:
        return asdict(self)


@dataclass(frozen=True)
class PairedTest:
    """Mean paired difference (a - b) with a paired t-test."""

    mean_diff: float
    se: float
    t: float
    p: float
    n: int
    reason: str | None = None


def _as_probabilities(name: str, values: ArrayLike) -> NDArray[np.float64]:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values; drop failed extractions first")
    if arr.size and (arr.min() < 0.0 or arr.max() > 1.0):
        raise ValueError(f"{name} must lie in [0, 1]; got range [{arr.min()}, {arr.max()}]")
    return arr


def _undefined(n: int, n_clusters: int, reason: str, **known: float) -> MartingaleResult:
    nan = math.nan
    values: dict[str, float] = dict(
        slope=nan, intercept=nan, intercept_at_half=nan, se=nan, t=nan, p=nan, r2=nan,
        signed_r2=nan, se_robust=nan, p_robust=nan, ci_low=nan, ci_high=nan,
    )
    values.update(known)
    return MartingaleResult(**values, n=n, ci_method="none", n_clusters=n_clusters, reason=reason)



def undefined_reason(prior: NDArray[np.float64], delta: NDArray[np.float64]) -> str | None:
    """Why the slope of ``delta`` on ``prior`` is not identified (None when it is).

    Fewer than :data:`MIN_PAIRS` pairs, priors without spread, or updates without spread. The last
    would give a slope of exactly 0 with a zero-width interval, which reads as "rational, and certain
    of it", when updates that never vary (every belief repeating its prior) measure nothing about
    entrenchment.
    """
    n = int(prior.size)
    if n < MIN_PAIRS:
        return f"need at least {MIN_PAIRS} pairs with both beliefs, have {n}"
    dx = prior - prior.mean()
    if float(dx @ dx) <= 1e-24 * n:
        return "all priors are equal, so the slope is not identified"
    if float(np.ptp(delta)) < INERTIA_TOL:
        mean = float(delta.mean())
        same = (f"every one of the {n} beliefs equals the one before it" if abs(mean) < INERTIA_TOL
                else f"all {n} updates are the same {mean:+.4g}")
        return f"updates do not vary ({same}), so the slope is not identified"
    return None


def martingale_score(
    prior: ArrayLike,
    posterior: ArrayLike,
    cluster: Sequence[object] | NDArray[np.generic] | None = None,
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> MartingaleResult:
    """Fit ``posterior - prior = b1 * prior + b0`` by OLS; the Martingale Score is ``b1``.

    ``cluster`` labels the question each pair belongs to; when some question contributes more
    than one pair the 95 % interval comes from a cluster bootstrap (``resamples`` draws, seeded),
    otherwise from the HC3 standard error. Degenerate input (fewer than 3 pairs, all priors equal,
    or updates without spread, as when every belief repeats its prior) gives NaN in every field,
    interval and tests included, with ``reason`` set, rather than raising.
    """
    x = _as_probabilities("prior", prior)
    q = _as_probabilities("posterior", posterior)
    if x.shape != q.shape:
        raise ValueError(f"prior and posterior differ in length: {x.size} vs {q.size}")
    n = int(x.size)
    y = q - x

    codes: NDArray[np.intp] | None = None
    n_clusters = n
    if cluster is not None:
        labels = np.asarray(cluster)
        if labels.shape != (n,):
            raise ValueError(f"cluster must have one label per pair ({n}), got shape {labels.shape}")
        _, codes = np.unique(labels, return_inverse=True)
        n_clusters = int(codes.max()) + 1 if n else 0

    why = undefined_reason(x, y)
    if why:
        return _undefined(n, n_clusters, why)

    x_mean = x.mean()
    y_mean = y.mean()
    dx = x - x_mean
    sxx = float(dx @ dx)
    slope = float(dx @ (y - y_mean)) / sxx
    intercept = float(y_mean - slope * x_mean)
    resid = y - intercept - slope * x
    sse = float(resid @ resid)
    dy = y - y_mean
    sst = float(dy @ dy)
    df = n - 2

    se = math.sqrt(sse / df / sxx)
    r2 = 1.0 - sse / sst if sst > 0 else math.nan
    t = slope / se if se > 0 else math.nan
    p = float(2 * sps.t.sf(abs(t), df)) if se > 0 else math.nan

    leverage = 1.0 / n + dx * dx / sxx
    hc3 = np.sum((dx * resid / (1.0 - leverage)) ** 2) / sxx**2
    se_robust = math.sqrt(float(hc3))
    p_robust = float(2 * sps.t.sf(abs(slope / se_robust), df)) if se_robust > 0 else math.nan

    if codes is not None and n_clusters < n and n_clusters < MIN_PAIRS:
        # resampling one or two questions gives a zero-width or two-point "interval", not a CI
        ci_low = ci_high = math.nan
        ci_method = "cluster_bootstrap"
    elif codes is not None and n_clusters < n:
        ci_low, ci_high = _cluster_bootstrap_ci(x, y, codes, n_clusters, resamples, seed)
        ci_method = "cluster_bootstrap"
    else:
        half = float(sps.t.ppf(0.975, df)) * se_robust
        ci_low, ci_high = slope - half, slope + half
        ci_method = "hc3"

    return MartingaleResult(
        slope=slope,
        intercept=intercept,
        intercept_at_half=intercept + 0.5 * slope,
        se=se,
        t=t,
        p=p,
        r2=r2,
        signed_r2=math.copysign(r2, slope) if not math.isnan(r2) else math.nan,
        n=n,
        se_robust=se_robust,
        p_robust=p_robust,
        ci_low=ci_low,
        ci_high=ci_high,
        ci_method=ci_method,
        n_clusters=n_clusters,
    )


def _cluster_sums(x: NDArray[np.float64], y: NDArray[np.float64], codes: NDArray[np.intp],
                  n_clusters: int) -> NDArray[np.float64]:
    """Per-cluster sufficient statistics of a regression of y on x: n, Σx, Σy, Σx², Σxy."""
    return np.stack(
        [
            np.bincount(codes, minlength=n_clusters).astype(np.float64),
            np.bincount(codes, weights=x, minlength=n_clusters),
            np.bincount(codes, weights=y, minlength=n_clusters),
            np.bincount(codes, weights=x * x, minlength=n_clusters),
            np.bincount(codes, weights=x * y, minlength=n_clusters),
        ],
        axis=1,
    )


def _bootstrap_totals(rng: np.random.Generator, sums: list[NDArray[np.float64]],
                      resamples: int) -> list[NDArray[np.float64]]:
    """Summed statistics per resample for each of ``sums``, all resampled with the same draws.

    A draw takes n_clusters clusters with replacement; only its counts are kept, one at a time,
    so memory stays O(clusters) however many resamples are made.
    """
    n_clusters = sums[0].shape[0]
    totals = [np.empty((resamples, s.shape[1])) for s in sums]
    # each product is small: BLAS threads only add hand-off cost (3x slower on a busy 2-core machine)
    with threadpool_limits(limits=1, user_api="blas"):
        for b in range(resamples):
            counts = np.bincount(rng.integers(n_clusters, size=n_clusters), minlength=n_clusters).astype(np.float64)
            for total, s in zip(totals, sums, strict=True):
                total[b] = counts @ s
    return totals


def _slopes(totals: NDArray[np.float64]) -> NDArray[np.float64]:
    """OLS slopes from summed sufficient statistics (one row per resample; NaN where undefined)."""
    m, sx, sy, sxx, sxy = totals.T
    with np.errstate(divide="ignore", invalid="ignore"):
        cxx = sxx - sx * sx / m
        cxy = sxy - sx * sy / m
        return np.where(cxx > 1e-24 * m, cxy / cxx, np.nan)


def _percentile_ci(values: NDArray[np.float64]) -> tuple[float, float]:
    values = values[np.isfinite(values)]
    if values.size < 2:
        return math.nan, math.nan
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def _cluster_bootstrap_ci(
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    codes: NDArray[np.intp],
    n_clusters: int,
    resamples: int,
    seed: int,
) -> tuple[float, float]:
    """Percentile 95 % interval of the slope, resampling whole clusters with replacement.

    Works on per-cluster sufficient statistics, so a resample costs O(clusters), not O(pairs).
    """
    (totals,) = _bootstrap_totals(np.random.default_rng(seed), [_cluster_sums(x, y, codes, n_clusters)], resamples)
    return _percentile_ci(_slopes(totals))


def cluster_bootstrap_lines(
    prior: ArrayLike, posterior: ArrayLike, cluster: ArrayLike, *,
    resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(intercepts, slopes) of the update-on-prior fit in each question-cluster bootstrap resample.

    The same draws as :func:`martingale_score`'s cluster interval (same ``resamples`` and ``seed``), so
    the 2.5/97.5 percentiles of the slopes are exactly its ``ci_low``/``ci_high``; NaN where a resample
    has no spread in the priors.
    """
    x = _as_probabilities("prior", prior)
    y = _as_probabilities("posterior", posterior) - x
    _, codes = np.unique(np.asarray(cluster), return_inverse=True)
    n_clusters = int(codes.max()) + 1 if x.size else 0
    (totals,) = _bootstrap_totals(np.random.default_rng(seed), [_cluster_sums(x, y, codes, n_clusters)], resamples)
    slopes = _slopes(totals)
    m, sx, sy = totals[:, 0], totals[:, 1], totals[:, 2]
    return (sy - slopes * sx) / m, slopes


@dataclass(frozen=True)
class PairedSlopeDifference:
    """MS(b) − MS(a) on the same questions, with a paired cluster-bootstrap 95 % CI."""

    difference: float
    ci_low: float
    ci_high: float
    n_clusters: int
    resamples: int
    reason: str | None = None
    """Why the difference is NaN: one side's slope is not identified on the shared questions."""


def paired_slope_difference(
    prior_a: ArrayLike, posterior_a: ArrayLike, cluster_a: ArrayLike,
    prior_b: ArrayLike, posterior_b: ArrayLike, cluster_b: ArrayLike,
    resamples: int = 1000, seed: int = 0,
) -> PairedSlopeDifference:
    """Difference of two Martingale Scores measured on the same questions.

    Each side's pairs carry the question they belong to; one bootstrap resample draws questions
    with replacement and refits both slopes on the same draw, so what the two runs share (the
    questions) cancels out of the interval. Questions present on one side only are dropped. When
    either side's slope is not identified on the shared questions (:func:`undefined_reason`), the
    difference and its interval are NaN and ``reason`` says which side and why.
    """
    xa, qa = _as_probabilities("prior_a", prior_a), _as_probabilities("posterior_a", posterior_a)
    xb, qb = _as_probabilities("prior_b", prior_b), _as_probabilities("posterior_b", posterior_b)
    ca, cb = np.asarray(cluster_a).astype(str), np.asarray(cluster_b).astype(str)
    if not (xa.shape == qa.shape == ca.shape and xb.shape == qb.shape == cb.shape):
        raise ValueError("each side's prior, posterior and cluster must have the same length")
    shared = np.intersect1d(ca, cb)
    keep_a, keep_b = np.isin(ca, shared), np.isin(cb, shared)
    codes_a = np.searchsorted(shared, ca[keep_a])
    codes_b = np.searchsorted(shared, cb[keep_b])
    k = int(shared.size)
    sums_a = _cluster_sums(xa[keep_a], qa[keep_a] - xa[keep_a], codes_a, k)
    sums_b = _cluster_sums(xb[keep_b], qb[keep_b] - xb[keep_b], codes_b, k)
    for side, x, q, keep in (("A", xa, qa, keep_a), ("B", xb, qb, keep_b)):
        why = undefined_reason(x[keep], q[keep] - x[keep])
        if why:
            return PairedSlopeDifference(math.nan, math.nan, math.nan, k, resamples, reason=f"MS {side}: {why}")
    point = _slopes(sums_b.sum(axis=0, keepdims=True))[0] - _slopes(sums_a.sum(axis=0, keepdims=True))[0]
    if k < 3:
        return PairedSlopeDifference(float(point), math.nan, math.nan, k, resamples)
    totals_a, totals_b = _bootstrap_totals(np.random.default_rng(seed), [sums_a, sums_b], resamples)
    low, high = _percentile_ci(_slopes(totals_b) - _slopes(totals_a))
    return PairedSlopeDifference(float(point), low, high, k, resamples)


@dataclass(frozen=True)
class IVResult:
    """Instrumental-variable slope of the update on the prior, with a bootstrap 95 % CI."""

    slope: float
    ci_low: float
    ci_high: float
    n: int
    reason: str | None = None


def iv_slope(
    prior: ArrayLike, posterior: ArrayLike, instrument: ArrayLike, cluster: ArrayLike | None = None,
    resamples: int = 1000, seed: int = 0,
) -> IVResult:
    """Noise-robust Martingale Score: Cov(q − p, p') / Cov(p, p') (docs/architecture.md, section 2).

    ``instrument`` p' is an independent elicitation of the same prior (the mean of several, if
    there are more): its elicitation noise is independent of the noise in p, so it removes the
    −Var(u)/Var(p) bias that noise u in the measured prior puts on the OLS slope. The CI is a
    percentile bootstrap resampling questions (``cluster``, default each sample its own).
    """
    p = _as_probabilities("prior", prior)
    q = _as_probabilities("posterior", posterior)
    z = _as_probabilities("instrument", instrument)
    if not (p.shape == q.shape == z.shape):
        raise ValueError("prior, posterior and instrument must have the same length")
    n = int(p.size)
    if n < 3:
        return IVResult(math.nan, math.nan, math.nan, n, reason=f"need at least 3 samples, have {n}")
    labels = np.arange(n).astype(str) if cluster is None else np.asarray(cluster).astype(str)
    _, codes = np.unique(labels, return_inverse=True)
    k = int(codes.max()) + 1
    d = q - p
    sums = np.stack([np.bincount(codes, weights=w, minlength=k)
                     for w in (np.ones(n), p, d, z, d * z, p * z)], axis=1)

    def slopes(totals: NDArray[np.float64]) -> NDArray[np.float64]:
        m, sp, sd, sz, sdz, spz = totals.T
        with np.errstate(divide="ignore", invalid="ignore"):
            cov_pz = spz / m - sp * sz / m**2
            return np.where(np.abs(cov_pz) > 1e-12, (sdz / m - sd * sz / m**2) / cov_pz, np.nan)

    point = float(slopes(sums.sum(axis=0, keepdims=True))[0])
    if math.isnan(point):
        return IVResult(math.nan, math.nan, math.nan, n,
                        reason="the instrument does not vary with the prior (Cov(p, p') = 0)")
    (totals,) = _bootstrap_totals(np.random.default_rng(seed), [sums], resamples)
    low, high = _percentile_ci(slopes(totals))
    return IVResult(point, low, high, n)


def brier(forecast: ArrayLike, outcome: ArrayLike) -> float:
    """Mean squared error of probabilities against 0/1 outcomes (NaN for no data)."""
    f = _as_probabilities("forecast", forecast)
    o = np.asarray(outcome, dtype=np.float64)
    if f.shape != o.shape:
        raise ValueError(f"forecast and outcome differ in length: {f.size} vs {o.size}")
    if not np.all((o == 0) | (o == 1)):
        raise ValueError("outcomes must be 0 or 1")
    return float(np.mean((f - o) ** 2)) if f.size else math.nan


def paired_brier_difference(forecast_a: ArrayLike, forecast_b: ArrayLike, outcome: ArrayLike) -> PairedTest:
    """Brier(a) - Brier(b) on the same questions, with the paired t-test of the squared errors."""
    a = _as_probabilities("forecast_a", forecast_a)
    b = _as_probabilities("forecast_b", forecast_b)
    o = np.asarray(outcome, dtype=np.float64)
    if not (a.shape == b.shape == o.shape):
        raise ValueError("forecast_a, forecast_b and outcome must have the same length")
    return paired_loss_difference((a - o) ** 2, (b - o) ** 2)


def paired_loss_difference(loss_a: ArrayLike, loss_b: ArrayLike) -> PairedTest:
    """mean(a - b) over paired units (a question's squared error, or its mean over draws), paired t-test."""
    a, b = np.asarray(loss_a, dtype=np.float64), np.asarray(loss_b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"loss_a and loss_b differ in length: {a.size} vs {b.size}")
    n = int(a.size)
    diff = a - b
    if n < 2:
        return PairedTest(float(diff.mean()) if n else math.nan, math.nan, math.nan, math.nan, n,
                          reason=f"need at least 2 paired questions, have {n}")
    se = float(diff.std(ddof=1) / math.sqrt(n))
    if se == 0:
        return PairedTest(float(diff.mean()), 0.0, math.nan, math.nan, n,
                          reason="the paired differences are all identical")
    res = sps.ttest_rel(a, b)
    return PairedTest(float(diff.mean()), se, float(res.statistic), float(res.pvalue), n)


@dataclass(frozen=True)
class VarianceSplit:
    """One-way random-effects split of a quantity's variance into between- and within-group parts."""

    between: float
    """Variance of the group means' true values (method of moments, truncated at 0)."""
    within: float
    """Variance around a group's own mean: draw-to-draw when the groups are questions."""
    n: int
    n_groups: int
    reason: str | None = None


def variance_split(values: ArrayLike, group: ArrayLike) -> VarianceSplit:
    """Between- and within-group variance of ``values`` by the one-way ANOVA method of moments.

    With N values in k groups of sizes n_i: ``within = MSW = SSW / (N - k)`` and
    ``between = (MSB - MSW) / n0`` with ``MSB = SSB / (k - 1)`` and
    ``n0 = (N - sum(n_i^2) / N) / (k - 1)`` (the unbalanced-design size; equal to n for k groups of n),
    set to 0 where sampling noise makes it negative. Undefined (NaN, with ``reason``) without two
    groups or without a group of two or more values.
    """
    x = np.asarray(values, dtype=np.float64)
    g = np.asarray(group).astype(str)
    if x.shape != g.shape:
        raise ValueError(f"values and group differ in length: {x.size} vs {g.size}")
    n = int(x.size)
    _, codes, sizes = np.unique(g, return_inverse=True, return_counts=True)
    k = int(sizes.size)
    if k < 2 or n - k < 1:
        why = "needs at least 2 groups" if k < 2 else "needs a group with 2 or more values (draws)"
        return VarianceSplit(math.nan, math.nan, n, k, reason=why)
    means = np.bincount(codes, weights=x) / sizes
    ssw = float(np.sum((x - means[codes]) ** 2))
    ssb = float(np.sum(sizes * (means - x.mean()) ** 2))
    msw, msb = ssw / (n - k), ssb / (k - 1)
    n0 = (n - float(np.sum(sizes.astype(np.float64) ** 2)) / n) / (k - 1)
    return VarianceSplit(max((msb - msw) / n0, 0.0), msw, n, k)


def inertia(prior: ArrayLike, posterior: ArrayLike, tol: float = INERTIA_TOL) -> float:
    """Share of pairs whose belief did not move (|posterior - prior| < tol); NaN for no data."""
    x = _as_probabilities("prior", prior)
    q = _as_probabilities("posterior", posterior)
    if x.shape != q.shape:
        raise ValueError(f"prior and posterior differ in length: {x.size} vs {q.size}")
    return float(np.mean(np.abs(q - x) < tol)) if x.size else math.nan


LOGIT_CLIP = 0.01
"""Beliefs are clipped to [LOGIT_CLIP, 1 - LOGIT_CLIP] before log-odds (both the stated ones and the
exact posteriors): 0 and 1 have infinite log-odds, and a stated probability resolves about 0.01, so
log-odds beyond ±4.6 say more about rounding than about belief."""


@dataclass(frozen=True)
class ExactBayesResult:
    """How far stated beliefs are from the exact posteriors (``martingale/bayes``; docs/architecture.md section 2).

    Undefined values are NaN: no beliefs, no Bayesian update, fewer than 3 first beliefs or all
    stated priors equal; the intervals also need 3 questions.
    """

    bayes_mae: float
    bayes_mae_ci_low: float
    bayes_mae_ci_high: float
    update_ratio: float
    update_ratio_ci_low: float
    update_ratio_ci_high: float
    base_rate_neglect: float
    base_rate_neglect_ci_low: float
    base_rate_neglect_ci_high: float
    n_beliefs: int
    n_steps: int
    n_first: int


def clipped_logit(p: ArrayLike, clip: float = LOGIT_CLIP) -> NDArray[np.float64]:
    """log(p / (1 - p)) after clipping p to [clip, 1 - clip]."""
    q = np.clip(np.asarray(p, dtype=np.float64), clip, 1.0 - clip)
    return np.log(q / (1.0 - q))


def _exact_bayes_stats(totals: NDArray[np.float64]) -> NDArray[np.float64]:
    """(bayes_mae, update_ratio, base_rate_neglect) per row of summed per-question statistics."""
    n_b, abs_err, cross, bayes_sq = totals[:, 0], totals[:, 1], totals[:, 2], totals[:, 3]
    with np.errstate(divide="ignore", invalid="ignore"):
        mae = np.where(n_b > 0, abs_err / n_b, np.nan)
        ratio = np.where(bayes_sq > 0, cross / bayes_sq, np.nan)
    first = totals[:, 4:9]
    neglect = np.where(first[:, 0] >= MIN_PAIRS, 1.0 - _slopes(first), np.nan)
    return np.stack([mae, ratio, neglect], axis=1)


def exact_bayes_metrics(
    stated: Sequence[Sequence[float | None]],
    exact: Sequence[Sequence[float]],
    cluster: Sequence[object] | None = None,
    *,
    clip: float = LOGIT_CLIP,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> ExactBayesResult:
    """Stated belief trajectories against the exact posteriors at the same turns.

    ``stated[i][t]`` is sample i's belief at turn t (``None``/NaN where it was not read) and
    ``exact[i][t]`` the exact posterior given what the sample had seen by turn t; turn 0 is the
    prior, whose exact value is the stated prior.

    * ``bayes_mae``: mean |b_t - b*_t| over every read belief, pooled over samples.
    * ``update_ratio``: sum(dm * db) / sum(db^2) over consecutive read pairs, dm and db the stated and
      the exact change in log-odds (clipped, :data:`LOGIT_CLIP`): the least-squares slope through the
      origin of the model's update on the Bayesian one. 1 = Bayesian, < 1 conservatism, > 1
      over-reaction, 0 = no update. Noise in the stated updates that is unrelated to the evidence
      averages out of the numerator, where a ratio of absolute sums would count it as updating.
    * ``base_rate_neglect``: 1 - the OLS slope of logit(b_0) on logit(b*_0) over samples: 0 = the
      first belief follows the stated prior fully, 1 = it ignores it (noise in b_0 does not bias it).

    95 % intervals are percentile bootstraps over questions (``cluster``, default each sample its
    own), all three statistics from the same resamples.
    """
    if len(stated) != len(exact):
        raise ValueError(f"stated and exact differ in length: {len(stated)} vs {len(exact)}")
    labels = np.arange(len(stated)).astype(str) if cluster is None else np.asarray(cluster).astype(str)
    if labels.shape != (len(stated),):
        raise ValueError(f"cluster must have one label per sample ({len(stated)}), got shape {labels.shape}")
    _, codes = np.unique(labels, return_inverse=True)
    k = int(codes.max()) + 1 if len(stated) else 0
    sums = np.zeros((k, 9))
    n_beliefs = n_steps = n_first = 0
    for i, (path, star) in enumerate(zip(stated, exact, strict=True)):
        b = np.array([math.nan if v is None else float(v) for v in path], dtype=np.float64)
        e = _as_probabilities(f"exact[{i}]", star)
        if b.shape != e.shape:
            raise ValueError(f"sample {i}: {b.size} stated beliefs but {e.size} exact posteriors")
        read = np.isfinite(b)
        if read.any() and (b[read].min() < 0.0 or b[read].max() > 1.0):
            raise ValueError(f"sample {i}: stated beliefs must lie in [0, 1]")
        row = sums[codes[i]]
        row[0] += read.sum()
        row[1] += np.abs(b[read] - e[read]).sum()
        pair = read[:-1] & read[1:]
        dm = np.diff(clipped_logit(np.where(read, b, 0.5), clip))[pair]
        db = np.diff(clipped_logit(e, clip))[pair]
        row[2] += dm @ db
        row[3] += db @ db
        if read.size and read[0]:
            x, y = clipped_logit(e[0], clip), clipped_logit(b[0], clip)
            row[4:9] += (1.0, x, y, x * x, x * y)
            n_first += 1
        n_beliefs += int(read.sum())
        n_steps += int(pair.sum())
    point = _exact_bayes_stats(sums.sum(axis=0, keepdims=True))[0]
    ci = np.full((3, 2), np.nan)
    if k >= MIN_PAIRS:
        (totals,) = _bootstrap_totals(np.random.default_rng(seed), [sums], resamples)
        boot = _exact_bayes_stats(totals)
        for j in range(3):
            if np.isfinite(point[j]):
                ci[j] = _percentile_ci(boot[:, j])
    return ExactBayesResult(
        bayes_mae=float(point[0]), bayes_mae_ci_low=float(ci[0, 0]), bayes_mae_ci_high=float(ci[0, 1]),
        update_ratio=float(point[1]), update_ratio_ci_low=float(ci[1, 0]), update_ratio_ci_high=float(ci[1, 1]),
        base_rate_neglect=float(point[2]), base_rate_neglect_ci_low=float(ci[2, 0]),
        base_rate_neglect_ci_high=float(ci[2, 1]),
        n_beliefs=n_beliefs, n_steps=n_steps, n_first=n_first,
    )
