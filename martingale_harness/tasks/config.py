"""Task configs: ``registry.yaml`` maps task names to lm-eval-style YAML files under ``tasks/``.

A task file uses lm-eval's vocabulary where it fits (``task``, ``tag``, ``include``,
``dataset_path``, ``dataset_kwargs``, ``test_split``, ``output_type``, ``doc_to_text``,
``doc_to_target``, ``metric_list``, ``metadata``) plus a ``protocol`` mapping with the harness's
own settings (:data:`PROTOCOL_KEYS`). ``include`` names another YAML file relative to the including
one; the including file wins, and mappings (``protocol``, ``dataset_kwargs``, ``metadata``) merge
key by key, while lists and scalars are replaced whole. Files are read with
:func:`~martingale_harness.project_files.load_yaml` (a safe loader that reads ``1e-2`` as a number);
every error names the file, the key and what is allowed.

The files live at the top of the source tree and are copied into the wheel under
``martingale_harness/_data/`` (see ``pyproject.toml``);
:func:`~martingale_harness.project_files.resource_path` finds them in either place, so a source
checkout and an installed package read the very same files.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, StrictInt, StringConstraints
from pydantic.dataclasses import dataclass as config_class

from martingale_harness.errors import ConfigError
from martingale_harness.project_files import config_keys, invalid, read_yaml, resource_path, validate_config
from martingale_harness.protocol.solver import Paradigm, SystemPrompt
from martingale_harness.scoring.scorer import BAYES_KEYS, FAILURE_KEYS, IV_KEYS, METRIC_KEYS
from martingale_harness.tasks.base import BAD_ROW_RULES, DEFAULT_EVIDENCE_BUDGET
from martingale_harness.tasks.loaders import LOADERS

TOP_LEVEL_KEYS: tuple[str, ...] = (
    "task", "tag", "include", "dataset_path", "dataset_kwargs", "test_split", "output_type",
    "doc_to_text", "doc_to_target", "metric_list", "metadata", "protocol", "description",
)
DOC_FIELDS: tuple[str, ...] = ("question", "question_id", "sample_id")
"""Fields a ``doc_to_text`` template may use (besides the domain's metadata fields)."""
_MAX_INCLUDE_DEPTH = 8


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_task_yaml(path: Path, _depth: int = 0) -> dict[str, Any]:
    """A task file with its ``include`` chain resolved; unknown keys and bad values are errors naming the file."""
    raw = read_yaml(path)
    unknown = sorted(set(raw) - set(TOP_LEVEL_KEYS))
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(TOP_LEVEL_KEYS)}")
    # checked file by file, so that a mistake in an included file is reported there
    validate_config(ProtocolSettings, raw.get("protocol", {}), str(path), "protocol.")
    include = raw.pop("include", None)
    if include is None:
        return raw
    if _depth >= _MAX_INCLUDE_DEPTH:
        raise ConfigError(f"{path}: 'include' nested more than {_MAX_INCLUDE_DEPTH} deep (a cycle?)")
    if not isinstance(include, str):
        raise ConfigError(f"{path}: key 'include' must be one file name, got {include!r}")
    return _merge(read_task_yaml(path.parent / include, _depth + 1), raw)


def parse_name_list(value: Any) -> tuple[str, ...]:
    """``a,b`` or ``[a, b]`` (``-T`` gives either) as a tuple of names."""
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    if isinstance(value, list | tuple):
        return tuple(str(v).strip() for v in value)
    raise ConfigError(f"expected a comma-separated list of names, got {value!r}")


def name_tuple(value: Any) -> Any:
    """Before validation: :func:`parse_name_list` of a string or list; anything else is left for the type check."""
    return parse_name_list(value) if isinstance(value, str | list | tuple) else value


def each_once(names: tuple[str, ...]) -> tuple[str, ...]:
    """After validation: refuse a name given twice."""
    if len(set(names)) != len(names):
        raise invalid("names an entry twice")
    return names


@config_class(frozen=True, config=ConfigDict(extra="forbid"))
class ProtocolSettings:
    """What ``-T`` can override: how the model is asked (docs/architecture.md, section 1) and how data is read."""

    paradigm: Paradigm = "direct"
    system_prompt: SystemPrompt = "none"
    extractors: Annotated[
        tuple[Annotated[str, StringConstraints(min_length=1)], ...], BeforeValidator(name_tuple),
        AfterValidator(each_once),
    ] = Field(("self_report",), min_length=1, description="a non-empty list of extractor names, each once")
    rounds: StrictInt = Field(2, ge=1, le=10, description="an integer from 1 to 10")
    """Debate rounds (one argument from each side per round)."""
    prior_samples: StrictInt = Field(1, ge=1, le=10, description="an integer from 1 to 10")
    """Independent elicitations of the prior; 2 or more enable ``ms_slope_iv``."""
    evidence_budget: StrictInt = Field(DEFAULT_EVIDENCE_BUDGET, ge=0,
                                       description="a number of characters >= 0 (0 = no limit)")
    """Characters per evidence item before it is cut with a marker; 0 = no limit."""
    bad_rows: Literal[BAD_ROW_RULES] = "skip_few"  # type: ignore[valid-type]
    """``skip_few`` (skip and record bad rows, stop if more than half are), ``skip`` or ``error``."""

    def override(self, **values: Any) -> ProtocolSettings:
        """These settings with the non-``None`` ``values`` (from ``-T``) replacing the YAML's."""
        given = {k: v for k, v in values.items() if v is not None}
        for key in ("rounds", "prior_samples", "evidence_budget"):
            # -T may pass numbers as text; a file's numbers must be numbers
            if isinstance(given.get(key), str) and given[key].strip().isdigit():
                given[key] = int(given[key])
        return validate_config(ProtocolSettings, {**vars(self), **given}, "-T", "protocol.")


