"""The leaderboard of a grid of runs (an eval-set folder): one row per model × task × setting × extractor.

Each row gives the Martingale Score with its robust 95 % CI (``N/A`` with a numbered note saying why
when it is undefined), a ``*`` where the classic OLS t-test has p < 0.05 (as the paper marks significant
scores), the extraction failure rate, the number of belief pairs and, where the task has labels, the
posterior Brier score. Models are shown by their short names (:mod:`martingale_harness.reporting.display`).
Paradigm and system prompt become columns only when they vary across the runs. Rows are sorted by
task, paradigm, system prompt, model.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from martingale_harness.errors import MartingaleError
from martingale_harness.reporting.runs import Run, metric_value, simulated_label_note

SIGNIFICANCE = 0.05


@dataclass(frozen=True)
class LeaderboardRow:
    """One (run, extractor) of the grid."""

    model: str
    task: str
    paradigm: str
    system_prompt: str
    extractor: str
    ms: float
    ms_ci_low: float
    ms_ci_high: float
    ms_p: float
    n_pairs: int
    extraction_failure_rate: float
    brier_posterior: float
    log: str
    ms_reason: str | None = None
    """Why ``ms`` is undefined (NaN), in words."""
    name: str = ""
    """The model's short name (:mod:`martingale_harness.reporting.display`), what the table and figure show."""

    @property
    def significant(self) -> bool:
        """Classic OLS p < 0.05 (the paper's star)."""
        return math.isfinite(self.ms_p) and self.ms_p < SIGNIFICANCE


def leaderboard_rows(runs: Sequence[Run]) -> list[LeaderboardRow]:
    """The rows of ``runs``, sorted; two runs of the same cell are an error naming both logs."""
    if not runs:
        raise MartingaleError("no runs for a leaderboard")
    rows = []
    for run in runs:
        for extractor, m in run.metrics.items():
            if "ms_slope" not in m:
                continue
            rows.append(LeaderboardRow(
                model=run.model, name=run.display_model, task=run.task, paradigm=str(run.metadata.get("paradigm", "")),
                system_prompt=str(run.metadata.get("system_prompt", "")), extractor=extractor,
                ms=metric_value(m.get("ms_slope")), ms_ci_low=metric_value(m.get("ms_slope_ci_low")),
                ms_ci_high=metric_value(m.get("ms_slope_ci_high")), ms_p=metric_value(m.get("ms_slope_p")),
                n_pairs=int(metric_value(m.get("n_pairs"))) if math.isfinite(metric_value(m.get("n_pairs"))) else 0,
                extraction_failure_rate=metric_value(m.get("extraction_failure_rate")),
                brier_posterior=metric_value(m.get("brier_posterior")), log=str(run.path),
                ms_reason=run.ms_reason(extractor)))
    seen: dict[tuple[str, ...], str] = {}
    for r in rows:
        cell = (r.model, r.task, r.paradigm, r.system_prompt, r.extractor)
        if cell in seen:
            raise MartingaleError(f"two logs for {' / '.join(cell)}: {seen[cell]} and {r.log}; "
                                  "pass one of them (an eval-set folder holds one per cell)")
        seen[cell] = r.log
    return sorted(rows, key=lambda r: (r.task, r.paradigm, r.system_prompt, r.model, r.extractor))


def leaderboard_table(rows: Sequence[LeaderboardRow]) -> str:
    """The markdown leaderboard; constant columns (one paradigm, one prompt, one extractor) are left out."""
    from pytablewriter import MarkdownTableWriter
    from pytablewriter.typehint import String

    def f(x: float, digits: int = 3) -> str:
        return "N/A" if not math.isfinite(x) else f"{x:.{digits}f}"

    varying = [c for c in ("paradigm", "system_prompt", "extractor") if len({getattr(r, c) for r in rows}) > 1]
    labelled = any(math.isfinite(r.brier_posterior) for r in rows)
    headers = ["Model", "Task", *varying, "MS [95% CI]", "n pairs", "failure rate", *(["Brier"] if labelled else [])]
    matrix = []
    undefined = [r for r in rows if r.ms_reason]
    for r in rows:
        ms = f(r.ms) + ("*" if r.significant else "") + (f" ({undefined.index(r) + 1})" if r.ms_reason else "")
        ci = f" [{f(r.ms_ci_low)}, {f(r.ms_ci_high)}]" if math.isfinite(r.ms_ci_low) else " [N/A]"
        matrix.append([r.name or r.model, r.task, *(getattr(r, c) for c in varying), ms + ci, str(r.n_pairs),
                       f(r.extraction_failure_rate), *([f(r.brier_posterior)] if labelled else [])])
    writer = MarkdownTableWriter()
    writer.headers = headers
    writer.value_matrix = matrix
    writer.type_hints = [String] * len(headers)
    notes = "".join(f"({i}) MS N/A for {r.name or r.model} / {r.task} / {r.extractor}: {r.ms_reason}\n"
                    for i, r in enumerate(undefined, start=1))
    return (writer.dumps() + f"\n`*`: classic OLS p < {SIGNIFICANCE} for the slope (the interval is the robust one).\n"
            + notes)


def leaderboard_document(rows: Sequence[LeaderboardRow]) -> dict[str, Any]:
    """The leaderboard as JSON-ready data (undefined values as ``"N/A"``, as in the results JSON)."""
    def clean(value: Any) -> Any:
        return "N/A" if isinstance(value, float) and not math.isfinite(value) else value

    return {"significance": SIGNIFICANCE,
            "rows": [{**{k: clean(v) for k, v in asdict(r).items()}, "significant": r.significant} for r in rows]}


def write_leaderboard(runs: Sequence[Run], output_dir: str | Path, stamp: str) -> tuple[str, list[Path]]:
    """Write ``leaderboard_<stamp>.md`` and ``.json``; return the markdown (with the sim note) and the files."""
    rows = leaderboard_rows(runs)
    table = leaderboard_table(rows)
    note = simulated_label_note(list(runs))
    if note and any(math.isfinite(r.brier_posterior) for r in rows):
        table += f"\nNote: {note}\n"
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    md, js = out / f"leaderboard_{stamp}.md", out / f"leaderboard_{stamp}.json"
    md.write_text(table, encoding="utf-8")
    js.write_text(json.dumps(leaderboard_document(rows), indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return table, [md, js]
