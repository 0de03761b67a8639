"""A naive extractor: the last number of each answer (a percentage when followed by %)."""

import re

import pluggy

from martingale_harness.extraction.beliefs import BeliefReading

hookimpl = pluggy.HookimplMarker("martingale_harness")
_NUMBER = re.compile(r"(\d+(?:\.\d+)?)\s*(%?)")


class LastNumber:
    name = "last_number"

    async def extract(self, transcript):
        return [self._read(turn.answer) for turn in transcript.turns]

    @staticmethod
    def _read(text):
        found = _NUMBER.findall(text)
        if not found:
            return BeliefReading.failed("no number")
        value = float(found[-1][0]) / (100 if found[-1][1] else 1)
        return BeliefReading.ok(value) if 0 <= value <= 1 else BeliefReading.failed("out of range")


@hookimpl
def martingale_register_extractors(register):
    register(LastNumber())
