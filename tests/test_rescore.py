"""Re-extraction of existing logs: `martingale rescore` and `inspect score` with the harness scorers."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
from inspect_ai import eval as inspect_eval
from inspect_ai.event import ModelEvent
from inspect_ai.log import read_eval_log

from martingale_harness.errors import ConfigError
from martingale_harness.rescore import rescore


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory) -> Path:
    log_dir = tmp_path_factory.mktemp("logs")
    log = inspect_eval("martingale/forecast", model="sim/entrenched", model_args={"kappa": 0.3}, display="none",
                       log_realtime=False, log_dir=str(log_dir))[0]
    assert log.status == "success" and log.location
    return Path(log.location)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _blocks(path: Path) -> dict[str, dict[str, float]]:
    log = read_eval_log(str(path), header_only=True)
    assert log.results is not None
    return {b.name: {k: m.value for k, m in b.metrics.items()} for b in log.results.scores}


def test_rescore_adds_a_judge_without_touching_the_original(original: Path, tmp_path: Path) -> None:
    before = _digest(original)
    target = rescore(original, "step_judge", grader="sim/judge", output=tmp_path / "new.eval")
    assert _digest(original) == before
    blocks = _blocks(target)
    assert set(blocks) == {"self_report", "step_judge"}
    assert blocks["step_judge"]["ms_slope"] == pytest.approx(blocks["self_report"]["ms_slope"], abs=1e-3)
    samples = read_eval_log(str(target)).samples or []
    assert len(samples) == 64
    assert all(sum(isinstance(e, ModelEvent) and e.role == "grader" for e in s.events) == 1 for s in samples)


def test_replace_keeps_only_the_new_scores(original: Path, tmp_path: Path) -> None:
    target = rescore(original, "self_report", replace=True, output=tmp_path / "only.eval")
    assert set(_blocks(target)) == {"self_report"}
    assert _blocks(target)["self_report"] == pytest.approx(_blocks(original)["self_report"], nan_ok=True)


@pytest.mark.parametrize(
    "kwargs,message",
    [({"extractors": "step_judge"}, "add --grader <model>"),
     ({"extractors": "self_report"}, "already has scores for self_report"),
     ({"extractors": "nope"}, "unknown extractor 'nope'")],
)
def test_rescore_mistakes_are_clear(original: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        rescore(original, **kwargs)


def test_original_path_as_output_is_refused(original: Path) -> None:
    with pytest.raises(ConfigError, match="never modified"):
        rescore(original, "self_report", replace=True, output=original)


def test_inspect_score_finds_the_harness_scorer(original: Path, tmp_path: Path) -> None:
    inspect = Path(sys.executable).with_name("inspect")
    out = subprocess.run(
        [str(inspect), "score", str(original), "--scorer", "martingale_harness/step_judge", "--model-role",
         "grader=sim/judge", "--action", "append", "--output-file", str(tmp_path / "scored.eval"), "--display", "none"],
        capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert set(_blocks(tmp_path / "scored.eval")) == {"self_report", "step_judge"}


def test_second_rescore_reads_judge_calls_from_the_cache(
    original: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INSPECT_CACHE_DIR", str(tmp_path / "cache"))

    def grader_events(path: Path) -> list[ModelEvent]:
        samples = read_eval_log(str(path)).samples or []
        return [e for s in samples for e in s.events if isinstance(e, ModelEvent) and e.role == "grader"]

    first = grader_events(rescore(original, "step_judge,single_judge", grader="sim/judge", output=tmp_path / "1.eval"))
    second = grader_events(rescore(original, "step_judge,single_judge", grader="sim/judge", output=tmp_path / "2.eval"))
    assert len(first) == len(second) == 64 * 3  # one step_judge call + two single_judge calls per transcript
    assert {e.cache for e in first} == {"write"}
    assert {e.cache for e in second} == {"read"}
    assert [e.output.completion for e in first] == [e.output.completion for e in second]
