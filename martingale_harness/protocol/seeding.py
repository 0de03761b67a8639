"""Per-request seeds: one run seed, a distinct and reproducible seed for every model call of the run.

A seeded run (``inspect eval ... --seed N``) must not send ``N`` with every request: a backend that
honours seeds would start the same random stream for the prior and the posterior turn of a sample (and
for every sample), so the two turns share their draws, updates shrink toward 0 and the samples stop
being independent draws (measured on SmolLM2: the posterior repeated the prior word for word in 11 of
12 samples with one shared seed, in 0 of 12 unseeded). Instead the protocol derives each call's seed
from what identifies the call, with numpy's :class:`~numpy.random.SeedSequence` (its spawn keys are
made for exactly this: independent streams from one entropy source):

    seed(call) = SeedSequence(run_seed, spawn_key=(sample, epoch, kind, turn, index))

so a call's seed does not depend on which other calls ran, in which order, or in what batch, and two
different calls never share one. Without a run seed no call is seeded (every draw is the provider's
own random draw).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

import numpy as np

CallKind = Literal["belief", "probe", "repeat", "argument", "clone", "structured"]
# codes are part of every seed: append new kinds, never renumber (a seeded run must repeat exactly)
_KIND_CODES: dict[str, int] = {"belief": 0, "probe": 1, "repeat": 2, "argument": 3, "clone": 4, "structured": 5}
SEED_BITS = 31
"""Derived seeds lie in [0, 2**31): every provider that takes a seed accepts a signed 32-bit one."""


@dataclass(frozen=True)
class Call:
    """What identifies one model call of a sample: its kind, the belief turn it belongs to, an index.

    ``index`` is the repeat number (``repeat``, and the side calls after a repeat: ``probe``,
    ``structured``), the debate round (``argument``, ``clone``), or 0.
    """

    kind: CallKind
    turn: int = 0
    index: int = 0


def _sample_key(sample_id: object) -> int:
    """A stable 32-bit key for a sample id (``hash`` of a str changes between processes)."""
    digest = hashlib.sha256(repr(sample_id).encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "little")


def call_seed(run_seed: int, sample_id: object, epoch: int, call: Call) -> int:
    """The seed of one call of one sample-epoch in a run seeded with ``run_seed`` (module docstring)."""
    if call.kind not in _KIND_CODES:
        raise ValueError(f"unknown call kind {call.kind!r}; known: {', '.join(_KIND_CODES)}")
    sequence = np.random.SeedSequence(
        entropy=int(run_seed) & 0xFFFFFFFFFFFFFFFF,
        spawn_key=(_sample_key(sample_id), int(epoch), _KIND_CODES[call.kind], int(call.turn), int(call.index)),
    )
    return int(sequence.generate_state(1, dtype=np.uint32)[0]) & ((1 << SEED_BITS) - 1)


def run_seed() -> int | None:
    """The seed the running eval was given (``--seed``, ``eval(seed=...)``), None when it has none."""
    from inspect_ai.model import get_model

    from martingale_harness._inspect_compat import active_generate_config  # no public accessor

    seed = active_generate_config().seed
    if seed is None:
        seed = get_model().config.seed
    return seed
