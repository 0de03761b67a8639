"""Runs are labelled by short names, and no output path grows with the model's name."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from inspect_ai import eval as inspect_eval

from martingale_harness.backends.local import LocalArgs
from martingale_harness.cli import main
from martingale_harness.reporting import figures as plots
from martingale_harness.reporting.display import MAX_DISPLAY, MAX_FILE_STEM, display_model_name, safe_file_stem
from martingale_harness.reporting.runs import read_run

LONG_DIR = "/" + "/".join(["a-rather-long-folder-name-for-models"] * 6)


@pytest.mark.parametrize("model,args,short", [
    (f"local/{LONG_DIR}/SmolLM2-135M-Instruct.Q4_1.gguf", {}, "local/SmolLM2-135M-Instruct.Q4_1"),
    (f"local/{LONG_DIR}/base.gguf+{LONG_DIR}/recipe/adapter/", {}, "local/base+adapter"),
    ("local/./models/smol", {}, "local/smol"),
    ("local/HuggingFaceTB/SmolLM2-135M-Instruct", {}, "local/HuggingFaceTB/SmolLM2-135M-Instruct"),
    (f"local/{LONG_DIR}/model.gguf", {"name": "smol-base"}, "smol-base"),
    ("sim/bayesian", {"kappa": 0.2}, "sim/bayesian"),
])
def test_display_names(model: str, args: dict[str, object], short: str) -> None:
    assert display_model_name(model, args) == short


def test_a_long_name_that_is_no_path_is_cut_in_the_middle() -> None:
    name = "openai/" + "x" * 40 + "-the-distinguishing-end"
    short = display_model_name(name)
    assert len(short) == MAX_DISPLAY and short.startswith("openai/") and short.endswith("distinguishing-end")


def test_file_stems_are_bounded_and_keep_long_names_apart() -> None:
    a, b = "task (" + "m" * 300 + "a)", "task (" + "m" * 300 + "b)"
    assert len(safe_file_stem(a)) <= MAX_FILE_STEM and safe_file_stem(a) != safe_file_stem(b)
    assert safe_file_stem("martingale/forecast (sim/bayesian)") == "martingale_forecast_sim_bayesian"


def test_backends_accept_a_display_name() -> None:
    LocalArgs.parse({"name": "smol"})  # no "unknown model args"
    from martingale_harness.backends.sglang import MODEL_ARGS

    assert "name" in MODEL_ARGS


def test_a_sim_run_is_labelled_by_its_alias(tmp_path: Path) -> None:
    (log,) = inspect_eval("martingale/forecast", model="sim/entrenched", model_args={"kappa": 0.2, "name": "kappa-0.2"},
                          limit=4, display="none", log_dir=str(tmp_path))
    run = read_run(log.location)
    assert run.display_model == "kappa-0.2" and plots.run_labels([run]) == ["martingale/forecast (kappa-0.2)"]


@pytest.mark.slow
def test_a_200_character_model_path_through_eval_rescore_and_report(tiny_model: Path, tmp_path: Path) -> None:
    """Found with ``local/<absolute .gguf path>``: report on a log and its rescored copy failed with
    ``OSError: [Errno 36] File name too long``; titles wrapped to four lines; the task column was 133 wide."""
    deep = tmp_path.joinpath(*["models-folder-with-a-long-name"] * 6, "tiny-model")
    deep.parent.mkdir(parents=True)
    os.symlink(tiny_model, deep)
    model = f"local/{deep}"
    assert len(model) >= 200
    (log,) = inspect_eval("martingale/forecast", model=model, model_args={"device": "cpu"}, limit=2, max_tokens=8,
                          temperature=0, task_args={"evidence_budget": 200}, display="none",
                          log_dir=str(tmp_path / "logs"))
    assert log.status == "success", log.error
    runner = CliRunner()
    rescored = tmp_path / "logs" / "rescored.eval"
    result = runner.invoke(main, ["rescore", log.location, "--extractors", "answer_line", "--output", str(rescored)])
    assert result.exit_code == 0, result.output
    out = tmp_path / "report"
    result = runner.invoke(main, ["report", log.location, str(rescored), "--output-dir", str(out)])
    assert result.exit_code == 0, result.output
    names = [p.name for p in out.iterdir()]
    assert len(names) >= 6 and max(len(n.encode()) for n in names) <= 255
    assert all(len(n) <= MAX_FILE_STEM + 60 for n in names)
    doc = json.loads(next(out.glob("results_*.json")).read_text())
    assert doc["config"]["model"] == model  # the full name is kept where it identifies the model
    keys = list(doc["results"])
    assert all("(local/tiny-model," in k and str(deep) not in k for k in keys), keys
    table = (out / next(n for n in names if n.startswith("results_") and n.endswith(".md"))).read_text()
    assert max(len(line) for line in table.splitlines()) < 200
    runs = [read_run(log.location), read_run(rescored)]
    for fig in (plots.update_vs_prior_figure(runs), plots.delta_distribution_figure(runs)):
        for ax in fig.axes:
            title = ax.get_title().splitlines()
            assert len(title) <= plots.TITLE_LABEL_LINES + 1 and max(map(len, title)) <= 60, title
            assert "tiny-model" in title[0]
