"""The plugin hooks of martingale-harness (pluggy project name ``martingale_harness``).

Plugins are modules or objects with ``@hookimpl`` functions, found through the entry-point group
``martingale_harness``. The built-in extractors and reward terms are registered this way too.
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

from martingale_harness.extraction.base import Extractor
from martingale_harness.plugin.reward_terms import RewardTerm

PROJECT = "martingale_harness"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def martingale_register_extractors(register: Callable[[Extractor], None]) -> None:
    """Contribute belief extractors by calling ``register(extractor)`` once for each.

    Called once, when the plugin manager is first built. Names must be unique across plugins.
    """


@hookspec
def martingale_register_reward_terms(register: Callable[[RewardTerm], None]) -> None:
    """Contribute reward terms for ``martingale train`` by calling ``register(term)`` once for each.

    A term (``.name``, ``.check(labels, metadata)``, ``.values(batch)``; see
    :class:`~martingale_harness.plugin.reward_terms.RewardTerm`) is selected by ``reward.info_term`` in a
    training config and weighted by ``reward.info_coef``. Called once, when the plugin manager is
    first built. Names must be unique across plugins.
    """
