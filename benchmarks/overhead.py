"""Harness overhead against a backend with a fixed latency: how close to ideal does an eval run?

A local OpenAI-compatible server (``martingale_harness.testing.openai_server``, in its own process
so it does not share the GIL with the eval) answers every request after a fixed latency. Through
inspect's real ``openai-api`` provider we run

* ``martingale/forecast`` (direct paradigm: two sequential calls per sample) on N synthetic
  ForecastBench questions, and
* a plain inspect task with one ``generate()`` per sample on the same questions,

both at ``max_connections`` = ``max_samples`` = C, and print wall time over the ideal
``ceil(N / C) * calls_per_sample * latency``. Target: the martingale task within 15 % of ideal and
no worse than the plain task's ratio.

    python benchmarks/overhead.py [--n 1000] [--c 50] [--latency 0.5] [--no-log-realtime]

What limits it is CPU in the eval's single event loop, not the harness's protocol or scoring: a
profile of ``martingale/forecast`` with the in-process ``sim`` model puts most of the time in
inspect's per-event work (transcript events, the realtime sample buffer, pydantic copies), which
a plain one-call task pays per call as well. ``--no-log-realtime`` (inspect's ``log_realtime``)
drops the realtime buffer and shows how much of the gap that is.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from inspect_ai import Task
from inspect_ai import eval as inspect_eval
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.solver import generate

MODEL = "openai-api/local/test-model"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _question_set(n: int, folder: Path) -> Path:
    """N market questions in the ForecastBench format (no resolution file: unlabelled)."""
    questions = [
        {"id": f"q{i}", "source": "manifold", "question": f"Will benchmark event number {i} happen by 2030?",
         "resolution_criteria": "Resolves Yes if it happens.", "background": f"Background for event {i}.",
         "freeze_datetime": "2025-01-01T00:00:00", "freeze_datetime_value": str(round(0.1 + 0.8 * (i % 97) / 97, 3)),
         "freeze_datetime_value_explanation": "The market price", "source_intro": "A prediction market question.",
         "resolution_dates": "N/A", "url": ""}
        for i in range(n)
    ]
    path = folder / "bench-llm.json"
    path.write_text(json.dumps({"forecast_due_date": "2025-01-01", "question_set": path.name, "questions": questions}))
    return path


def _timed(task: object, c: int, log_dir: str, realtime: bool, **kwargs: object) -> float:
    start = time.perf_counter()
    log = inspect_eval(task, model=MODEL, max_connections=c, max_samples=c, display="none", log_dir=log_dir,
                       log_realtime=realtime, **kwargs)[0]
    elapsed = time.perf_counter() - start
    if log.status != "success":
        raise SystemExit(f"eval failed: {log.error}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="samples")
    parser.add_argument("--c", type=int, default=50, help="max_connections (= max_samples)")
    parser.add_argument("--latency", type=float, default=0.5, help="server latency per request, seconds")
    parser.add_argument("--no-log-realtime", dest="realtime", action="store_false",
                        help="run both evals with inspect's log_realtime=False")
    args = parser.parse_args()

    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "martingale_harness.testing.openai_server", "--port", str(port),
                               "--latency", str(args.latency)], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        server.stdout.readline()  # "serving ..." once it listens
        os.environ["LOCAL_BASE_URL"] = f"http://127.0.0.1:{port}/v1"
        os.environ["LOCAL_API_KEY"] = "benchmark"
        with tempfile.TemporaryDirectory() as tmp:
            data = _question_set(args.n, Path(tmp))
            rounds = math.ceil(args.n / args.c)
            plain = Task(dataset=MemoryDataset([Sample(input=f"Will benchmark event number {i} happen by 2030?")
                                                for i in range(args.n)]), solver=generate())
            plain_s = _timed(plain, args.c, tmp, args.realtime)
            harness_s = _timed("martingale/forecast", args.c, tmp, args.realtime, task_args={"data": str(data)})
    finally:
        server.terminate()
        server.wait(timeout=10)

    plain_ideal, harness_ideal = rounds * args.latency, rounds * 2 * args.latency
    plain_ratio, harness_ratio = plain_s / plain_ideal, harness_s / harness_ideal
    print(f"N = {args.n} samples, C = {args.c} connections, latency {args.latency:.3f} s per request, "
          f"log_realtime={args.realtime}")
    print(f"plain one-call task:  {plain_s:7.2f} s, ideal {plain_ideal:6.2f} s, ratio {plain_ratio:.3f}")
    print(f"martingale/forecast:  {harness_s:7.2f} s, ideal {harness_ideal:6.2f} s, ratio {harness_ratio:.3f}")
    print(f"{'PASS' if harness_ratio <= 1.15 else 'FAIL'}: martingale/forecast within 15 % of ideal")
    print(f"{'PASS' if harness_ratio <= plain_ratio else 'FAIL'}: no worse than the plain task's ratio "
          f"({harness_ratio:.3f} vs {plain_ratio:.3f})")


if __name__ == "__main__":
    main()
