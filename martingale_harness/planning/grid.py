"""The paper's grid (models × tasks × paradigms × system prompts) as one inspect eval set.

No scheduler of our own: :func:`grid_tasks` builds one task per (task, paradigm, system prompt) with
those values as its task arguments, and :func:`run_grid` hands them and the models to
``inspect_ai.eval_set``. inspect then runs every (task, model) cell, retries failed ones, and on a
second run with the same grid and log dir runs only the cells (and samples) that are missing: an
interrupted grid is resumed by running the same command again. ``martingale report LOG_DIR`` turns
the folder into the leaderboard.
"""

from __future__ import annotations

import contextvars
import itertools
from dataclasses import dataclass, field
from typing import Any

from inspect_ai import Task

from martingale_harness._inspect_compat import PrerequisiteError
from martingale_harness.errors import ConfigError, MartingaleError
from martingale_harness.project_files import read_yaml, resource_path
from martingale_harness.protocol.solver import PARADIGMS, SYSTEM_PROMPTS


@dataclass(frozen=True)
class Grid:
    """What to cross: task names (``forecast``, ``cmv``, ...), paradigms, system prompts and models."""

    tasks: tuple[str, ...]
    models: tuple[str, ...]
    paradigms: tuple[str, ...] = ("direct",)
    system_prompts: tuple[str, ...] = ("none",)
    task_args: dict[str, Any] = field(default_factory=dict)
    """Other ``-T`` arguments given to every task (e.g. ``extractors``)."""
    model_roles: dict[str, str] = field(default_factory=dict)
    """Models for the judges' roles, as ``--model-role`` (e.g. ``{"grader": "openai/gpt-4o-mini"}``)."""

    def __post_init__(self) -> None:
        known = sorted(read_yaml(resource_path("registry.yaml")).get("tasks") or {})
        for name, values, allowed in (("task", self.tasks, known), ("paradigm", self.paradigms, PARADIGMS),
                                      ("system prompt", self.system_prompts, SYSTEM_PROMPTS)):
            if not values:
                raise ConfigError(f"the grid needs at least one {name}")
            bad = [v for v in values if v not in allowed]
            if bad:
                raise ConfigError(f"unknown {name} {', '.join(map(repr, bad))}; choose from {', '.join(allowed)}")
            if len(set(values)) != len(values):
                raise ConfigError(f"a {name} is listed twice: {', '.join(values)}")
        if not self.models:
            raise ConfigError("the grid needs at least one model")
        clash = sorted(set(self.task_args) & {"paradigm", "system_prompt"})
        if clash:
            raise ConfigError(f"-T {', '.join(clash)}: set by the grid's own axes (--paradigms, --system-prompts)")

    @property
    def cells(self) -> int:
        """How many evaluations the grid is: tasks × paradigms × prompts × models."""
        return len(self.tasks) * len(self.paradigms) * len(self.system_prompts) * len(self.models)


def grid_tasks(grid: Grid) -> list[Task]:
    """One task per (task, paradigm, system prompt), in that order, built through the registered tasks.

    Each task records its arguments in the log (``task_args``), which is how inspect's eval set tells
    the cells apart and finds, on a second run, the ones already done. The grid's model roles are
    bound while the tasks are built, as ``inspect eval`` binds them, because a task refuses a judge
    extractor whose role has no model.
    """
    from inspect_ai.model import get_model

    import martingale.tasks as registered
    from martingale_harness._inspect_compat import init_model_roles  # what eval() calls before building tasks

    def build() -> list[Task]:
        init_model_roles({role: get_model(name) for role, name in grid.model_roles.items()})
        return [getattr(registered, name)(paradigm=paradigm, system_prompt=prompt, **grid.task_args)
                for name, paradigm, prompt in itertools.product(grid.tasks, grid.paradigms, grid.system_prompts)]

    # in a copy of the context, so the binding neither leaks out nor inherits one from earlier
    try:
        return contextvars.copy_context().run(build)
    except PrerequisiteError as e:  # a task's refusal, for inspect's display; here the error itself
        if isinstance(e.__cause__, MartingaleError):
            raise e.__cause__ from None
        raise


def run_grid(grid: Grid, log_dir: str, batch: bool = False, **eval_set_args: Any) -> tuple[bool, list[Any]]:
    """Run (or resume) the grid as one eval set in ``log_dir``; returns eval_set's (success, logs).

    ``batch`` sends the evaluated models' and the judges' calls through the providers' batch APIs
    (inspect's ``--batch``; providers without one are called as usual). inspect applies an eval's
    ``batch`` to the evaluated model only, so each role's model gets its own batch config here.
    """
    from inspect_ai import eval_set
    from inspect_ai.model import GenerateConfig, get_model

    roles: dict[str, Any] = {role: get_model(name, config=GenerateConfig(batch=True), memoize=False) if batch
                             else name for role, name in grid.model_roles.items()}
    if batch:
        eval_set_args["batch"] = True
    return eval_set(tasks=grid_tasks(grid), model=list(grid.models), model_roles=roles or None,
                    log_dir=log_dir, **eval_set_args)
