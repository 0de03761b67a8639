"""ForecastBench questions as forecasting items (Karger et al., ICLR 2025).

A question set is ``{forecast_due_date, question_set, questions: [...]}``; its resolutions live
beside it in ``<forecast_due_date>_resolution_set.json``. Market questions (manifold, metaculus,
polymarket, infer) give one item each; dataset questions (acled, dbnomics, fred, wikipedia,
yfinance) give one item per resolution date with ``{forecast_due_date}`` and ``{resolution_date}``
filled in. An item is labelled only where its resolution is ``resolved`` with ``resolved_to`` 0 or
1; unlabelled items still count for the Martingale Score.

Decisions: a missing resolution file is allowed (every item unlabelled); a resolution file that
names another question set, or a question id this set does not have, is an error (the files do not
belong together). A question with a missing field, an empty text or bad resolution dates is a bad
row (skipped and recorded, or fatal with ``bad_rows="error"``); a duplicate id is fatal.
Combination questions (list-valued ids) are not part of ``-llm`` question sets and are skipped in
resolution files.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from martingale_harness.errors import DataError
from martingale_harness.tasks.base import (
    DEFAULT_EVIDENCE_BUDGET,
    DomainItem,
    LoadResult,
    RowCollector,
    check_budget,
    truncate_evidence,
)

MARKET_SOURCES = frozenset({"manifold", "metaculus", "polymarket", "infer"})
DATASET_SOURCES = frozenset({"acled", "dbnomics", "fred", "wikipedia", "yfinance"})
_QUESTION_FIELDS = ("id", "source", "question", "resolution_dates")
_RESOLUTION_FIELDS = ("id", "source", "resolution_date", "resolved", "resolved_to")
_LAYOUTS = {
    "question set": 'one ForecastBench question-set JSON object {"forecast_due_date", "question_set", "questions": '
                    '[{"id", "source", "question", "resolution_dates", ...}]}',
    "resolution set": 'one ForecastBench resolution-set JSON object {"forecast_due_date", "question_set", '
                      '"resolutions": [{"id", "source", "resolution_date", "resolved", "resolved_to"}]}',
}


@dataclass(frozen=True)
class ForecastItem:
    """One forecasting sample: a question at one resolution date."""

    sample_id: str
    question_id: str
    source: str
    question: str
    resolution_criteria: str
    background: str
    source_intro: str
    freeze_datetime: str
    freeze_value: str
    freeze_value_explanation: str
    forecast_due_date: str
    resolution_date: str | None
    label: int | None
    url: str


def _read_json(path: Path, what: str) -> Any:
    if not path.exists():
        raise DataError(path, f"{what} file does not exist")
    if not path.is_file():
        raise DataError(path, f"{what} path is not a file (pass the question set JSON file itself)")
    try:
        with path.open(encoding="utf-8") as f:
            return json.load(f)
    except UnicodeDecodeError as e:
        raise DataError(path, f"{what} is not UTF-8 text ({e.reason})") from None
    except json.JSONDecodeError as e:
        if e.msg == "Extra data" and _first_line_is_json(path):
            raise DataError(path, f"{what} is JSON Lines (one value per line), but the forecast task expects "
                                  f"{_LAYOUTS[what]}") from None
        raise DataError(path, f"{what} is not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})") from None


def _first_line_is_json(path: Path) -> bool:
    """Whether the first non-empty line of ``path`` is a JSON value by itself (the file is JSON Lines)."""
    with path.open(encoding="utf-8") as f:
        line = next((raw for raw in f if raw.strip()), "")
    try:
        json.loads(line)
    except json.JSONDecodeError:
        return False
    return True


def _require(path: Path, obj: Any, fields: Iterable[str], where: str, layout: str = "") -> None:
    expected = f" (the forecast task expects {layout})" if layout else ""
    if not isinstance(obj, dict):
        raise DataError(path, f"wrong schema: {where} must be a JSON object, got {type(obj).__name__}{expected}")
    missing = [f for f in fields if f not in obj]
    if missing:
        raise DataError(path, f"wrong schema: {where} lacks field(s) {', '.join(missing)}{expected}")


def _text(value: Any) -> str:
    return "" if value is None or value == "N/A" else str(value)


def resolution_set_path(question_set: Path, forecast_due_date: str) -> Path:
    """Where ForecastBench keeps the resolutions of a question set: beside it, by due date."""
    return question_set.with_name(f"{forecast_due_date}_resolution_set.json")


def load_forecastbench(path: str | Path, rows: RowCollector | None = None) -> list[ForecastItem]:
    """Read a ForecastBench question set (and its resolution set when present) into items.

    A question with missing fields or bad resolution dates is a bad row (``rows`` decides: skip
    and record, or raise); a duplicate id, a mismatched resolution set, or no usable question at
    all is fatal.
    """
    rows = rows or RowCollector("skip")
    qpath = Path(path)
    data = _read_json(qpath, "question set")
    _require(qpath, data, ("forecast_due_date", "questions"), "the question set", _LAYOUTS["question set"])
    due = str(data["forecast_due_date"])
    questions = data["questions"]
    if not isinstance(questions, list) or not questions:
        raise DataError(qpath, "wrong schema: 'questions' must be a non-empty list")

    by_id: dict[str, dict[str, Any]] = {}
    skipped_ids: set[str] = set()
    for i, q in enumerate(questions):
        problem = _question_problem(q, i)
        if problem is not None:
            rows.bad(f"{qpath} question #{i}", problem)
            if isinstance(q, dict) and isinstance(q.get("id"), str):
                skipped_ids.add(q["id"])
            continue
        if q["id"] in by_id:
            raise DataError(qpath, f"question id {q['id']!r} appears more than once")
        by_id[q["id"]] = q
    if not by_id:
        reasons = "; ".join(s.reason for s in rows.skipped[:3])
        raise DataError(qpath, f"no usable question ({reasons})")

    labels = _load_labels(resolution_set_path(qpath, due), data, by_id, skipped_ids)

    items: list[ForecastItem] = []
    for q in by_id.values():
        dates = q["resolution_dates"]
        for date in dates if isinstance(dates, list) else [None]:
            items.append(_item(q, due, date, labels.get((q["id"], date))))
    return items


def _question_problem(q: Any, i: int) -> str | None:
    """Why question #i cannot be used, or None."""
    if not isinstance(q, dict):
        return f"wrong schema: question #{i} must be a JSON object, got {type(q).__name__}"
    missing = [f for f in _QUESTION_FIELDS if f not in q]
    if missing:
        return f"wrong schema: question #{i} lacks field(s) {', '.join(missing)}"
    qid, source, dates = q["id"], q["source"], q["resolution_dates"]
    if not isinstance(qid, str):
        return f"wrong schema: question #{i} has a non-string id {qid!r}"
    if not str(q["question"]).strip():
        return f"question {qid!r} has an empty question text"
    if source in DATASET_SOURCES or isinstance(dates, list):
        if not isinstance(dates, list) or not dates or not all(isinstance(d, str) for d in dates):
            return f"question {qid!r} ({source}) needs a non-empty list of resolution_dates"
    elif dates != "N/A":
        return f"question {qid!r} ({source}): resolution_dates must be 'N/A' or a list"
    return None


