"""The README's quickstart test command is the one CI runs: the same install steps, in the same order."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _quickstart_commands() -> list[str]:
    quickstart = ROOT.joinpath("README.md").read_text().split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.*?)\n```", quickstart, re.S)


def _normalised(step: str) -> list[str]:
    words = shlex.split(step)
    if words[:3] == ["python", "-m", "pip"]:
        words = words[2:]
    return [w for w in words if w != "--quiet"]


def test_the_quickstart_test_command_is_what_ci_runs() -> None:
    main_job, tests = _quickstart_commands()
    assert main_job.startswith("pip install . && inspect eval martingale/forecast --model sim/bayesian")
    readme_steps = [_normalised(s) for s in tests.split("&&")]
    ci = [line.strip() for line in ROOT.joinpath(".ci", "run").read_text().splitlines()]
    ci_steps = [_normalised(line) for line in ci
                if line.startswith("python -m pip install") and "--upgrade pip" not in line]
    assert readme_steps[:-1] == ci_steps
    assert readme_steps[-1] == ["pytest"] and ci[-1] == "pytest"
