"""The leaderboard's rows, marks and columns, on runs made by hand (known metrics)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from martingale_harness.errors import MartingaleError
from martingale_harness.reporting import figures as plots
from martingale_harness.reporting.leaderboard import (
    leaderboard_document,
    leaderboard_rows,
    leaderboard_table,
    write_leaderboard,
)
from martingale_harness.reporting.runs import Run


def _run(model: str, task: str = "martingale/forecast", paradigm: str = "direct", ms: float = 0.1,
         p: float = 0.5, brier: float = 0.2, low: float = -0.1, name: str = "a") -> Run:
    metrics = {"ms_slope": ms, "ms_slope_ci_low": low, "ms_slope_ci_high": ms + 0.2, "ms_slope_p": p,
               "n_pairs": 40.0, "extraction_failure_rate": 0.05, "brier_posterior": brier}
    return Run(path=Path(f"/logs/{name}.eval"), task=task, model=model, version="1", task_args={},
               metadata={"paradigm": paradigm, "system_prompt": "none"}, metrics={"self_report": metrics},
               samples={})


def test_rows_are_sorted_marked_and_constant_columns_left_out() -> None:
    runs = [_run("openai/b", paradigm="cot", ms=0.3, p=0.001, name="1"), _run("openai/a", name="2"),
            _run("openai/b", name="3", p=0.049999), _run("openai/a", paradigm="cot", name="4", low=math.nan)]
    rows = leaderboard_rows(runs)
    assert [(r.paradigm, r.model) for r in rows] == [("cot", "openai/a"), ("cot", "openai/b"),
                                                     ("direct", "openai/a"), ("direct", "openai/b")]
    assert [r.significant for r in rows] == [False, True, False, True]
    table = leaderboard_table(rows)
    header = table.splitlines()[0]
    assert "paradigm" in header and "system_prompt" not in header and "extractor" not in header
    assert "0.300* [-0.100, 0.500]" in table and "0.100 [N/A]" in table and "Brier" in header


def test_two_logs_of_one_cell_are_an_error() -> None:
    with pytest.raises(MartingaleError, match="two logs for openai/a / martingale/forecast / direct"):
        leaderboard_rows([_run("openai/a", name="x"), _run("openai/a", name="y")])


def test_json_has_every_row_with_undefined_values_as_na(tmp_path: Path) -> None:
    runs = [_run("openai/a", brier=math.nan), _run("openai/b", name="b")]
    document = leaderboard_document(leaderboard_rows(runs))
    assert [r["model"] for r in document["rows"]] == ["openai/a", "openai/b"]
    assert document["rows"][0]["brier_posterior"] == "N/A"
    table, files = write_leaderboard(runs, tmp_path, "stamp")
    assert json.loads(files[1].read_text()) == document and files[0].read_text() == table
    assert "Note:" not in table  # real models: no sim note
    sim_table, _ = write_leaderboard([_run("sim/bayesian")], tmp_path, "s2")
    assert "Note: sim/bayesian: simulated reasoners" in sim_table


def test_ms_brier_figure_places_each_labelled_row() -> None:
    rows = leaderboard_rows([_run("openai/a", ms=-0.3, brier=0.25), _run("openai/b", ms=0.1, brier=0.2, name="b"),
                             _run("openai/c", task="martingale/cmv", brier=math.nan, name="c")])
    fig = plots.ms_brier_figure(rows)
    assert fig is not None
    (points,) = [c for c in fig.axes[0].get_children() if c.get_gid() == "ms_brier_martingale/forecast"]
    assert sorted(map(tuple, points.get_offsets().tolist())) == [(0.1, 0.2), (0.3, 0.25)]
    assert plots.ms_brier_figure(leaderboard_rows([_run("openai/c", brier=math.nan)])) is None
