"""What the LLM-judge extractors share: how often a grader is asked, and the cache its answers go through."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from inspect_ai.model import CachePolicy, Model

JUDGE_MAX_ATTEMPTS = 3
"""Grader calls per transcript at most: an unreadable reply is answered with the problem and asked again."""
JUDGE_CACHE_ENV = "MARTINGALE_JUDGE_CACHE"
"""``off`` (or 0, false, no) sends every judge call to the grader instead of inspect's model cache."""


def judge_cache(grader: Model) -> CachePolicy | bool:
    """The cache policy for calls to ``grader`` (``False`` when ``MARTINGALE_JUDGE_CACHE=off``).

    inspect's cache key holds the model name and generation config but not the model's arguments,
    so they are added as a scope: a grader with other ``-M`` arguments never reads these answers.
    """
    if os.environ.get(JUDGE_CACHE_ENV, "on").strip().lower() in {"off", "0", "false", "no"}:
        return False
    from inspect_ai.model import CachePolicy  # inspect only when a judge runs: the plugin API stays light

    args = json.dumps(grader.model_args, sort_keys=True, default=str)
    return CachePolicy(expiry=None, scopes={"model_args": args})