def load(
    path: str | Path, *, evidence_budget: int | None = DEFAULT_EVIDENCE_BUDGET, bad_rows: str = "skip"
) -> LoadResult:
    """The ``forecastbench`` domain loader (see ``tasks.base``)."""
    budget = check_budget(evidence_budget)
    rows = RowCollector(bad_rows)
    items = []
    for item in load_forecastbench(path, rows):
        evidence, cut = truncate_evidence(evidence_items(item), budget)
        items.append(DomainItem(
            sample_id=item.sample_id,
            question_id=item.question_id,
            question=question_text(item),
            evidence=evidence,
            label=item.label,
            metadata={"source": item.source, "resolution_date": item.resolution_date,
                      "forecast_due_date": item.forecast_due_date, "url": item.url},
            truncated=cut,
        ))
    return LoadResult(items=items, skipped=rows.skipped, evidence_budget=budget)


def _load_labels(
    rpath: Path, question_set: dict[str, Any], by_id: dict[str, dict[str, Any]], skipped_ids: set[str]
) -> dict[tuple[str, str | None], int]:
    """Labels keyed by (question id, resolution date), the date being None for market questions."""
    if not rpath.exists():
        return {}
    data = _read_json(rpath, "resolution set")
    _require(rpath, data, ("forecast_due_date", "resolutions"), "the resolution set", _LAYOUTS["resolution set"])
    due = str(question_set["forecast_due_date"])
    if str(data["forecast_due_date"]) != due:
        raise DataError(rpath, f"resolution set is for forecast_due_date {data['forecast_due_date']}, "
                               f"but the question set is due {due}")
    qs_name, rs_name = question_set.get("question_set"), data.get("question_set")
    if qs_name and rs_name and qs_name != rs_name:
        raise DataError(rpath, f"resolution set belongs to question set {rs_name!r}, not {qs_name!r}")
    resolutions = data["resolutions"]
    if not isinstance(resolutions, list):
        raise DataError(rpath, "wrong schema: 'resolutions' must be a list")

    labels: dict[tuple[str, str | None], int] = {}
    for i, r in enumerate(resolutions):
        _require(rpath, r, _RESOLUTION_FIELDS, f"resolution #{i}")
        rid = r["id"]
        if isinstance(rid, list) or rid in skipped_ids:
            continue  # combination question (not in an -llm question set), or a question left out
        if rid not in by_id:
            raise DataError(rpath, f"resolution #{i} refers to question id {rid!r}, which the question set "
                                   "does not contain (is this the resolution set of another question set?)")
        dates = by_id[rid]["resolution_dates"]
        if isinstance(dates, list):
            if r["resolution_date"] not in dates:
                raise DataError(rpath, f"resolution #{i} for {rid!r} has resolution_date {r['resolution_date']!r}, "
                                       "which is not among the question's resolution_dates")
            key: tuple[str, str | None] = (rid, r["resolution_date"])
        else:
            key = (rid, None)
        if r["resolved"] is True and r["resolved_to"] in (0, 1) and not isinstance(r["resolved_to"], bool):
            labels[key] = int(r["resolved_to"])
    return labels


