"""Project files and YAML: where the shipped files are, how every YAML file and value is read and checked.

Kept apart from :mod:`martingale_harness.tasks.config` (task configs) so that modules the config imports
(the protocol, refusal hints) can read project files without importing the config back.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

import yaml
from annotated_types import Ge, Gt, Le, Lt
from pydantic import TypeAdapter, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError

from martingale_harness.errors import ConfigError

T = TypeVar("T")

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


# --- validated configs (pydantic) ------------------------------------------------------------------------------
#
# Config classes are pydantic dataclasses: a mapping (a YAML file, ``-T`` values) is checked against the types,
# Field constraints and validators declared on the class, and the first problem becomes one ConfigError naming
# the origin, the dotted key and what is allowed. A field's ``description`` is what is allowed in words: any
# error on it quotes that description. Validators raise :func:`invalid`, :func:`refused` or :func:`not_allowed`
# for rules of their own; all wording is in _MESSAGES.

_UNKNOWN = ("extra_forbidden", "unexpected_keyword_argument")
_BOUNDS = ("greater_than", "greater_than_equal", "less_than", "less_than_equal")
_MESSAGES: dict[str, str] = {
    "missing": "missing key {key!r}{about}",
    "not_allowed": "{key}={value!r} is not allowed; allowed: {allowed}",
    "negative": "{key}={value} is negative; it must be >= 0",
    "greater_than_equal": "{key}={value} must be >= {ge:g}",
    "less_than_equal": "{key}={value} must be <= {le:g}",
    "greater_than": "{key} must be > {gt:g}, got {value!r}",
    "less_than": "{key}={value} must be < {lt:g}",
    "interval": "{key} must lie in {interval}, got {value!r}",
    "int_type": "{key} must be an integer, got {value!r}",
    "bool_type": "{key} must be true or false, got {value!r}",
    "float_type": "{key} must be a number, got {value!r}",
    "finite_number": "{key} must be a number, got {value!r}",
    "string_type": "{key} must be a string, got {value!r}",
    "dict_type": "{key} must be a mapping, got {value!r}",
    "dataclass_type": "{key} must be a mapping, got {value!r}",
    "model_type": "{key} must be a mapping, got {value!r}",
    "tuple_type": "{key} must be a list, got {value!r}",
    "list_type": "{key} must be a list, got {value!r}",
    "invalid": "{key} {rule}, got {value!r}",
    "refused": "{text}",
}


def invalid(rule: str) -> PydanticCustomError:
    """For a validator: the value breaks ``rule`` (read after the key, e.g. ``must be a list of distinct ...``)."""
    return PydanticCustomError("invalid", "{rule}", {"rule": rule})


def refused(text: str) -> PydanticCustomError:
    """For a validator: a rule across keys, ``text`` naming them itself (the origin is prefixed)."""
    return PydanticCustomError("refused", "{text}", {"text": text})


def not_allowed(key: str, value: Any, allowed: str) -> PydanticCustomError:
    """For a model validator: ``key=value is not allowed; allowed: ...`` (``key`` relative to the model)."""
    return PydanticCustomError("not_allowed", "{allowed}", {"key": key, "value": value, "allowed": allowed})


@functools.cache
def _adapter(model: type[Any]) -> TypeAdapter[Any]:
    return TypeAdapter(model)


def validate_config(model: type[T], raw: Any, where: str, prefix: str = "") -> T:
    """``raw`` (a mapping laid out like the file) as a ``model``, or one :class:`ConfigError`.

    ``where`` (a file, ``-T``) starts the message; ``prefix`` (``protocol.``) is where ``model`` sits in the file.
    """
    try:
        return _adapter(model).validate_python(raw)
    except ValidationError as e:
        raise config_error(e, model, raw, where, prefix) from None


def config_keys(model: type[Any]) -> list[str]:
    """The keys a file may give for ``model`` (fields marked ``exclude`` are set by the loader, not the file)."""
    return [name for name, info in model.__pydantic_fields__.items() if not info.exclude]


def config_error(error: ValidationError, model: type[Any], raw: Any, where: str, prefix: str = "") -> ConfigError:
    """The first problem of ``error`` as one line: ``where``, the dotted key and what is allowed.

    Unknown keys come first (a misspelt key is the likelier mistake than the value it holds), all of one
    mapping together.
    """
    problems = error.errors(include_url=False)
    unknown = [p for p in problems if p["type"] in _UNKNOWN]
    if unknown:
        parent = unknown[0]["loc"][:-1]
        names = sorted(_dotted(prefix, p["loc"]) for p in unknown if p["loc"][:-1] == parent)
        allowed = config_keys(_model_at(model, parent) or model)
        return ConfigError(f"{where}: unknown key(s) {', '.join(names)}; allowed: {', '.join(allowed)}")
    problem = problems[0]
    kind, ctx = problem["type"], dict(problem.get("ctx") or {})
    loc = (*problem["loc"], ctx.pop("key")) if "key" in ctx else problem["loc"]
    values = {"value": problem["input"], **ctx}
    path = _field_path(model, loc)
    info = path[-1][1] if path else None
    if kind == "missing":
        values["about"] = f" ({info.description})" if info and info.description else ""
    elif info is not None and info.description and kind not in ("refused", "not_allowed"):
        loc = tuple(name for name, _ in path)  # the described field as a whole, as the file gives it
        kind, values = "not_allowed", {"value": _lookup(raw, loc, problem["input"]), "allowed": info.description}
    elif kind == "literal_error":
        choices = _literal_values(info.annotation) if info else ()
        kind, values["allowed"] = "not_allowed", ", ".join(choices) if choices else ctx.get("expected", "")
    elif kind in _BOUNDS and info is not None and (interval := _interval(info.metadata)):
        kind, values["interval"] = "interval", interval
    key = _dotted(prefix, loc)
    template = _MESSAGES.get(kind)
    return ConfigError(f"{where}: " + (template.format(key=key, **values) if template else f"{key}: {problem['msg']}"))


def _dotted(prefix: str, loc: tuple[Any, ...]) -> str:
    """``protocol.`` + ``('rounds',)`` -> ``protocol.rounds``; a list position reads ``[]`` (``teacher.seeds[]``)."""
    parts = [prefix.rstrip(".")] if prefix else []
    for part in loc:
        if isinstance(part, int) and parts:
            parts[-1] += "[]"
        else:
            parts.append(str(part))
    return ".".join(parts)


def _field_path(model: Any, loc: tuple[Any, ...]) -> list[tuple[str, FieldInfo]]:
    """The fields ``loc`` passes through, outermost first, as far as they are fields of config classes."""
    path = []
    for part in loc:
        fields = getattr(model, "__pydantic_fields__", None)
        if not fields or part not in fields:
            break
        path.append((part, fields[part]))
        model = _config_class(fields[part].annotation)
    return path


def _model_at(model: Any, loc: tuple[Any, ...]) -> Any:
    """The config class of the mapping at ``loc`` (``model`` itself at the top)."""
    path = _field_path(model, loc)
    if len(path) != len(loc):
        return None
    return _config_class(path[-1][1].annotation) if path else model


def _config_class(annotation: Any) -> Any:
    """The config class inside ``annotation`` (``LoraSettings``, ``X | None``), else None."""
    if hasattr(annotation, "__pydantic_fields__"):
        return annotation
    for arg in get_args(annotation):
        found = _config_class(arg)
        if found is not None:
            return found
    return None


def _literal_values(annotation: Any) -> tuple[str, ...]:
    if get_origin(annotation) is Literal:
        return tuple(str(a) for a in get_args(annotation))
    for arg in get_args(annotation):
        if values := _literal_values(arg):
            return values
    return ()


def _interval(metadata: list[Any]) -> str | None:
    """``[0, 1)`` for a field bounded on both sides (a bound alone reads better as ``x=-1 must be >= 0``)."""
    low = next((f"[{m.ge:g}" if isinstance(m, Ge) else f"({m.gt:g}" for m in metadata if isinstance(m, Ge | Gt)),
               None)
    high = next((f"{m.le:g}]" if isinstance(m, Le) else f"{m.lt:g})" for m in metadata if isinstance(m, Le | Lt)),
                None)
    return f"{low}, {high}" if low and high else None


def _lookup(raw: Any, loc: tuple[Any, ...], default: Any) -> Any:
    """The value at ``loc`` in ``raw`` as written (``'urn,dice'`` rather than the parsed tuple)."""
    for part in loc:
        if not isinstance(raw, Mapping) or part not in raw:
            return default
        raw = raw[part]
    return raw


def apply_overrides(raw: Mapping[str, Any], overrides: list[str]) -> dict[str, Any]:
    """``raw`` with each ``a.b=value`` (``--set``) applied; ``value`` is read as YAML (``0``, ``null``, ``[a, b]``)."""
    merged = json.loads(json.dumps(raw, default=str))  # a deep copy; the file's values are plain YAML
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. reward.info_coef=0")
        try:
            value = load_yaml(text)
        except yaml.YAMLError as e:
            raise ConfigError(f"--set {item!r}: the value is not valid YAML ({e})") from None
        *parents, leaf = key.strip().split(".")
        target = merged
        for part in parents:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                raise ConfigError(f"--set {item!r}: {part!r} is not a mapping in the config")
        target[leaf] = value
    return merged
