"""Two runs on the same questions (e.g. base vs trained adapter): what changed, with paired tests.

Samples are matched on their sample id (a question at one resolution date); the bootstrap resamples
questions, so several samples of one question move together. Runs with several draws per sample
(``--epochs``) are compared on every draw: a sample is matched when each run read every belief of at
least one of its draws, and all such draws of it enter that run's pairs (the runs may have different
numbers of epochs). For every extractor both runs have:

* MS of each run over consecutive belief pairs and their difference MS(B) − MS(A) with a paired
  cluster-bootstrap 95 % CI (``stats.paired_slope_difference``);
* the posterior Brier score of each run and Brier(B) − Brier(A) with the paired t-test, on matched
  labelled samples (a sample's squared error is the mean over its draws);
* inertia (share of updates with |Δ| < 1e-9) in each run and its change.

``split_by`` repeats all of it per value of a sample metadata field (``source``, or a membership
flag such as "in the distillation set"); samples without the field form the group ``(missing)``.
Only draws where a run read every belief are used; how many samples were matched is reported.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from martingale_harness.errors import MartingaleError
from martingale_harness.reporting.runs import Run, SampleBeliefs
from martingale_harness.stats import martingale as stats

MISSING_GROUP = "(missing)"


@dataclass(frozen=True)
class Comparison:
    """One extractor (and group, with ``split_by``) compared between runs A and B."""

    extractor: str
    group: str | None
    n_matched: int
    """Samples compared (each with at least one fully read draw in both runs)."""
    ms_a: float
    ms_b: float
    ms_difference: stats.PairedSlopeDifference
    n_labelled: int
    brier_a: float
    brier_b: float
    brier_difference: float
    """Brier(B) − Brier(A): negative means B forecasts better."""
    brier_p: float
    inertia_a: float
    inertia_b: float
    ms_a_ci: tuple[float, float] = (math.nan, math.nan)
    """Run A's robust 95 % CI on the matched samples (as ``ms_slope_ci_low``/``_high`` are computed)."""
    ms_b_ci: tuple[float, float] = (math.nan, math.nan)
    notes: tuple[str, ...] = ()
    """Why an interval or value of this row is missing (too few pairs or questions, no labels)."""
    draws_a: int = 0
    """Fully read draws of the matched samples in run A (``n_matched`` without ``--epochs``)."""
    draws_b: int = 0

    @property
    def inertia_change(self) -> float:
        return self.inertia_b - self.inertia_a


def _pairs(samples: Sequence[SampleBeliefs]) -> tuple[list[float], list[float], list[str]]:
    before, after, cluster = [], [], []
    for s in samples:
        for a, b in pairwise(s.trajectory):
            assert a is not None and b is not None  # only complete samples reach here
            before.append(a)
            after.append(b)
            cluster.append(s.question_id)
    return before, after, cluster


def _ms(before: list[float], after: list[float], cluster: list[str]) -> stats.MartingaleResult:
    return stats.martingale_score(np.array(before), np.array(after), cluster=np.array(cluster))


Matched = tuple[list[SampleBeliefs], list[SampleBeliefs]]
"""One sample's fully read draws in run A and in run B."""


def _squared_error(draws: list[SampleBeliefs]) -> float:
    return float(np.mean([(s.posterior - s.label) ** 2 for s in draws]))  # type: ignore[operator]


def _compare(extractor: str, group: str | None, matched: list[Matched], resamples: int, seed: int) -> Comparison:
    a = [d for draws, _ in matched for d in draws]
    b = [d for _, draws in matched for d in draws]
    pa, pb = _pairs(a), _pairs(b)
    diff = stats.paired_slope_difference(*pa, *pb, resamples=resamples, seed=seed)
    labelled = [(x, y) for x, y in matched if x[0].label is not None]
    if labelled:
        loss_a = [_squared_error(x) for x, _ in labelled]
        loss_b = [_squared_error(y) for _, y in labelled]
        test = stats.paired_loss_difference(loss_a, loss_b)
        brier_a, brier_b = float(np.mean(loss_a)), float(np.mean(loss_b))
        brier_diff, brier_p = -test.mean_diff, test.p
    else:
        brier_a = brier_b = brier_diff = brier_p = math.nan
    ms_a, ms_b = _ms(*pa), _ms(*pb)
    notes = [f"MS {side}: {result.reason}" for side, result in (("A", ms_a), ("B", ms_b)) if result.reason]
    notes += [f"CI of MS {side}: {_ci_missing(result)}" for side, result in (("A", ms_a), ("B", ms_b))
              if not result.reason and math.isnan(result.ci_low)]
    if math.isnan(diff.ci_low) and not any(n.startswith("MS ") for n in notes):
        notes.append(f"CI of ΔMS: the paired bootstrap needs at least 3 shared questions, have {diff.n_clusters}")
    if not labelled:
        notes.append("Brier: no labelled sample")
    return Comparison(
        extractor=extractor,
        group=group,
        n_matched=len(matched),
        draws_a=len(a),
        draws_b=len(b),
        ms_a=ms_a.slope,
        ms_b=ms_b.slope,
        ms_a_ci=(ms_a.ci_low, ms_a.ci_high),
        ms_b_ci=(ms_b.ci_low, ms_b.ci_high),
        notes=tuple(notes),
        ms_difference=diff,
        n_labelled=len(labelled),
        brier_a=brier_a,
        brier_b=brier_b,
        brier_difference=brier_diff,
        brier_p=brier_p,
        inertia_a=stats.inertia(np.array(pa[0]), np.array(pa[1])) if pa[0] else math.nan,
        inertia_b=stats.inertia(np.array(pb[0]), np.array(pb[1])) if pb[0] else math.nan,
    )


