"""Domain loaders by the name a task YAML gives in ``dataset_path``.

Each loader module has ``load(path, *, evidence_budget, bad_rows) -> LoadResult`` (see ``base``);
``bayes`` generates its problems, ``path`` being a file of generator settings.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from martingale_harness.errors import ConfigError
from martingale_harness.tasks.base import LoadResult

LOADERS: dict[str, str] = {
    "forecastbench": "martingale_harness.tasks.forecast.dataset",
    "cmv": "martingale_harness.tasks.cmv.dataset",
    "openreview": "martingale_harness.tasks.openreview.dataset",
    "bayes": "martingale_harness.tasks.bayes.dataset",
}


def get_loader(dataset_path: str) -> Callable[..., LoadResult]:
    """The ``load`` function for a ``dataset_path`` value; unknown names list the known ones."""
    if dataset_path not in LOADERS:
        raise ConfigError(f"dataset_path {dataset_path!r} has no loader; known: {', '.join(sorted(LOADERS))}")
    module: Any = importlib.import_module(LOADERS[dataset_path])
    return module.load
