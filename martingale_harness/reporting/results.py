"""lm-eval-style reports of finished runs: results JSON, the markdown results table, samples JSONL.

The layout follows lm-evaluation-harness so its tooling and habits carry over:

* ``results_<timestamp>.json`` with ``results``, ``group_subtasks``, ``configs``, ``versions``,
  ``n-shot``, ``higher_is_better``, ``n-samples`` and ``config``. Metric keys are
  ``"<metric>,<extractor>"``: the extractor plays the part of lm-eval's filter. A metric's classic
  OLS standard error (``ms_slope_se``) is its ``"<metric>_stderr,<extractor>"``; the robust ones keep
  their own keys. Values that are undefined (NaN) are written as ``"N/A"``, as lm-eval does for a
  missing stderr, so the file is strict JSON; an ``"N/A"`` Martingale Score comes with
  ``"ms_slope_undefined,<extractor>"``, the reason in words.
* The markdown table (``Tasks | Version | Filter | n-shot | Metric | ↑/↓ | Value | ± | Stderr``),
  rendered by the same rules as lm-eval's ``make_table`` (the task name and version on a task's first
  row only, 4 decimals); runs in the order given, where ``make_table`` would sort them. Where
  ``make_table`` lists every metric alphabetically (about 36 per run here), the table leads with what
  matters: per extractor the :data:`HEADLINE_METRICS`; ``--all`` appends the rest. Under the table, a
  line per undefined Martingale Score says why.
* ``samples_<task>_<timestamp>.jsonl``: one line per sample and extractor.

Each run is one entry of ``results``; its key is the task name, made unique when several runs share
a task by adding the model's short name (:mod:`martingale_harness.reporting.display`), then paradigm and system
prompt, then the log's file name. File names made from a key are cut to a safe length.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from martingale_harness.errors import MartingaleError
from martingale_harness.reporting.display import safe_file_stem
from martingale_harness.reporting.runs import Run, simulated_label_note
from martingale_harness.tasks.config import task_config

HIGHER_IS_BETTER_SYMBOLS = {True: "↑", False: "↓"}
TABLE_HEADERS = ["Tasks", "Version", "Filter", "n-shot", "Metric", "", "Value", "", "Stderr"]
HEADLINE_METRICS = ("ms_slope", "ms_slope_ci_low", "ms_slope_ci_high", "n_pairs", "extraction_failure_rate",
                    "inertia", "brier_posterior")
"""The rows the results table shows by default (``martingale report --all`` shows every metric)."""
UNDEFINED_REASON = "ms_slope_undefined"
"""Results key ``"ms_slope_undefined,<extractor>"``: why that extractor's ``ms_slope`` is ``"N/A"``."""
_SECRET_ARG = re.compile(r"key|token|secret|password|auth", re.IGNORECASE)


def _harness_version() -> str:
    try:
        return version("martingale-harness")
    except PackageNotFoundError:
        return "unknown"


def run_keys(runs: Sequence[Run]) -> list[str]:
    """A unique ``results`` key per run (see the module docstring)."""
    levels = [
        lambda r: r.task,
        lambda r: f"{r.task} ({r.display_model})",
        lambda r: f"{r.task} ({r.display_model}, {r.metadata.get('paradigm')}, {r.metadata.get('system_prompt')})",
        lambda r: f"{r.task} ({r.display_model}, {r.metadata.get('paradigm')}, {r.metadata.get('system_prompt')}, "
                  f"{r.path.stem})",
    ]
    keys = [levels[0](r) for r in runs]
    for level in levels[1:]:
        clashing = {k for k in keys if keys.count(k) > 1}
        if not clashing:
            break
        keys = [level(r) if k in clashing else k for r, k in zip(runs, keys, strict=True)]
    if len(set(keys)) != len(keys):
        twice = sorted({k for k in keys if keys.count(k) > 1})
        raise MartingaleError(f"the same log was given twice: {', '.join(twice)}")
    return keys


def _json_value(value: float) -> float | str:
    return "N/A" if value is None or (isinstance(value, float) and math.isnan(value)) else value


def _metric_key(metric: str) -> str:
    return f"{metric[:-3]}_stderr" if metric.endswith("_se") else metric


