"""The plugin API of martingale-harness: everything a plugin imports, from one module.

A plugin is a module (or object) with ``@hookimpl`` functions named like the hooks below, found
through the entry-point group ``martingale_harness``. The guide is ``docs/plugins.md`` (shipped in
the package: ``martingale_harness/_data/docs/plugins.md``); a test fails when a name here, a hook or a
public field of these types is not documented there.

Hooks (see :mod:`martingale_harness.plugin.hookspecs`):

- ``martingale_register_extractors(register)``: ``register(extractor)`` for each :class:`Extractor`;
- ``martingale_register_reward_terms(register)``: ``register(term)`` for each :class:`RewardTerm`.

Only torch-free and inspect-free modules are imported here: extractor plugins must work in an
evaluation-only install, and importing the API costs what numpy and scipy cost, not inspect.
"""

from __future__ import annotations

from martingale_harness.errors import ConfigError
from martingale_harness.extraction.base import PLUGIN_ERROR_KIND, Extractor
from martingale_harness.extraction.belief_text import read_probability, strip_reasoning
from martingale_harness.extraction.beliefs import FAILURE_KINDS, BeliefReading, BeliefStatus
from martingale_harness.extraction.judging import JUDGE_CACHE_ENV, JUDGE_MAX_ATTEMPTS, judge_cache
from martingale_harness.extraction.transcript import Stage, Transcript, Turn
from martingale_harness.plugin.hookspecs import hookimpl
from martingale_harness.plugin.reward_terms import RewardBatch, RewardTerm

HOOKS: tuple[str, ...] = ("martingale_register_extractors", "martingale_register_reward_terms")
"""The hook names a plugin may implement."""

__all__ = [
    "FAILURE_KINDS",
    "HOOKS",
    "JUDGE_CACHE_ENV",
    "JUDGE_MAX_ATTEMPTS",
    "PLUGIN_ERROR_KIND",
    "BeliefReading",
    "BeliefStatus",
    "ConfigError",
    "Extractor",
    "RewardBatch",
    "RewardTerm",
    "Stage",
    "Transcript",
    "Turn",
    "hookimpl",
    "judge_cache",
    "read_probability",
    "strip_reasoning",
]