def _item(q: dict[str, Any], due: str, date: str | None, label: int | None) -> ForecastItem:
    def fill(text: str) -> str:
        # str.replace, not str.format: question texts contain other braces
        text = text.replace("{forecast_due_date}", due)
        return text.replace("{resolution_date}", date) if date is not None else text

    criteria = _text(q.get("market_info_resolution_criteria")) or _text(q.get("resolution_criteria"))
    return ForecastItem(
        sample_id=q["id"] if date is None else f"{q['id']}@{date}",
        question_id=q["id"],
        source=str(q["source"]),
        question=fill(str(q["question"])),
        resolution_criteria=fill(criteria),
        background=fill(_text(q.get("background"))).strip(),
        source_intro=fill(_text(q.get("source_intro"))),
        freeze_datetime=_text(q.get("freeze_datetime")),
        freeze_value=_text(q.get("freeze_datetime_value")),
        freeze_value_explanation=_text(q.get("freeze_datetime_value_explanation")),
        forecast_due_date=due,
        resolution_date=date,
        label=label,
        url=_text(q.get("url")),
    )


def question_text(item: ForecastItem) -> str:
    """The question as asked for the prior: no background and no crowd value yet."""
    parts = [item.source_intro, f"Question: {item.question}"]
    if item.resolution_criteria:
        parts.append(f"Resolution criteria: {item.resolution_criteria}")
    parts.append(f"Today's date: {item.forecast_due_date}.")
    return "\n\n".join(p for p in parts if p)


def evidence_items(item: ForecastItem) -> list[str]:
    """The evidence shown before the posterior: background, then the value at freeze time."""
    evidence = []
    if item.background:
        evidence.append(f"Background: {item.background}")
    if item.freeze_value:
        when = item.freeze_datetime[:10] or "the freeze date"
        explanation = item.freeze_value_explanation or "Value"
        evidence.append(f"{explanation.rstrip('.')} as of {when}: {item.freeze_value}")
    return evidence
