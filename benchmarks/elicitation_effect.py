"""The elicitation's own effect: how much reading the belief another way moves MS, on the same transcripts.

Runs forecast, cmv and openreview (real data from ``../shared/data``) x the ``direct`` and ``cot``
paradigms with one model and several extractors (by default ``self_report``, ``answer_line``,
``logprob`` and the ``structured`` probe), ``--per-cell`` shuffled samples each, seeded. Printed:

* per extractor, the share of belief turns it read (over all cells, and per cell);
* per extractor, the MS of the pooled samples with its 95 % CI (question-cluster bootstrap: questions
  are ``task/question id``);
* per pair of extractors, the paired ΔMS (second − first) on the samples both read, with its 95 %
  interval from the same bootstrap draws (``martingale agreement``'s numbers, pooled over the cells).

    python benchmarks/elicitation_effect.py --model local/<SmolLM2 gguf> --per-cell 17 --log-dir runs/elicitation

The logs stay in ``--log-dir`` (``martingale agreement LOG`` gives one cell's numbers); ``--json`` writes
the printed numbers; ``--from-logs`` summarises the finished logs of ``--log-dir`` without running
anything (the cells a stopped run finished). One process runs all cells, so a local model is loaded once.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

from repeatability import key_values  # a sibling script: python puts benchmarks/ on sys.path

CELLS = (("forecast", "forecastbench/2025-11-09-llm.json"),
         ("cmv", "cmv/priniski_cmv_top2018_sociomoral.jsonl"),
         ("openreview", "openreview/iclr2017_openreview_dylanjoo_sample300.jsonl"))
PARADIGMS = ("direct", "cot")
EXTRACTORS = "self_report,answer_line,logprob,structured"


def _fmt(value: float) -> str:
    return "N/A" if not math.isfinite(value) else f"{value:+.3f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="the model (with --from-logs: only the label printed)")
    parser.add_argument("-M", action="append", default=[], help="model arg name=value (repeatable)")
    parser.add_argument("--extractors", default=EXTRACTORS)
    parser.add_argument("--per-cell", type=int, default=17, help="samples per task x paradigm")
    parser.add_argument("--tasks", default=",".join(task for task, _ in CELLS),
                        help="comma-separated subset of the cells' tasks (e.g. a repeat of the cheaper ones)")
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--max-tokens", type=int, default=200)
    parser.add_argument("--evidence-budget", type=int, default=400)
    parser.add_argument("--seed", type=int, default=1, help="the runs' seed (per-call seeds derive from it)")
    parser.add_argument("--sample-seed", type=int, default=None,
                        help="the seed that picks the samples (default: --seed); a repeat on the same questions "
                             "keeps it and changes --seed")
    parser.add_argument("--shared-data", type=Path, default=None)
    parser.add_argument("--log-dir", type=Path, required=True)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--from-logs", action="store_true",
                        help="run nothing: summarise the finished logs already in --log-dir (e.g. of a stopped run)")
    args = parser.parse_args(argv)

    from inspect_ai import eval as inspect_eval
    from inspect_ai.log import read_eval_log

    from martingale_harness.extraction.corpus import shared_data_dir
    from martingale_harness.reporting.agreement import pairwise_agreement
    from martingale_harness.reporting.runs import run_from_log
    from martingale_harness.tasks.builder import domain_task

    names = [n.strip() for n in args.extractors.split(",")]
    started = time.monotonic()
    if args.from_logs:
        logs = [read_eval_log(str(p)) for p in sorted(args.log_dir.glob("*.eval"))]
        logs = [log for log in logs if log.status == "success"]
        if not logs:
            raise SystemExit(f"no finished log in {args.log_dir}")
    else:
        root = shared_data_dir(args.shared_data)
        chosen = [t.strip() for t in args.tasks.split(",")]
        unknown = sorted(set(chosen) - {task for task, _ in CELLS})
        if unknown:
            raise SystemExit(f"--tasks: no cell for {', '.join(unknown)}; the cells' tasks are "
                             f"{', '.join(task for task, _ in CELLS)}")
        tasks = [domain_task(task, data=str(root / data), paradigm=paradigm, extractors=",".join(names),
                             evidence_budget=args.evidence_budget)
                 for task, data in CELLS if task in chosen for paradigm in PARADIGMS]
        logs = inspect_eval(tasks, model=args.model, model_args=key_values(args.M, "-M"), limit=args.per_cell,
                            sample_shuffle=args.seed if args.sample_seed is None else args.sample_seed,
                            seed=args.seed, temperature=args.temperature,
                            max_tokens=args.max_tokens, log_dir=str(args.log_dir), display="none", max_tasks=1)
        failed = [log for log in logs if log.status != "success"]
        if failed:
            raise SystemExit(f"{len(failed)} cell(s) did not finish: "
                             + "; ".join(str(log.error) for log in failed))
    minutes = (time.monotonic() - started) / 60

    readable: dict[str, list[int]] = {n: [0, 0] for n in names}
    cells: list[dict[str, Any]] = []
    priors: dict[str, list[float]] = {n: [] for n in names}
    posteriors: dict[str, list[float]] = {n: [] for n in names}
    clusters: list[str] = []
    runs = [run_from_log(log, Path(log.location)) for log in logs]
    # pool in one canonical order (cells as CELLS × PARADIGMS lists them, samples by id), so that the
    # live run and --from-logs (file-name order) sum the same rows in the same order, to the last bit
    cell_order = [(task, paradigm) for task, _ in CELLS for paradigm in PARADIGMS]
    runs.sort(key=lambda r: _cell_rank(cell_order, str(r.metadata.get("martingale_task", r.task)),
                                       r.metadata.get("paradigm")))
    for run in runs:
        task = str(run.metadata.get("martingale_task", run.task))
        cell = {"task": task, "paradigm": run.metadata.get("paradigm"), "log": str(run.path), "readable": {},
                "structured_modes": _structured_modes(run.path)}
        by_id = {n: {s.sample_id: s for s in run.samples[n]} for n in names}
        for n in names:
            turns = [b for s in run.samples[n] for b in s.trajectory]
            ok = sum(b is not None for b in turns)
            readable[n][0] += ok
            readable[n][1] += len(turns)
            cell["readable"][n] = ok / len(turns) if turns else math.nan
        cells.append(cell)
        for sample_id, first in sorted(by_id[names[0]].items(), key=lambda item: str(item[0])):
            clusters.append(f"{task}/{first.question_id}")
            for n in names:
                s = by_id[n][sample_id]
                priors[n].append(math.nan if s.prior is None else s.prior)
                posteriors[n].append(math.nan if s.posterior is None else s.posterior)

    pairs = pairwise_agreement(priors, posteriors, cluster=clusters)
    ms = {n: next(p.ms_a if p.a == n else p.ms_b for p in pairs if n in (p.a, p.b)) for n in names}
    print(f"{args.model}: {len(clusters)} samples in {len(cells)} cells, {minutes:.1f} min")
    print("\n| extractor | belief turns read | MS [95% CI] | n pairs |\n|---|---:|---|---:|")
    for n in names:
        ok, total = readable[n]
        m = ms[n]
        print(f"| {n} | {ok}/{total} ({ok / total:.1%}) | {_fmt(m.slope)} [{_fmt(m.ci_low)}, {_fmt(m.ci_high)}] "
              f"| {m.n} |" + (f" {m.reason}" if m.reason else ""))
    print("\n| pair (A, B) | samples both read | MS A | MS B | ΔMS (B − A) [95% CI] |\n|---|---:|---:|---:|---|")
    for p in pairs:
        d = p.delta_ms
        print(f"| {p.a}, {p.b} | {p.n_both} | {_fmt(p.ms_a.slope)} | {_fmt(p.ms_b.slope)} | "
              f"{_fmt(d.difference)} [{_fmt(d.ci_low)}, {_fmt(d.ci_high)}] |" + (f" {d.reason}" if d.reason else ""))
    print("\nper cell, share of belief turns read (and how the structured probe's schema was enforced):")
    for cell in cells:
        modes = ", ".join(f"{mode} {n}" for mode, n in sorted(cell["structured_modes"].items()))
        print(f"  {cell['task']} {cell['paradigm']}: "
              + ", ".join(f"{n} {v:.0%}" for n, v in cell["readable"].items()) + (f"; probe: {modes}" if modes else ""))
    if args.json:
        args.json.write_text(json.dumps({
            "model": args.model, "samples": len(clusters), "minutes": minutes, "cells": cells,
            "readable": {n: {"read": ok, "turns": total} for n, (ok, total) in readable.items()},
            "ms": {n: {"slope": m.slope, "ci": [m.ci_low, m.ci_high], "n": m.n, "reason": m.reason}
                   for n, m in ms.items()},
            "pairs": [{"a": p.a, "b": p.b, "n_both": p.n_both, "delta": p.delta_ms.difference,
                       "ci": [p.delta_ms.ci_low, p.delta_ms.ci_high], "reason": p.delta_ms.reason} for p in pairs],
        }, indent=2, allow_nan=True) + "\n")
    return 0


def _structured_modes(path: Path) -> dict[str, int]:
    """How many structured probes of a log were constrained, handed to inspect, or only prompted."""
    from collections import Counter

    from inspect_ai.log import read_eval_log

    from martingale_harness.protocol.turns import read_turns

    modes: Counter[str] = Counter()
    for sample in read_eval_log(str(path)).samples or []:
        for turn in read_turns(sample.store):
            if isinstance(turn.structured, dict):
                modes[str(turn.structured.get("mode"))] += 1
    return dict(modes)


def _cell_rank(order: list[tuple[str, str]], task: str, paradigm: object) -> tuple[int, str, str]:
    """Where a cell sorts: its place in the benchmark's grid, cells from elsewhere after it by name."""
    key = (task, str(paradigm))
    return (order.index(key), "", "") if key in order else (len(order), task, str(paradigm))


if __name__ == "__main__":
    raise SystemExit(main())
