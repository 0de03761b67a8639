"""Harness overhead against a backend with a fixed latency: how close to ideal does an eval run?

A local test server in its own process (so it does not share the eval's GIL) answers every request
after a fixed latency. Through a real model provider we run

* ``martingale/forecast`` (direct paradigm: two sequential calls per sample) on N synthetic
  ForecastBench questions, and
* a plain inspect task with one ``generate()`` per sample on the same questions,

both at ``max_connections`` = ``max_samples`` = C, and print wall time over the ideal
``ceil(N / C) * calls_per_sample * latency``. Target: the martingale task within 15 % of ideal and
no worse than the plain task's ratio. ``--backend openai-api`` (default) goes through inspect's own
``openai-api`` provider to ``tests/fakes/openai_server.py``; ``--backend sglang`` through
this package's ``sglang/<model>+<adapter>`` provider (LoRA canary included, in the startup) to
``tests/fakes/sglang_server.py``.

    python benchmarks/overhead.py [--backend openai-api|sglang] [--n 1000] [--c 50] [--latency 0.5]
                                  [--no-log-realtime]

The same run then says where the time goes:

* **startup**: wall time before the first sample starts (task and dataset loading, model and log
  initialisation, the canary), from the eval log's sample timestamps; the ratio is also printed
  without it;
* **CPU floor**: both tasks run again in-process against inspect's ``mockllm`` (zero latency, no
  network, usage given so nothing is downloaded), measuring CPU seconds per sample. inspect runs all
  samples in one Python event loop, so an eval cannot finish faster than N x that, whatever the
  latency: ``floor ratio`` is that time over the ideal, a lower bound on the ratio the HTTP run can
  reach (the HTTP client's CPU comes on top);
* **the harness's own share**: the martingale floor run once more under ``cProfile``, and the part
  of its CPU spent in this project's code (protocol, extraction, scoring, metrics), the rest being
  inspect, its dependencies and the standard library.

At the defaults the required rate is 100 model calls a second, and inspect spends roughly 10 ms of
CPU per call (transcript events, the realtime sample buffer, sample condensing, pydantic copies),
so on one event loop the floor is already near or above 1.15. ``--no-log-realtime`` (inspect's
``log_realtime``) drops the realtime buffer and shows how much of the gap that is.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import math
import os
import pstats
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import martingale_plugins
from inspect_ai import Task
from inspect_ai import eval as inspect_eval
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.log import EvalLog, read_eval_log
from inspect_ai.model import Model, ModelOutput, ModelUsage, get_model
from inspect_ai.solver import generate

import martingale
import martingale_harness

HARNESS = "martingale/forecast"
PLAIN = "plain one-call task"
BACKENDS = {"openai-api": "openai-api/local/test-model", "sglang": "sglang/test-base+lora"}
OWN_CODE = tuple(str(Path(package.__file__).parent) for package in (martingale, martingale_harness, martingale_plugins))


@dataclass(frozen=True)
class Timing:
    wall_s: float
    cpu_s: float
    startup_s: float


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
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "bench-llm.json"
    path.write_text(json.dumps({"forecast_due_date": "2025-01-01", "question_set": path.name, "questions": questions}))
    return path


def _plain_task(n: int) -> Task:
    return Task(dataset=MemoryDataset([Sample(input=f"Will benchmark event number {i} happen by 2030?")
                                       for i in range(n)]), solver=generate())


def _mock_model(calls: int) -> Model:
    """inspect's mockllm with ``calls`` answers that state a probability (usage set: no tokenizer download)."""
    outputs = []
    for i in range(calls):
        prob = 0.1 + 0.8 * (i % 89) / 89
        output = ModelOutput.from_content("mockllm/model", f"I settle on an estimate.\nProbability: {prob:.2f}")
        output.usage = ModelUsage(input_tokens=40, output_tokens=12, total_tokens=52)
        outputs.append(output)
    return get_model("mockllm/model", custom_outputs=outputs)


def _startup_s(log: EvalLog, start: float) -> float:
    """Seconds from the eval call to its first sample's start, read back from the log."""
    samples = read_eval_log(log.location).samples or []
    first = min((s.started_at for s in samples if s.started_at), default=None)
    if first is None:
        return float("nan")
    stamp = datetime.fromisoformat(first) if isinstance(first, str) else first
    return stamp.timestamp() - start


def _timed(task: Task | str, model: str | Model, c: int, log_dir: str, realtime: bool, **kwargs: object) -> Timing:
    start, wall0, cpu0 = time.time(), time.perf_counter(), time.process_time()
    log = inspect_eval(task, model=model, max_connections=c, max_samples=c, display="none", log_dir=log_dir,
                       log_realtime=realtime, **kwargs)[0]
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    if log.status != "success":
        raise SystemExit(f"eval failed: {log.error}")
    return Timing(wall, cpu, _startup_s(log, start))


