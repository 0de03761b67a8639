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
from martingale_harness.reporting.rescore import rescore


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


# --- grader settings, progress, resuming a stopped run, and loading only the grader (issue 32) ---

HELPER = Path(__file__).with_name("rescore_slow_grader.py")


def _grader_events(path: Path) -> list[ModelEvent]:
    samples = read_eval_log(str(path)).samples or []
    return [e for s in samples for e in s.events if isinstance(e, ModelEvent) and e.role == "grader"]


def test_grader_settings_in_the_flat_form_reach_the_grader(original: Path, tmp_path: Path) -> None:
    target = rescore(original, "step_judge", grader="{model: sim/judge, temperature: 0.3, max_tokens: 512}",
                     output=tmp_path / "settings.eval")
    events = _grader_events(target)
    assert len(events) == 64
    assert {(e.model, e.config.temperature, e.config.max_tokens) for e in events} == {("sim/judge", 0.3, 512)}


def test_grader_model_args_reach_the_grader(original: Path, tmp_path: Path) -> None:
    plain = rescore(original, "step_judge", grader="sim/judge", output=tmp_path / "plain.eval")
    noisy = rescore(original, "step_judge", grader={"model": "sim/judge", "model_args": {"noise": 0.2, "seed": 3}},
                    output=tmp_path / "noisy.eval")

    def priors(path: Path) -> list[float]:
        return [s.scores["step_judge"].value["prior"] for s in read_eval_log(str(path)).samples or []]  # type: ignore[index]

    assert priors(plain) != priors(noisy)
    assert {e.config.temperature for e in _grader_events(plain)} == {None}


@pytest.mark.parametrize(
    "grader,message",
    [("{model: sim/judge, config: {temperature: 0.3}}",
      'not under config: (inspect\'s flat form), e.g. --grader "{model: sim/judge, temperature: 0.3}"'),
     ("{model: sim/judge, temprature: 0.3}", "--grader: Unknown GenerateConfig field(s): temprature."),
     ("{model: sim/judge, max_tokens: lots}", "--grader: max_tokens: Input should be a valid integer"),
     ("{temperature: 0.3}", "the mapping needs model: <name>"),
     ("{model: sim/judge", "--grader: not a YAML mapping")],
)
def test_grader_mistakes_are_one_line_messages(original: Path, tmp_path: Path, grader: str, message: str) -> None:
    from click.testing import CliRunner

    from martingale_harness.cli import main

    result = CliRunner().invoke(main, ["rescore", str(original), "--extractors", "step_judge", "--grader", grader,
                                       "--output", str(tmp_path / "never.eval")])
    assert result.exit_code == 1, result.output
    assert result.stderr.strip().startswith("Error: ") and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert not list(tmp_path.iterdir())  # refused before anything was written


def test_parse_grader_takes_names_yaml_and_json() -> None:
    from martingale_harness.reporting.rescore import parse_grader

    assert parse_grader("openai-api/local/judge").model == "openai-api/local/judge"
    spec = parse_grader('{"model": "sim/judge", "temperature": 0.3, "model_args": {"noise": 0.1}}')
    assert (spec.model, spec.model_args, spec.config.temperature) == ("sim/judge", {"noise": 0.1}, 0.3)
    assert parse_grader("model: sim/judge\nmax_tokens: 64").config.max_tokens == 64


def test_a_grader_nothing_calls_is_refused(original: Path) -> None:
    with pytest.raises(ConfigError, match="none of the extractors .self_report. calls a grader"):
        rescore(original, "self_report", grader="sim/judge", replace=True)


