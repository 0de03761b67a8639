"""Builds the ``martingale/bayes`` task: problems generated from settings instead of read from a file."""

from __future__ import annotations

from pathlib import Path

from inspect_ai import Task

from martingale_harness.tasks.bayes import dataset as bayes_domain
from martingale_harness.tasks.builder import build_task, task_sample
from martingale_harness.tasks.config import task_config


def bayes_task(
    n: int | None = None,
    seed: int | None = None,
    families: str | list[str] | None = None,
    min_items: int | None = None,
    max_items: int | None = None,
    data: str | None = None,
    shuffle: bool = False,
    **protocol: object,
) -> Task:
    """The task: the YAML's protocol with ``-T`` overrides, the generator's settings with theirs."""
    config = task_config("bayes")
    settings = config.protocol.override(**protocol)
    path = Path(data) if data else config.default_data
    generator = bayes_domain.read_settings(path).override(
        "-T", n=n, seed=seed, families=families, min_items=min_items, max_items=max_items)
    loaded = bayes_domain.load_generated(generator, evidence_budget=settings.evidence_budget)
    samples = []
    for item in loaded.items:
        sample = task_sample(config, item)
        if sample.input != item.question:  # doc_to_text rewrote it: the sim agents see this text
            bayes_domain.register(str(sample.input), item.evidence, item.metadata["exact_posteriors"])
        samples.append(sample)
    built = build_task(config, samples, dataset_name=f"bayes-n{generator.n}-seed{generator.seed}",
                       settings=settings, loaded=loaded, shuffle=shuffle, seed=generator.seed)
    built.metadata = {**(built.metadata or {}), "generator": {**generator.__dict__,
                                                             "families": list(generator.families)}}
    return built
