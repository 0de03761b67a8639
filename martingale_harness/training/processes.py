"""The processes of one training run: one by default, N under ``accelerate launch --num_processes N``.

Training takes no distributed machinery of its own: TRL's trainers run data-parallel through
accelerate, and this module gives the harness's own steps the three collectives they need, from
accelerate (``gather_object``, ``broadcast_object_list``, ``wait_for_everyone``):

* the prior pass is split across processes (episode ``i`` is asked by process ``i mod N``) and its
  answers gathered, so every process holds all priors;
* the Martingale reward gathers the beliefs read by every process before fitting the batch MS
  (:class:`~martingale_harness.training.reward.MartingaleReward`);
* the outputs (``split.json``, ``metrics.jsonl``, the adapter, the held-out evaluation and the
  model card) are written by the main process alone. The others wait until the adapter is saved and
  then end, so no collective is pending during the held-out evaluation, however long it takes.

On CPU the processes talk over gloo (``accelerate launch --multi_gpu --num_processes 2`` starts
them with torchrun on a machine without a GPU; ``--cpu`` would start a single process).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

COLLECTIVE_TIMEOUT_S = 3 * 3600
"""How long a collective waits (torch's default under NCCL is 10 minutes)."""
T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Processes:
    """This process's place among the run's processes."""

    index: int = 0
    count: int = 1

    @property
    def is_main(self) -> bool:
        return self.index == 0

    def gather(self, value: T) -> list[T]:
        """``value`` of every process, in process order (``[value]`` in a single process)."""
        if self.count == 1:
            return [value]
        from accelerate.utils import gather_object

        _use_own_gpu()
        return list(gather_object([value]))

    def from_main(self, compute: Callable[[], R]) -> R:
        """``compute()`` run by the main process only, its result sent to all (for judge calls, files)."""
        if self.count == 1:
            return compute()
        from accelerate.utils import broadcast_object_list

        box: list[Any] = [compute() if self.is_main else None]
        _use_own_gpu()
        broadcast_object_list(box, from_process=0)
        return box[0]  # type: ignore[no-any-return]

    def map_split(self, items: Sequence[T], compute: Callable[[list[T]], list[R]]) -> list[R]:
        """``compute`` over ``items``, each process taking every N-th item; the results in ``items`` order.

        Every process computes the same number of items (a short share is padded with a repeat of its
        first item, whose result is dropped): under DeepSpeed ZeRO-3 each forward pass gathers the
        parameters from all processes, so all of them must call ``generate`` equally often.
        """
        if self.count == 1:
            return compute(list(items))
        share = list(items[self.index::self.count])
        size = -(-len(items) // self.count)
        padded = share + share[:1] * (size - len(share)) if share else list(items[:1]) * size
        mine = compute(padded)[: len(share)]
        parts = self.gather(mine)
        out: list[R] = [None] * len(items)  # type: ignore[list-item]
        for rank, part in enumerate(parts):
            out[rank::self.count] = part
        return out

    def wait(self) -> None:
        """Block until every process gets here."""
        if self.count > 1:
            from accelerate import PartialState

            PartialState().wait_for_everyone()


def _use_own_gpu() -> None:
    """Make this process's GPU the current one in the calling thread.

    NCCL's object collectives put their tensors on the current CUDA device, which is set per thread;
    TRL calls an async reward function from a thread of its own, where it would be GPU 0 in every process.
    """
    import torch

    if torch.cuda.is_available():
        from accelerate import PartialState

        torch.cuda.set_device(PartialState().device)


def launched_rank() -> int:
    """This process's rank as ``accelerate launch`` (torchrun) sets it; 0 without it."""
    import os

    return int(os.environ.get("RANK", "0"))


def current_processes() -> Processes:
    """The run's processes as ``accelerate launch`` (torchrun) set them; one process without it.

    The distributed state is created here, before the trainer, so the prior pass can use it; on a
    machine without a GPU it is accelerate's CPU (gloo) state, which the trainer then reuses.
    """
    import os

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return Processes()
    import torch
    from accelerate import PartialState

    # the timeout of every collective: a process waits this long for the main process's judge reads
    state = PartialState(cpu=not torch.cuda.is_available(), timeout=timedelta(seconds=COLLECTIVE_TIMEOUT_S))
    return Processes(index=state.process_index, count=state.num_processes)
