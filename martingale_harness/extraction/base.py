"""Extractors turn a transcript into a belief trajectory; they are plugins (see ``hookspecs``)."""

from __future__ import annotations

import logging
import traceback
from typing import Protocol, runtime_checkable

from martingale_harness.extraction.beliefs import BeliefReading
from martingale_harness.extraction.transcript import Transcript

logger = logging.getLogger(__name__)


@runtime_checkable
class Extractor(Protocol):
    """Reads one belief per protocol turn (b_0 .. b_T) out of a transcript.

    Must return exactly one :class:`BeliefReading` per turn of ``transcript``; a belief that
    cannot be read is ``BeliefReading.failed(reason, kind)``, never a guessed number, with a kind
    from :data:`~martingale_harness.extraction.beliefs.FAILURE_KINDS` (or one of the plugin's own) so the log
    can count failures by kind. ``Turn.stop_reason`` says whether an answer was cut off by the token
    limit (``Turn.truncated``); ``Turn.prompt`` holds what the model was shown at that turn.

    An extractor that calls models may declare ``model_roles = ("grader",)``: tasks then refuse to
    start unless each role is bound (``--model-role grader=...``).

    An extractor that reads token probabilities may declare ``needs_yes_no_probe = True``: the
    protocol then asks the evaluated model a one-word Yes/No question after every belief turn
    (a side call, not part of the conversation) with logprobs requested, and records the result in
    ``Turn.probe``. Probes are made at generation time only; re-scoring cannot add them.

    An extractor that reads the belief as JSON may declare ``needs_structured_probe = True``: the
    protocol then asks the evaluated model after every belief turn and prior repeat, likewise as a side
    call, for ``{"probability": X}`` under a JSON response schema, and records the reply and how the
    schema was enforced in ``Turn.structured``. Generation time only, as for the Yes/No probe.

    An extractor that raises or breaks this contract harms only its own readings (:func:`safe_extract`).
    """

    name: str

    async def extract(self, transcript: Transcript) -> list[BeliefReading]: ...


PLUGIN_ERROR_KIND = "plugin_error"
"""The failure kind of readings the harness substitutes when an extractor raises or breaks its contract."""

_warned: set[str] = set()


async def safe_extract(extractor: Extractor, transcript: Transcript) -> list[BeliefReading]:
    """``extractor.extract(transcript)``, with a broken plugin contained to its own readings.

    An extractor that raises, returns the wrong number of readings, or returns something that is not a
    valid :class:`BeliefReading` (an ``ok`` reading without a probability, a ``failed`` one with a number
    or without a reason) gets failed readings of kind :data:`PLUGIN_ERROR_KIND` with the error as the
    reason: they count in its ``extraction_failure_rate`` and no other extractor's scores change. The
    first error of each extractor in a run is logged as a warning with its traceback (in the eval log).
    """
    name = str(getattr(extractor, "name", type(extractor).__name__))
    n = len(transcript.turns)
    try:
        readings = await extractor.extract(transcript)
    except Exception as e:
        _warn_once(name, f"extractor {name!r} raised {type(e).__name__}: {e}", exc_info=True)
        return [BeliefReading.failed(f"extractor {name!r} raised {type(e).__name__}: {e}", PLUGIN_ERROR_KIND)] * n
    if not isinstance(readings, list | tuple) or len(readings) != n:
        got = f"{len(readings)} readings" if isinstance(readings, list | tuple) else repr(type(readings).__name__)
        problem = f"extractor {name!r} returned {got} for {n} turns"
        _warn_once(name, problem)
        return [BeliefReading.failed(problem, PLUGIN_ERROR_KIND)] * n
    checked = []
    for i, reading in enumerate(readings):
        problem = contract_problem(reading)
        if problem is not None:
            problem = f"extractor {name!r}, turn {i}: {problem}"
            _warn_once(name, problem)
            reading = BeliefReading.failed(problem, PLUGIN_ERROR_KIND)
        checked.append(reading)
    return checked


def contract_problem(reading: object) -> str | None:
    """What is wrong with ``reading`` as an extractor's output, or ``None`` when it is valid."""
    if not isinstance(reading, BeliefReading):
        return f"returned {type(reading).__name__}, not a BeliefReading"
    if reading.status == "ok":
        value = reading.value
        if not isinstance(value, int | float) or isinstance(value, bool) or not 0.0 <= value <= 1.0:
            return f"an ok reading needs a probability in [0, 1], got {value!r}"
        return None
    if reading.status == "failed":
        if reading.value is not None:
            return f"a failed reading carries no number, got {reading.value!r}"
        if not reading.reason or not reading.kind:
            return "a failed reading needs a reason and a kind"
        return None
    return f"status must be 'ok' or 'failed', got {reading.status!r}"


def _warn_once(name: str, message: str, exc_info: bool = False) -> None:
    from martingale_harness.protocol.refusals import eval_id

    key = f"{eval_id()}/{name}"  # once per run and extractor: each eval log gets its warning
    if key in _warned:
        return
    _warned.add(key)
    detail = f"\n{traceback.format_exc()}" if exc_info else ""
    logger.warning("%s; its readings of this and later samples are failed readings of kind %r%s",
                   message, PLUGIN_ERROR_KIND, detail)
