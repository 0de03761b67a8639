"""The ``structured`` extractor: the belief the model gives as JSON under a response schema.

After every belief turn (and every repeat of the prior) the protocol asks the evaluated model, on a copy
of the conversation, for its current probability that the question resolves Yes as a JSON object
``{"probability": X}`` (``protocol.STRUCTURED_PROBE``), with the JSON schema ``protocol.STRUCTURED_SCHEMA``
(an object with one required number ``probability`` in [0, 1] and no other properties) sent as inspect's
``response_schema`` or, for a backend that cannot constrain its output, written into the request. The
record says which (``mode``: ``constrained``, ``inspect``, ``prompt``).

Reading rules, strict: the reply, with surrounding whitespace removed, must be one JSON document (no
code fence, no text around it, no ``NaN``/``Infinity``) that is an object whose only key is
``probability`` and whose value is a JSON number in [0, 1]. Anything else is a failure, never a guess:

- ``other``: no structured probe was recorded for the turn (the run was made without this extractor:
  probes exist only at generation time), or the object has keys besides ``probability``;
- ``truncated``: the reply is not valid JSON and was cut off by the token limit;
- ``no_number``: the reply is not valid JSON, not an object, has no ``probability``, or its
  ``probability`` is not a number (a string, a boolean, null);
- ``out_of_range``: ``probability`` is a number outside [0, 1] (some APIs drop the schema's bounds).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from martingale_harness.plugin_api import BeliefReading, Extractor, Transcript, Turn, hookimpl

__all__ = ["StructuredExtractor", "read_structured"]

FIELD = "probability"
_SHOWN = 80  # characters of a bad reply quoted in the reason


def _no_constants(name: str) -> Any:
    """Refuse ``NaN``, ``Infinity``, ``-Infinity``, which ``json.loads`` accepts and JSON does not."""
    raise ValueError(f"{name} is not valid JSON")


def _quote(text: str) -> str:
    return repr(text if len(text) <= _SHOWN else text[:_SHOWN] + "...")


def read_structured(turn: Turn) -> BeliefReading:
    """The belief one turn's recorded structured probe states, or why there is none."""
    record = turn.structured
    if record is None:
        return BeliefReading.failed(
            "no structured probe was recorded for this turn: structured reads a JSON belief asked at generation "
            "time, so run the eval with structured among -T extractors (re-scoring an older log cannot add it)",
            "other",
        )
    text = str(record.get("completion") or "").strip()
    where = f"the structured probe's reply ({record.get('model')}, mode {record.get('mode')})"
    try:
        data = json.loads(text, parse_constant=_no_constants)
    except ValueError as e:
        if record.get("stop_reason") == "max_tokens":
            return BeliefReading.failed(f"{where} was cut off by the token limit: {_quote(text)}", "truncated")
        return BeliefReading.failed(f"{where} is not valid JSON ({e}): {_quote(text)}", "no_number")
    if not isinstance(data, dict):
        return BeliefReading.failed(f"{where} is a JSON {type(data).__name__}, not an object: {_quote(text)}",
                                    "no_number")
    if FIELD not in data:
        return BeliefReading.failed(f"{where} has no {FIELD!r}: {_quote(text)}", "no_number")
    extra = sorted(set(data) - {FIELD})
    if extra:
        return BeliefReading.failed(f"{where} has keys the schema does not allow ({', '.join(extra)}): "
                                    f"{_quote(text)}", "other")
    value = data[FIELD]
    if isinstance(value, bool) or not isinstance(value, int | float):
        return BeliefReading.failed(f"{where}: {FIELD!r} is not a number: {_quote(text)}", "no_number")
    if not 0.0 <= value <= 1.0:
        return BeliefReading.failed(f"{where}: {FIELD!r} outside [0, 1]: {_quote(text)}", "out_of_range")
    return BeliefReading.ok(float(value), matched=text)


class StructuredExtractor:
    """The belief per turn from the recorded structured (JSON) probe."""

    name = "structured"
    needs_structured_probe = True

    async def extract(self, transcript: Transcript) -> list[BeliefReading]:
        return [read_structured(turn) for turn in transcript.turns]


@hookimpl
def martingale_register_extractors(register: Callable[[Extractor], None]) -> None:
    register(StructuredExtractor())