def compare_runs(
    run_a: Run, run_b: Run, *, extractors: Sequence[str] | None = None, split_by: str | None = None,
    resamples: int = 1000, seed: int = 0,
) -> list[Comparison]:
    """Compare ``run_b`` against ``run_a`` per extractor (and per ``split_by`` group)."""
    common = [e for e in run_a.extractors if e in run_b.extractors]
    names = list(extractors) if extractors else common
    missing = [e for e in names if e not in common]
    if missing or not names:
        raise MartingaleError(f"extractor(s) {', '.join(missing) or '(none)'} not in both runs; "
                              f"both have: {', '.join(common) or 'nothing in common'}")
    results = []
    for extractor in names:
        draws_a, draws_b = _read_draws(run_a.samples[extractor]), _read_draws(run_b.samples[extractor])
        matched = [(draws, draws_b[sample_id]) for sample_id, draws in draws_a.items() if sample_id in draws_b]
        if not matched:
            raise MartingaleError(f"{extractor}: no sample of {run_a.path.name} matches one of {run_b.path.name} "
                                  "with every belief read (are they runs on the same questions?)")
        groups: dict[str | None, list[Matched]] = {}
        for pair in matched:
            key = None if split_by is None else str(pair[0][0].metadata.get(split_by, MISSING_GROUP))
            groups.setdefault(key, []).append(pair)
        if split_by is not None and set(groups) == {MISSING_GROUP}:
            raise MartingaleError(f"no sample has the metadata field {split_by!r}; fields: "
                                  f"{', '.join(sorted(matched[0][0][0].metadata))}")
        if split_by is not None:
            groups = {None: matched, **dict(sorted(groups.items(), key=lambda kv: str(kv[0])))}
        for group, pairs in groups.items():
            results.append(_compare(extractor, group, pairs, resamples, seed))
    return results


def run_label(run: Run) -> str:
    """What tells a run apart in a comparison: log file, model (short name), paradigm, system prompt, epochs."""
    settings = [run.display_model, *(f"{k} {run.metadata[k]}" for k in ("paradigm", "system_prompt")
                                     if run.metadata.get(k) is not None)]
    if run.epochs > 1:
        settings.append(f"{run.epochs} epochs")
    return f"{run.path.name} ({', '.join(settings)})"


def _read_draws(samples: Sequence[SampleBeliefs]) -> dict[str, list[SampleBeliefs]]:
    """Each sample's fully read draws, by sample id, in the log's order (samples without one left out)."""
    draws: dict[str, list[SampleBeliefs]] = {}
    for s in samples:
        if s.status == "ok":
            draws.setdefault(s.sample_id, []).append(s)
    return draws


def _ci_missing(result: stats.MartingaleResult) -> str:
    if result.n_clusters < 3:
        return f"needs at least 3 questions, have {result.n_clusters}"
    return "not identified on these pairs"


def comparison_table(rows: Sequence[Comparison], split_by: str | None = None) -> str:
    """Markdown table of :func:`compare_runs` results, each run's MS with its robust 95 % CI.

    With ``split_by``, a line under the table says how many comparisons were made: the intervals are
    each 95 %, not adjusted for multiplicity. A ``Notes`` column says why a value or interval is N/A.
    """
    from pytablewriter import MarkdownTableWriter
    from pytablewriter.typehint import String

    def f(x: float) -> str:
        return "N/A" if x is None or math.isnan(x) else f"{x:.4f}"

    def ci(low: float, high: float) -> str:
        return f"[{f(low)}, {f(high)}]"

    notes = any(r.notes for r in rows)
    # with --epochs a sample is several draws: say how many each side's MS rests on
    draws = any((r.draws_a, r.draws_b) != (r.n_matched, r.n_matched) for r in rows)
    headers = ["Extractor", *([split_by] if split_by else []), "n", *(["draws A", "draws B"] if draws else []),
               "MS A", "95% CI A", "MS B", "95% CI B",
               "ΔMS (B−A)", "95% CI", "n labelled", "Brier A", "Brier B", "ΔBrier (B−A)", "p (paired t)",
               "Inertia A", "Inertia B", "ΔInertia", *(["Notes"] if notes else [])]
    matrix = []
    for r in rows:
        d = r.ms_difference
        matrix.append([r.extractor, *([r.group or "(all)"] if split_by else []), r.n_matched,
                       *([r.draws_a, r.draws_b] if draws else []), f(r.ms_a),
                       ci(*r.ms_a_ci), f(r.ms_b), ci(*r.ms_b_ci), f(d.difference), ci(d.ci_low, d.ci_high),
                       r.n_labelled, f(r.brier_a), f(r.brier_b), f(r.brier_difference), f(r.brier_p),
                       f(r.inertia_a), f(r.inertia_b), f(r.inertia_change), *(["; ".join(r.notes)] if notes else [])])
    writer = MarkdownTableWriter()
    writer.headers = headers
    writer.value_matrix = matrix
    writer.type_hints = [String] * len(headers)  # keep the 4-decimal strings as written
    table = writer.dumps()
    if split_by:
        extractors = len({r.extractor for r in rows})
        per = len(rows) // max(extractors, 1)
        table += (f"\n{len(rows)} comparisons ({extractors} extractor(s) × (all + {per - 1} {split_by} groups)); "
                  "each interval is 95 % on its own, not adjusted for multiple comparisons.\n")
    return table
