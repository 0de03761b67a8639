"""martingale-harness: the Martingale Score of language models' belief updates.

The pipeline, one module per step: :mod:`~martingale_harness.protocol` (what is asked) ->
:mod:`~martingale_harness.transcript` -> :mod:`~martingale_harness.extraction` (beliefs out of
text, via plugins) -> :mod:`~martingale_harness.scoring` (per sample, per extractor) ->
:mod:`~martingale_harness.stats` (across samples). Backends live in
:mod:`~martingale_harness.backends`, domains (datasets) in :mod:`~martingale_harness.domains`.
"""

from importlib.metadata import PackageNotFoundError, version

from martingale_harness.stats import MartingaleResult, martingale_score

try:
    __version__ = version("martingale-harness")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["MartingaleResult", "__version__", "martingale_score"]
