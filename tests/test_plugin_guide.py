"""docs/plugins.md: every code block runs, every hook and public field is documented, the wheel ships it."""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from martingale_harness import plugin_api
from martingale_harness.backends.scripted import ScriptedAnswers
from martingale_harness.plugin import hookspecs
from martingale_harness.project_files import resource_path

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "plugins.md"
BIN = Path(sys.executable).parent
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)


def _blocks(language: str) -> list[str]:
    return [body for lang, body in _FENCE.findall(GUIDE.read_text()) if lang == language]


def _documented() -> set[str]:
    names = re.findall(r"`([A-Za-z_][\w.]*)(?:\([^`]*\))?`", GUIDE.read_text())
    return set(names) | {n.rsplit(".", 1)[-1] for n in names}  # `BeliefReading.ok(...)` documents `ok`


def test_every_block_has_a_language_this_test_runs() -> None:
    languages = {lang for lang, _ in _FENCE.findall(GUIDE.read_text())}
    assert languages <= {"python", "bash", "toml", "jsonl"}, languages
    assert all(_blocks(lang) for lang in ("python", "bash", "toml", "jsonl"))


def test_every_api_name_hook_and_public_field_is_documented() -> None:
    documented = _documented()
    hooks = {name for name, f in inspect.getmembers(hookspecs, inspect.isfunction)
             if hasattr(f, f"{hookspecs.PROJECT}_spec")}
    assert hooks == set(plugin_api.HOOKS)
    fields = {f.name for cls in (plugin_api.Transcript, plugin_api.Turn, plugin_api.BeliefReading,
                                 plugin_api.RewardBatch) for f in dataclasses.fields(cls)}
    members = {"truncated", "is_ok", "ok", "failed", "to_dict",  # properties and constructors
               "name", "extract", "model_roles", "needs_yes_no_probe", "needs_structured_probe",  # protocol members
               "check", "values"}
    wanted = set(plugin_api.__all__) | hooks | fields | members
    assert not wanted - documented, f"undocumented in docs/plugins.md: {sorted(wanted - documented)}"
    for kind in plugin_api.FAILURE_KINDS:
        assert f"`{kind}`" in GUIDE.read_text()


def test_python_blocks_run_in_order() -> None:
    namespace: dict[str, object] = {"__name__": "plugin_guide"}
    for block in _blocks("python"):
        exec(compile(block, str(GUIDE), "exec"), namespace)  # each block's asserts are the checks
    assert {"VerbalProbability", "MovesTowardTruth", "AskTheGrader"} <= set(namespace)


def test_toml_block_declares_the_entry_point_group() -> None:
    (block,) = _blocks("toml")
    project = tomllib.loads(block)["project"]
    assert project["entry-points"]["martingale_harness"] == {"verbal": "martingale_verbal"}


def test_jsonl_block_is_a_valid_script(tmp_path: Path) -> None:
    (block,) = _blocks("jsonl")
    (tmp_path / "a.jsonl").write_text(block)
    script = ScriptedAnswers.load(tmp_path / "a.jsonl")
    assert script.answer("any", 1).text == "Now it looks likely."
    assert script.answer("no-such-sample", 1).stop_reason == "max_tokens"
    assert [json.loads(line)["answer"] for line in block.splitlines()][0] == "Unlikely, I'd say."


def test_bash_blocks_run_as_written(tmp_path: Path) -> None:
    # `pip install PKG` installs into a target directory on PYTHONPATH, leaving the test environment as it is
    site = tmp_path / "site"
    shim = (f'pip() {{ [ "$1" = install ] || return 1; shift; "{sys.executable}" -m pip install --quiet --no-deps '
            f'--no-build-isolation --target "{site}" "$@"; }}\n')
    script = "set -euo pipefail\n" + shim + "\n".join(_blocks("bash"))
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}", PYTHONPATH=str(site))
    env.pop("MARTINGALE_DISABLE_PLUGINS", None)
    env.pop("MARTINGALE_TRACE_PLUGINS", None)
    out = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "5 passed" in out.stdout
    assert re.search(r"^verbal_odds\s+extractor\s+verbal_odds\s+0\.1\.0\s+martingale-verbal-odds\s+loaded",
                     out.stdout, re.M)
    assert re.search(r"^calibrated\s+reward_term\s+calibrated", out.stdout, re.M)
    assert "verbal_odds registered extractors: verbal_odds" in out.stdout
    assert re.search(r"^self_report: MS = .*n = 4", out.stdout, re.M)
    assert re.search(r"^verbal_odds: MS = .*n = 4, failures = 0\.0000", out.stdout, re.M)


def test_the_guide_is_found_in_a_checkout_and_shipped_in_the_wheel(tmp_path: Path) -> None:
    assert resource_path("docs/plugins.md").read_text() == GUIDE.read_text()
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp_path), str(ROOT)], check=True, capture_output=True, timeout=300)
    (wheel,) = tmp_path.glob("martingale_harness-*.whl")
    with zipfile.ZipFile(wheel) as z:
        assert z.read("martingale_harness/_data/docs/plugins.md").decode() == GUIDE.read_text()


@pytest.mark.parametrize("path", ["README.md"])
def test_the_readme_links_the_guide(path: str) -> None:
    assert "docs/plugins.md" in (ROOT / path).read_text()
