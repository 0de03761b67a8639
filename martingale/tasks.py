"""The ``martingale/*`` inspect tasks."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any, ParamSpec, TypeVar

from inspect_ai import Task, task

from martingale_harness._inspect_compat import (  # inspect prints PrerequisiteError without a traceback
    PrerequisiteError,
    get_installed_package_name,
)
from martingale_harness.errors import ConfigError, MartingaleError
from martingale_harness.tasks.bayes import dataset as bayes_domain
from martingale_harness.tasks.bayes.task import bayes_task
from martingale_harness.tasks.builder import domain_task
from martingale_harness.tasks.config import task_config

P = ParamSpec("P")
R = TypeVar("R")


def _user_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Show a user's mistake (bad path, bad setting, a ``-T`` name the task does not have) as one message.

    inspect drops a ``-T`` argument a task does not declare with a warning, which ``--display none``
    hides, and runs with the default: a misspelt ``-T paradigms=cot`` would measure ``direct``. So the
    task declares ``**unknown`` to inspect (its signature gains a variadic keyword) and refuses every
    name but inspect's own ``model``.
    """
    signature = inspect.signature(fn)
    known = list(signature.parameters)

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        kwargs.pop("model", None)  # inspect passes it to every task that takes **kwargs
        unknown = sorted(set(kwargs) - set(known))
        try:
            if unknown:
                raise ConfigError(f"-T {', '.join(unknown)}: not an argument of this task; its arguments: "
                                  f"{', '.join(known)}")
            return fn(*args, **kwargs)
        except MartingaleError as e:
            raise PrerequisiteError(f"martingale: {e}") from e

    variadic = inspect.Parameter("unknown", inspect.Parameter.VAR_KEYWORD)
    wrapper.__signature__ = signature.replace(parameters=[*signature.parameters.values(), variadic])  # type: ignore[attr-defined]
    return wrapper


