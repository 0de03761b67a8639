"""Do extraction pipelines read the same beliefs out of the same transcripts?

Self-report and an LLM judge can disagree even on the sign of the Martingale Score; this compares
extractors pair by pair, sample by sample, on one log: how well their readings agree, and how far
reading the beliefs the other way moves MS (the paired ΔMS on the samples both read, with a
question-cluster bootstrap interval that refits both slopes on the same draw).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from martingale_harness.stats.martingale import (
    MartingaleResult,
    PairedSlopeDifference,
    martingale_score,
    paired_slope_difference,
)


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
    delta_ms: PairedSlopeDifference
    """MS by ``b`` − MS by ``a`` on the samples where both read prior and posterior, with a paired
    question-cluster bootstrap 95 % CI; NaN with ``reason`` when either slope is undefined there."""
    n_both: int
    """Samples where both extractors read prior and posterior: the pairs ``delta_ms`` is fitted on."""


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
    resamples: int = 1000,
    seed: int = 0,
) -> Agreement:
    """Compare two extractors' beliefs on the same samples (NaN marks a failed extraction).

    ``cluster`` names each sample's question (default: each sample its own), what the intervals resample.
    """
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
    both_ok = ok_a & ok_b
    delta = paired_slope_difference(
        np.asarray(prior_a, float)[both_ok], np.asarray(posterior_a, float)[both_ok], labels[both_ok],
        np.asarray(prior_b, float)[both_ok], np.asarray(posterior_b, float)[both_ok], labels[both_ok],
        resamples=resamples, seed=seed)
    if delta.reason:  # stats names the sides A and B; here they have names
        side, _, why = delta.reason.partition(": ")
        delta = dataclasses.replace(delta, reason=f"MS of {a if side == 'MS A' else b} on the samples both read: "
                                                  f"{why}")
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
        delta_ms=delta,
        n_both=int(both_ok.sum()),
    )


def pairwise_agreement(
    priors: Mapping[str, Sequence[float]],
    posteriors: Mapping[str, Sequence[float]],
    cluster: Sequence[object] | None = None,
    resamples: int = 1000,
    seed: int = 0,
) -> list[Agreement]:
    """:func:`agreement` for every pair of the extractors in ``priors`` (in their order: a before b)."""
    if len(priors) < 2 or set(priors) != set(posteriors):
        raise ValueError("give the priors and posteriors of the same two or more extractors")
    return [agreement(a, b, priors[a], posteriors[a], priors[b], posteriors[b], cluster=cluster,
                      resamples=resamples, seed=seed)
            for a, b in itertools.combinations(priors, 2)]


def _f(v: float) -> str:
    return "nan" if math.isnan(v) else f"{v:+.4f}"


def _ms_rows(results: Sequence[tuple[str, MartingaleResult]]) -> list[str]:
    rows = ["| Extractor | MS | 95% CI | p (OLS) | Δ at prior 0.5 | n |", "|---|---:|---|---:|---:|---:|"]
    for name, ms in results:
        rows.append(f"| {name} | {_f(ms.slope)} | [{_f(ms.ci_low)}, {_f(ms.ci_high)}] | "
                    f"{'nan' if math.isnan(ms.p) else f'{ms.p:.3g}'} | {_f(ms.intercept_at_half)} | {ms.n} |")
    return rows


def _delta_notes(result: Agreement) -> list[str]:
    """Why a pair's ΔMS, or its interval, is NaN."""
    label = f"ΔMS ({result.b} − {result.a})"
    if result.delta_ms.reason:
        return [f"{label} undefined: {result.delta_ms.reason}"]
    if math.isnan(result.delta_ms.ci_low):
        return [f"{label} has no interval: {result.delta_ms.n_clusters} question(s) both read, the bootstrap "
                "needs at least 3"]
    return []


def agreement_table(result: Agreement) -> str:
    """The comparison as a markdown table, one row per extractor, then the agreement figures, then why
    either Martingale Score or the ΔMS is undefined (slope signs are then "undefined", never "agree")."""
    rows = _ms_rows(((result.a, result.ms_a), (result.b, result.ms_b)))
    signs = {None: "undefined", True: "yes", False: "no"}[result.signs_agree]
    delta = result.delta_ms
    rows += [
        "",
        "| Agreement | Value |",
        "|---|---:|",
        f"| slope signs agree | {signs} |",
        f"| Pearson r (beliefs) | {_f(result.pearson)} |",
        f"| Spearman ρ (beliefs) | {_f(result.spearman)} |",
        f"| mean difference ({result.a} − {result.b}) | {_f(result.mean_difference)} |",
        f"| beliefs compared | {result.n_beliefs} |",
        f"| samples where only one succeeded | {result.only_one_succeeded:.1%} |",
        f"| ΔMS ({result.b} − {result.a}), samples both read | {_f(delta.difference)} |",
        f"| ΔMS 95% CI (paired question bootstrap) | [{_f(delta.ci_low)}, {_f(delta.ci_high)}] |",
        f"| samples both read | {result.n_both} |",
    ]
    notes = [f"MS of {name} undefined: {ms.reason}"
             for name, ms in ((result.a, result.ms_a), (result.b, result.ms_b)) if ms.reason]
    notes += _delta_notes(result)
    if notes:
        rows.append("")
        rows += notes
    return "\n".join(rows)


def pairwise_table(results: Sequence[Agreement]) -> str:
    """Every pair's comparison as markdown: one row per extractor (its MS over all it read), one row per
    pair (agreement of the readings and the paired ΔMS on the samples both read), then why any MS or
    ΔMS is undefined. Two extractors (one pair) get :func:`agreement_table`."""
    if len(results) == 1:
        return agreement_table(results[0])
    seen: dict[str, MartingaleResult] = {}
    for r in results:
        seen.setdefault(r.a, r.ms_a)
        seen.setdefault(r.b, r.ms_b)
    rows = _ms_rows(list(seen.items()))
    rows += [
        "",
        "| A | B | slope signs agree | Pearson r | Spearman ρ | mean difference (A − B) | beliefs compared | "
        "only one succeeded | ΔMS (B − A) | ΔMS 95% CI | samples both read |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in results:
        signs = {None: "undefined", True: "yes", False: "no"}[r.signs_agree]
        d = r.delta_ms
        rows.append(f"| {r.a} | {r.b} | {signs} | {_f(r.pearson)} | {_f(r.spearman)} | {_f(r.mean_difference)} | "
                    f"{r.n_beliefs} | {r.only_one_succeeded:.1%} | {_f(d.difference)} | "
                    f"[{_f(d.ci_low)}, {_f(d.ci_high)}] | {r.n_both} |")
    notes = [f"MS of {name} undefined: {ms.reason}" for name, ms in seen.items() if ms.reason]
    notes += [note for r in results for note in _delta_notes(r)]
    if notes:
        rows.append("")
        rows += notes
    return "\n".join(rows)
