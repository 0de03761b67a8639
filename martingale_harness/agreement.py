"""Do two extraction pipelines read the same beliefs out of the same transcripts?

Self-report and an LLM judge can disagree even on the sign of the Martingale Score; this compares
two extractors sample by sample on one log.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from martingale_harness.stats import MartingaleResult, martingale_score


@dataclass(frozen=True)
class Agreement:
    """Agreement of extractors ``a`` and ``b`` over beliefs both of them read."""

    a: str
    b: str
    ms_a: MartingaleResult
    ms_b: MartingaleResult
    signs_agree: bool | None
    """Whether the two slopes have the same sign (None when either is undefined)."""
    pearson: float
    spearman: float
    mean_difference: float
    """Mean of (belief by a − belief by b) over beliefs both read."""
    n_beliefs: int
    only_one_succeeded: float
    """Share of samples where exactly one extractor produced both prior and posterior."""


def _pair_ok(prior: float, posterior: float) -> bool:
    return not (math.isnan(prior) or math.isnan(posterior))


def agreement(
    a: str,
    b: str,
    prior_a: Sequence[float],
    posterior_a: Sequence[float],
    prior_b: Sequence[float],
    posterior_b: Sequence[float],
    cluster: Sequence[object] | None = None,
) -> Agreement:
    """Compare two extractors' beliefs on the same samples (NaN marks a failed extraction)."""
    n = len(prior_a)
    if not (len(posterior_a) == len(prior_b) == len(posterior_b) == n):
        raise ValueError("all belief sequences must cover the same samples")
    ok_a = np.array([_pair_ok(p, q) for p, q in zip(prior_a, posterior_a, strict=True)], dtype=bool)
    ok_b = np.array([_pair_ok(p, q) for p, q in zip(prior_b, posterior_b, strict=True)], dtype=bool)
    labels = np.asarray(cluster if cluster is not None else range(n)).astype(str)

    def ms(prior: Sequence[float], posterior: Sequence[float], ok: np.ndarray) -> MartingaleResult:
        return martingale_score(np.asarray(prior)[ok], np.asarray(posterior)[ok], cluster=labels[ok])

    ms_a, ms_b = ms(prior_a, posterior_a, ok_a), ms(prior_b, posterior_b, ok_b)
    beliefs_a = np.concatenate([np.asarray(prior_a, float), np.asarray(posterior_a, float)])
    beliefs_b = np.concatenate([np.asarray(prior_b, float), np.asarray(posterior_b, float)])
    both = ~np.isnan(beliefs_a) & ~np.isnan(beliefs_b)
    x, y = beliefs_a[both], beliefs_b[both]
    varied = x.size >= 3 and np.ptp(x) > 0 and np.ptp(y) > 0
    undefined = math.isnan(ms_a.slope) or math.isnan(ms_b.slope)
    return Agreement(
        a=a,
        b=b,
        ms_a=ms_a,
        ms_b=ms_b,
        signs_agree=None if undefined else bool(np.sign(ms_a.slope) == np.sign(ms_b.slope)),
        pearson=float(sps.pearsonr(x, y).statistic) if varied else math.nan,
        spearman=float(sps.spearmanr(x, y).statistic) if varied else math.nan,
        mean_difference=float(np.mean(x - y)) if x.size else math.nan,
        n_beliefs=int(x.size),
        only_one_succeeded=float(np.mean(ok_a ^ ok_b)) if n else math.nan,
    )


def agreement_table(result: Agreement) -> str:
    """The comparison as a markdown table, one row per extractor, then the agreement figures, then why
    either Martingale Score is undefined (its slope signs are then "undefined", never "agree")."""

    def f(v: float) -> str:
        return "nan" if math.isnan(v) else f"{v:+.4f}"

    rows = ["| Extractor | MS | 95% CI | p (OLS) | Δ at prior 0.5 | n |", "|---|---:|---|---:|---:|---:|"]
    for name, ms in ((result.a, result.ms_a), (result.b, result.ms_b)):
        rows.append(f"| {name} | {f(ms.slope)} | [{f(ms.ci_low)}, {f(ms.ci_high)}] | "
                    f"{'nan' if math.isnan(ms.p) else f'{ms.p:.3g}'} | {f(ms.intercept_at_half)} | {ms.n} |")
    signs = {None: "undefined", True: "yes", False: "no"}[result.signs_agree]
    rows += [
        "",
        "| Agreement | Value |",
        "|---|---:|",
        f"| slope signs agree | {signs} |",
        f"| Pearson r (beliefs) | {f(result.pearson)} |",
        f"| Spearman ρ (beliefs) | {f(result.spearman)} |",
        f"| mean difference ({result.a} − {result.b}) | {f(result.mean_difference)} |",
        f"| beliefs compared | {result.n_beliefs} |",
        f"| samples where only one succeeded | {result.only_one_succeeded:.1%} |",
    ]
    undefined = [(name, ms.reason) for name, ms in ((result.a, result.ms_a), (result.b, result.ms_b)) if ms.reason]
    if undefined:
        rows.append("")
        rows += [f"MS of {name} undefined: {reason}" for name, reason in undefined]
    return "\n".join(rows)
