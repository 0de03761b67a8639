"""Every command that reads eval logs refuses a file that is not one in one line (exit 2, no traceback), and
``report`` without matplotlib still prints its table and says how to get or skip the plots."""

from __future__ import annotations

import builtins
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from inspect_ai import eval as inspect_eval

from martingale_harness.cli import main


@pytest.fixture(scope="module")
def good_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    log = inspect_eval("martingale/forecast", model="sim/bayesian", limit=6, display="none", log_realtime=False,
                       log_dir=str(tmp_path_factory.mktemp("logs")))[0]
    assert log.status == "success", log.error
    return Path(log.location)


@pytest.fixture(scope="module")
def not_logs(good_log: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("not-logs")
    png = folder / "figure.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    truncated = folder / "cut-short.eval"
    data = good_log.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    return {"png": png, "truncated": truncated}


def _commands(path: Path, out: Path) -> dict[str, list[str]]:
    return {"summary": ["summary", str(path)],
            "report": ["report", str(path), "--output-dir", str(out), "--no-plots"],
            "compare": ["compare", str(path), str(path)],
            "cost": ["cost", str(path)],
            "agreement": ["agreement", str(path)],
            "rescore": ["rescore", str(path), "--extractors", "self_report"]}


@pytest.mark.parametrize("kind", ["png", "truncated"])
@pytest.mark.parametrize("command", ["summary", "report", "compare", "cost", "agreement", "rescore"])
def test_a_file_that_is_not_a_log_is_one_line_and_exit_2(not_logs: dict[str, Path], tmp_path: Path, kind: str,
                                                         command: str) -> None:
    path = not_logs[kind]
    result = CliRunner().invoke(main, _commands(path, tmp_path / "out")[command])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith(f"Error: {path}: not a readable inspect eval log"), lines
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)  # click's own exit, not an escaped exception


def test_report_without_matplotlib_prints_the_table_then_says_how(good_log: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_matplotlib(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    result = CliRunner().invoke(main, ["report", str(good_log), "--output-dir", str(tmp_path)])
    assert result.exit_code == 1, result.output
    assert "martingale/forecast" in result.output and "ms_slope" in result.output  # the table came first
    assert "wrote " in result.output and list(tmp_path.glob("results_*.json"))
    last = result.output.strip().splitlines()[-1]
    assert "pip install 'martingale-harness[plots]'" in last and "--no-plots" in last
    assert not list(tmp_path.glob("*.png"))
    monkeypatch.setattr(builtins, "__import__", real_import)
    assert CliRunner().invoke(main, ["report", str(good_log), "--output-dir", str(tmp_path / "b"),
                                     "--no-plots"]).exit_code == 0
