"""Fault tolerance of a `martingale/forecast` run on inspect's real `openai-api` provider.

Tested against a local server that speaks the OpenAI chat-completions protocol
(`tests/fakes/openai_server.py`); the real path is inspect's own openai provider
(`openai-api/local/test-model`, configured by `LOCAL_BASE_URL` / `LOCAL_API_KEY`). The server
injects every fault kind on a deterministic schedule; the test checks that transient faults are
retried and recovered, that unrecoverable ones become sample errors naming their cause, that an
empty completion is a recorded extraction failure, and that no sample goes missing.

Retry knobs: inspect owns the retries (`max_retries=2`, `attempt_timeout=3` in GenerateConfig; the
OpenAI SDK's own retries are off via `model_args={"max_retries": 0}`, so every attempt the server
sees is one inspect made). Inspect's backoff (exponential from 3 s) has no config knob and it
ignores `Retry-After` (`RetryDecision.retry_after` is unused in inspect 0.3.285), so the test patches
the provider's `retry_wait()` hook: `Retry-After` when the server sent one, else 50 ms.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fakes.openai_server import FaultPlan, FaultRule, LocalOpenAIServer, answer_for, messages_key
from inspect_ai import eval as inspect_eval
from inspect_ai.log import EvalLog
from inspect_ai.model._openai import openai_classify_retry
from inspect_ai.model._providers.openai_compatible import OpenAICompatibleAPI
from tenacity import RetryCallState

LIMIT = 20
MAX_RETRIES = 2
RETRY_AFTER_S = 1.0
# generous: a tighter one also times out attempts the event loop was merely slow to read
ATTEMPT_TIMEOUT = 3

# Distinct requests are numbered per turn class: 20 first turns (priors), 20 follow-ups (posteriors).
# Faults that end a sample sit on follow-ups only, so every prior gets a follow-up and the counts
# below do not depend on which conversation happens to arrive when.
PLAN = FaultPlan(
    rules=(
        FaultRule("http_500", every=7, offset=1, turn="first"),  # first turns 1, 8, 15
        FaultRule("http_429", every=7, offset=2, turn="first"),  # 2, 9, 16
        FaultRule("timeout", every=7, offset=3, turn="first"),  # 3, 10, 17
        FaultRule("connection_reset", every=7, offset=4, turn="first"),  # 4, 11, 18
        FaultRule("empty_completion", every=7, offset=5, turn="first"),  # 5, 12, 19
        FaultRule("http_429", every=10, offset=1, turn="followup"),  # follow-ups 1, 11
        FaultRule("truncated_json", every=10, offset=3, turn="followup"),  # 3, 13: inspect does not retry it
        FaultRule("http_500", every=10, offset=6, attempts=None, turn="followup"),  # 6, 16: never succeed
        FaultRule("empty_completion", every=10, offset=9, turn="followup"),  # 9, 19
    ),
    retry_after_s=RETRY_AFTER_S,
    timeout_hold_s=5.0,  # > ATTEMPT_TIMEOUT
)
EXPECTED_FAULTS = {
    "http_500": 3 + 2 * (MAX_RETRIES + 1),
    "http_429": 3 + 2,
    "timeout": 3,
    "connection_reset": 3,
    "truncated_json": 2,
    "empty_completion": 3 + 2,
}
EXPECTED_RECOVERED = 3 * 4 + 2  # the retried first-turn faults and the follow-up 429s
EXPECTED_SAMPLE_ERRORS = 2 + 2  # truncated JSON and the persistent 500s
EXPECTED_COMPLETIONS = 2 * LIMIT - 5 - EXPECTED_SAMPLE_ERRORS  # every distinct request but the empties and errors

# how each fault shows up in the error of inspect's model event for the failed attempt
EVENT_ERROR_MARKERS = {
    "http_500": "Error code: 500",
    "http_429": "Error code: 429",
    "timeout": "AttemptTimeoutError",
    "connection_reset": "Connection error",
    "truncated_json": "JSONDecodeError",
}


def _fast_retry_wait(self: OpenAICompatibleAPI) -> Callable[[RetryCallState], float]:
    """Honour `Retry-After` (which inspect reads but does not wait for); otherwise retry at once."""

    def wait(state: RetryCallState) -> float:
        ex = state.outcome.exception() if state.outcome else None
        decision = openai_classify_retry(ex) if ex is not None else None
        return decision.retry_after if decision and decision.retry_after else 0.05

    return wait


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalOpenAIServer]:
    monkeypatch.setattr(OpenAICompatibleAPI, "retry_wait", _fast_retry_wait)
    with LocalOpenAIServer(plan=PLAN) as srv:
        monkeypatch.setenv("LOCAL_BASE_URL", srv.base_url)
        monkeypatch.setenv("LOCAL_API_KEY", "test")
        yield srv


def _run(log_dir: Path) -> EvalLog:
    logs = inspect_eval(
        "martingale/forecast",
        model="openai-api/local/test-model",
        model_args={"max_retries": 0},  # no SDK-level retries: inspect's loop is the one under test
        limit=LIMIT,
        max_retries=MAX_RETRIES,
        attempt_timeout=ATTEMPT_TIMEOUT,
        timeout=60,
        max_connections=10,
        fail_on_error=False,  # unrecoverable faults become sample errors, the run goes on
        display="none",
        log_realtime=False,
        log_dir=str(log_dir),
    )
    assert len(logs) == 1
    return logs[0]


@pytest.mark.slow
def test_faults_are_retried_recorded_or_reported(server: LocalOpenAIServer, tmp_path: Path) -> None:
    log = _run(tmp_path)
    assert log.status == "success", log.error
    samples = log.samples or []

    # no sample silently dropped
    assert len(samples) == LIMIT and len({s.id for s in samples}) == LIMIT

    # the server injected exactly the planned faults, and the retried ones recovered
    assert server.distinct_requests("first") == LIMIT and server.distinct_requests("followup") == LIMIT
    assert server.faults == EXPECTED_FAULTS
    assert len(server.recovered_keys()) == EXPECTED_RECOVERED
    assert server.completions == EXPECTED_COMPLETIONS
    assert server.requests == EXPECTED_COMPLETIONS + sum(EXPECTED_FAULTS.values())

    # inspect saw the same faults: one errored model event per failed attempt
    seen = Counter(
        kind
        for s in samples
        for e in s.events
        if e.event == "model" and e.error
        for kind, marker in EVENT_ERROR_MARKERS.items()
        if marker in e.error
    )
    assert seen == {k: v for k, v in EXPECTED_FAULTS.items() if k in EVENT_ERROR_MARKERS}

    # a retry after a 429 waited for Retry-After
    log_by_key: dict[str, list[float]] = {}
    for record in server.request_log():
        log_by_key.setdefault(record.key, []).append(record.time)
    for record in server.request_log():
        if record.outcome == "http_429":
            later = [t for t in log_by_key[record.key] if t > record.time]
            assert later and min(later) - record.time >= RETRY_AFTER_S * 0.9

    # every sample is scored or is an error naming its cause (retries exhausted: tenacity's
    # RetryError wrapping the SDK's InternalServerError; a truncated body: the JSONDecodeError)
    errors = [s for s in samples if s.error is not None]
    assert len(errors) == EXPECTED_SAMPLE_ERRORS
    for s in errors:
        assert "InternalServerError" in s.error.message or "JSONDecodeError" in s.error.message, s.error.message

    # an empty completion is a recorded extraction failure, never a number; other answers are read exactly
    empty_answers = 0
    for s in samples:
        answers = [e.output.completion for e in s.events if e.event == "model" and not e.error]
        empty_answers += answers.count("")
        if s.error is not None:
            continue
        trajectory = s.scores["self_report"].metadata["trajectory"]
        assert [b["stage"] for b in trajectory] == ["prior", "posterior"]
        for answer, belief in zip(answers, trajectory, strict=True):
            if answer == "":
                assert belief["status"] == "failed" and belief["reason"] == "empty answer", belief
                assert belief["value"] is None
            else:
                assert belief["value"] == float(answer.rsplit("Probability:", 1)[1]), (answer, belief)
    assert empty_answers == EXPECTED_FAULTS["empty_completion"]


def test_server_sustains_many_concurrent_connections() -> None:
    """64 requests at once, each held 0.5 s, finish together: no connection waits for another."""
    body = json.dumps({"model": "test-model", "messages": [{"role": "user", "content": "q"}]}).encode()
    with LocalOpenAIServer(latency=0.5) as srv:

        def ask(i: int) -> str:
            request = urllib.request.Request(
                f"{srv.base_url}/chat/completions", data=body, headers={"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.load(response)["choices"][0]["message"]["content"]

        start = time.monotonic()
        with ThreadPoolExecutor(64) as pool:
            answers = list(pool.map(ask, range(64)))
        elapsed = time.monotonic() - start
        assert srv.completions == 64 and srv.distinct_requests() == 1
    _, prob = answer_for(messages_key([{"role": "user", "content": "q"}]))
    assert len(set(answers)) == 1 and answers[0].endswith(f"Probability: {prob}")
    assert elapsed < 3.0, elapsed


def test_server_cli_serves_models() -> None:
    """`PYTHONPATH=tests python -m fakes.openai_server` prints its URL and answers /v1/models."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "fakes.openai_server", "--port", "0", "--latency", "0.01"],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent)},
        text=True,
    )
    try:
        url = proc.stdout.readline().split()[4]
        with urllib.request.urlopen(f"{url}/models", timeout=10) as response:
            assert [m["id"] for m in json.load(response)["data"]] == ["test-model"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