def _task_settings(run: Run) -> tuple[dict[str, Any], dict[str, bool]]:
    """The run's task config as lm-eval's ``configs`` entry, and its ``higher_is_better``."""
    meta = run.metadata
    protocol = {k: meta.get(k) for k in ("paradigm", "system_prompt", "extractors", "rounds", "evidence_budget",
                                          "bad_rows") if k in meta}
    try:
        config = task_config(str(meta.get("martingale_task")))
    except MartingaleError:
        config = None  # a log from a task this installation does not know: report what the log says
    higher = {str(m["metric"]): m["higher_is_better"] for m in (config.metric_list if config else ())
              if isinstance(m.get("higher_is_better"), bool)}
    entry: dict[str, Any] = {
        "task": run.task,
        "tag": list(config.tags) if config else [],
        "dataset_path": config.dataset_path if config else None,
        "dataset_kwargs": {"data": run.task_args.get("data") or (str(config.default_data) if config else None)},
        "test_split": "test",
        "output_type": "generate_until",
        "doc_to_text": config.doc_to_text if config else None,
        "doc_to_target": "label",
        "metric_list": [dict(m) for m in config.metric_list] if config else [],
        "metadata": {"version": run.version},
        "repeats": run.epochs,  # lm-eval's name for draws per document (inspect's --epochs)
        "protocol": protocol,
    }
    return entry, higher


def results_document(runs: Sequence[Run]) -> dict[str, Any]:
    """The results JSON (lm-eval layout) for ``runs``."""
    if not runs:
        raise MartingaleError("no runs to report")
    keys = run_keys(runs)
    doc: dict[str, Any] = {"results": {}, "group_subtasks": {}, "configs": {}, "versions": {}, "n-shot": {},
                           "higher_is_better": {}, "n-samples": {}}
    for key, run in zip(keys, runs, strict=True):
        entry: dict[str, Any] = {"alias": key}
        for extractor, metrics in run.metrics.items():
            for metric, value in metrics.items():
                entry[f"{_metric_key(metric)},{extractor}"] = _json_value(value)
            reason = run.ms_reason(extractor)
            if reason:
                entry[f"{UNDEFINED_REASON},{extractor}"] = reason
        config, higher = _task_settings(run)
        # documents, not draws: with --epochs the draws per document are the config's ``repeats``
        n = max((len({s.sample_id for s in draws}) for draws in run.samples.values()), default=0)
        doc["results"][key] = entry
        doc["group_subtasks"][key] = []
        doc["configs"][key] = config
        doc["versions"][key] = _version_number(run.version)
        doc["n-shot"][key] = 0
        doc["higher_is_better"][key] = higher
        doc["n-samples"][key] = {"original": n, "effective": n}
    doc["config"] = {
        "model": sorted({r.model for r in runs})[0] if len({r.model for r in runs}) == 1 else [r.model for r in runs],
        "model_args": [_public_args(r.model_args) for r in runs],
        "batch_size": None,
        "bootstrap_iters": 1000,
        "logs": [str(r.path) for r in runs],
    }
    doc["date"] = datetime.now(UTC).timestamp()
    doc["martingale_harness_version"] = _harness_version()
    return doc


def _version_number(value: str) -> float | str:
    try:
        return float(value)
    except ValueError:
        return value


def _public_args(args: Any) -> Any:
    """Model args without anything that looks like a credential, at any depth (headers too)."""
    if isinstance(args, dict):
        return {k: ("<redacted>" if _SECRET_ARG.search(str(k)) else _public_args(v)) for k, v in args.items()}
    if isinstance(args, list | tuple):
        return [_public_args(v) for v in args]
    return args


def _table_order(metrics: dict[str, Any], all_metrics: bool) -> list[tuple[str, str]]:
    """(metric, extractor) rows of one run: per extractor, the headline metrics in :data:`HEADLINE_METRICS`'
    order (Brier only where labelled), then with ``all_metrics`` every other metric, alphabetically."""
    extractors = list(dict.fromkeys(key.partition(",")[2] for key in metrics))
    rows = []
    for extractor in extractors:
        for metric in HEADLINE_METRICS:
            value = metrics.get(f"{metric},{extractor}")
            if value is not None and not (metric.startswith("brier") and value == "N/A"):
                rows.append((metric, extractor))
    if all_metrics:
        rest = sorted(key for key in metrics if tuple(key.partition(",")[::2]) not in set(rows))
        rows += [(key.partition(",")[0], key.partition(",")[2]) for key in rest]
    return [(m, e) for m, e in rows if not m.endswith("_stderr") and m != UNDEFINED_REASON]


