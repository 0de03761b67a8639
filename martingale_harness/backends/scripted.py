"""``sim/scripted -M answers=FILE``: an offline model that says exactly what a JSONL file scripts.

For plugin and protocol tests on the text an author cares about (a verbal probability, a refusal, a
cut-off answer), without writing a model provider. Each line of ``FILE`` is one object::

    {"id": "q-17", "turn": 0, "answer": "Roughly a one in three chance."}   # sample q-17, the prior
    {"id": "q-17", "answer": "About even now."}                              # q-17, any other turn
    {"turn": 1, "answer": "I'd say likely."}                                 # any sample, turn 1
    {"answer": "Probability: 0.5"}                                           # everything else

``turn`` is the belief turn k (0 = the prior, 1 = the first posterior, ...); ``id`` is the inspect
sample id (compared as text). The most specific entry wins: (id, turn), then (id), then (turn), then
the default; a belief turn that no entry covers is an error naming the sample and the turn, never a
made-up answer. Optional ``"stop_reason": "max_tokens"`` marks the answer as cut off by the token
limit. A request that is not a belief turn (a debate argument, the Yes/No probe) gets the entry with
``"turn": "other"`` when there is one, else a neutral sentence that states no probability; scripted
answers carry no logprobs. Usage is counted in words, as for the other ``sim`` models.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

NEUTRAL = "I have nothing to add on this point."
STOP_REASONS = ("stop", "max_tokens")


@dataclass(frozen=True)
class ScriptedAnswer:
    """One scripted reply and how its generation ended."""

    text: str
    stop_reason: str = "stop"


class ScriptedAnswers:
    """The answers of a script file, looked up by sample id and belief turn."""

    def __init__(self, entries: dict[tuple[str | None, int | str | None], ScriptedAnswer], source: str) -> None:
        self.entries = entries
        self.source = source

    @classmethod
    def load(cls, path: str | Path) -> ScriptedAnswers:
        """Read and check a script file; every mistake names its line."""
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"sim/scripted: answers file {str(path)!r} does not exist")
        entries: dict[tuple[str | None, int | str | None], ScriptedAnswer] = {}
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            where = f"sim/scripted: {path}:{number}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{where}: not JSON ({e.msg})") from None
            if not isinstance(row, dict):
                raise ValueError(f"{where}: each line must be a JSON object")
            key, answer = _entry(row, where)
            if key in entries:
                raise ValueError(f"{where}: a second answer for id={key[0]!r}, turn={key[1]!r}")
            entries[key] = answer
        if not entries:
            raise ValueError(f"sim/scripted: answers file {str(path)!r} has no answers")
        return cls(entries, str(path))

    def answer(self, sample_id: object, turn: int | None) -> ScriptedAnswer:
        """The reply for belief turn ``turn`` of ``sample_id`` (``turn=None``: not a belief request)."""
        sid = None if sample_id is None else str(sample_id)
        if turn is None:
            for key in ((sid, "other"), (None, "other")):
                if key in self.entries:
                    return self.entries[key]
            return ScriptedAnswer(NEUTRAL)
        for key in ((sid, turn), (sid, None), (None, turn), (None, None)):
            if key in self.entries:
                return self.entries[key]
        raise ValueError(f"sim/scripted: {self.source} has no answer for sample {sid!r}, belief turn {turn} "
                         "(add a line with that id and turn, or a default without them)")


def _entry(row: dict[str, Any], where: str) -> tuple[tuple[str | None, int | str | None], ScriptedAnswer]:
    unknown = sorted(set(row) - {"id", "turn", "answer", "stop_reason"})
    if unknown:
        raise ValueError(f"{where}: unknown fields {unknown}; allowed: answer, id, turn, stop_reason")
    answer = row.get("answer")
    if not isinstance(answer, str):
        raise ValueError(f"{where}: 'answer' must be a string")
    turn = row.get("turn")
    if turn is not None and turn != "other" and (isinstance(turn, bool) or not isinstance(turn, int) or turn < 0):
        raise ValueError(f"{where}: 'turn' must be a belief turn index (0 = the prior) or \"other\", got {turn!r}")
    stop = row.get("stop_reason", "stop")
    if stop not in STOP_REASONS:
        raise ValueError(f"{where}: 'stop_reason' must be one of {', '.join(STOP_REASONS)}, got {stop!r}")
    sid = row.get("id")
    return (None if sid is None else str(sid), turn), ScriptedAnswer(answer, stop)
