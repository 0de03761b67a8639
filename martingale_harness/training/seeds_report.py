"""``martingale train-report`` over several runs of one config (``martingale train --seeds``): does the effect
survive the training seed?

Each run's numbers come from its model card (``adapter/martingale_card.json``: the held-out evaluations of
the start model and the trained adapter, and their paired comparison) and, where the run evaluated every
round (``evaluation.every_round``), from its ``event: heldout`` lines in ``metrics.jsonl``. Across the runs
the summary gives each quantity's mean and sample standard deviation (``ddof = 1``: the seeds are a sample
of the training runs one could have made) and a 95 % t interval for the mean paired ΔMS.

What the spread across seeds contains: the training seed's effect (sampling, LoRA init, data order) plus
the trained adapter's own evaluation noise (each adapter is evaluated once, on the same seeded draws). The
start model's evaluation is shared (reused by ``--seeds``), so its noise is common to every seed's ΔMS and
is not in their spread: the ΔMS of each seed carries it in its own paired interval instead.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats as scipy_stats

from martingale_harness.errors import MartingaleError
from martingale_harness.training.evaluate import json_safe

SEEDS_MD = "seeds_report.md"
SEEDS_JSON = "seeds_summary.json"
SEED_GLOB = "seed-*"


@dataclass(frozen=True)
class HeldOut:
    """One held-out evaluation as the card or a ``heldout`` line records it."""

    ms: float | None
    ci_low: float | None
    ci_high: float | None
    inertia: float | None
    readable: float | None
    """1 − the extraction failure rate."""
    n_pairs: float | None
    log: str | None = None

    @classmethod
    def from_record(cls, record: dict[str, Any] | None) -> HeldOut | None:
        if not record:
            return None
        m = record.get("metrics") or {}
        failures = m.get("extraction_failure_rate")
        return cls(ms=m.get("ms_slope"), ci_low=m.get("ms_slope_ci_low"), ci_high=m.get("ms_slope_ci_high"),
                   inertia=m.get("inertia"), readable=None if failures is None else 1.0 - failures,
                   n_pairs=m.get("n_pairs"), log=record.get("log"))


@dataclass(frozen=True)
class SeedRun:
    """One training seed's held-out results."""

    run_dir: str
    seed: int | None
    start: HeldOut | None
    trained: HeldOut | None
    ms_difference: float | None
    ms_difference_ci: tuple[float | None, float | None]
    n_matched: int | None
    rounds: dict[int, HeldOut] = field(default_factory=dict)
    """Held-out evaluations by round (0 = start, the last = the trained adapter), where the run has them."""


@dataclass(frozen=True)
class Spread:
    """Mean and sample SD (ddof = 1) of one quantity over the seeds that have it."""

    n: int
    mean: float | None
    sd: float | None

    @classmethod
    def of(cls, values: list[float | None]) -> Spread:
        xs = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
        return cls(n=int(xs.size), mean=float(xs.mean()) if xs.size else None,
                   sd=float(xs.std(ddof=1)) if xs.size >= 2 else None)


