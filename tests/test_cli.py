"""The `martingale` command line."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from inspect_ai import eval as inspect_eval

from martingale_harness.cli import main


def _log(tmp_path: Path, limit: int) -> str:
    log = inspect_eval("martingale/forecast", model="sim/entrenched", model_args={"kappa": 0.3}, limit=limit,
                       display="none", log_realtime=False, log_dir=str(tmp_path))[0]
    assert log.location
    return log.location


def test_summary_prints_ms_per_extractor(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["summary", _log(tmp_path, 30)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("self_report: MS = ")
    assert "n = 30" in result.output and "nan" not in result.output.split("inertia")[0]


def test_summary_explains_an_undefined_score(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["summary", _log(tmp_path, 2)])
    assert result.exit_code == 0, result.output
    assert "MS undefined: need at least 3 pairs with both beliefs, have 2" in result.output


def test_tasks_lists_the_registry() -> None:
    result = CliRunner().invoke(main, ["tasks"])
    assert result.exit_code == 0 and "martingale/forecast" in result.output
