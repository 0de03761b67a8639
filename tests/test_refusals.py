"""Every refusal reaches the user under ``--display none`` (inspect's quiet display would drop it).

Each case runs the real ``inspect eval`` command in a subprocess with ``--display none`` and finds the
refusal's message on stderr. The SGLang cases run against the local server of
``tests/fakes/sglang_server.py`` (it speaks SGLang's documented HTTP API; no GPU server
can run here), the API-key case against the local OpenAI-compatible server.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from fakes.openai_server import LocalOpenAIServer
from fakes.sglang_server import LocalSGLangServer
from inspect_ai import eval as inspect_eval

from martingale_harness.backends.lora import CANARY_PROMPT

ADAPTERS = {"lora": "/srv/adapters/lora", "other": "/srv/adapters/other"}


def _inspect_eval(args: list[str], log_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("SGLANG_API_KEY", "SGLANG_BASE_URL")}
    return subprocess.run([sys.executable, "-m", "inspect_ai", "eval", "martingale/forecast", "--limit", "2",
                           "--display", "none", "--log-dir", str(log_dir), *args],
                          env={**environ, **env}, capture_output=True, text=True, timeout=180)


def _refused(run: subprocess.CompletedProcess[str], message: str) -> None:
    assert run.returncode == 1, run.stdout[-2000:] + run.stderr[-2000:]
    assert message in run.stderr, run.stderr[-2000:]
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["--model", "sim/bayesian", "-T", "paradigm=bogus"], "protocol.paradigm='bogus' is not allowed"),
    pytest.param(["--model", "sim/bayesian", "-T", "data=/no/such/set.json"], "/no/such/set.json",
                 marks=pytest.mark.slow),
    pytest.param(["--model", "sim/bayesian", "-T", "extractors=self_report,step_judge"],
                 "extractor 'step_judge' needs a model for the role 'grader'", marks=pytest.mark.slow),
])
def test_a_task_refusal_is_on_stderr(tmp_path: Path, args: list[str], message: str) -> None:
    run = _inspect_eval(args, tmp_path)
    _refused(run, message)
    assert not list(tmp_path.glob("*.eval"))  # refused before the run: inspect leaves no log


def test_a_misspelt_provider_is_one_line_with_the_provider_meant(tmp_path: Path) -> None:
    for display in ("none", "full"):
        run = _inspect_eval(["--model", "smi/bayesian", "--display", display], tmp_path)
        _refused(run, "martingale: no model provider 'smi' (in --model smi/bayesian); did you mean 'sim/bayesian'?")
        assert "ExceptionGroup" not in run.stderr + run.stdout


@pytest.mark.slow
def test_a_misspelt_task_names_the_task_meant_and_martingale_tasks(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "inspect_ai", "eval", "martingale/forcast", "--model", "sim/bayesian",
                          "--limit", "1", "--log-dir", str(tmp_path)], capture_output=True, text=True, timeout=180)
    assert run.returncode == 1 and "No inspect tasks were found" in run.stdout + run.stderr
    assert "martingale: no task martingale/forcast; did you mean martingale/forecast?" in run.stderr
    assert "`martingale tasks` lists them: martingale/bayes, martingale/cmv" in run.stderr


@pytest.mark.slow
@pytest.mark.parametrize(("mode", "model", "server_key", "key", "message"), [
    ("ignore_lora", "sglang/test-base+lora", None, None, "lora_canary=false"),
    ("normal", "sglang/test-base+nope", None, None, "its adapters: lora, other"),
    ("normal", "sglang/llama-3-8b+lora", None, None, "serves 'test-base', '/models/Test-Base-7B', not 'llama-3-8b'"),
    ("normal", "sglang/test-base+lora", "s3cret", None, "requires an API key: set SGLANG_API_KEY"),
    ("normal", "sglang/test-base+lora", "s3cret", "wrong", "rejected the API key"),
])
def test_a_backend_refusal_is_on_stderr(tmp_path: Path, mode: str, model: str, server_key: str | None,
                                        key: str | None, message: str) -> None:
    with LocalSGLangServer(adapters=ADAPTERS, mode=mode, api_key=server_key) as server:  # type: ignore[arg-type]
        env = {"SGLANG_BASE_URL": server.base_url, **({"SGLANG_API_KEY": key} if key else {})}
        run = _inspect_eval(["--model", model], tmp_path, **env)
        # no sample reached generation (the canary's own probes do)
        assert [r for r in server.requests() if CANARY_PROMPT not in r.prompt] == []
    _refused(run, message)
    if key:
        assert key not in run.stderr + run.stdout


@pytest.mark.slow
def test_a_key_rejected_during_the_run_is_on_stderr_and_in_the_log(tmp_path: Path) -> None:
    with LocalOpenAIServer(api_key="right-key") as server:
        run = _inspect_eval(["--model", "openai-api/local/m"], tmp_path, LOCAL_BASE_URL=server.base_url,
                            LOCAL_API_KEY="wrong-key")
    assert "failed (AuthenticationError: Error code: 401" in run.stderr, run.stderr[-2000:]
    assert run.stderr.count("AuthenticationError") == 1  # once, however many samples hit it
    assert "wrong-key" not in run.stderr + run.stdout
    assert len(list(tmp_path.glob("*.eval"))) == 1  # inspect's error log is left, as inspect leaves it


def test_from_python_a_refusal_raises_and_a_failed_sample_is_on_stderr(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(Exception, match="protocol.paradigm='bogus' is not allowed"):
        inspect_eval("martingale/forecast", model="sim/bayesian", task_args={"paradigm": "bogus"}, limit=1,
                     display="none", log_dir=str(tmp_path))
    # a -T name the task does not have is refused, not dropped with a warning (the run would use the default)
    for task in ("martingale/forecast", "martingale/cmv", "martingale/bayes"):
        with pytest.raises(Exception, match=r"-T paradigms: not an argument of this task; its arguments: .*paradigm"):
            inspect_eval(task, model="sim/bayesian", task_args={"paradigms": "cot"}, limit=1, display="none",
                         log_dir=str(tmp_path))
    assert not list(tmp_path.glob("*.eval"))
    monkeypatch.setenv("LOCAL_API_KEY", "wrong-key")
    with LocalOpenAIServer(api_key="right-key") as server:
        monkeypatch.setenv("LOCAL_BASE_URL", server.base_url)
        (log,) = inspect_eval("martingale/forecast", model="openai-api/local/m", limit=1, display="none",
                              log_dir=str(tmp_path))
    assert log.status == "error" and log.error is not None and "401" in log.error.message
    assert "failed (AuthenticationError: Error code: 401" in capfd.readouterr().err
