"""Task configs: ``registry.yaml`` maps task names to lm-eval-style YAML files under ``tasks/``.

The files live at the top of the source tree and are copied into the wheel under
``martingale_harness/_data/`` (see ``pyproject.toml``); :func:`resource_path` finds them in either
place, so a source checkout and an installed package read the very same files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from martingale_harness.errors import ConfigError

_PACKAGE_DIR = Path(__file__).resolve().parent


def resource_path(relative: str) -> Path:
    """Path of a project file (``registry.yaml``, ``tasks/...``), installed or in a checkout."""
    for root in (_PACKAGE_DIR / "_data", _PACKAGE_DIR.parent):
        candidate = root / relative
        if candidate.exists():
            return candidate
    raise ConfigError(f"project file {relative!r} not found under {_PACKAGE_DIR / '_data'} "
                      f"or {_PACKAGE_DIR.parent}; is martingale-harness installed completely?")


def read_yaml(path: Path) -> dict[str, Any]:
    """Safe-load a YAML mapping; errors name the file."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: invalid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


@dataclass(frozen=True)
class TaskConfig:
    """The parts of a task YAML the harness acts on."""

    task: str
    version: str
    default_data: Path
    paradigm: str
    system_prompt: str
    extractors: tuple[str, ...]
    source: Path


def task_config(name: str) -> TaskConfig:
    """Read task ``name`` through ``registry.yaml``."""
    registry_file = resource_path("registry.yaml")
    tasks = read_yaml(registry_file).get("tasks") or {}
    if name not in tasks:
        raise ConfigError(f"{registry_file}: no task {name!r}; known tasks: {', '.join(sorted(tasks))}")
    path = resource_path(str(tasks[name]))
    raw = read_yaml(path)

    def get(section: dict[str, Any], key: str, where: str) -> Any:
        if key not in section:
            raise ConfigError(f"{path}: missing key {where}{key}")
        return section[key]

    protocol = get(raw, "protocol", "")
    if not isinstance(protocol, dict):
        raise ConfigError(f"{path}: 'protocol' must be a mapping")
    extractors = get(protocol, "extractors", "protocol.")
    if isinstance(extractors, str):
        extractors = [extractors]
    data = (raw.get("dataset_kwargs") or {}).get("data")
    if not data:
        raise ConfigError(f"{path}: missing key dataset_kwargs.data (the bundled demo set)")
    return TaskConfig(
        task=str(get(raw, "task", "")),
        version=str((raw.get("metadata") or {}).get("version", "0")),
        default_data=path.parent / str(data),
        paradigm=str(get(protocol, "paradigm", "protocol.")),
        system_prompt=str(get(protocol, "system_prompt", "protocol.")),
        extractors=tuple(str(e) for e in extractors),
        source=path,
    )
