"""Assembles an inspect Task from a task config, a domain's data and the protocol settings."""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

from inspect_ai import Task
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.model import model_roles

from martingale_harness.errors import ConfigError
from martingale_harness.plugin.host import get_extractor
from martingale_harness.protocol.solver import belief_protocol
from martingale_harness.scoring.scorer import belief_scorer
from martingale_harness.tasks.base import DomainItem, LoadResult, check_skipped_share, item_to_sample
from martingale_harness.tasks.config import ProtocolSettings, TaskConfig, parse_name_list, task_config
from martingale_harness.tasks.loaders import get_loader

logger = logging.getLogger(__name__)


def parse_extractors(value: str | Sequence[str] | None, default: Sequence[str]) -> list[str]:
    """``-T extractors=a,b`` arrives as a string or a list; both mean the same."""
    names = list(default) if value is None else list(parse_name_list(value))
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


def domain_task(
    name: str,
    *,
    data: str | None = None,
    shuffle: bool = False,
    seed: int = 0,
    loader_args: dict[str, Any] | None = None,
    **overrides: Any,
) -> Task:
    """The task ``martingale/<name>``: its YAML, with ``-T`` values in ``overrides`` taking precedence.

    ``loader_args`` are the domain loader's own options (CMV's ``format`` and ``evidence``); None values
    are left out, so the loader's defaults apply.
    """
    config = task_config(name)
    settings = config.protocol.override(**overrides)
    path = data or config.default_data
    extra = {k: v for k, v in (loader_args or {}).items() if v is not None}
    loaded = get_loader(config.dataset_path)(
        path, evidence_budget=settings.evidence_budget, bad_rows=settings.bad_rows, **extra
    )
    check_skipped_share(loaded, path, settings.bad_rows)
    if loaded.skipped:
        first = loaded.skipped[0]
        logger.warning(f"{len(loaded.skipped)} row(s) of {path} skipped (bad_rows={settings.bad_rows}), e.g. "
                       f"{first.where}: {first.reason}; all reasons are in the log's task metadata (data_report)")
    samples = [task_sample(config, item) for item in loaded.items]
    return build_task(config, samples, dataset_name=Path(str(path)).name, settings=settings, loaded=loaded,
                      shuffle=shuffle, seed=seed)


def task_sample(config: TaskConfig, item: DomainItem) -> Sample:
    """The Sample of a domain item, its question rendered by the YAML's ``doc_to_text``."""
    sample = item_to_sample(item)
    if config.doc_to_text != "{question}":
        fields = {**item.metadata, "question": item.question, "question_id": item.question_id,
                  "sample_id": item.sample_id}
        try:
            sample.input = config.render_question(fields)
        except KeyError as e:
            raise ConfigError(f"{config.source}: doc_to_text uses the field {e}, which {config.dataset_path} "
                              f"items do not have; available: {', '.join(sorted(fields))}") from None
    return sample


def build_task(
    config: TaskConfig,
    samples: list[Sample],
    *,
    dataset_name: str,
    settings: ProtocolSettings | None = None,
    loaded: LoadResult | None = None,
    shuffle: bool = False,
    seed: int = 0,
) -> Task:
    """The Task: protocol solver, one scorer per extractor, settings recorded in the log."""
    settings = settings or config.protocol
    names = list(settings.extractors)
    for name in names:
        get_extractor(name)  # unknown names fail here, listing the known ones
    check_model_roles(names)
    dataset = MemoryDataset(samples, name=dataset_name)
    if shuffle:
        dataset.shuffle(seed=seed)
    return Task(
        dataset=dataset,
        solver=belief_protocol(
            paradigm=settings.paradigm,
            system_prompt=settings.system_prompt,
            rounds=settings.rounds,
            prior_samples=settings.prior_samples,
            yes_no_probe=any(getattr(get_extractor(name), "needs_yes_no_probe", False) for name in names),
            structured_probe=any(getattr(get_extractor(name), "needs_structured_probe", False) for name in names),
        ),
        scorer=[belief_scorer(name) for name in names],
        version=config.version,
        metadata={
            "martingale_task": config.task,
            "task_version": config.version,
            "task_config": str(config.source.name),
            "paradigm": settings.paradigm,
            "system_prompt": settings.system_prompt,
            "rounds": settings.rounds,
            "prior_samples": settings.prior_samples,
            "extractors": names,
            "evidence_budget": settings.evidence_budget,
            "bad_rows": settings.bad_rows,
            **({"data_report": loaded.report()} if loaded is not None else {}),
        },
    )
