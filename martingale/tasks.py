"""The ``martingale/*`` inspect tasks."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from inspect_ai import Task, task
from inspect_ai._util.error import PrerequisiteError  # inspect prints these without a traceback
from inspect_ai._util.package import get_installed_package_name

from martingale_harness.errors import MartingaleError
from martingale_harness.task import domain_task

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


_ARGS_DOC = """

    Args:
        data: The data file (default: the bundled demo set); see the README for each domain.
        paradigm: ``direct``, ``cot``, ``debate`` or ``evidence`` (default from the task YAML).
        system_prompt: ``none``, ``critical`` or ``prior_conforming``.
        extractors: Comma-separated extractor plugin names (default ``self_report``).
        rounds: Debate rounds (``debate`` only).
        prior_samples: Independent elicitations of the prior; 2 or more add ``ms_slope_iv``.
        evidence_budget: Characters per evidence item before it is cut with a marker (0 = no limit).
        bad_rows: ``skip`` (record and leave out) or ``error`` (stop at the first bad row).
        shuffle: Shuffle the sample order (with ``seed``).
        seed: Seed for shuffling.
    """


def _define(name: str, summary: str) -> Callable[..., Task]:
    """One ``martingale/<name>`` task built from ``tasks/<name>`` YAML; every protocol key is a ``-T``."""

    def task_fn(
        data: str | None = None,
        paradigm: str | None = None,
        system_prompt: str | None = None,
        extractors: str | list[str] | None = None,
        rounds: int | None = None,
        prior_samples: int | None = None,
        evidence_budget: int | None = None,
        bad_rows: str | None = None,
        shuffle: bool = False,
        seed: int = 0,
    ) -> Task:
        return domain_task(name, data=data, shuffle=shuffle, seed=seed, paradigm=paradigm,
                           system_prompt=system_prompt, extractors=extractors, rounds=rounds,
                           prior_samples=prior_samples,
                           evidence_budget=evidence_budget, bad_rows=bad_rows)

    task_fn.__name__ = task_fn.__qualname__ = name
    task_fn.__doc__ = summary + _ARGS_DOC
    return task(name=_task_name(name))(_user_errors(task_fn))


forecast = _define("forecast", "Forecasting questions (ForecastBench format): prior -> evidence -> posterior.")
cmv = _define("cmv", "Value-laden views from r/ChangeMyView; the evidence is the replies that changed minds.")
openreview = _define("openreview", "Paper review: accept this paper? The evidence is its reviews, one by one.")
