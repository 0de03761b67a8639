"""Assembles an inspect Task from a task config, a dataset and the protocol settings."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from inspect_ai import Task
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.model import model_roles

from martingale_harness.config import TaskConfig
from martingale_harness.errors import ConfigError
from martingale_harness.plugins import get_extractor
from martingale_harness.protocol import belief_protocol
from martingale_harness.scoring import belief_scorer


def parse_extractors(value: str | Sequence[str] | None, default: Sequence[str]) -> list[str]:
    """``-T extractors=a,b`` arrives as a string or a list; both mean the same."""
    if value is None:
        names = list(default)
    elif isinstance(value, str):
        names = [v.strip() for v in value.split(",") if v.strip()]
    else:
        names = [str(v).strip() for v in value]
    if not names:
        raise ConfigError("extractors: give at least one extractor name")
    if len(set(names)) != len(names):
        raise ConfigError(f"extractors: {names} names an extractor twice")
    return names


def check_model_roles(
    extractor_names: Sequence[str], bound: Collection[str] | None = None, how: str = "--model-role {role}=<model>"
) -> None:
    """Fail before any sample runs when an extractor needs a model role nobody bound.

    ``bound`` defaults to the roles of the running eval. Judges must never fall back to the
    evaluated model grading itself.
    """
    bound = model_roles() if bound is None else bound
    for name in extractor_names:
        for role in getattr(get_extractor(name), "model_roles", ()):
            if role not in bound:
                flag = how.format(role=role)
                raise ConfigError(
                    f"extractor {name!r} needs a model for the role {role!r}: add {flag} "
                    "(e.g. openai/gpt-4o-mini, or sim/judge offline)"
                )


def build_task(
    config: TaskConfig,
    samples: list[Sample],
    *,
    dataset_name: str,
    paradigm: str | None = None,
    system_prompt: str | None = None,
    extractors: str | Sequence[str] | None = None,
    shuffle: bool = False,
    seed: int = 0,
) -> Task:
    """The Task: protocol solver, one scorer per extractor, settings recorded in the log."""
    names = parse_extractors(extractors, config.extractors)
    check_model_roles(names)
    dataset = MemoryDataset(samples, name=dataset_name)
    if shuffle:
        dataset.shuffle(seed=seed)
    paradigm = paradigm or config.paradigm
    system_prompt = system_prompt or config.system_prompt
    return Task(
        dataset=dataset,
        solver=belief_protocol(
            paradigm=paradigm,
            system_prompt=system_prompt,
            yes_no_probe=any(getattr(get_extractor(name), "needs_yes_no_probe", False) for name in names),
        ),
        scorer=[belief_scorer(name) for name in names],
        version=config.version,
        metadata={
            "martingale_task": config.task,
            "task_version": config.version,
            "task_config": str(config.source.name),
            "paradigm": paradigm,
            "system_prompt": system_prompt,
            "extractors": names,
        },
    )