def _recorded_defaults(name: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Show the task YAML's defaults in the task's signature, so the log's ``task_args`` hold them.

    inspect records every task argument with its signature default (the CONFIG panel of ``inspect view``);
    with ``None`` defaults it showed ``paradigm: null, extractors: null`` although the run used the YAML's
    ``direct`` and ``self_report``. The function's own defaults stay ``None`` (= "from the YAML"), so
    calling it is unchanged; a YAML that cannot be read leaves them as they are and fails when the task runs.
    """

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        try:
            config = task_config(name)
            p = config.protocol
            defaults: dict[str, object] = {
                "data": str(config.default_data), "paradigm": p.paradigm, "system_prompt": p.system_prompt,
                "extractors": ",".join(p.extractors), "rounds": p.rounds, "prior_samples": p.prior_samples,
                "evidence_budget": p.evidence_budget, "bad_rows": p.bad_rows,
            }
            if name == "bayes":
                generator = bayes_domain.read_settings(config.default_data)
                defaults.update(n=generator.n, seed=generator.seed, families=",".join(generator.families),
                                min_items=generator.min_items, max_items=generator.max_items)
        except MartingaleError:
            return fn
        signature = inspect.signature(fn)
        fn.__signature__ = signature.replace(parameters=[  # type: ignore[attr-defined]
            q.replace(default=defaults[q.name]) if q.default is None and q.name in defaults else q
            for q in signature.parameters.values()
        ])
        return fn

    return decorate


def _task_name(name: str) -> str:
    """``martingale/<name>`` however the package is installed.

    inspect prefixes a task with its top-level package only when it sees that package as
    installed; an editable install of the ``martingale-harness`` distribution is not seen as one
    for the ``martingale`` package, so there the prefix is given explicitly.
    """
    return name if get_installed_package_name(_task_name) == "martingale" else f"martingale/{name}"


Param = inspect.Parameter


def _param(name: str, annotation: str, default: object = None) -> inspect.Parameter:
    return Param(name, Param.POSITIONAL_OR_KEYWORD, default=default, annotation=annotation)


PROTOCOL_PARAMS: tuple[inspect.Parameter, ...] = (
    _param("paradigm", "str | None"),
    _param("system_prompt", "str | None"),
    _param("extractors", "str | list[str] | None"),
    _param("rounds", "int | None"),
    _param("prior_samples", "int | None"),
    _param("evidence_budget", "int | None"),
    _param("bad_rows", "str | None"),
)
"""The protocol settings every task takes as ``-T`` (the ``protocol`` keys of its YAML; None = the YAML's)."""

_DATA, _SHUFFLE, _SEED = _param("data", "str | None"), _param("shuffle", "bool", False), _param("seed", "int", 0)

ARG_DOCS: dict[str, str] = {
    "data": "The data file (default: the bundled demo set); see the README for each domain.",
    "paradigm": "``direct``, ``cot``, ``debate`` or ``evidence`` (default from the task YAML).",
    "system_prompt": "``none``, ``critical`` or ``prior_conforming``.",
    "extractors": "Comma-separated extractor plugin names (default ``self_report``).",
    "rounds": "Debate rounds (``debate`` only).",
    "prior_samples": "Independent elicitations of the prior; 2 or more add ``ms_slope_iv``.",
    "evidence_budget": "Characters per evidence item before it is cut with a marker (0 = no limit).",
    "bad_rows": "``skip_few`` (record and leave out; stop if more than half are bad), ``skip`` (any number) or "
                "``error`` (stop at the first bad row).",
    "shuffle": "Shuffle the sample order (with ``seed``).",
    "seed": "Seed for shuffling.",
}
"""What each ``-T`` argument means; a task overrides the entries that differ for it."""


def _define(name: str, summary: str, build: Callable[..., Task], parameters: Sequence[inspect.Parameter],
            docs: dict[str, str] | None = None) -> Callable[..., Task]:
    """The task ``martingale/<name>``: ``build`` called with every ``-T`` argument by name.

    One definer for every task: the signature (what inspect records and ``-T`` may name) is
    ``parameters``, the docstring lists each with its :data:`ARG_DOCS` entry (or the task's own).
    """
    docs = {**ARG_DOCS, **(docs or {})}

    # the function's own defaults (None = "from the YAML"); _recorded_defaults only changes what inspect shows
    own = inspect.Signature(list(parameters), return_annotation="Task")

    def task_fn(**arguments: Any) -> Task:
        bound = own.bind(**arguments)
        bound.apply_defaults()
        return build(**bound.arguments)

    task_fn.__name__ = task_fn.__qualname__ = name
    task_fn.__doc__ = summary + "\n\n    Args:\n" + "".join(
        f"        {p.name}: {docs[p.name]}\n" for p in parameters)
    task_fn.__signature__ = own  # type: ignore[attr-defined]
    return task(name=_task_name(name))(_user_errors(_recorded_defaults(name)(task_fn)))


def _domain_builder(name: str, loader_keys: Sequence[str] = ()) -> Callable[..., Task]:
    def build(data: str | None, shuffle: bool, seed: int, **arguments: Any) -> Task:
        loader_args = {key: arguments.pop(key) for key in loader_keys}
        return domain_task(name, data=data, shuffle=shuffle, seed=seed, loader_args=loader_args, **arguments)

    return build


forecast = _define(
    "forecast", "Forecasting questions (ForecastBench format): prior -> evidence -> posterior.",
    _domain_builder("forecast"), (_DATA, *PROTOCOL_PARAMS, _SHUFFLE, _SEED))

cmv = _define(
    "cmv", "Value-laden views from r/ChangeMyView; the evidence is the replies that changed minds (or those that "
           "did not).",
    _domain_builder("cmv", ("format", "evidence")),
    (_DATA, _param("format", "str | None"), _param("evidence", "str | None"), *PROTOCOL_PARAMS, _SHUFFLE, _SEED),
    docs={
        "data": "A CMV source (default: the bundled demo set): JSONL posts with delta threads, a ConvoKit "
                "winning-args corpus folder, or Tan et al.'s pair lists; see the README.",
        "format": "``threads``, ``convokit`` or ``pairs`` (default: recognised from the source).",
        "evidence": "``persuasive`` (the replies that earned a delta; default), ``unpersuasive`` (matched replies "
                    "that did not; Tan et al.'s corpora only) or ``both`` (alternating).",
    })

openreview = _define(
    "openreview", "Paper review: accept this paper? The evidence is its reviews, one by one.",
    _domain_builder("openreview"), (_DATA, *PROTOCOL_PARAMS, _SHUFFLE, _SEED))

bayes = _define(
    "bayes", "Generated problems with exact Bayesian posteriors (urns, diagnostic tests, coins), one observation "
             "per turn.",
    bayes_task,
    (_param("n", "int | None"), _param("seed", "int | None"), _param("families", "str | list[str] | None"),
     _param("min_items", "int | None"), _param("max_items", "int | None"), _DATA, *PROTOCOL_PARAMS, _SHUFFLE),
    docs={
        "n": "Number of problems (default from ``martingale_harness/tasks/bayes/generator.yaml``).",
        "seed": "Generator seed; the same settings give the same problems (also seeds ``shuffle``).",
        "families": "Comma-separated subset of ``urn,diagnostic,coin``.",
        "min_items": "Fewest observations per problem.",
        "max_items": "Most observations per problem (at most 20).",
        "data": "Another generator settings file (YAML with the keys above).",
        "paradigm": "``evidence`` by default (one observation per turn); ``direct``, ``cot``, ``debate`` too.",
        "bad_rows": "Checked for uniformity with the other tasks; generated problems have no bad rows.",
    })
