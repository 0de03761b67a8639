"""What every domain loader produces: items with a question, evidence and maybe a label.

A loader reads one data source into a :class:`LoadResult`: the items, every row it skipped with
file, line and reason, and what it truncated. The rule for bad input, common to all loaders:

* the file as a whole unreadable, in the wrong format, or with no usable row: fatal
  (:class:`~martingale_harness.errors.DataError` naming the file);
* one bad row (a required field missing or empty, a value of the wrong type, a line that is not
  JSON): skipped and recorded, or fatal with ``bad_rows="error"``. The task's log records how many
  rows were skipped and why, by kind, so nothing disappears silently;
* a source most of whose rows were skipped (more than half) is most likely in another layout than
  the loader reads, so under the tasks' default ``bad_rows="skip_few"`` the task stops before any
  model call, listing the reasons by kind (:func:`check_skipped_share`); ``bad_rows="skip"`` runs on
  whatever rows are usable.

Evidence longer than the budget (characters per evidence item) is cut at the budget and ends with
a visible marker saying how much was shown; the sample's metadata lists which items were cut.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from inspect_ai.dataset import Sample

from martingale_harness.errors import ConfigError, DataError

BadRows = Literal["skip_few", "skip", "error"]
BAD_ROW_RULES: tuple[str, ...] = ("skip_few", "skip", "error")
"""``skip_few``: skip and record bad rows, stop if more than half were skipped; ``skip``: skip any number;
``error``: stop at the first."""
DEFAULT_EVIDENCE_BUDGET = 6000
"""Characters per evidence item (about 1500 tokens): a long review or reply fits whole."""


@dataclass(frozen=True)
class DomainItem:
    """One sample: the question asked for the prior, the evidence revealed after it, the label."""

    sample_id: str
    question_id: str
    question: str
    evidence: tuple[str, ...]
    label: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    """Extra JSON-serialisable fields kept in the sample's metadata (source, url, ...)."""
    truncated: tuple[int, ...] = ()
    """Indices of evidence items cut to the budget."""


@dataclass(frozen=True)
class SkippedRow:
    """A row a loader left out, and why."""

    where: str
    """``file:line`` (or ``file`` with the record's index)."""
    reason: str

    @property
    def kind(self) -> str:
        """The reason without what names the row (its id, numbers, quoted values): rows skipped for the
        same cause share a kind."""
        kind = _ROW_NAME.sub("", self.reason, count=1)
        kind = re.sub(r"(?<!\w)'[^']*'(?!\w)|\"[^\"]*\"", "'…'", kind)  # not the ' of "DeltaBot's"
        return re.sub(r"#?\d+(?:\.\d+)?", "N", kind)


# "post 17: ...", "review abc: ...", "question 0x12: ...": the row's name before the reason proper
_ROW_NAME = re.compile(r"^(?:post|review|paper|question|item|row|sample|submission)\s+\S+:\s*", re.IGNORECASE)


@dataclass
class LoadResult:
    """Items read from one source, with everything that was skipped or cut on the way."""

    items: list[DomainItem]
    skipped: list[SkippedRow] = field(default_factory=list)
    evidence_budget: int | None = None

    def report(self, limit: int = 50) -> dict[str, Any]:
        """The summary stored in the eval log's task metadata (``data_report``)."""
        return {
            "items": len(self.items),
            "rows_skipped": len(self.skipped),
            "skipped_by_kind": dict(Counter(s.kind for s in self.skipped).most_common()),
            "skipped": [{"where": s.where, "reason": s.reason} for s in self.skipped[:limit]],
            "evidence_budget": self.evidence_budget,
            "evidence_items_truncated": sum(len(i.truncated) for i in self.items),
            "samples_with_truncated_evidence": sum(bool(i.truncated) for i in self.items),
        }


class RowCollector:
    """Applies the bad-row rule: records a skipped row, or raises under ``bad_rows="error"``."""

    def __init__(self, bad_rows: str = "skip") -> None:  # skip_few collects as skip; the share is checked after
        if bad_rows not in BAD_ROW_RULES:
            raise ConfigError(f"bad_rows={bad_rows!r} is not supported; allowed: {', '.join(BAD_ROW_RULES)}")
        self.bad_rows = bad_rows
        self.skipped: list[SkippedRow] = []

    def bad(self, where: str, reason: str) -> None:
        if self.bad_rows == "error":
            raise DataError(where, f"{reason} (bad_rows=error; use bad_rows=skip to leave such rows out)")
        self.skipped.append(SkippedRow(where=where, reason=reason))


def check_skipped_share(loaded: LoadResult, path: str | Path, bad_rows: str, examples: int = 3) -> None:
    """Under ``bad_rows="skip_few"``, stop when more than half of the rows were skipped.

    The error lists each kind of reason with its count and a few ``file:line`` examples, and how to
    run anyway (``bad_rows=skip``). Nothing has been sent to a model when it is raised.
    """
    rows = len(loaded.items) + len(loaded.skipped)
    if bad_rows != "skip_few" or 2 * len(loaded.skipped) <= rows:
        return
    by_kind: dict[str, list[SkippedRow]] = {}
    for row in loaded.skipped:
        by_kind.setdefault(row.kind, []).append(row)
    kinds = sorted(by_kind.items(), key=lambda kv: -len(kv[1]))
    lines = [f"  {len(group)} x {kind} (e.g. {', '.join(r.where for r in group[:examples])})" for kind, group in kinds]
    raise DataError(path, f"{len(loaded.skipped)} of {rows} rows were skipped, more than half: the file is probably "
                          "not in a layout this loader reads. Skipped by kind:\n" + "\n".join(lines) +
                    f"\nFix the data, or pass -T bad_rows=skip to run on the {len(loaded.items)} usable row(s) anyway")


def jsonl_records(path: Path, rows: RowCollector) -> Iterator[tuple[int, Any]]:
    """(line number, value) for each line of a JSON Lines file that parses; bad lines go to ``rows``.

    Lines are split on ``\\n`` only: real review texts contain U+2028, which ``str.splitlines``
    would treat as a line break.
    """
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, 1):
            where = f"{path}:{lineno}"
            try:
                line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError:
                rows.bad(where, "line is not UTF-8 text")
                continue
            if not line.strip():
                continue
            try:
                yield lineno, json.loads(line)
            except json.JSONDecodeError as e:
                rows.bad(where, f"line is not valid JSON ({e.msg} at column {e.colno})")


def check_budget(budget: int | None) -> int | None:
    """``None`` or 0 mean no limit; anything else must be a positive number of characters."""
    if budget is None or budget == 0:
        return None
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 0:
        raise ConfigError(f"evidence_budget must be a positive number of characters (0 = no limit), got {budget!r}")
    return budget


def truncate_evidence(texts: Sequence[str], budget: int | None) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """Cut each text to ``budget`` characters with a visible marker; returns texts and cut indices."""
    if budget is None:
        return tuple(texts), ()
    out, cut = [], []
    for i, text in enumerate(texts):
        if len(text) > budget:
            out.append(f"{text[:budget].rstrip()} [... truncated: {budget} of {len(text)} characters shown]")
            cut.append(i)
        else:
            out.append(text)
    return tuple(out), tuple(cut)


def item_to_sample(item: DomainItem) -> Sample:
    """The inspect sample: the question is the input; evidence, label and extras in metadata."""
    return Sample(
        id=item.sample_id,
        input=item.question,
        target="" if item.label is None else str(item.label),
        metadata={
            **item.metadata,
            "question_id": item.question_id,
            "label": item.label,
            "evidence": list(item.evidence),
            "evidence_truncated": list(item.truncated),
        },
    )
