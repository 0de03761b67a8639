"""Repeatability: R independent evaluations of one model on the same samples, against their own intervals.

Each evaluation is the same task on the same samples with a different seed (``--seed-base + r``), so
the R values of MS differ only by the model's random draws. Printed: each run's MS with its 95 % CI and
inertia; the spread of MS across runs (sd) beside the mean CI width and the mean CI half-width / 1.96
(what the intervals claim the sd of one run is); and, for the R(R-1)/2 pairs of runs (the same model
twice, a null comparison), the share whose paired ΔMS interval (``martingale compare``) covers 0.
Intervals that are right cover 0 in about 95 % of the pairs and claim an sd near the observed one.

    python benchmarks/repeatability.py --model sim/noisy -M noise=0.1 --task forecast --runs 5
    python benchmarks/repeatability.py --model local/<gguf>+<adapter> --heldout-of examples/recipe_fb_cpu.yaml \\
        --set base_model=<gguf> --runs 5 --log-dir runs/repeatability

``--heldout-of CONFIG`` evaluates on the held-out samples of a training config with its evaluation
settings (task, data, paradigm, system prompt, extractor, limit, sample shuffle, temperature, max tokens),
as ``martingale train`` does after training. The logs stay in ``--log-dir``; ``--json`` writes the table's
numbers.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import statistics
import time
from pathlib import Path
from typing import Any

from martingale_harness.errors import MartingaleError
from martingale_harness.reporting.compare import compare_runs
from martingale_harness.reporting.runs import run_from_log


def key_values(pairs: list[str], flag: str) -> dict[str, Any]:
    """``-T``/``-M`` ``name=value`` pairs as a mapping (the values stay strings, as inspect's CLI gives them)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise SystemExit(f"{flag} takes name=value, got {pair!r}")
        key, value = pair.split("=", 1)
        out[key] = value
    return out


def _task_and_settings(args: argparse.Namespace) -> tuple[Any, dict[str, Any], str]:
    """The inspect task, the eval settings and the extractor whose MS is reported."""
    from martingale_harness.tasks.builder import domain_task

    if args.heldout_of is None:
        task_args = key_values(args.T, "-T")
        task = domain_task(args.task, **task_args)
        extractor = str(task_args.get("extractors", "self_report")).split(",")[0]
        settings = {"limit": args.limit, "temperature": args.temperature, "max_tokens": args.max_tokens,
                    "sample_shuffle": args.sample_shuffle}
        return task, settings, extractor

    from martingale_harness.training.config import load_train_config
    from martingale_harness.training.episodes import load_episodes, split_episodes
    from martingale_harness.training.evaluate import heldout_eval_settings, heldout_questions, heldout_task

    config = load_train_config(args.heldout_of, args.set)
    split = split_episodes(load_episodes(config), config.holdout_fraction, config.split_seed, config.max_items)
    ids, _ = heldout_questions(config, split)
    extractor = config.reward.extractor
    # the training run's own held-out task and settings; seed and epochs are this benchmark's
    settings = {k: v for k, v in heldout_eval_settings(config).items() if k not in ("seed", "epochs")}
    if args.limit is not None:
        settings["limit"] = args.limit
    return heldout_task(config, ids, extractor), settings, extractor


def _fmt(value: float, digits: int = 3) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:+.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("-M", action="append", default=[], metavar="NAME=VALUE", help="model argument")
    parser.add_argument("--task", default="forecast", help="task name without 'martingale/'")
    parser.add_argument("-T", action="append", default=[], metavar="NAME=VALUE", help="task argument")
    parser.add_argument("--heldout-of", type=Path, help="a training config: its held-out samples and settings")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override in the --heldout-of config (as martingale train --set)")
    parser.add_argument("--limit", type=int)
    parser.add_argument("--sample-shuffle", type=int)
    parser.add_argument("--temperature", type=float)
    parser.add_argument("--max-tokens", type=int)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed-base", type=int, default=1)
    parser.add_argument("--log-dir", type=Path, default=Path("logs/repeatability"))
    parser.add_argument("--json", type=Path, help="write the numbers here")
    args = parser.parse_args()
    if args.runs < 2:
        raise SystemExit("--runs must be at least 2: repeatability needs two evaluations to compare")

    from inspect_ai import eval as inspect_eval
    from inspect_ai.model import get_model

    task, settings, extractor = _task_and_settings(args)
    model = get_model(args.model, **key_values(args.M, "-M"))  # one load for every run
    logs, rows = [], []
    for r in range(args.runs):
        seed = args.seed_base + r
        started = time.perf_counter()
        (log,) = inspect_eval(task, model=model, seed=seed, epochs=args.epochs, log_dir=str(args.log_dir),
                              display="none", log_realtime=False,
                              **{k: v for k, v in settings.items() if v is not None})
        elapsed = time.perf_counter() - started
        if log.status != "success":
            raise SystemExit(f"run {r + 1} (seed {seed}) failed: {log.error.message if log.error else log.status}")
        run = run_from_log(log, Path(log.location))
        metrics = run.metrics[extractor]
        rows.append({"seed": seed, "log": log.location, "seconds": round(elapsed, 1),
                     **{k: metrics.get(k, math.nan) for k in ("ms_slope", "ms_slope_ci_low", "ms_slope_ci_high",
                                                              "inertia", "n_pairs", "extraction_failure_rate")}})
        logs.append(run)
        print(f"run {r + 1}/{args.runs} (seed {seed}): MS {_fmt(rows[-1]['ms_slope'])} "
              f"[{_fmt(rows[-1]['ms_slope_ci_low'])}, {_fmt(rows[-1]['ms_slope_ci_high'])}], "
              f"{int(rows[-1]['n_pairs'])} pairs, {elapsed:.0f} s", flush=True)

    pairs = []
    for (i, a), (j, b) in itertools.combinations(enumerate(logs), 2):
        pair: dict[str, Any] = {"a": i + 1, "b": j + 1}
        try:
            (comparison,) = compare_runs(a, b, extractors=[extractor])
        except MartingaleError as e:  # e.g. no sample read fully in both runs
            pairs.append({**pair, "difference": math.nan, "ci_low": math.nan, "ci_high": math.nan,
                          "covers_0": None, "n_matched": 0, "reason": str(e)})
            continue
        d = comparison.ms_difference
        defined = math.isfinite(d.ci_low) and math.isfinite(d.ci_high)
        # an undefined interval neither covers nor excludes 0: it is left out of the count
        pairs.append({**pair, "difference": d.difference, "ci_low": d.ci_low, "ci_high": d.ci_high,
                      "covers_0": bool(d.ci_low <= 0.0 <= d.ci_high) if defined else None,
                      "n_matched": comparison.n_matched,
                      "reason": None if defined else (d.reason or "; ".join(comparison.notes) or "no interval")})

    slopes = [row["ms_slope"] for row in rows if not math.isnan(row["ms_slope"])]
    widths = [row["ms_slope_ci_high"] - row["ms_slope_ci_low"] for row in rows
              if not math.isnan(row["ms_slope_ci_low"])]
    summary = {
        "model": args.model, "task": str(task.name), "extractor": extractor, "epochs": args.epochs,
        "runs": args.runs, "samples": len({s.sample_id for s in logs[0].samples[extractor]}),
        "ms_mean": statistics.fmean(slopes) if slopes else math.nan,
        "ms_sd_across_runs": statistics.stdev(slopes) if len(slopes) > 1 else math.nan,
        "mean_ci_width": statistics.fmean(widths) if widths else math.nan,
        "claimed_sd": statistics.fmean(widths) / (2 * 1.96) if widths else math.nan,
        "null_pairs": sum(p["covers_0"] is not None for p in pairs),
        "null_pairs_covering_0": sum(bool(p["covers_0"]) for p in pairs),
        "null_pairs_undefined": sum(p["covers_0"] is None for p in pairs),
    }
    print()
    print("| run | seed | MS [95 % CI] | inertia | pairs | unreadable | time |")
    print("|---|---|---|---|---|---|---|")
    for r, row in enumerate(rows, start=1):
        print(f"| {r} | {row['seed']} | {_fmt(row['ms_slope'])} [{_fmt(row['ms_slope_ci_low'])}, "
              f"{_fmt(row['ms_slope_ci_high'])}] | {row['inertia']:.3f} | {int(row['n_pairs'])} | "
              f"{row['extraction_failure_rate']:.1%} | {row['seconds']:.0f} s |")
    print()
    print(f"MS across runs: mean {_fmt(summary['ms_mean'])}, sd {summary['ms_sd_across_runs']:.3f}; "
          f"mean CI width {summary['mean_ci_width']:.3f} (the sd it claims: {summary['claimed_sd']:.3f}); "
          f"ratio sd / claimed sd: {summary['ms_sd_across_runs'] / summary['claimed_sd']:.2f}")
    print(f"null comparisons (the same model twice) whose paired 95 % CI covers 0: "
          f"{summary['null_pairs_covering_0']} of {summary['null_pairs']}"
          + (f" ({summary['null_pairs_undefined']} more undefined)" if summary["null_pairs_undefined"] else ""))
    for p in pairs:
        verdict = f"  undefined: {p['reason']}" if p["covers_0"] is None else "" if p["covers_0"] else "  <- excludes 0"
        print(f"  run {p['a']} vs run {p['b']}: ΔMS {_fmt(p['difference'])} [{_fmt(p['ci_low'])}, "
              f"{_fmt(p['ci_high'])}]{verdict}")
    if args.json is not None:
        args.json.write_text(json.dumps({"summary": summary, "runs": rows, "pairs": pairs}, indent=2) + "\n")


if __name__ == "__main__":
    main()
