"""martingale-harness: the Martingale Score of language models' belief updates.

The pipeline, one module per step: :mod:`~martingale_harness.protocol.solver` (what is asked) ->
:mod:`~martingale_harness.extraction.transcript` -> :mod:`~martingale_harness.extraction.base` (beliefs out of
text, via plugins) -> :mod:`~martingale_harness.scoring.scorer` (per sample, per extractor) ->
:mod:`~martingale_harness.stats.martingale` (across samples). Backends live in
:mod:`~martingale_harness.backends`, domains (datasets) in :mod:`~martingale_harness.tasks.loaders`.
"""

from importlib.metadata import PackageNotFoundError, version

from martingale_harness.stats.martingale import MartingaleResult, martingale_score

try:
    __version__ = version("martingale-harness")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["MartingaleResult", "__version__", "martingale_score"]
