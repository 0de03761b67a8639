"""The ``martingale/*`` inspect tasks."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from inspect_ai import Task, task
from inspect_ai._util.error import PrerequisiteError  # inspect prints these without a traceback
from inspect_ai._util.package import get_installed_package_name

from martingale_harness.config import task_config
from martingale_harness.domains.forecast import item_to_sample, load_forecastbench
from martingale_harness.errors import MartingaleError
from martingale_harness.task import build_task

P = ParamSpec("P")
R = TypeVar("R")


def _user_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Show a user's mistake (bad path, bad setting) as one message, not a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except MartingaleError as e:
            raise PrerequisiteError(f"martingale: {e}") from e

    return wrapper


def _task_name(name: str) -> str:
    """``martingale/<name>`` however the package is installed.

    inspect prefixes a task with its top-level package only when it sees that package as
    installed; an editable install of the ``martingale-harness`` distribution is not seen as one
    for the ``martingale`` package, so there the prefix is given explicitly.
    """
    return name if get_installed_package_name(_task_name) == "martingale" else f"martingale/{name}"


@task(name=_task_name("forecast"))
@_user_errors
def forecast(
    data: str | None = None,
    paradigm: str | None = None,
    system_prompt: str | None = None,
    extractors: str | list[str] | None = None,
    shuffle: bool = False,
    seed: int = 0,
) -> Task:
    """Forecasting questions (ForecastBench format): prior -> evidence -> posterior.

    Args:
        data: A ForecastBench question set JSON; its ``<date>_resolution_set.json`` beside it
            supplies labels. Default: the bundled demo set.
        paradigm: Elicitation protocol (``direct``).
        system_prompt: ``none``.
        extractors: Comma-separated extractor plugin names (default ``self_report``).
        shuffle: Shuffle the sample order (with ``seed``).
        seed: Seed for shuffling.
    """
    config = task_config("forecast")
    path = data or config.default_data
    items = load_forecastbench(path)
    return build_task(
        config,
        [item_to_sample(i) for i in items],
        dataset_name=str(path).rsplit("/", 1)[-1],
        paradigm=paradigm,
        system_prompt=system_prompt,
        extractors=extractors,
        shuffle=shuffle,
        seed=seed,
    )
