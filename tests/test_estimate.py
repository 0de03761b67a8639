"""`martingale grid --dry-run`: calls, tokens and dollars of a grid, checked against a count by hand."""

from __future__ import annotations

import dataclasses
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from inspect_ai.dataset import Sample

from martingale_harness.cli import main
from martingale_harness.planning.cost import load_prices
from martingale_harness.planning.estimate import estimate_grid, estimate_tables
from martingale_harness.planning.grid import Grid, grid_tasks
from martingale_harness.protocol.solver import SYSTEM_PROMPT_TEXTS, posterior_prompt, prior_prompt

ROOT = Path(__file__).resolve().parents[1]
ANSWER_TOKENS = 60
LIMIT = 6
ROUNDS = 2


def _tokens(chars: int) -> int:
    return math.ceil(chars / 4)


@pytest.fixture(scope="module")
def grid() -> Grid:
    return Grid(tasks=("cmv", "openreview"), paradigms=("direct", "debate", "evidence"),
                system_prompts=("none", "critical"), models=("openai/gpt-4o-mini", "local/some-model.gguf"),
                task_args={"extractors": "self_report,step_judge"}, model_roles={"grader": "openai/gpt-4.1-mini"})


@pytest.fixture(scope="module")
def estimate(grid: Grid):  # type: ignore[no-untyped-def]
    return estimate_grid(grid, load_prices(), answer_tokens=ANSWER_TOKENS, limit=LIMIT)


def _datasets(grid: Grid) -> dict[str, list[Sample]]:
    """The first samples of each task, as the grid's tasks load them (the judge offline: no key needed)."""
    offline = dataclasses.replace(grid, model_roles={"grader": "sim/judge"})
    return {t.name.split("/")[-1]: list(t.dataset)[:LIMIT] for t in grid_tasks(offline)}


def test_calls_per_sample_are_the_protocols_by_hand(grid: Grid, estimate) -> None:  # type: ignore[no-untyped-def]
    datasets = _datasets(grid)
    assert [(c.task, c.paradigm, c.system_prompt) for c in estimate.cells] == [
        (t, p, s) for t in grid.tasks for p in grid.paradigms for s in grid.system_prompts]
    for cell in estimate.cells:
        samples = datasets[cell.task]
        assert cell.samples == LIMIT
        # direct: prior + posterior; debate: prior, `rounds` arguments and clone replies, posterior;
        # evidence: prior + one turn per item (one "no evidence" turn without any)
        per_sample = {"direct": [2] * LIMIT, "debate": [2 + 2 * ROUNDS] * LIMIT,
                      "evidence": [1 + max(len(s.metadata["evidence"]), 1) for s in samples]}[cell.paradigm]
        assert cell.model.calls == sum(per_sample)
        assert cell.max_model_calls == max(per_sample)
        assert cell.judges["grader"].calls == LIMIT  # step_judge: one grader call per sample
        # the stand-in writes every answer at the assumed length
        assert cell.model.output_tokens == cell.model.calls * ANSWER_TOKENS


def test_direct_input_tokens_are_the_prompts_by_hand(grid: Grid, estimate) -> None:  # type: ignore[no-untyped-def]
    datasets = _datasets(grid)
    for cell in (c for c in estimate.cells if c.paradigm == "direct"):
        system = len(SYSTEM_PROMPT_TEXTS[cell.system_prompt] or "")
        expected = 0
        for sample in datasets[cell.task]:
            prior = system + len(prior_prompt(str(sample.input)))
            posterior = prior + 4 * ANSWER_TOKENS + len(posterior_prompt(list(sample.metadata["evidence"])))
            expected += _tokens(prior) + _tokens(posterior)
        assert cell.model.input_tokens == expected, cell


def test_each_model_is_priced_at_its_list_price(grid: Grid, estimate) -> None:  # type: ignore[no-untyped-def]
    calls = sum(c.model.calls for c in estimate.cells)
    inp = sum(c.model.input_tokens for c in estimate.cells)
    out = sum(c.model.output_tokens for c in estimate.cells)
    mini, local, grader = estimate.rows
    assert (mini.role, mini.calls.calls, mini.calls.input_tokens, mini.calls.output_tokens) == (
        "evaluated", calls, inp, out)
    assert mini.samples == sum(c.samples for c in estimate.cells) == 12 * LIMIT
    assert mini.cost == pytest.approx((inp * 0.15 + out * 0.60) / 1e6)
    assert mini.batch_cost == pytest.approx(mini.cost / 2)
    assert local.calls == mini.calls and local.cost is None and local.batch_cost is None
    # the judge is called for every evaluated model
    judged = sum(c.judges["grader"].calls for c in estimate.cells)
    assert (grader.model, grader.role, grader.calls.calls) == ("openai/gpt-4.1-mini", "grader", 2 * judged)
    assert grader.cost == pytest.approx((grader.calls.input_tokens * 0.40 + grader.calls.output_tokens * 1.60) / 1e6)
    assert estimate.total_cost is None  # the local model has no price: never counted as 0
    table = estimate_tables(estimate)
    assert "|unknown" in table and f"{calls:,}" in table


def test_cli_dry_run_needs_no_log_dir_and_writes_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # where inspect would put ./logs
    result = CliRunner().invoke(main, ["grid", "--tasks", "cmv", "--models", "openai/gpt-4o-mini",
                                       "--limit", "2", "--dry-run"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "1 cells" in result.output and "|openai/gpt-4o-mini|evaluated|2" in result.output
    assert not list(tmp_path.iterdir())
    missing = CliRunner().invoke(main, ["grid", "--tasks", "cmv", "--models", "sim/bayesian"])
    assert missing.exit_code == 2 and "--log-dir is needed" in missing.output
    bad = CliRunner().invoke(main, ["grid", "--tasks", "cmv", "--models", "sim/bayesian", "--dry-run",
                                    "--model-role", "grader"])
    assert bad.exit_code == 2 and "is not name=value" in bad.output


def test_a_judge_without_its_role_is_refused_before_anything_runs() -> None:
    result = CliRunner().invoke(main, ["grid", "--tasks", "cmv", "--models", "openai/gpt-4o-mini", "--dry-run",
                                       "-T", "extractors=self_report,step_judge"])
    assert result.exit_code == 1 and "needs a model for the role 'grader'" in result.output
    assert "Traceback" not in result.output


def _readme_dry_run() -> tuple[list[str], str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(r"```bash\n(martingale grid [^\n]*--dry-run[^\n]*)\n```\n\nprints\n\n```text\n(.*?)```",
                      text, re.S)
    assert found, "the README shows the paper's grid's dry run (command, then its output)"
    return found.group(1).split()[1:], found.group(2)


@pytest.mark.slow
def test_the_readmes_paper_grid_estimate_is_what_the_command_prints() -> None:
    args, shown = _readme_dry_run()
    assert "--tasks" in args and "forecast,cmv,openreview" in args
    result = subprocess.run([str(Path(sys.executable).parent / "martingale"), *args], capture_output=True,
                            text=True, cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout == shown
