"""Per-request seeds: distinct for every call, stable across processes, sent by the protocol."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import pytest
from inspect_ai import eval as inspect_eval

from martingale_harness.protocol.seeding import SEED_BITS, Call, call_seed


def test_every_call_of_a_run_gets_its_own_seed() -> None:
    calls = [Call(kind, turn, index) for kind in ("belief", "probe", "repeat", "argument", "clone", "structured")
             for turn in range(3) for index in range(3)]
    keys = list(itertools.product(["q1", "q2", 7], [1, 2, 3], calls))
    seeds = [call_seed(11, sample, epoch, call) for sample, epoch, call in keys]
    assert len(set(seeds)) == len(seeds)
    assert all(0 <= s < 2**SEED_BITS for s in seeds)
    # reproducible, and a different run seed moves every call's seed
    assert seeds == [call_seed(11, sample, epoch, call) for sample, epoch, call in keys]
    other = [call_seed(12, sample, epoch, call) for sample, epoch, call in keys]
    assert not set(seeds) & set(other)


def test_seeds_do_not_depend_on_the_process() -> None:
    """A str's ``hash`` changes between processes; the sample key must not."""
    code = ("from martingale_harness.protocol.seeding import Call, call_seed; "
            "print(call_seed(5, 'fb-q-17', 2, Call('belief', 1)))")
    printed = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                              env={**os.environ, "PYTHONHASHSEED": str(h)}).stdout.strip() for h in (1, 2)}
    assert printed == {str(call_seed(5, "fb-q-17", 2, Call("belief", 1)))}


def test_unknown_call_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown call kind"):
        call_seed(1, "s", 1, Call("posterior"))  # type: ignore[arg-type]


def _sent_seeds(log) -> list[tuple[object, int, int | None]]:
    """(sample id, epoch, seed) of every model call in a log."""
    return [(sample.id, sample.epoch, event.config.seed) for sample in log.samples
            for event in sample.events if event.event == "model"]


def test_seeded_run_sends_a_distinct_seed_with_every_call(tmp_path: Path) -> None:
    def run(seed: int | None):
        (log,) = inspect_eval("martingale/forecast", model="sim/noisy", limit=3, epochs=2, seed=seed,
                              task_args={"prior_samples": 3, "extractors": "self_report,logprob"},
                              display="none", log_dir=str(tmp_path))
        assert log.status == "success"
        return _sent_seeds(log)

    sent = run(11)
    # per sample-epoch: prior, its probe, 2 repeats with their probes, posterior and its probe
    assert len(sent) == 3 * 2 * 8
    seeds = [seed for *_, seed in sent]
    assert None not in seeds and len(set(seeds)) == len(seeds)
    assert sorted(run(11)) == sorted(sent)
    assert {seed for *_, seed in run(12)}.isdisjoint(seeds)
    assert {seed for *_, seed in run(None)} == {None}


def test_debate_arguments_and_the_clone_are_seeded_apart(tmp_path: Path) -> None:
    (log,) = inspect_eval("martingale/forecast", model="sim/bayesian", limit=2, seed=3,
                          task_args={"paradigm": "debate", "rounds": 2}, display="none", log_dir=str(tmp_path))
    seeds = [seed for *_, seed in _sent_seeds(log)]
    assert len(seeds) == 2 * (2 + 2 * 2)  # prior, posterior, 2 arguments and 2 clone replies per sample
    assert None not in seeds and len(set(seeds)) == len(seeds)
