"""A source most of whose rows are skipped stops before any model call (unless bad_rows=skip is passed),
and the log's data report counts the skipped rows per kind of reason either way."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from inspect_ai import eval as inspect_eval

from martingale_harness.errors import DataError
from martingale_harness.tasks.base import SkippedRow
from martingale_harness.tasks.builder import domain_task


def _post(index: int, chain: bool = True) -> dict[str, Any]:
    comments = [f"Reply {index}: consider the other side.", "!delta fair point" if chain else "I disagree."]
    if chain:
        comments.append("Confirmed: 1 delta awarded to /u/someone")
    return {"post_index": index, "title": f"CMV: View number {index}", "selftext": "Because reasons.",
            "delta_threads": [{"row": 0, "comments": comments}]}


def _cmv_file(path: Path, good: int, unchained: int, not_json: int) -> Path:
    lines = [json.dumps(_post(i)) for i in range(good)]
    lines += [json.dumps(_post(100 + i, chain=False)) for i in range(unchained)]
    lines += ["{not json"] * not_json
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_kind_drops_what_names_the_row() -> None:
    a = SkippedRow("f:3", "post 17: delta thread #0 is not a chain of reply")
    b = SkippedRow("f:9", "post abc: delta thread #12 is not a chain of reply")
    assert a.kind == b.kind == "delta thread N is not a chain of reply"
    duplicate = SkippedRow("f:1", "duplicate post_index '1' (first at f:1)")
    assert duplicate.kind == "duplicate post_index '…' (first at f:N)"


def test_mostly_skipped_rows_stop_the_task_with_reasons_by_kind(tmp_path: Path) -> None:
    path = _cmv_file(tmp_path / "posts.jsonl", good=1, unchained=2, not_json=1)
    with pytest.raises(DataError) as err:
        domain_task("cmv", data=str(path))
    message = str(err.value)
    assert message.startswith(f"{path}: 3 of 4 rows were skipped, more than half")
    assert "2 x delta thread N is not a chain" in message and f"(e.g. {path}:2, {path}:3)" in message
    assert "1 x line is not valid JSON" in message and f"{path}:4" in message
    assert "pass -T bad_rows=skip to run on the 1 usable row(s)" in message


def test_an_explicit_skip_runs_and_the_log_counts_the_kinds(tmp_path: Path) -> None:
    path = _cmv_file(tmp_path / "posts.jsonl", good=1, unchained=2, not_json=1)
    (log,) = inspect_eval(domain_task("cmv", data=str(path), bad_rows="skip"), model="sim/bayesian",
                          display="none", log_dir=str(tmp_path / "logs"))
    assert log.status == "success" and len(log.samples or []) == 1
    report = (log.eval.metadata or {})["data_report"]
    assert report["rows_skipped"] == 3
    assert report["skipped_by_kind"] == {
        "delta thread N is not a chain of reply and delta award (the last comment must be DeltaBot's confirmation "
        "of the award before it, or the award itself: !delta or ∆)": 2,
        "line is not valid JSON (Expecting property name enclosed in double quotes at column N)": 1}


def test_half_or_fewer_skipped_runs_by_default_and_error_stops_at_the_first(tmp_path: Path) -> None:
    path = _cmv_file(tmp_path / "posts.jsonl", good=2, unchained=1, not_json=1)
    task = domain_task("cmv", data=str(path))
    assert len(task.dataset) == 2
    with pytest.raises(DataError, match=r"posts.jsonl:3: post 100: delta thread #0 is not a chain"):
        domain_task("cmv", data=str(path), bad_rows="error")