PROTOCOL_KEYS: tuple[str, ...] = tuple(config_keys(ProtocolSettings))

REPORTED_METRICS: frozenset[str] = frozenset((*METRIC_KEYS, *FAILURE_KEYS, *IV_KEYS, *BAYES_KEYS))
"""The metric keys the scorer reports per extractor (docs/architecture.md, section 3)."""


def _reported(name: str) -> str:
    if name not in REPORTED_METRICS:
        raise invalid("must be a metric the scorer reports (e.g. ms_slope, brier_posterior, inertia, "
                      "extraction_failure_rate)")
    return name


@config_class(frozen=True, config=ConfigDict(extra="forbid"))
class MetricEntry:
    """One ``metric_list`` entry, in lm-eval's vocabulary.

    It declares, for the results JSON (lm-eval's ``configs`` and ``higher_is_better``), how a metric the
    scorer reports is aggregated and which direction is better; it does not select metrics: every metric
    is computed and logged for every extractor, the results table leads with the headline ones and
    ``martingale report --all`` shows the rest. A metric the scorer does not report is refused, so a
    misspelt name cannot silently declare nothing.
    """

    metric: Annotated[str, AfterValidator(_reported)]
    aggregation: Literal["martingale_score", "brier", "mean", "ratio", "regression"]
    higher_is_better: bool | None = None


@dataclass(frozen=True)
class TaskConfig:
    """A task YAML, resolved and checked."""

    task: str
    version: str
    dataset_path: str
    default_data: Path
    doc_to_text: str
    protocol: ProtocolSettings
    tags: tuple[str, ...]
    metric_list: tuple[dict[str, Any], ...]
    source: Path

    def render_question(self, fields: dict[str, Any]) -> str:
        """The prior's question text from ``doc_to_text``."""
        return self.doc_to_text.format_map(fields)


def task_config(name: str) -> TaskConfig:
    """Read task ``name`` through ``registry.yaml``."""
    registry_file = resource_path("registry.yaml")
    tasks = read_yaml(registry_file).get("tasks") or {}
    if name not in tasks:
        raise ConfigError(f"{registry_file}: no task {name!r}; known tasks: {', '.join(sorted(tasks))}")
    return load_task_config(resource_path(str(tasks[name])))


def load_task_config(path: Path) -> TaskConfig:
    """Read and check one task YAML file (with its includes)."""
    raw = read_task_yaml(path)

    def need(key: str) -> Any:
        if key not in raw:
            raise ConfigError(f"{path}: missing key {key!r}")
        return raw[key]

    dataset_path = str(need("dataset_path"))
    if dataset_path not in LOADERS:
        raise ConfigError(f"{path}: dataset_path={dataset_path!r} has no loader; allowed: {', '.join(LOADERS)}")
    data = (raw.get("dataset_kwargs") or {}).get("data")
    if not data:
        raise ConfigError(f"{path}: missing key dataset_kwargs.data (the bundled demo set)")
    protocol = validate_config(ProtocolSettings, raw.get("protocol") or {}, str(path), "protocol.")
    doc_to_text = str(raw.get("doc_to_text", "{question}"))
    _check_template(path, doc_to_text)
    if raw.get("doc_to_target", "label") != "label":
        raise ConfigError(f"{path}: doc_to_target={raw['doc_to_target']!r} is not allowed; allowed: label")
    metric_list = raw.get("metric_list") or []
    if not isinstance(metric_list, list) or not all(isinstance(m, dict) and "metric" in m for m in metric_list):
        raise ConfigError(f"{path}: metric_list must be a list of mappings with a 'metric' key")
    for i, entry in enumerate(metric_list):
        validate_config(MetricEntry, entry, str(path), f"metric_list[{i}].")
    tags = raw.get("tag") or []
    return TaskConfig(
        task=str(need("task")),
        version=str((raw.get("metadata") or {}).get("version", "0")),
        dataset_path=dataset_path,
        default_data=path.parent / str(data),
        doc_to_text=doc_to_text,
        protocol=protocol,
        tags=tuple(tags) if isinstance(tags, list) else (str(tags),),
        metric_list=tuple(metric_list),
        source=path,
    )


def _check_template(path: Path, template: str) -> None:
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as e:
        raise ConfigError(f"{path}: doc_to_text is not a valid template ({e})") from None
    if "question" not in fields:
        raise ConfigError(f"{path}: doc_to_text must contain {{question}}, got {template!r}")
