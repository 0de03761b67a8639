"""A third-party extractor package, installed during the test, works with no change to the harness.

The packages in tests/thirdparty are built and installed into a temporary directory (put on
PYTHONPATH for the subprocesses), so the test environment itself is left untouched.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from inspect_ai.log import read_eval_log

THIRDPARTY = Path(__file__).parent / "thirdparty"
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(THIRDPARTY / "martingale-last-number"),
         str(THIRDPARTY / "martingale-broken-plugin")],
        check=True, capture_output=True, text=True, timeout=300,
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(target), env.get("PYTHONPATH")) if p)
    env.pop("MARTINGALE_DISABLE_PLUGINS", None)
    return env


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=300, env=env)


def test_listed_by_martingale_plugins(plugin_env: dict[str, str]) -> None:
    out = _run([str(BIN / "martingale"), "plugins"], plugin_env)
    assert out.returncode == 0, out.stderr
    rows = {line.split()[0]: line.split() for line in out.stdout.splitlines()[1:]}
    assert rows["last_number"][:5] == ["last_number", "extractor", "last_number", "0.3.1", "martingale-last-number"]
    assert rows["self_report"][4] == "built-in"
    assert rows["broken"][5:] == ["failed:", "RuntimeError:", "this", "plugin", "is", "broken", "on", "purpose"]


def test_used_as_an_extractor_beside_the_builtin(plugin_env: dict[str, str], tmp_path: Path) -> None:
    out = _run([str(BIN / "inspect"), "eval", "martingale/forecast", "--model", "sim/entrenched", "-M", "kappa=0.2",
                "-T", "extractors=self_report,last_number", "--limit", "40", "--log-dir", str(tmp_path),
                "--display", "none"], plugin_env)
    assert out.returncode == 0, out.stdout + out.stderr
    log = read_eval_log(str(next(tmp_path.glob("*.eval"))))
    assert log.results is not None
    blocks = {b.name: {k: m.value for k, m in b.metrics.items()} for b in log.results.scores}
    assert set(blocks) == {"self_report", "last_number"}
    # both read the simulated agent's stated numbers, so they agree exactly
    assert blocks["last_number"]["ms_slope"] == pytest.approx(blocks["self_report"]["ms_slope"], abs=1e-12)
    assert blocks["last_number"]["n_pairs"] == 40


def test_blocked_by_environment_variable(plugin_env: dict[str, str], tmp_path: Path) -> None:
    env = dict(plugin_env, MARTINGALE_DISABLE_PLUGINS="last_number")
    listing = _run([str(BIN / "martingale"), "plugins"], env)
    assert "blocked" in next(line for line in listing.stdout.splitlines() if line.startswith("last_number"))
    out = _run([str(BIN / "inspect"), "eval", "martingale/forecast", "--model", "sim/bayesian",
                "-T", "extractors=last_number", "--limit", "2", "--log-dir", str(tmp_path)], env)
    assert out.returncode != 0
    text = " ".join((out.stdout + out.stderr).split())  # rich wraps long lines
    assert "plugin 'last_number' is blocked by MARTINGALE_DISABLE_PLUGINS" in text
