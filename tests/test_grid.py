"""The grid as one inspect eval set: validated up front, resumable after a kill, reported as a leaderboard."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from inspect_ai.log import read_eval_log
from inspect_ai.model import model_roles

from martingale_harness.errors import ConfigError
from martingale_harness.planning.grid import Grid, grid_tasks, run_grid

BIN = Path(sys.executable).parent
GRID = ["--tasks", "forecast,openreview", "--models", "sim/bayesian,sim/entrenched", "--paradigms", "direct,cot"]


@pytest.mark.parametrize(("changes", "message"), [
    ({"tasks": ("forcast",)}, "unknown task 'forcast'"),
    ({"paradigms": ("direct", "direct")}, "a paradigm is listed twice"),
    ({"system_prompts": ("polite",)}, "unknown system prompt 'polite'"),
    ({"models": ()}, "at least one model"),
    ({"task_args": {"paradigm": "cot"}}, "set by the grid's own axes"),
])
def test_a_bad_grid_is_refused_before_anything_runs(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Grid(**{"tasks": ("forecast",), "models": ("sim/bayesian",), **changes})  # type: ignore[arg-type]


def test_grid_tasks_carry_their_settings() -> None:
    grid = Grid(tasks=("forecast", "cmv"), models=("sim/bayesian",), paradigms=("direct", "cot"),
                system_prompts=("none", "critical"), task_args={"extractors": "self_report,answer_line"})
    tasks = grid_tasks(grid)
    assert grid.cells == 8 and len(tasks) == 8
    settings = [(t.name.split("/")[-1], t.metadata["paradigm"], t.metadata["system_prompt"]) for t in tasks]
    assert settings[:2] == [("forecast", "direct", "none"), ("forecast", "direct", "critical")]
    assert len(set(settings)) == 8


def test_grid_tasks_bind_the_judges_role_only_while_they_are_built() -> None:
    judged = {"extractors": "self_report,step_judge"}
    with pytest.raises(ConfigError, match="needs a model for the role 'grader'"):
        grid_tasks(Grid(tasks=("cmv",), models=("sim/bayesian",), task_args=judged))
    (task,) = grid_tasks(Grid(tasks=("cmv",), models=("sim/bayesian",), task_args=judged,
                              model_roles={"grader": "sim/judge"}))
    assert len(task.scorer or []) == 2  # one scorer per extractor, the judge included
    assert model_roles() == {}  # nothing leaks into the caller's context
    with pytest.raises(ConfigError, match="needs a model for the role 'grader'"):  # nor into the next grid
        grid_tasks(Grid(tasks=("cmv",), models=("sim/bayesian",), task_args=judged))


def _successes(log_dir: Path) -> dict[str, float]:
    done = {}
    for path in log_dir.glob("*.eval"):
        try:
            status = read_eval_log(str(path), header_only=True).status
        except ValueError:  # a log being written (or cut by the kill) is not a readable zip yet
            continue
        if status == "success":
            done[path.name] = path.stat().st_mtime
    return done


@pytest.mark.slow
def test_a_killed_grid_resumes_with_only_what_is_missing_and_reports_every_cell(tmp_path: Path) -> None:
    log_dir = tmp_path / "grid"
    command = [str(BIN / "martingale"), "grid", *GRID, "--log-dir", str(log_dir), "--max-tasks", "1"]
    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and first.poll() is None and not (log_dir.is_dir() and _successes(log_dir)):
        time.sleep(0.05)
    os.killpg(first.pid, signal.SIGKILL)  # a crash or a ^C^C: nothing gets to clean up
    first.wait(timeout=30)
    before = _successes(log_dir)
    assert 1 <= len(before) < 8, f"the kill came too late to test resuming: {len(before)} cells done"

    resumed = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    after = _successes(log_dir)
    assert len(after) == 8
    assert {name: after[name] for name in before} == before  # finished cells were not run again
    cells = set()
    for name in after:
        log = read_eval_log(str(log_dir / name), header_only=True)
        cells.add((log.eval.task, log.eval.model, log.eval.task_args["paradigm"]))
    assert len(cells) == 8

    report = subprocess.run([str(BIN / "martingale"), "report", str(log_dir), "--output-dir", str(tmp_path / "out"),
                             "--no-plots"], capture_output=True, text=True, timeout=300)
    assert report.returncode == 0, report.stderr
    lines = report.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if "MS [95% CI]" in line)
    rows = [line for line in lines[header + 2:] if line.startswith("|")]
    assert len(rows) == 8
    for task, model, paradigm in cells:
        assert any(f"|{model}" in r and f"|{task}" in r and f"|{paradigm}" in r for r in rows), (task, model, paradigm)
    (saved,) = (tmp_path / "out").glob("leaderboard_*.json")
    assert len(json.loads(saved.read_text())["rows"]) == 8


@pytest.mark.parametrize("batch", [False, True])
def test_batch_reaches_the_evaluated_models_and_every_judge(batch: bool, monkeypatch: pytest.MonkeyPatch,
                                                           tmp_path: Path) -> None:
    import inspect_ai

    seen: dict[str, object] = {}
    monkeypatch.setattr(inspect_ai, "eval_set", lambda **kwargs: seen.update(kwargs) or (True, []))
    grid = Grid(tasks=("cmv",), models=("sim/bayesian",), task_args={"extractors": "self_report,step_judge"},
                model_roles={"grader": "sim/judge"})
    run_grid(grid, str(tmp_path), batch=batch)
    grader = seen["model_roles"]["grader"]  # type: ignore[index]
    if batch:
        # an eval's batch applies to the evaluated model only: the judge carries its own
        assert seen["batch"] is True and grader.config.batch is True  # type: ignore[union-attr]
    else:
        assert "batch" not in seen and grader == "sim/judge"