def _own_share(profile: cProfile.Profile) -> float:
    """Fraction of the profiled CPU spent in functions defined in this project's packages."""
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    total = sum(row[2] for row in stats.values())
    own = sum(row[2] for (path, _, _), row in stats.items() if path.startswith(OWN_CODE))
    return own / total


def _serve(backend: str, latency: float) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """Start the backend's test server in its own process; return it and the environment that points at it."""
    module, extra = {"openai-api": ("fakes.openai_server", []),
                     "sglang": ("fakes.sglang_server", ["--adapter", "lora=/srv/lora"])}[backend]
    command = [sys.executable, "-m", module, "--latency", str(latency), *extra]
    # the stand-in servers live in the source tree's tests/fakes/, not in the wheel
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "tests")}
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    assert server.stdout is not None
    match = re.search(r"http://\S+", server.stdout.readline())  # printed once it listens
    if match is None:
        server.terminate()
        raise SystemExit(f"{module} did not start")
    url = match.group(0)
    if backend == "openai-api":
        return server, {"LOCAL_BASE_URL": url, "LOCAL_API_KEY": "benchmark"}
    return server, {"SGLANG_BASE_URL": f"{url}/v1"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=sorted(BACKENDS), default="openai-api")
    parser.add_argument("--n", type=int, default=1000, help="samples")
    parser.add_argument("--c", type=int, default=50, help="max_connections (= max_samples)")
    parser.add_argument("--latency", type=float, default=0.5, help="server latency per request, seconds")
    parser.add_argument("--floor-n", type=int, default=200, help="samples in each in-process CPU-floor run")
    parser.add_argument("--no-log-realtime", dest="realtime", action="store_false",
                        help="run every eval with inspect's log_realtime=False")
    args = parser.parse_args()
    if args.n < 1 or args.c < 1 or args.latency <= 0 or args.floor_n < 1:
        parser.error("--n, --c and --floor-n must be positive and --latency above 0")
    model, m = BACKENDS[args.backend], args.floor_n

    server, env = _serve(args.backend, args.latency)
    os.environ.update(env)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            data = {"data": str(_question_set(args.n, Path(tmp) / "http"))}
            http = {PLAIN: _timed(_plain_task(args.n), model, args.c, tmp, args.realtime),
                    HARNESS: _timed(HARNESS, model, args.c, tmp, args.realtime, task_args=data)}
        finally:
            server.terminate()
            server.wait(timeout=10)
        floor_data = {"data": str(_question_set(m, Path(tmp) / "floor"))}
        floor = {PLAIN: _timed(_plain_task(m), _mock_model(m), args.c, tmp, args.realtime),
                 HARNESS: _timed(HARNESS, _mock_model(2 * m), args.c, tmp, args.realtime, task_args=floor_data)}
        with cProfile.Profile() as profile:
            _timed(HARNESS, _mock_model(2 * m), args.c, tmp, args.realtime, task_args=floor_data)

    calls = {PLAIN: 1, HARNESS: 2}
    ideal = {name: math.ceil(args.n / args.c) * calls[name] * args.latency for name in calls}
    ratio = {name: http[name].wall_s / ideal[name] for name in calls}
    print(f"{model}: N = {args.n} samples, C = {args.c} connections, latency {args.latency:.3f} s per request, "
          f"log_realtime={args.realtime}")
    print("\nagainst the local server:")
    for name, t in http.items():
        print(f"  {name:20s} {t.wall_s:6.2f} s, ideal {ideal[name]:5.1f} s, ratio {ratio[name]:.3f}; startup "
              f"{t.startup_s:4.2f} s, ratio after it {(t.wall_s - t.startup_s) / ideal[name]:.3f}; "
              f"eval CPU {t.cpu_s:4.1f} s")
    print(f"\nCPU floor (in-process, mockllm, zero latency, {m} samples):")
    for name, t in floor.items():
        per_sample = t.cpu_s / m
        print(f"  {name:20s} {1000 * per_sample:5.1f} ms CPU per sample, floor ratio "
              f"{max(1.0, per_sample * args.n / ideal[name]):.3f}")
    print(f"  the harness's own code: {_own_share(profile):.1%} of {HARNESS}'s profiled CPU")

    print(f"\n{'PASS' if ratio[HARNESS] <= 1.15 else 'FAIL'}: {HARNESS} within 15 % of ideal ({ratio[HARNESS]:.3f})")
    print(f"{'PASS' if ratio[HARNESS] <= ratio[PLAIN] else 'FAIL'}: no worse than the plain task's ratio "
          f"({ratio[HARNESS]:.3f} vs {ratio[PLAIN]:.3f})")


if __name__ == "__main__":
    main()
