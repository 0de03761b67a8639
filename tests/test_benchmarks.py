"""The benchmark scripts still run and measure something sane, at tiny sizes (their timings are not checked
here: the scripts print ratios measured in one run, and README reports them)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def _run(script: str, *args: str) -> str:
    result = subprocess.run([sys.executable, "-W", "ignore", str(BENCHMARKS / script), *args],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["openai-api", "sglang"])
def test_overhead_benchmark_measures_at_least_the_ideal_and_a_small_harness_share(backend: str) -> None:
    out = _run("overhead.py", "--backend", backend, "--n", "12", "--c", "4", "--latency", "0.1", "--floor-n", "8")
    ratios = dict(re.findall(r"^\s+(plain one-call task|martingale/forecast)\s+[\d.]+ s, ideal\s+[\d.]+ s, "
                             r"ratio ([\d.]+)", out, flags=re.M))
    assert set(ratios) == {"plain one-call task", "martingale/forecast"}, out
    # every sample waits latency x calls and at most C run at once, so no run can beat the ideal:
    # a ratio below 1 would mean the server's latency or the ideal's arithmetic is wrong
    assert all(float(r) >= 1.0 for r in ratios.values()), out
    floors = re.findall(r"([\d.]+) ms CPU per sample, floor ratio ([\d.]+)", out)
    assert len(floors) == 2 and all(float(ms) > 0 and float(f) >= 1.0 for ms, f in floors), out
    share = float(re.search(r"the harness's own code: ([\d.]+)%", out).group(1))  # type: ignore[union-attr]
    assert 0 < share < 50, out
    assert len(re.findall(r"^(PASS|FAIL): ", out, flags=re.M)) == 2


def test_stats_benchmark_times_the_same_fit_as_statsmodels() -> None:
    out = _run("stats.py", "--pairs", "20000", "--per-question", "5", "--repeats", "1")
    ols, point = (float(x) for x in re.findall(r"slope (-?[\d.]+)\)", out))
    assert ols == pytest.approx(point, abs=2e-6) and ols > 0, out  # the simulated reasoner entrenches
    assert len(re.findall(r"^(PASS|FAIL): ", out, flags=re.M)) == 2, out


@pytest.mark.slow
def test_repeatability_benchmark_runs_seeded_evaluations_and_null_comparisons(tmp_path: Path) -> None:
    import json

    common = ["--model", "sim/noisy", "-M", "noise=0.1", "--task", "forecast", "--limit", "16", "--epochs", "2"]
    out = _run("repeatability.py", *common, "--runs", "3", "--log-dir", str(tmp_path / "logs"),
               "--json", str(tmp_path / "r.json"))
    numbers = json.loads((tmp_path / "r.json").read_text())
    summary, runs = numbers["summary"], numbers["runs"]
    assert [r["seed"] for r in runs] == [1, 2, 3] and all(r["n_pairs"] == 32 for r in runs)  # 16 samples x 2 draws
    assert summary["samples"] == 16 and summary["null_pairs"] == 3
    slopes = [r["ms_slope"] for r in runs]
    assert len(set(slopes)) == 3  # different seeds draw differently
    assert summary["ms_sd_across_runs"] == pytest.approx(float(np.std(slopes, ddof=1)))
    assert f"of {summary['null_pairs']}" in out and "| run | seed |" in out
    # a seed repeats its run exactly
    again = _run("repeatability.py", *common, "--runs", "2", "--log-dir", str(tmp_path / "again"),
                 "--json", str(tmp_path / "a.json"))
    assert "| run | seed |" in again
    assert [r["ms_slope"] for r in json.loads((tmp_path / "a.json").read_text())["runs"]] == slopes[:2]


@pytest.mark.slow
def test_elicitation_benchmark_pools_the_cells_and_pairs_every_extractor(tmp_path: Path) -> None:
    import json

    from martingale_harness.extraction.corpus import shared_data_dir
    from martingale_harness.stats.martingale import martingale_score

    try:
        shared_data_dir()
    except FileNotFoundError:
        pytest.skip("the shared data folder is absent")
    out = _run("elicitation_effect.py", "--model", "sim/noisy", "-M", "noise=0.05", "--per-cell", "4",
               "--extractors", "self_report,structured,answer_line", "--log-dir", str(tmp_path / "logs"),
               "--json", str(tmp_path / "e.json"))
    numbers = json.loads((tmp_path / "e.json").read_text())
    assert numbers["samples"] == 24 and len(numbers["cells"]) == 6
    assert {(c["task"], c["paradigm"]) for c in numbers["cells"]} == {
        (t, p) for t in ("forecast", "cmv", "openreview") for p in ("direct", "cot")}
    assert numbers["readable"]["structured"] == {"read": 48, "turns": 48}  # the sim answers the schema natively
    assert [(p["a"], p["b"]) for p in numbers["pairs"]] == [
        ("self_report", "structured"), ("self_report", "answer_line"), ("structured", "answer_line")]
    # pooled MS, recomputed from the logs independently of the benchmark's pooling
    from martingale_harness.reporting.runs import read_run

    prior, posterior, questions = [], [], []
    for cell in numbers["cells"]:
        for s in read_run(cell["log"]).samples["self_report"]:
            prior.append(s.prior)
            posterior.append(s.posterior)
            questions.append(f"{cell['task']}/{s.question_id}")
    reference = martingale_score(prior, posterior, cluster=questions)
    assert numbers["ms"]["self_report"]["slope"] == pytest.approx(reference.slope)
    assert numbers["ms"]["self_report"]["ci"] == pytest.approx([reference.ci_low, reference.ci_high])
    assert "| self_report, structured |" in out
    # the sim answers the schema natively: every probe of every cell says it was constrained
    assert all(c["structured_modes"] == {"constrained": 8} for c in numbers["cells"]), numbers["cells"]
    assert "probe: constrained 8" in out
    # the finished logs alone give the same numbers (a stopped run's cells)
    _run("elicitation_effect.py", "--model", "sim/noisy", "--from-logs", "--extractors",
         "self_report,structured,answer_line", "--log-dir", str(tmp_path / "logs"), "--json", str(tmp_path / "f.json"))
    again = json.loads((tmp_path / "f.json").read_text())
    assert again["ms"] == numbers["ms"] and again["pairs"] == numbers["pairs"]


def test_elicitation_benchmark_runs_a_subset_of_the_cells(tmp_path: Path) -> None:
    import json

    from martingale_harness.extraction.corpus import shared_data_dir

    try:
        shared_data_dir()
    except FileNotFoundError:
        pytest.skip("the shared data folder is absent")
    _run("elicitation_effect.py", "--model", "sim/noisy", "--tasks", "forecast", "--per-cell", "3", "--seed", "2",
         "--sample-seed", "1", "--extractors", "self_report,structured", "--log-dir", str(tmp_path / "logs"),
         "--json", str(tmp_path / "e.json"))
    numbers = json.loads((tmp_path / "e.json").read_text())
    assert [(c["task"], c["paradigm"]) for c in numbers["cells"]] == [("forecast", "direct"), ("forecast", "cot")]
    assert numbers["samples"] == 6


@pytest.mark.slow
@pytest.mark.parametrize("model,undefined", [
    (["--model", "sim/inert"], "updates do not vary"),
    (["--model", "sim/scripted", "-M", "answers={script}"], "with every belief read"),
])
def test_repeatability_says_when_a_null_comparison_is_undefined(tmp_path: Path, model: list[str],
                                                                 undefined: str) -> None:
    import json

    script = tmp_path / "script.jsonl"
    script.write_text(json.dumps({"answer": "I would rather not say."}) + "\n")
    args = [a.format(script=script) for a in model]
    out = _run("repeatability.py", *args, "--task", "forecast", "--limit", "6", "--runs", "2",
               "--log-dir", str(tmp_path / "logs"), "--json", str(tmp_path / "r.json"))
    summary = json.loads((tmp_path / "r.json").read_text())["summary"]
    assert (summary["null_pairs"], summary["null_pairs_undefined"]) == (0, 1)
    assert "excludes 0" not in out and "undefined: " in out and undefined in out


@pytest.mark.slow
def test_sampling_throughput_benchmark_compares_three_ways_on_the_same_draws(tiny_model: Path,
                                                                             forecastbench_dir: Path) -> None:
    """On the tiny model: every variant samples the same completions (the ratios are the script's to print)."""
    out = _run("sampling_throughput.py", "--model", str(tiny_model), "--prompts", "3", "--k", "3",
               "--max-new-tokens", "6")
    rows = dict(re.findall(r"^(plain|separate|shared)\s+\d+\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+\d+\s+-?\d+\s+(\d+/\d+)$",
                           out, flags=re.M))
    assert rows == {"plain": "9/9", "separate": "9/9", "shared": "9/9"}, out
    assert re.search(r"shared prefill vs the previous sampling \(separate\): [\d.]+x", out), out