def test_progress_goes_to_stderr_and_the_log_path_to_stdout(original: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from martingale_harness.cli import main

    target = tmp_path / "progress.eval"
    result = CliRunner().invoke(main, ["rescore", str(original), "--extractors", "step_judge", "--grader",
                                       "sim/judge", "--output", str(target)])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"wrote {target}\n"
    lines = result.stderr.splitlines()
    assert lines[0].startswith("rescore: 64 samples with step_judge (grader sim/judge)")
    counts = [int(line.split()[1].split("/")[0]) for line in lines[1:]]
    assert counts == [6, 12, 19, 25, 32, 38, 44, 51, 57, 64]  # every tenth (and every 30 s)
    assert all(line.endswith("s)") and "/64 samples (" in line for line in lines[1:])
    assert not (tmp_path / "progress.eval.partial.jsonl").exists()  # removed once the log is written


expensive_constructions: list[str] = []


def _register_expensive_provider() -> str:
    """A provider whose construction the test sees (a stand-in for ``local/<gguf>``, which loads weights)."""
    from inspect_ai.model import GenerateConfig, ModelAPI, modelapi

    @modelapi(name="martingale-test-expensive")
    class ExpensiveAPI(ModelAPI):
        def __init__(self, model_name: str, base_url: str | None = None, api_key: str | None = None,
                     config: GenerateConfig | None = None, **model_args: object) -> None:
            expensive_constructions.append(model_name)
            super().__init__(model_name, base_url, api_key, [], config or GenerateConfig())

        async def generate(self, *args: object, **kwargs: object) -> object:
            raise AssertionError("the evaluated model must never be called")

    return "martingale-test-expensive"


@pytest.mark.parametrize("kind", ["registered", "local"])
def test_rescore_constructs_only_the_grader(original: Path, tmp_path: Path, kind: str) -> None:
    from inspect_ai.log import write_eval_log
    from inspect_ai.model import ModelConfig

    log = read_eval_log(str(original))
    if kind == "registered":
        provider = _register_expensive_provider()
        log.eval.model, log.eval.model_args = f"{provider}/evaluated", {"weights": "70b"}
        log.eval.model_roles = {"grader": ModelConfig(model=f"{provider}/old-grader")}
    else:  # what the user ran: constructing it would load (here: fail to find) the weights
        log.eval.model, log.eval.model_args = f"local/{tmp_path / 'absent.gguf'}", {}
    source = tmp_path / "expensive.eval"
    write_eval_log(log, str(source))
    expensive_constructions.clear()
    target = rescore(source, "step_judge", grader="sim/judge", output=tmp_path / "judged.eval")
    assert expensive_constructions == []
    rescored = read_eval_log(str(target), header_only=True)
    assert (rescored.eval.model, rescored.eval.model_roles) == (log.eval.model, log.eval.model_roles)
    assert _blocks(target)["step_judge"] == pytest.approx(_blocks(original)["self_report"], abs=1e-3, nan_ok=True)


def _run_helper(args: list[str], env: dict[str, str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(HELPER), *args], capture_output=True, text=True, env=env,
                          timeout=300, **kwargs)  # type: ignore[call-overload]


def _same_metrics(a: Path, b: Path) -> bool:
    first, second = _blocks(a), _blocks(b)
    return list(first) == list(second) and all(first[n] == pytest.approx(second[n], nan_ok=True) for n in first)


def _sample_scores(path: Path) -> dict[tuple[object, int], str]:
    return {(s.id, s.epoch): repr(s.scores) for s in read_eval_log(str(path)).samples or []}


@pytest.mark.slow
def test_a_killed_rescore_resumes_and_ends_as_a_run_never_stopped(original: Path, tmp_path: Path) -> None:
    import os
    import signal
    import time

    env = {**os.environ, "MARTINGALE_JUDGE_CACHE": "off", "SLOW_JUDGE_DELAY": "0"}
    rescore_args = ["rescore", str(original), "--extractors", "step_judge", "--grader", "slowjudge/judge"]
    reference = tmp_path / "reference.eval"
    done = _run_helper([*rescore_args, "--output", str(reference)], env)
    assert done.returncode == 0, done.stderr

    target = tmp_path / "stopped.eval"
    partial = tmp_path / "stopped.eval.partial.jsonl"
    first = subprocess.Popen([sys.executable, str(HELPER), *rescore_args, "--output", str(target)],
                             env={**env, "SLOW_JUDGE_DELAY": "0.25"}, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and first.poll() is None and not (
            partial.exists() and partial.read_bytes().count(b"\n") > 10):
        time.sleep(0.02)
    ended = first.poll() is not None
    if not ended:
        os.killpg(first.pid, signal.SIGKILL)  # nothing gets to clean up
    first.wait(timeout=30)
    killed_at = time.time()
    assert not ended and partial.exists(), f"no rescored sample showed up in {partial} while the run went on"
    kept = partial.read_bytes().count(b"\n") - 1  # the first line holds the settings; a cut-short line has no \n
    assert 10 <= kept < 64, f"the kill came too late to test resuming: {kept} samples done"
    assert not target.exists()

    calls = tmp_path / "calls.txt"
    resumed = _run_helper([*rescore_args, "--output", str(target)], {**env, "SLOW_JUDGE_CALLS": str(calls)})
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming, {kept}/64 samples already rescored in {partial}" in resumed.stderr
    assert len(calls.read_text().splitlines()) == 64 - kept  # the kept samples were not graded again
    assert not partial.exists()

    # the final log is the log of a run that was never stopped
    assert _sample_scores(target) == _sample_scores(reference)
    assert _same_metrics(target, reference)
    assert [e.output.completion for e in _grader_events(target)] == [
        e.output.completion for e in _grader_events(reference)]
    kept_events = [e for e in _grader_events(target) if e.timestamp.timestamp() < killed_at]
    assert len(kept_events) == kept  # their grader calls are the stopped run's, carried over


@pytest.mark.parametrize(
    "change,differ",
    [({"grader": "{model: sim/judge, temperature: 0.3}"}, "grader differ"),
     ({"extractors": "step_judge,single_judge"}, "extractors differ"),
     ({"replace": True}, "replace differ")],
)
def test_resuming_with_other_settings_is_refused(
    original: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: dict[str, object], differ: str
) -> None:
    import martingale_harness.reporting.rescore as rescore_module
    from martingale_harness.reporting.rescore import partial_path

    def stopped(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt  # a ^C just before the final log is written

    target = tmp_path / "out.eval"
    monkeypatch.setattr(rescore_module, "write_eval_log", stopped)
    with pytest.raises(KeyboardInterrupt):
        rescore(original, "step_judge", grader="sim/judge", output=target)
    monkeypatch.undo()
    partial = partial_path(target)
    lines = partial.read_bytes().split(b"\n")
    assert len(lines) == 1 + 64 + 1 and lines[-1] == b""
    partial.write_bytes(b"\n".join(lines[:2]) + b"\n" + lines[2][:100])  # one sample kept, one line cut short

    kwargs = {"extractors": "step_judge", "grader": "sim/judge", **change}
    with pytest.raises(ConfigError, match=f"other settings .{differ}.; rerun with the same settings to resume, or "
                                          "delete it to start over"):
        rescore(original, output=target, **kwargs)  # type: ignore[arg-type]
    progress: list[str] = []
    assert rescore(original, "step_judge", grader="sim/judge", output=target, progress=progress.append) == target
    assert progress[0].startswith(f"rescore: resuming, 1/64 samples already rescored in {partial}")
    assert progress[-1].startswith("rescore: 64/64 samples")
    reference = rescore(original, "step_judge", grader="sim/judge", output=tmp_path / "reference.eval")
    assert _sample_scores(target) == _sample_scores(reference)
    assert _same_metrics(target, reference)
