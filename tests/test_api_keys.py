"""A missing API key stops the run with a clear error before any sample runs; keys never reach output.

inspect's providers look their key up when the model is built, which ``inspect eval`` does before it
starts any sample, and raise a ``PrerequisiteError`` naming the environment variable; the harness adds
no check of its own. These tests pin that behaviour for every API provider the README names, for the
evaluated model and for the judge's ``grader`` role, and check that no request is made and no log is
written. Where a request could be made, the provider's base URL points at a local server that speaks
the OpenAI chat-completions protocol (`tests/fakes/openai_server.py`), so nothing ever
reaches a real API; a wrong (planted) key is refused there with HTTP 401 as a real API would.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import inspect_ai.model._model as inspect_model_module
import pytest
from fakes.openai_server import LocalOpenAIServer
from inspect_ai import eval as inspect_eval
from inspect_ai._util.error import PrerequisiteError

KEY = f"sk-test-PLANTED-{uuid.uuid4().hex}"
KEY_VARS = ("OPENAI_API_KEY", "AZUREAI_OPENAI_API_KEY", "AZURE_OPENAI_API_KEY", "ANTHROPIC_API_KEY",
            "AZUREAI_ANTHROPIC_API_KEY", "AZURE_ANTHROPIC_API_KEY", "DEEPSEEK_API_KEY", "DEEPSEEK_BASE_URL")
HAVE_ANTHROPIC = importlib.util.find_spec("anthropic") is not None


@pytest.fixture(autouse=True)
def fresh_model_memo(monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty memo of inspect's ``get_model`` for each test, restored afterwards.

    inspect memoizes models by name, arguments and config but not by the environment they were built
    from: a ``deepseek/deepseek-reasoner`` built by an earlier test (another key, another server's
    ``DEEPSEEK_BASE_URL``) would otherwise be reused here and call a server that is gone.
    """
    monkeypatch.setattr(inspect_model_module, "_models", {})


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalOpenAIServer]:
    """No provider key set; every base URL on a local server that counts what reaches it."""
    monkeypatch.chdir(tmp_path)  # inspect reads a .env file from the working directory upwards
    for name in KEY_VARS:
        monkeypatch.delenv(name, raising=False)
    with LocalOpenAIServer(api_key=f"sk-right-{uuid.uuid4().hex}") as srv:
        for name in ("OPENAI_BASE_URL", "ANTHROPIC_BASE_URL", "DEEPSEEK_BASE_URL"):
            monkeypatch.setenv(name, srv.base_url)
        yield srv


@pytest.mark.parametrize(
    "model,grader,env,needed",
    [
        ("openai/gpt-4o-mini", None, {}, "OPENAI_API_KEY"),
        ("deepseek/deepseek-reasoner", None, {}, "DEEPSEEK_API_KEY"),
        ("deepseek/deepseek-reasoner", None, {"DEEPSEEK_API_KEY": ""}, "DEEPSEEK_API_KEY"),  # set but empty
        ("openai-api/deepseek/deepseek-reasoner", None, {}, "DEEPSEEK_API_KEY"),
        ("openai-api/deepseek/deepseek-reasoner", None, {"DEEPSEEK_API_KEY": KEY, "DEEPSEEK_BASE_URL": None},
         "DEEPSEEK_BASE_URL"),  # the openai-api route has no default base URL
        ("anthropic/claude-sonnet-4-5", None, {},
         "ANTHROPIC_API_KEY" if HAVE_ANTHROPIC else "pip install anthropic"),
        ("sim/bayesian", "deepseek/deepseek-reasoner", {}, "DEEPSEEK_API_KEY"),  # the judge's key
        ("sim/bayesian", "openai/gpt-4o-mini", {}, "OPENAI_API_KEY"),
    ],
)
def test_missing_key_fails_before_any_sample(
    model: str, grader: str | None, env: dict[str, str | None], needed: str, server: LocalOpenAIServer,
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in env.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    logs = tmp_path / "logs"
    with pytest.raises(PrerequisiteError) as info:
        inspect_eval("martingale/forecast", model=model, model_roles={"grader": grader} if grader else None,
                     task_args={"extractors": "self_report,step_judge"} if grader else {}, limit=1,
                     display="none", log_dir=str(logs))
    message = str(info.value)
    assert needed in message and KEY not in message
    assert not logs.exists()  # no sample started, so no log was written
    assert server.requests == 0 and server.unauthorized == 0


def test_cli_names_the_missing_key_and_prints_no_other_key(server: LocalOpenAIServer, tmp_path: Path) -> None:
    # keys of other providers are set (planted): the message must name the missing one and show none of them
    env = {k: v for k, v in os.environ.items() if k not in KEY_VARS}
    env.update(OPENAI_API_KEY=KEY, ANTHROPIC_API_KEY=KEY, LOCAL_API_KEY=KEY, INSPECT_CACHE_DIR=str(tmp_path / "c"))
    logs = tmp_path / "logs"
    result = subprocess.run(
        [sys.executable, "-m", "inspect_ai", "eval", "martingale/forecast", "--model", "deepseek/deepseek-reasoner",
         "--limit", "1", "--display", "plain", "--log-dir", str(logs)],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Unable to initialise DeepSeek client" in output and "DEEPSEEK_API_KEY" in output
    assert "Traceback" not in output and KEY not in output
    assert not logs.exists() and server.requests == 0


def test_wrong_key_fails_at_the_first_call_and_is_not_logged(
    server: LocalOpenAIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEEPSEEK_API_KEY", KEY)  # not the server's key
    (log,) = inspect_eval("martingale/forecast", model="deepseek/deepseek-reasoner", limit=1, max_retries=1,
                          display="none", log_dir=str(tmp_path / "logs"))
    assert log.status == "error" and log.error is not None
    assert "401" in log.error.message and "Incorrect API key" in log.error.message
    assert server.unauthorized >= 1 and server.completions == 0
    assert KEY not in log.error.message and KEY not in log.error.traceback
    path = Path(log.location)
    with zipfile.ZipFile(path) as z:
        assert not any(KEY.encode() in z.read(name) for name in z.namelist())
