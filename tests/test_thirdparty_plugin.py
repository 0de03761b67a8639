"""A third-party extractor package, installed during the test, works with no change to the harness.

The packages in tests/thirdparty are built and installed into a temporary directory (put on
PYTHONPATH for the subprocesses), so the test environment itself is left untouched.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
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
         str(THIRDPARTY / "martingale-broken-plugin"), str(THIRDPARTY / "martingale-raising-extractor")],
        check=True, capture_output=True, text=True, timeout=300,
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(target), env.get("PYTHONPATH")) if p)
    env.pop("MARTINGALE_DISABLE_PLUGINS", None)
    return env


def _metric_blocks(log_dir: Path) -> dict[str, dict[str, str]]:
    """Each extractor's metrics from the one log in ``log_dir``, as repr strings (NaN compares equal)."""
    log = read_eval_log(str(next(log_dir.glob("*.eval"))))
    assert log.status == "success", log.error
    assert log.results is not None
    return {b.name: {k: repr(m.value) for k, m in b.metrics.items()} for b in log.results.scores}


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


def test_a_raising_extractor_harms_only_its_own_readings(plugin_env: dict[str, str], tmp_path: Path) -> None:
    blocks = {}
    for extractors in ("self_report", "self_report,raising"):
        log_dir = tmp_path / extractors.replace(",", "-")
        out = _run([str(BIN / "inspect"), "eval", "martingale/forecast", "--model", "sim/entrenched",
                    "-M", "kappa=0.2", "-T", f"extractors={extractors}", "--limit", "20", "--log-dir", str(log_dir),
                    "--display", "none"], plugin_env)
        assert out.returncode == 0, out.stdout + out.stderr
        blocks[extractors] = _metric_blocks(log_dir)
    assert blocks["self_report,raising"]["self_report"] == blocks["self_report"]["self_report"]
    raising = blocks["self_report,raising"]["raising"]
    assert float(raising["extraction_failure_rate"]) == 1.0 and float(raising["n_pairs"]) == 0
    log = read_eval_log(str(next((tmp_path / "self_report-raising").glob("*.eval"))))
    score = log.samples[0].scores["raising"]  # type: ignore[index]
    assert "extractor 'raising' raised ZeroDivisionError: a bug in a third-party extractor" in score.explanation
    assert [step["kind"] for step in score.metadata["trajectory"]] == ["plugin_error", "plugin_error"]
    # warned once in the run, with the traceback, in the eval log
    warnings = [e.message.message for sample in log.samples or [] for e in sample.events
                if e.event == "logger" and "extractor 'raising' raised" in e.message.message]
    assert len(warnings) == 1 and "Traceback (most recent call last)" in warnings[0]


def test_new_plugin_template_installs_passes_its_test_and_runs_beside_self_report(tmp_path: Path) -> None:
    made = subprocess.run([str(BIN / "martingale"), "new-plugin", "verbal_odds", str(tmp_path / "src")],
                          capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    package = tmp_path / "src" / "martingale-verbal-odds"
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(package)], check=True, capture_output=True, text=True, timeout=300)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(target), os.environ.get("PYTHONPATH")) if p))
    env.pop("MARTINGALE_DISABLE_PLUGINS", None)
    tested = _run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(package / "tests")], env)
    assert tested.returncode == 0 and "3 passed" in tested.stdout, tested.stdout + tested.stderr

    # scripted answers in words and numbers: the template's last-number rule and self_report differ exactly
    # where an answer has a number that is not the belief
    from martingale.tasks import forecast

    ids = [s.id for s in forecast().dataset[:12]]
    lines = [{"id": sid, "turn": 0, "answer": f"Probability: {0.2 + 0.05 * i:.2f}"} for i, sid in enumerate(ids)]
    lines += [{"id": sid, "turn": 1, "answer": f"Probability: {0.3 + 0.04 * i:.2f}"} for i, sid in enumerate(ids)]
    lines[12] = {"id": ids[0], "turn": 1, "answer": "Probability: 0.35 (up from 2 weeks ago)"}
    script = tmp_path / "answers.jsonl"
    script.write_text("".join(json.dumps(line) + "\n" for line in lines))
    out = _run([str(BIN / "inspect"), "eval", "martingale/forecast", "--model", "sim/scripted", "-M",
                f"answers={script}", "-T", "extractors=self_report,verbal_odds", "--limit", "12",
                "--log-dir", str(tmp_path / "logs"), "--display", "none"], env)
    assert out.returncode == 0, out.stdout + out.stderr
    blocks = _metric_blocks(tmp_path / "logs")
    assert set(blocks) == {"self_report", "verbal_odds"}
    assert float(blocks["self_report"]["n_pairs"]) == 12
    assert float(blocks["self_report"]["extraction_failure_rate"]) == 0
    # the template's rule reads the last number, "2" (out of range) in the first sample's posterior
    assert float(blocks["verbal_odds"]["n_pairs"]) == 11
    assert float(blocks["verbal_odds"]["failures_out_of_range"]) == 1
    prior = np.array([0.2 + 0.05 * i for i in range(12)])
    posterior = np.array([0.35] + [0.3 + 0.04 * i for i in range(1, 12)])
    reference = np.polyfit(prior, posterior - prior, 1)[0]  # independent OLS of the scripted numbers
    assert float(blocks["self_report"]["ms_slope"]) == pytest.approx(reference, abs=1e-9)
    assert float(blocks["verbal_odds"]["ms_slope"]) == pytest.approx(
        np.polyfit(prior[1:], (posterior - prior)[1:], 1)[0], abs=1e-9)


def test_trace_prints_the_import_traceback_and_the_hook_calls(plugin_env: dict[str, str]) -> None:
    quiet = _run([str(BIN / "martingale"), "plugins"], plugin_env)
    assert "Traceback" not in quiet.stderr and "MARTINGALE_TRACE_PLUGINS=1" in quiet.stderr
    traced = _run([str(BIN / "martingale"), "plugins"], dict(plugin_env, MARTINGALE_TRACE_PLUGINS="1"))
    assert traced.returncode == 0
    assert "plugin 'broken' (martingale_broken_plugin) failed to load:\nTraceback" in traced.stderr
    assert 'martingale_broken_plugin.py", line' in traced.stderr
    assert "martingale plugins: last_number registered extractors: last_number" in traced.stderr


def test_log_level_debug_prints_the_import_traceback(plugin_env: dict[str, str], tmp_path: Path) -> None:
    # plugins load before inspect applies --log-level, so the host prints the traceback on first use
    out = _run([str(BIN / "inspect"), "eval", "martingale/forecast", "--model", "sim/bayesian", "--limit", "1",
                "--log-level", "debug", "--display", "none", "--log-dir", str(tmp_path)], plugin_env)
    assert out.returncode == 0, out.stderr
    assert "plugin 'broken' (martingale_broken_plugin) failed to load:\nTraceback" in out.stderr
