"""Domain loaders by the name a task YAML gives in ``dataset_path``.

Each loader module has ``load(path, *, evidence_budget, bad_rows) -> LoadResult`` (see ``base``);
``bayes`` generates its problems, ``path`` being a file of generator settings.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from martingale_harness.domains.base import LoadResult
from martingale_harness.errors import ConfigError

LOADERS: dict[str, str] = {
    "forecastbench": "martingale_harness.domains.forecast",
    "cmv": "martingale_harness.domains.cmv",
    "openreview": "martingale_harness.domains.openreview",
    "bayes": "martingale_harness.domains.bayes",
}


def get_loader(dataset_path: str) -> Callable[..., LoadResult]:
    """The ``load`` function for a ``dataset_path`` value; unknown names list the known ones."""
    if dataset_path not in LOADERS:
        raise ConfigError(f"dataset_path {dataset_path!r} has no loader; known: {', '.join(sorted(LOADERS))}")
    module: Any = importlib.import_module(LOADERS[dataset_path])
    return module.load
