"""Loads plugins and gives the core a typed view of what they contribute.

Plugins are the entry points of the group ``martingale_harness`` (the built-ins too). Set
``MARTINGALE_DISABLE_PLUGINS=name1,name2`` to block entry points by name. A plugin that fails to
import is recorded with its error and skipped; the harness keeps working with the others.

``MARTINGALE_TRACE_PLUGINS=1`` (or logging at DEBUG, e.g. inspect's ``--log-level debug``) prints the
import traceback of a plugin that failed to load and traces every hook call (which plugin registered
what) on stderr.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Literal

import pluggy

from martingale_harness.errors import ConfigError
from martingale_harness.extraction.base import Extractor
from martingale_harness.plugin import hookspecs
from martingale_harness.plugin.reward_terms import RewardTerm

logger = logging.getLogger(__name__)

DISABLE_ENV = "MARTINGALE_DISABLE_PLUGINS"
TRACE_ENV = "MARTINGALE_TRACE_PLUGINS"
BUILTIN_DISTRIBUTION = "martingale-harness"
PluginStatus = Literal["loaded", "blocked", "failed"]


@dataclass(frozen=True)
class PluginRecord:
    """One entry point of the ``martingale_harness`` group and what became of it."""

    name: str
    target: str
    distribution: str
    version: str
    status: PluginStatus
    error: str | None = None
    traceback: str | None = None
    """The import traceback of a plugin that failed to load (printed when tracing)."""

    @property
    def origin(self) -> str:
        return "built-in" if self.distribution == BUILTIN_DISTRIBUTION else self.distribution


@dataclass(frozen=True)
class Contribution:
    """Something a loaded plugin registered (``kind`` names the hook, e.g. ``extractor``)."""

    plugin: str
    kind: str
    name: str


class PluginHost:
    """The plugin manager plus a record of every entry point; core code calls these typed methods."""

    def __init__(self, pm: pluggy.PluginManager, records: list[PluginRecord] | None = None) -> None:
        self.pm = pm
        self.records = records or []
        self._tracebacks_shown = False

    def _show_failures(self) -> None:
        # plugins load when inspect imports the registry, before `--log-level debug` takes effect; so an
        # import traceback is printed on first use once tracing is on, not only at load time
        if self._tracebacks_shown or not tracing():
            return
        self._tracebacks_shown = True
        for r in self.records:
            if r.traceback:
                _trace(f"plugin {r.name!r} ({r.target}) failed to load:\n{r.traceback}")

    def _extractor_impls(self) -> list[tuple[str, dict[str, Extractor]]]:
        self._show_failures()
        found: list[tuple[str, dict[str, Extractor]]] = []
        seen: dict[str, str] = {}
        # called one plugin at a time (not through pm.hook) so each contribution keeps its plugin's name
        for impl in self.pm.hook.martingale_register_extractors.get_hookimpls():
            mine: dict[str, Extractor] = {}
            found.append((impl.plugin_name, mine))
            args = {"register": _collector(impl.plugin_name, mine, seen)}
            _trace(f"calling {impl.plugin_name}.martingale_register_extractors")
            impl.function(**{a: args[a] for a in impl.argnames})
            _trace(f"{impl.plugin_name} registered extractors: {', '.join(mine) or 'none'}")
        return found

    def extractors(self) -> dict[str, Extractor]:
        """All registered extractors by name; a name registered twice is a configuration error."""
        return {name: ex for _, mine in self._extractor_impls() for name, ex in mine.items()}

    def get_extractor(self, name: str) -> Extractor:
        """The extractor called ``name``; unknown names list what is available and what failed."""
        available = self.extractors()
        if name in available:
            return available[name]
        listing = ", ".join(sorted(available)) or "none"
        notes = "".join(
            f"; plugin {r.name!r} is blocked by {DISABLE_ENV}" if r.status == "blocked"
            else f"; plugin {r.name!r} failed to load ({r.error})"
            for r in self.records if r.status != "loaded"
        )
        raise ConfigError(f"unknown extractor {name!r}; available: {listing}{notes}")

    def contributions(self) -> list[Contribution]:
        """What each loaded plugin registered, in load order."""
        return [
            Contribution(plugin, "extractor", name)
            for plugin, mine in self._extractor_impls()
            for name in mine
        ] + [
            Contribution(plugin, "reward_term", name)
            for plugin, terms in self._reward_term_impls()
            for name in terms
        ]

    def _reward_term_impls(self) -> list[tuple[str, dict[str, RewardTerm]]]:
        self._show_failures()
        found: list[tuple[str, dict[str, RewardTerm]]] = []
        seen: dict[str, str] = {}
        for impl in self.pm.hook.martingale_register_reward_terms.get_hookimpls():
            mine: dict[str, RewardTerm] = {}
            found.append((impl.plugin_name, mine))
            args = {"register": _term_collector(impl.plugin_name, mine, seen)}
            _trace(f"calling {impl.plugin_name}.martingale_register_reward_terms")
            impl.function(**{a: args[a] for a in impl.argnames})
            _trace(f"{impl.plugin_name} registered reward terms: {', '.join(mine) or 'none'}")
        return found

    def reward_terms(self) -> dict[str, RewardTerm]:
        """All registered reward terms by name; a name registered twice is a configuration error."""
        return {name: term for _, mine in self._reward_term_impls() for name, term in mine.items()}

    def get_reward_term(self, name: str) -> RewardTerm:
        """The reward term called ``name``; unknown names list what is available and what failed."""
        available = self.reward_terms()
        if name in available:
            return available[name]
        raise ConfigError(f"unknown reward term {name!r}; available: {', '.join(sorted(available)) or 'none'}"
                          f"{self._unloaded_notes()}")

    def _unloaded_notes(self) -> str:
        return "".join(
            f"; plugin {r.name!r} is blocked by {DISABLE_ENV}" if r.status == "blocked"
            else f"; plugin {r.name!r} failed to load ({r.error})"
            for r in self.records if r.status != "loaded"
        )


def _collector(plugin: str, mine: dict[str, Extractor], seen: dict[str, str]) -> Callable[[Extractor], None]:
    def register(extractor: Extractor) -> None:
        if not isinstance(extractor, Extractor):
            raise ConfigError(f"plugin {plugin!r}: {extractor!r} is not an Extractor (needs .name and async .extract)")
        if extractor.name in seen:
            raise ConfigError(f"two plugins register an extractor named {extractor.name!r}: "
                              f"{seen[extractor.name]!r} and {plugin!r}")
        seen[extractor.name] = plugin
        mine[extractor.name] = extractor

    return register


def _term_collector(plugin: str, mine: dict[str, RewardTerm], seen: dict[str, str]) -> Callable[[RewardTerm], None]:
    def register(term: RewardTerm) -> None:
        if not isinstance(term, RewardTerm):
            raise ConfigError(f"plugin {plugin!r}: {term!r} is not a RewardTerm (needs .name, .check and .values)")
        if term.name in seen:
            raise ConfigError(f"two plugins register a reward term named {term.name!r}: "
                              f"{seen[term.name]!r} and {plugin!r}")
        seen[term.name] = plugin
        mine[term.name] = term

    return register


def tracing() -> bool:
    """Whether plugin loading and hook calls are traced (``MARTINGALE_TRACE_PLUGINS=1`` or DEBUG logging)."""
    return os.environ.get(TRACE_ENV, "").strip() not in {"", "0"} or logger.isEnabledFor(logging.DEBUG)


def _trace(message: str) -> None:
    # stderr, not a logger: the trace must show even where no logging is configured (`martingale plugins`)
    if tracing():
        print(f"martingale plugins: {message}", file=sys.stderr)


def blocked_names() -> set[str]:
    """Entry-point names listed in ``MARTINGALE_DISABLE_PLUGINS``."""
    return {n.strip() for n in os.environ.get(DISABLE_ENV, "").split(",") if n.strip()}


def load_plugins() -> PluginHost:
    """Build a host from the installed entry points (not cached; see :func:`plugin_host`)."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    blocked = blocked_names()
    records: list[PluginRecord] = []
    for ep in sorted(entry_points(group=hookspecs.PROJECT), key=lambda e: e.name):
        dist = ep.dist
        meta = (dist.metadata["Name"] if dist else "unknown", dist.version if dist else "unknown")
        if ep.name in blocked:
            pm.set_blocked(ep.name)
            records.append(PluginRecord(ep.name, ep.value, *meta, status="blocked"))
            continue
        if pm.get_plugin(ep.name) is not None or pm.is_blocked(ep.name):
            continue
        try:
            plugin = ep.load()
        except Exception as e:  # a broken third-party plugin must not take the harness down
            error = f"{type(e).__name__}: {e}"
            records.append(PluginRecord(ep.name, ep.value, *meta, status="failed", error=error,
                                        traceback=traceback.format_exc()))
            if not tracing():  # when tracing, the host prints the traceback on first use
                logger.warning("martingale plugin %r (%s) failed to load: %s (set %s=1 for the traceback)",
                               ep.name, ep.value, error, TRACE_ENV)
            continue
        _trace(f"loaded plugin {ep.name!r} ({ep.value}) from {meta[0]} {meta[1]}")
        pm.register(plugin, name=ep.name)
        records.append(PluginRecord(ep.name, ep.value, *meta, status="loaded"))
    pm.check_pending()  # a misspelt hook name in a plugin fails here, loudly
    return PluginHost(pm, records)


@functools.cache
def plugin_host() -> PluginHost:
    """The process-wide plugin host."""
    return load_plugins()


def get_extractor(name: str, host: PluginHost | None = None) -> Extractor:
    """The extractor called ``name`` from ``host`` (default: the installed plugins)."""
    return (host or plugin_host()).get_extractor(name)


def get_reward_term(name: str, host: PluginHost | None = None) -> RewardTerm:
    """The reward term called ``name`` from ``host`` (default: the installed plugins)."""
    return (host or plugin_host()).get_reward_term(name)
