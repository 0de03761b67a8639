"""Training episodes: the protocol's two belief turns, with the posterior turn as the trained completion.

How the prior turn and the trained posterior turn relate (the multi-turn design):

1. Items come from the task exactly as an evaluation reads them (``martingale_harness.tasks.builder.domain_task``:
   the same loader, ``doc_to_text``, evidence budget), split by ``question_id`` into training and
   held-out questions (seeded; ``split.json`` in the output records it).
2. **Prior pass.** Before training, the current policy answers every training item's prior turn
   (system prompt if any, then ``protocol.prior_prompt``), greedily, in a first pass of its own.
   With ``prior_refresh_steps = K > 0`` the pass is repeated every K optimizer steps with the
   adapter being trained, so the priors stay the policy's own; with K = 0 they stay those of the
   starting model (the base, or the organism under ``init_adapter``). Priors are never trained.
3. **Trained turn.** The prompt of an episode is the protocol's conversation up to the posterior
   question: ``[system], user: prior prompt, assistant: <the policy's prior answer>, user: posterior
   prompt`` (``protocol.posterior_prompt`` or ``protocol.cot_prompt``). The completion is the
   posterior turn. The reward reads both turns with the extractor, as the scorer does.

The dataset handed to TRL holds only episode indices; the prompt and the prior answer are filled in
when a row is read (``datasets.Dataset.set_transform``), so a refresh reaches the next generation
batch without rebuilding the trainer. The prior answer travels with the row into the reward, so the
prior the reward reads is always the one the prompt showed, even when a refresh happens between
reading a batch and scoring it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from martingale_harness.errors import ConfigError
from martingale_harness.protocol.solver import SYSTEM_PROMPT_TEXTS, cot_prompt, posterior_prompt, prior_prompt
from martingale_harness.training.config import CommonConfig
from martingale_harness.training.reward import EpisodeView

if TYPE_CHECKING:
    from datasets import Dataset

Message = dict[str, str]


@dataclass(frozen=True)
class Episode:
    """One item of the task, as the protocol would ask it."""

    sample_id: str
    question_id: str
    question: str
    """The prior's question as rendered by the task's ``doc_to_text`` (the sample's input)."""
    evidence: tuple[str, ...]
    label: int | None
    metadata: Mapping[str, Any]


@dataclass(frozen=True)
class Split:
    """Training and held-out episodes; no question is in both."""

    train: list[Episode]
    heldout: list[Episode]

    def to_dict(self) -> dict[str, list[str]]:
        return {"train": [e.sample_id for e in self.train], "heldout": [e.sample_id for e in self.heldout]}


def load_episodes(config: CommonConfig) -> list[Episode]:
    """The task's items through the same path as ``inspect eval martingale/<task>``."""
    from martingale_harness.tasks.builder import domain_task

    overrides: dict[str, Any] = {"paradigm": config.paradigm, "system_prompt": config.system_prompt}
    if config.evidence_budget is not None:
        overrides["evidence_budget"] = config.evidence_budget
    task = domain_task(config.task_name, data=config.data, **overrides)
    episodes = []
    for sample in task.dataset:
        meta = dict(sample.metadata or {})
        if not isinstance(sample.input, str):
            raise ConfigError(f"task {config.task!r}: sample {sample.id} has a non-text input")
        label = meta.get("label")
        episodes.append(Episode(sample_id=str(sample.id), question_id=str(meta.get("question_id", sample.id)),
                                question=sample.input, evidence=tuple(str(e) for e in meta.get("evidence", [])),
                                label=None if label is None else int(label), metadata=meta))
    return episodes


def split_episodes(episodes: Sequence[Episode], holdout_fraction: float, seed: int,
                   max_items: int | None = None) -> Split:
    """Hold out ``holdout_fraction`` of the questions (seeded), keeping each question's samples together.

    ``max_items`` keeps that many training items (a seeded choice) for short runs.
    """
    questions = sorted({e.question_id for e in episodes})
    rng = np.random.default_rng(seed)
    order = [questions[i] for i in rng.permutation(len(questions))]
    n_held = math.ceil(holdout_fraction * len(questions)) if holdout_fraction > 0 else 0
    held = set(order[:n_held])
    train = [e for e in episodes if e.question_id not in held]
    heldout = [e for e in episodes if e.question_id in held]
    if max_items is not None and len(train) > max_items:
        keep = set(rng.choice(len(train), size=max_items, replace=False).tolist())
        train = [e for i, e in enumerate(train) if i in keep]
    if len(train) < 3:
        raise ConfigError(f"only {len(train)} training item(s) after holding out {len(heldout)}: the batch MS needs "
                          "at least 3 questions (more data, or a smaller holdout_fraction)")
    return Split(train=train, heldout=heldout)


@dataclass(frozen=True)
class EpisodePrompts:
    """The protocol's messages for an episode, for one system prompt and paradigm."""

    system_prompt: str = "none"
    paradigm: str = "direct"

    def _system(self) -> list[Message]:
        text = SYSTEM_PROMPT_TEXTS[self.system_prompt]
        return [{"role": "system", "content": text}] if text else []

    def prior_messages(self, episode: Episode) -> list[Message]:
        """The conversation the prior answer completes."""
        return [*self._system(), {"role": "user", "content": prior_prompt(episode.question)}]

    def posterior_prompt(self, episode: Episode) -> str:
        evidence = list(episode.evidence)
        return cot_prompt(evidence) if self.paradigm == "cot" else posterior_prompt(evidence)

    def posterior_messages(self, episode: Episode, prior_answer: str) -> list[Message]:
        """The prompt of the trained turn: everything up to the posterior question."""
        return [*self.prior_messages(episode), {"role": "assistant", "content": prior_answer},
                {"role": "user", "content": self.posterior_prompt(episode)}]

    def view(self, episode: Episode) -> EpisodeView:
        """What the reward needs to rebuild the transcript of an episode."""
        return EpisodeView(question=episode.question, prior_prompt=prior_prompt(episode.question),
                           posterior_prompt=self.posterior_prompt(episode), label=episode.label,
                           metadata=episode.metadata)


class PriorStore:
    """The current prior answer of every training episode, refreshed from the policy (see module docstring)."""

    def __init__(self, episodes: Sequence[Episode], prompts: EpisodePrompts) -> None:
        self.episodes = list(episodes)
        self.prompts = prompts
        self.answers: list[str] | None = None
        self.beliefs: list[float | None] = []
        """The belief read from each current prior answer (None: unreadable)."""
        self.refreshes: list[dict[str, Any]] = []

    def refresh(self, generate: Callable[[list[list[Message]]], list[str]], step: int,
                read: Callable[[list[str]], list[float | None]]) -> dict[str, Any]:
        """Ask the policy (``generate``) every prior again; ``read`` turns answers into beliefs for the record."""
        answers = generate([self.prompts.prior_messages(e) for e in self.episodes])
        if len(answers) != len(self.episodes):
            raise RuntimeError(f"prior pass returned {len(answers)} answers for {len(self.episodes)} episodes")
        self.answers = answers
        beliefs = read(answers)
        self.beliefs = list(beliefs)
        readable = [b for b in beliefs if b is not None]
        record = {"step": step, "priors": len(answers), "prior_failures": len(answers) - len(readable),
                  "prior_mean": float(np.mean(readable)) if readable else None,
                  "prior_sd": float(np.std(readable)) if readable else None}
        self.refreshes.append(record)
        return record

    def row(self, index: int) -> dict[str, Any]:
        if self.answers is None:
            raise RuntimeError("the prior pass has not run yet")
        answer = self.answers[index]
        return {"prompt": self.prompts.posterior_messages(self.episodes[index], answer), "item": index,
                "prior_answer": answer}


def episode_dataset(store: PriorStore) -> Dataset:
    """A ``datasets.Dataset`` of episode indices whose rows are built from ``store`` when read."""
    from datasets import Dataset

    dataset = Dataset.from_dict({"item": list(range(len(store.episodes)))})

    def transform(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        rows = [store.row(i) for i in batch["item"]]
        return {key: [r[key] for r in rows] for key in ("prompt", "item", "prior_answer")}

    dataset.set_transform(transform)
    return dataset


def write_split(split: Split, path: Path) -> None:
    """``split.json``: the sample ids of each side (``inspect eval --sample-id`` takes them)."""
    path.write_text(json.dumps(split.to_dict(), indent=1) + "\n", encoding="utf-8")