@dataclass(frozen=True)
class SeedsSummary:
    """Every seed's results and their spread (see the module docstring)."""

    runs: list[SeedRun]
    ms_trained: Spread
    ms_difference: Spread
    inertia: Spread
    readable: Spread
    ms_difference_mean_ci: tuple[float | None, float | None]
    """95 % t interval (n − 1 df) of the mean ΔMS across seeds; None with fewer than 2 seeds."""
    below_zero: int
    """Seeds whose paired ΔMS interval lies below 0."""
    above_zero: int
    start_ms: list[float]
    """The distinct start-model MS values (one when the start evaluation was shared)."""
    shared_start: bool = False
    """Every seed's start evaluation is the same log."""
    rounds: dict[int, dict[str, Spread]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (undefined values as None)."""
        return json_safe(asdict(self))


def seed_run_dirs(paths: list[str | Path]) -> list[Path]:
    """The run folders meant by ``paths``: each a run (with ``metrics.jsonl``), or one folder holding
    ``seed-*`` runs (``martingale train --seeds``' output_dir)."""
    dirs: list[Path] = []
    for path in map(Path, paths):
        if (path / "metrics.jsonl").is_file():
            dirs.append(path)
            continue
        seeds = sorted((p for p in path.glob(SEED_GLOB) if (p / "metrics.jsonl").is_file()),
                       key=lambda p: (len(p.name), p.name))
        if not seeds:
            raise MartingaleError(f"{path}: neither a training run (no metrics.jsonl) nor a folder of seed-* runs; "
                                  "give the output_dir of `martingale train` or of `martingale train --seeds`")
        dirs.extend(seeds)
    if len({d.resolve() for d in dirs}) != len(dirs):
        raise MartingaleError("the same run is given twice")
    return dirs


def read_seed_run(run_dir: Path) -> SeedRun:
    """One run's card and per-round held-out lines."""
    card_file = run_dir / "adapter" / "martingale_card.json"
    if not card_file.is_file():
        raise MartingaleError(f"{run_dir}: no adapter/martingale_card.json (the run did not finish)")
    card = json.loads(card_file.read_text(encoding="utf-8"))
    evaluation = card.get("evaluation")
    if not evaluation or not evaluation.get("trained"):
        raise MartingaleError(f"{run_dir}: the run has no held-out evaluation (evaluation.enabled was false)")
    start = HeldOut.from_record(evaluation.get("start"))
    trained = HeldOut.from_record(evaluation["trained"])
    comparison = evaluation.get("comparison") or {}
    low, high = comparison.get("ms_difference_ci") or (None, None)
    rounds: dict[int, HeldOut] = {}
    if start is not None:
        rounds[0] = start
    last = 0
    metrics = run_dir / "metrics.jsonl"
    for line in metrics.read_text(encoding="utf-8").splitlines():
        record = json.loads(line) if line.strip() else {}
        if record.get("event") == "heldout" and record.get("metrics"):  # not a round whose evaluation failed
            rounds[int(record["round"])] = HeldOut.from_record(record)  # type: ignore[assignment]
        if record.get("event") == "round":
            last = max(last, int(record["round"]))
    if last and trained is not None:
        rounds[last] = trained
    return SeedRun(run_dir=str(run_dir), seed=card.get("seed"), start=start, trained=trained,
                   ms_difference=comparison.get("ms_difference"), ms_difference_ci=(low, high),
                   n_matched=comparison.get("n_matched"), rounds=dict(sorted(rounds.items())))


def summarise(runs: list[SeedRun]) -> SeedsSummary:
    """Spread across the seeds (mean, SD with ddof = 1) and the t interval of the mean ΔMS."""
    differences = Spread.of([r.ms_difference for r in runs])
    ci: tuple[float | None, float | None] = (None, None)
    if differences.n >= 2 and differences.mean is not None and differences.sd is not None:
        half = scipy_stats.t.ppf(0.975, differences.n - 1) * differences.sd / math.sqrt(differences.n)
        ci = (differences.mean - half, differences.mean + half)
    below = sum(1 for r in runs if r.ms_difference_ci[1] is not None and r.ms_difference_ci[1] < 0)
    above = sum(1 for r in runs if r.ms_difference_ci[0] is not None and r.ms_difference_ci[0] > 0)
    starts = sorted({r.start.ms for r in runs if r.start is not None and r.start.ms is not None})
    round_numbers = sorted({k for r in runs for k in r.rounds})
    rounds = {k: {name: Spread.of([getattr(r.rounds[k], name) for r in runs if k in r.rounds])
                  for name in ("ms", "inertia", "readable")} for k in round_numbers}
    return SeedsSummary(runs=runs, ms_trained=Spread.of([r.trained.ms if r.trained else None for r in runs]),
                        ms_difference=differences,
                        inertia=Spread.of([r.trained.inertia if r.trained else None for r in runs]),
                        readable=Spread.of([r.trained.readable if r.trained else None for r in runs]),
                        ms_difference_mean_ci=ci, below_zero=below, above_zero=above, start_ms=starts,
                        shared_start=len({r.start.log for r in runs if r.start is not None}) == 1
                        and all(r.start is not None for r in runs),
                        rounds=rounds if len(round_numbers) > 2 else {})


def _f(value: float | None, digits: int = 3, sign: bool = False) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def _spread(s: Spread, sign: bool = False) -> str:
    return f"{_f(s.mean, sign=sign)} ± {_f(s.sd)} (n = {s.n})"


def verdict(summary: SeedsSummary) -> str:
    """Whether the held-out effect survives the seeds, in one paragraph from the numbers.

    The training's aim is MS toward 0, so the direction that counts is against the start model's MS (down from
    a positive start). The effect survives the seeds when the mean ΔMS's t interval lies on that side of 0 *and*
    most seeds' own paired intervals do: the t interval holds only the spread across training seeds, while the
    noise of the one shared start evaluation (and of these held-out questions) is in each seed's paired interval,
    so neither alone is enough.
    """
    d = summary.ms_difference
    if d.n == 0:
        return "No seed has a paired comparison with the start model (evaluation.start was false?)."
    start = summary.start_ms[0] if len(summary.start_ms) == 1 else None
    toward = -1 if start is None or start > 0 else 1  # ΔMS < 0 moves a positive MS toward 0
    side = "below" if toward < 0 else "above"
    agree = summary.below_zero if toward < 0 else summary.above_zero
    against = summary.above_zero if toward < 0 else summary.below_zero
    start_text = f"from the start's MS {_f(start, sign=True)}" if start is not None else "(start MS not shared)"
    head = (f"Toward 0 {start_text} means paired ΔMS {side} 0: {agree} of {d.n} seed(s) have their paired interval "
            f"{side} 0 and {against} on the other side; mean ΔMS {_f(d.mean, sign=True)}, SD across seeds {_f(d.sd)}")
    crossed = ""
    trained = summary.ms_trained.mean
    if start is not None and trained is not None and trained * start < 0:
        crossed = (f" The trained MS crossed 0 on average (mean {_f(trained, sign=True)}): an overshoot, not only "
                   "a move to 0.")
    low, high = summary.ms_difference_mean_ci
    if low is None or high is None:
        return head + f" (one seed with a comparison: no spread across seeds yet).{crossed}"
    interval = f"; the mean's 95 % t interval (training seeds only) [{_f(low)}, {_f(high)}]"
    mean_side = (high < 0) if toward < 0 else (low > 0)
    if mean_side and agree * 2 > d.n:
        return head + interval + f" lies {side} 0 and so do most seeds' own: the effect survives the seeds.{crossed}"
    if mean_side:
        return (head + interval + f" lies {side} 0, but most seeds' own paired intervals include 0: the effect is "
                f"not established.{crossed}")
    return head + interval + f" does not lie {side} 0: the effect does not survive the seeds.{crossed}"


def seeds_markdown(summary: SeedsSummary) -> str:
    """The report: one row per seed, the spread, the verdict, and the per-round table where rounds were evaluated."""
    lines = ["# Training seeds report", "", f"- {verdict(summary)}",
             f"- Start model held-out MS: {', '.join(_f(v) for v in summary.start_ms) or 'n/a'}"
             + (" (one start evaluation, shared)" if summary.shared_start else ""), "",
             "| run | seed | held-out MS [95 % CI] | paired ΔMS [95 % CI] | matched | inertia | readable |",
             "|---|---|---|---|---|---|---|"]
    for r in summary.runs:
        t = r.trained
        lines.append(f"| `{r.run_dir}` | {r.seed} | "
                     + (f"{_f(t.ms)} [{_f(t.ci_low)}, {_f(t.ci_high)}]" if t else "n/a")
                     + f" | {_f(r.ms_difference, sign=True)} [{_f(r.ms_difference_ci[0])}, {_f(r.ms_difference_ci[1])}]"
                     f" | {r.n_matched if r.n_matched is not None else 'n/a'} | {_f(t.inertia) if t else 'n/a'} | "
                     f"{_f(t.readable) if t else 'n/a'} |")
    lines += [f"| mean ± SD | | {_spread(summary.ms_trained)} | {_spread(summary.ms_difference, sign=True)} | | "
              f"{_spread(summary.inertia)} | {_spread(summary.readable)} |", ""]
    if summary.rounds:
        lines += ["## Held-out per round (mean ± SD across seeds; round 0 = the start model)", "",
                  "| round | MS | inertia | readable |", "|---|---|---|---|"]
        for k, values in summary.rounds.items():
            lines.append(f"| {k} | {_spread(values['ms'])} | {_spread(values['inertia'])} | "
                         f"{_spread(values['readable'])} |")
        lines.append("")
    return "\n".join(lines)


def write_seeds_report(run_dirs: list[Path], output_dir: Path) -> tuple[str, list[Path]]:
    """Write ``seeds_report.md`` and ``seeds_summary.json`` for ``run_dirs`` into ``output_dir``."""
    summary = summarise([read_seed_run(d) for d in run_dirs])
    output_dir.mkdir(parents=True, exist_ok=True)
    text = seeds_markdown(summary)
    md, js = output_dir / SEEDS_MD, output_dir / SEEDS_JSON
    md.write_text(text, encoding="utf-8")
    js.write_text(json.dumps(summary.to_dict(), indent=1) + "\n", encoding="utf-8")
    return text, [md, js]

