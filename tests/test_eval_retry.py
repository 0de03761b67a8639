"""An interrupted `martingale/forecast` run resumes with `inspect eval-retry` and loses nothing.

Tested against a local server that speaks the OpenAI chat-completions protocol
(`tests/fakes/openai_server.py`); the real path is inspect's own openai provider. The
`inspect eval` CLI runs as a subprocess and is stopped part way through; `inspect eval-retry` must
then request only the samples the interrupted log does not hold, and finish all of them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from fakes.openai_server import LocalOpenAIServer, text_of
from inspect_ai.log import EvalLog, read_eval_log

LIMIT = 40
INSPECT = [sys.executable, "-m", "inspect_ai"]


def _env(server: LocalOpenAIServer) -> dict[str, str]:
    return {**os.environ, "LOCAL_BASE_URL": server.base_url, "LOCAL_API_KEY": "test"}


def _only_log(log_dir: Path) -> Path:
    logs = sorted(log_dir.glob("*.eval"))
    assert len(logs) == 1, logs
    return logs[0]


def _requested_samples(log: EvalLog, records: list) -> set[str | int]:
    """Ids of the log's samples whose question appears in any of these server requests."""
    texts = [text_of(r.messages) for r in records]
    return {s.id for s in log.samples or [] if any(str(s.input) in t for t in texts)}


@pytest.mark.slow
def test_killed_run_resumes_without_rerequesting_finished_samples(tmp_path: Path) -> None:
    with LocalOpenAIServer(latency=0.2) as server:
        env = _env(server)
        run = subprocess.Popen(
            [
                *INSPECT,
                *f"eval martingale/forecast --model openai-api/local/test-model --limit {LIMIT}".split(),
                *"--max-connections 4 --display none --log-dir".split(),
                str(tmp_path),
                # 4 samples at a time so about half are finished at the stop (not 40 priors in flight);
                # each finished sample is written at once, so a hard kill keeps it
                *"--max-samples 4 --log-buffer 1".split(),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            # two requests per sample: 20 completions is about half the run
            assert server.wait_for(lambda s: s.completions >= 20, timeout=60), run.poll()
            # a hard crash: inspect gets no chance to tidy up (it has no SIGTERM handler either)
            run.send_signal(signal.SIGKILL)
            out, _ = run.communicate(timeout=30)
        finally:
            if run.poll() is None:
                run.kill()
        before = server.request_log()
        assert server.completions < 2 * LIMIT, "the run finished before it was stopped"

        interrupted_path = _only_log(tmp_path)
        interrupted = read_eval_log(interrupted_path)
        assert interrupted.status == "started", out.decode()[-2000:]
        finished = {s.id for s in interrupted.samples or [] if s.error is None and s.scores}
        assert 0 < len(finished) < LIMIT

        retry = subprocess.run(
            [*INSPECT, "eval-retry", str(interrupted_path), "--log-dir", str(tmp_path), "--display", "none"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert retry.returncode == 0, retry.stdout[-2000:] + retry.stderr[-2000:]
        after = server.request_log()[len(before) :]

    retried = read_eval_log(next(p for p in tmp_path.glob("*.eval") if p != interrupted_path))
    assert retried.status == "success", retried.error
    ids = [s.id for s in retried.samples or []]
    assert len(ids) == LIMIT and len(set(ids)) == LIMIT
    assert all(s.error is None and s.scores for s in retried.samples or [])
    assert {s.id for s in interrupted.samples or []} <= set(ids)  # no sample lost

    # the retry asked only for what the interrupted log lacks, and for all of it
    requested_after = _requested_samples(retried, after)
    assert requested_after.isdisjoint(finished)
    assert requested_after == set(ids) - finished
    # every missing sample was asked once per turn; the ones asked before the stop were in flight
    # (at most the 4 running, plus any finished but not yet written when the process died)
    assert len(after) == 2 * (LIMIT - len(finished))
    assert len(_requested_samples(retried, before) - finished) <= 2 * 4
