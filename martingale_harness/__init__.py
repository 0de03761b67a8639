"""martingale-harness: the Martingale Score of language models' belief updates.

The pipeline, one sub-package per step (docs/architecture.md): :mod:`~martingale_harness.tasks` (one folder
per eval: its data as samples) -> :mod:`~martingale_harness.protocol` (what is asked, the recorded turns) ->
:mod:`~martingale_harness.extraction` (beliefs out of text, via plugins) -> :mod:`~martingale_harness.scoring`
(one belief-score record per sample and extractor, the metrics) -> :mod:`~martingale_harness.stats` (across
samples). Models are served by :mod:`~martingale_harness.backends`; after a run,
:mod:`~martingale_harness.reporting`; before one, :mod:`~martingale_harness.planning`.
"""

from importlib.metadata import PackageNotFoundError, version

from martingale_harness.stats.martingale import MartingaleResult, martingale_score

try:
    __version__ = version("martingale-harness")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["MartingaleResult", "__version__", "martingale_score"]