def results_table(doc: dict[str, Any], all_metrics: bool = False) -> str:
    """The markdown results table of a results document, by lm-eval's ``make_table`` rules.

    Its rows are the headline metrics (:data:`HEADLINE_METRICS`) of each run and extractor, in that
    order; ``all_metrics`` adds every other metric of the document after them, alphabetically. Rows
    are formatted as ``make_table`` formats them; the results JSON holds every metric either way.
    """
    from pytablewriter import MarkdownTableWriter

    rows = []
    for key in doc["results"]:  # in the order the runs were given, as lm-eval's make_table does by default
        metrics = dict(doc["results"][key])
        name = metrics.pop("alias", key)
        task_version: Any = doc["versions"].get(key, "    N/A")
        shots = str(doc["n-shot"].get(key, " "))
        higher = doc["higher_is_better"].get(key, {})
        for metric, extractor in _table_order(metrics, all_metrics):
            value = metrics[f"{metric},{extractor}"]
            shown = f"{value:.4f}" if isinstance(value, float) else value
            arrow = HIGHER_IS_BETTER_SYMBOLS.get(higher.get(metric), "")
            stderr_key = f"{metric}_stderr,{extractor}"
            if stderr_key in metrics:
                se = metrics[stderr_key]
                rows.append([name, task_version, extractor, shots, metric, arrow, shown, "±",
                             "   N/A" if se == "N/A" else f"{se:.4f}"])
            else:
                rows.append([name, task_version, extractor, shots, metric, arrow, shown, "", ""])
            name, task_version = "", ""
    writer = MarkdownTableWriter()
    writer.headers = TABLE_HEADERS
    writer.value_matrix = rows
    return writer.dumps()


def undefined_notes(doc: dict[str, Any]) -> list[str]:
    """One line per run and extractor whose Martingale Score is N/A, saying why."""
    notes = []
    for key, metrics in doc["results"].items():
        for metric_filter, reason in metrics.items():
            metric, _, extractor = metric_filter.partition(",")
            if metric == UNDEFINED_REASON:
                notes.append(f"MS N/A for {metrics.get('alias', key)} / {extractor}: {reason}")
    return notes


def sample_lines(run: Run) -> Iterator[dict[str, Any]]:
    """One JSON-ready record per sample draw (sample-epoch) and extractor."""
    for extractor, samples in run.samples.items():
        for doc_id, s in enumerate(samples):
            yield {
                "doc_id": doc_id,
                "id": s.sample_id,
                "epoch": s.epoch,
                "question_id": s.question_id,
                "filter": extractor,
                "prior": s.prior,
                "posterior": s.posterior,
                "trajectory": list(s.trajectory),
                "label": s.label,
                "status": s.status,
                "reasons": list(s.reasons),
                "metadata": s.metadata,
            }


@dataclass(frozen=True)
class ReportFiles:
    """What :func:`write_report` wrote."""

    results: Path
    table: Path
    samples: list[Path]
    plots: list[Path]
    stamp: str = ""
    """The timestamp in the file names (other files of the same report reuse it)."""


def write_report(runs: Sequence[Run], output_dir: str | Path, plots: bool = True,
                 all_metrics: bool = False) -> tuple[str, ReportFiles]:
    """Write results JSON, table and samples (and plots) to ``output_dir``; returns the table too.

    The table has the headline metrics, or every metric with ``all_metrics``; under it, why any
    Martingale Score is N/A, and the simulated-label note where it applies.
    """
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H-%M-%S.%f")
    doc = results_document(runs)
    table = results_table(doc, all_metrics=all_metrics)
    notes = undefined_notes(doc)
    note = simulated_label_note(list(runs))
    if note:
        notes.append(f"Note: {note}")
    if notes:
        table += "\n" + "\n".join(notes) + "\n"
    results_path = out / f"results_{stamp}.json"
    results_path.write_text(json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n", encoding="utf-8")
    table_path = out / f"results_{stamp}.md"
    table_path.write_text(table, encoding="utf-8")
    sample_paths = []
    for key, run in zip(run_keys(runs), runs, strict=True):
        path = out / f"samples_{safe_file_stem(key)}_{stamp}.jsonl"
        with path.open("w", encoding="utf-8") as f:
            for line in sample_lines(run):
                f.write(json.dumps(line, ensure_ascii=False) + "\n")
        sample_paths.append(path)
    plot_paths: list[Path] = []
    if plots:
        from martingale_harness.reporting.figures import write_plots

        plot_paths = write_plots(runs, out)
    return table, ReportFiles(results_path, table_path, sample_paths, plot_paths, stamp)
