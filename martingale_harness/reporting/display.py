"""Short display names for runs: tables, figure titles, file names and comparisons.

A model's full name can be a long path (``local//home/me/models/SmolLM2-135M-Instruct.Q4_1.gguf+/home/me/
runs/recipe/adapter``): it made a report's file name exceed the file system's limit and figure titles
wrap to four lines. Outputs label a run by:

1. the alias given as ``-M name=<alias>`` (accepted by every backend of the project: ``local``, ``sglang``
   and ``sim``; the alias is recorded in the log's model args and changes nothing else);
2. else the model name with each path in it shortened to the file's stem (``.gguf`` and other suffixes
   dropped) or the folder's name: a part is a path when it starts with ``/``, ``~`` or ``.``, or ends in
   ``.gguf``. A hub id (``org/name``) is kept as it is: it is short and names the model exactly;
3. cut to :data:`MAX_DISPLAY` characters with an ellipsis in the middle when still longer.

The full name stays in the results JSON's ``config.model``, the logs and the samples.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

NAME_ARG = "name"
"""The ``-M`` model arg that sets a run's display name."""

MAX_DISPLAY = 48
MAX_FILE_STEM = 96
"""Longest file-name part made from a run's key (the full name of a file stays far under 255 bytes)."""

_ADAPTER_SEPARATOR = "+"


def _looks_like_path(part: str) -> bool:
    return part.startswith(("/", "~", ".")) or part.endswith(".gguf")


def _short_part(part: str) -> str:
    if not _looks_like_path(part):
        return part
    path = PurePath(part.rstrip("/"))
    return path.stem if path.suffix else path.name or part


def _ellipsized(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    keep = limit - 1
    return f"{text[: (keep + 1) // 2]}…{text[len(text) - keep // 2:]}"


def display_model_name(model: str, model_args: Mapping[str, Any] | None = None) -> str:
    """The short name of ``model`` (see the module docstring)."""
    alias = (model_args or {}).get(NAME_ARG)
    if alias is not None and str(alias).strip():
        return str(alias).strip()
    provider, slash, rest = model.partition("/")
    if not slash:
        return _ellipsized(model, MAX_DISPLAY)
    short = _ADAPTER_SEPARATOR.join(_short_part(p) for p in rest.split(_ADAPTER_SEPARATOR))
    return _ellipsized(f"{provider}/{short}", MAX_DISPLAY)


def safe_file_stem(text: str, limit: int = MAX_FILE_STEM) -> str:
    """``text`` as a file-name part: unsafe characters as ``_``; longer than ``limit``, cut and tagged with
    a hash of the whole, so two long names that share a beginning still give two files."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")
    if len(safe) <= limit:
        return safe
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:10]
    return f"{safe[: limit - len(digest) - 1]}_{digest}"
