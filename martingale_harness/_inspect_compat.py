"""Every private inspect name the harness uses, in one place, for the inspect range ``pyproject.toml`` allows.

inspect has no public accessor for these (the running sample, the active generate config, the model
roles an eval sets up, its OpenAI converters, ...). Importing them here, and only here
(``tests/test_architecture.py`` fails on a private inspect import anywhere else), means an inspect
upgrade that moves one breaks this module and its test, not a backend at run time. Names that need
modules inspect does not import by itself (its OpenAI converters) are imported when first called.
"""

from __future__ import annotations

import sys
from typing import Any

from inspect_ai._util._async import run_coroutine
from inspect_ai._util.config import parse_cli_args
from inspect_ai._util.constants import DEFAULT_MAX_TOKENS
from inspect_ai._util.error import PrerequisiteError
from inspect_ai._util.package import get_installed_package_name
from inspect_ai._util.registry import (
    RegistryInfo,
    registry_add,
    registry_find,
    registry_info,
    registry_tag,
    registry_unqualified_name,
)
from inspect_ai.log._samples import sample_active
from inspect_ai.model._generate_config import active_generate_config
from inspect_ai.model._model import init_model_roles
from inspect_ai.model._providers.providers import validate_openai_client

try:
    from inspect_ai.model._model_info import MODEL_INFO_LOOKUP_API_KEY
except ImportError:  # an inspect without model-info lookups never builds such throwaway instances
    MODEL_INFO_LOOKUP_API_KEY = "__model_info_lookup__"

__all__ = [
    "DEFAULT_MAX_TOKENS", "MODEL_INFO_LOOKUP_API_KEY", "PrerequisiteError", "RegistryInfo", "active_generate_config",
    "chat_choices_from_openai", "get_installed_package_name", "init_model_roles", "messages_to_openai",
    "model_output_from_openai", "parse_cli_args", "parse_content_with_reasoning", "registry_add", "registry_find",
    "registry_info", "registry_tag", "registry_unqualified_name", "run_coroutine", "sample_active",
    "validate_openai_client", "LIVE_DISPLAY_FUNCTION", "called_by_live_display",
]

LIVE_DISPLAY_FUNCTION = "update_metrics_display_fn.<locals>.compute"
"""inspect's live-display metric computation (``inspect_ai._eval.task.run``), by qualified name; inspect
offers no flag that tells a metric who asks, so the caller's frames are the only witness."""


def called_by_live_display() -> bool:
    """Whether the running metric is being computed for inspect's live display (not the final results)."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_qualname == LIVE_DISPLAY_FUNCTION:
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return False


def chat_choices_from_openai(*args: Any, **kwargs: Any) -> Any:
    """inspect's conversion of an OpenAI chat completion into its choices."""
    from inspect_ai.model._openai import chat_choices_from_openai as convert

    return convert(*args, **kwargs)


def model_output_from_openai(*args: Any, **kwargs: Any) -> Any:
    """inspect's conversion of an OpenAI chat completion (and its choices) into a ``ModelOutput``."""
    from inspect_ai.model._openai import model_output_from_openai as convert

    return convert(*args, **kwargs)


async def messages_to_openai(*args: Any, **kwargs: Any) -> Any:
    """inspect's conversion of chat messages into OpenAI's message dicts."""
    from inspect_ai.model._openai import messages_to_openai as convert

    return await convert(*args, **kwargs)


def parse_content_with_reasoning(*args: Any, **kwargs: Any) -> Any:
    """inspect's own ``<think>`` parser: ``(text, reasoning)`` of a completion."""
    from inspect_ai.model._reasoning import parse_content_with_reasoning as parse

    return parse(*args, **kwargs)
