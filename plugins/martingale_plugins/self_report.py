"""The ``self_report`` extractor: the probability a model states in each turn's visible answer.

The reading rules are :func:`~martingale_harness.extraction.belief_text.read_probability`'s (published in the plugin
API); they are the rules of the real-answer corpus (``benchmarks/extraction_corpus/README.md``).
"""

from __future__ import annotations

from collections.abc import Callable

from martingale_harness.plugin_api import (
    BeliefReading,
    Extractor,
    Transcript,
    hookimpl,
    read_probability,
    strip_reasoning,
)

__all__ = ["SelfReportExtractor", "martingale_register_extractors", "read_probability", "strip_reasoning"]


class SelfReportExtractor:
    """Reads each turn's visible answer with :func:`read_probability` (reasoning is ignored)."""

    name = "self_report"

    async def extract(self, transcript: Transcript) -> list[BeliefReading]:
        return [read_probability(turn.answer, truncated=turn.truncated, given=f"{transcript.question}\n{turn.prompt}")
                for turn in transcript.turns]


@hookimpl
def martingale_register_extractors(register: Callable[[Extractor], None]) -> None:
    register(SelfReportExtractor())
