"""The plugin hooks of martingale-harness (pluggy project name ``martingale_harness``).

Plugins are modules or objects with ``@hookimpl`` functions, found through the entry-point group
``martingale_harness``. The built-in extractors are registered this way too.
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

from martingale_harness.extraction import Extractor

PROJECT = "martingale_harness"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def martingale_register_extractors(register: Callable[[Extractor], None]) -> None:
    """Contribute belief extractors by calling ``register(extractor)`` once for each.

    Called once, when the plugin manager is first built. Names must be unique across plugins.
    """
