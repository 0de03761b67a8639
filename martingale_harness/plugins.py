"""Loads plugins and gives the core a typed view of what they contribute."""

from __future__ import annotations

import functools
import logging
from importlib.metadata import entry_points

import pluggy

from martingale_harness import hookspecs
from martingale_harness.errors import ConfigError
from martingale_harness.extraction import Extractor

logger = logging.getLogger(__name__)

FAILED_PLUGINS: dict[str, str] = {}
"""Entry points that could not be loaded: name -> error. They are skipped, not fatal."""


@functools.cache
def plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, with every installed ``martingale_harness`` entry point.

    A plugin that fails to import is logged and listed in :data:`FAILED_PLUGINS`; the others load.
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    for ep in entry_points(group=hookspecs.PROJECT):
        if pm.get_plugin(ep.name) is not None:
            continue
        try:
            plugin = ep.load()
        except Exception as e:  # a broken third-party plugin must not take the harness down
            FAILED_PLUGINS[ep.name] = f"{type(e).__name__}: {e}"
            logger.warning("martingale plugin %r (%s) failed to load: %s", ep.name, ep.value, e)
            continue
        pm.register(plugin, name=ep.name)
    pm.check_pending()
    return pm


def extractors(pm: pluggy.PluginManager | None = None) -> dict[str, Extractor]:
    """All registered extractors by name; a duplicate name is a configuration error."""
    found: dict[str, Extractor] = {}

    def register(extractor: Extractor) -> None:
        if not isinstance(extractor, Extractor):
            raise ConfigError(f"{extractor!r} is not an Extractor (needs .name and async .extract)")
        if extractor.name in found:
            raise ConfigError(f"two plugins register an extractor named {extractor.name!r}")
        found[extractor.name] = extractor

    (pm or plugin_manager()).hook.martingale_register_extractors(register=register)
    return found


def get_extractor(name: str, pm: pluggy.PluginManager | None = None) -> Extractor:
    """The extractor called ``name``; unknown names list what is available."""
    available = extractors(pm)
    if name not in available:
        listing = ", ".join(sorted(available)) or "none (is martingale-harness installed?)"
        broken = "".join(f"; plugin {k!r} failed to load ({v})" for k, v in FAILED_PLUGINS.items())
        raise ConfigError(f"unknown extractor {name!r}; available: {listing}{broken}")
    return available[name]
