"""Project files and YAML: where the shipped files are, and how every YAML file and value is read.

Kept apart from :mod:`martingale_harness.tasks.config` (task configs) so that modules the config imports
(the protocol, refusal hints) can read project files without importing the config back.
"""

from __future__ import annotations

import re
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


class YAMLLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that also reads YAML 1.2 floats without a dot (``1e-2``, ``5E-4``) as numbers.

    PyYAML follows YAML 1.1, where ``1e-2`` is the string ``'1e-2'``: a learning rate written that way
    passed ``martingale train --check`` and crashed the optimizer at the first step.
    """


YAMLLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"))


def load_yaml(text: str) -> Any:
    """Parse YAML text with :class:`YAMLLoader` (how every config and ``--set`` value is read)."""
    return yaml.load(text, Loader=YAMLLoader)  # noqa: S506 - a SafeLoader subclass


def read_yaml(path: Path) -> dict[str, Any]:
    """Safe-load a YAML mapping; errors name the file."""
    if not path.is_file():
        raise ConfigError(f"{path}: file does not exist")
    try:
        data = load_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: invalid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data
