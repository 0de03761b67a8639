"""ForecastBench loading on the real files in ../shared/data, and clear errors for bad input."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from martingale_harness.errors import DataError
from martingale_harness.tasks.base import item_to_sample
from martingale_harness.tasks.config import task_config
from martingale_harness.tasks.forecast.dataset import evidence_items, load, load_forecastbench

DATES = ["2025-10-26", "2025-11-09", "2025-11-23", "2025-12-07"]


def _expected_counts(qfile: Path, rfile: Path) -> tuple[int, int]:
    """Samples and labels implied by the raw files, counted independently of the loader."""
    questions = json.loads(qfile.read_text())["questions"]
    samples = sum(1 if q["resolution_dates"] == "N/A" else len(q["resolution_dates"]) for q in questions)
    labels = sum(1 for r in json.loads(rfile.read_text())["resolutions"]
                 if r["resolved"] and r["resolved_to"] in (0, 1))
    return samples, labels


@pytest.mark.parametrize("date", DATES)
def test_counts_match_the_raw_files(forecastbench_dir: Path, date: str) -> None:
    qfile = forecastbench_dir / f"{date}-llm.json"
    items = load_forecastbench(qfile)
    samples, labels = _expected_counts(qfile, forecastbench_dir / f"{date}_resolution_set.json")
    assert len(items) == samples
    assert sum(i.label is not None for i in items) == labels
    assert len({i.sample_id for i in items}) == len(items)
    assert Counter(i.label for i in items if i.label is not None).keys() <= {0, 1}


def test_dataset_questions_fill_placeholders(forecastbench_dir: Path) -> None:
    items = load_forecastbench(forecastbench_dir / "2025-10-26-llm.json")
    assert not any("{resolution_date}" in i.question or "{forecast_due_date}" in i.question for i in items)
    fred = [i for i in items if i.question_id == "DAAA"]
    assert [i.resolution_date for i in fred] == sorted(i.resolution_date for i in fred)
    assert len(fred) == 8 and all(i.resolution_date in i.question and "2025-10-26" in i.question for i in fred)
    markets = [i for i in items if i.source == "manifold"]
    assert all(i.resolution_date is None and i.sample_id == i.question_id for i in markets)


def test_sample_carries_question_and_evidence_separately(forecastbench_dir: Path) -> None:
    path = forecastbench_dir / "2025-10-26-llm.json"
    item = next(i for i in load_forecastbench(path) if i.source == "metaculus")
    domain_item = next(d for d in load(path).items if d.sample_id == item.sample_id)
    sample = item_to_sample(domain_item)
    assert item.question in sample.input and item.freeze_value not in sample.input
    assert any(item.freeze_value in e for e in evidence_items(item))
    assert list(domain_item.evidence) == evidence_items(item)
    assert sample.metadata["question_id"] == item.question_id
    assert sample.metadata["evidence"] == evidence_items(item)


def test_long_evidence_is_cut_with_a_marker_and_recorded(forecastbench_dir: Path) -> None:
    path = forecastbench_dir / "2025-10-26-llm.json"
    whole = {i.sample_id: i for i in load(path, evidence_budget=0).items}
    loaded = load(path, evidence_budget=500)
    cut = [i for i in loaded.items if i.truncated]
    expected = sum(len(e) > 500 for i in whole.values() for e in i.evidence)
    assert sum(len(i.truncated) for i in cut) == expected > 0
    for item in cut:
        for k in item.truncated:
            original = whole[item.sample_id].evidence[k]
            assert item.evidence[k].endswith(f"[... truncated: 500 of {len(original)} characters shown]")
            assert item.evidence[k].startswith(original[:400])
    assert loaded.report()["evidence_items_truncated"] == expected


def test_a_bad_question_is_skipped_and_recorded_or_fatal(tmp_path: Path) -> None:
    good = {"id": "a", "source": "manifold", "question": "Will it rain?", "resolution_dates": "N/A"}
    bad = {"id": "b", "source": "fred", "question": "Will X rise?"}
    path = _write(tmp_path / "set.json", {"forecast_due_date": "2025-01-01", "questions": [good, bad]})
    loaded = load(path)
    assert [i.sample_id for i in loaded.items] == ["a"]
    assert [(s.where, s.reason) for s in loaded.skipped] == [
        (f"{path} question #1", "wrong schema: question #1 lacks field(s) resolution_dates")]
    with pytest.raises(DataError, match="question #1 lacks field"):
        load(path, bad_rows="error")


def test_bundled_demo_set_loads() -> None:
    items = load_forecastbench(task_config("forecast").default_data)
    assert len({i.question_id for i in items}) >= 40
    assert sum(i.label is not None for i in items) >= 40
    assert any(i.label is None for i in items)


def test_missing_resolution_set_means_unlabelled(forecastbench_dir: Path, tmp_path: Path) -> None:
    qfile = shutil.copy(forecastbench_dir / "2025-10-26-llm.json", tmp_path)
    items = load_forecastbench(qfile)
    assert items and all(i.label is None for i in items)


def _write(path: Path, content: object) -> Path:
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


@pytest.mark.parametrize(
    "content,problem",
    [
        ("{not json", "not valid JSON"),
        ({"questions": []}, "lacks field(s) forecast_due_date"),
        ({"forecast_due_date": "2025-01-01", "questions": []}, "non-empty list"),
        ({"forecast_due_date": "2025-01-01", "questions": [{"id": "a", "source": "fred"}]},
         "question #0 lacks field(s) question, resolution_dates"),
        ({"forecast_due_date": "2025-01-01",
          "questions": [{"id": "a", "source": "fred", "question": "?", "resolution_dates": "N/A"}]},
         "needs a non-empty list of resolution_dates"),
    ],
)
def test_bad_question_sets_name_file_and_problem(tmp_path: Path, content: object, problem: str) -> None:
    path = _write(tmp_path / "set.json", content)
    with pytest.raises(DataError) as err:
        load_forecastbench(path)
    assert str(path) in str(err.value) and problem in str(err.value)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_forecastbench(tmp_path / "nope.json")


def test_resolution_set_of_another_question_set_is_rejected(forecastbench_dir: Path, tmp_path: Path) -> None:
    qfile = shutil.copy(forecastbench_dir / "2025-10-26-llm.json", tmp_path)
    shutil.copy(forecastbench_dir / "2025-11-09_resolution_set.json", tmp_path / "2025-10-26_resolution_set.json")
    with pytest.raises(DataError, match="forecast_due_date 2025-11-09") as err:
        load_forecastbench(qfile)
    assert "2025-10-26_resolution_set.json" in str(err.value)


def test_resolution_for_unknown_question_is_rejected(forecastbench_dir: Path, tmp_path: Path) -> None:
    qfile = shutil.copy(forecastbench_dir / "2025-10-26-llm.json", tmp_path)
    res = json.loads((forecastbench_dir / "2025-10-26_resolution_set.json").read_text())
    res["resolutions"][0]["id"] = "no-such-question"
    _write(tmp_path / "2025-10-26_resolution_set.json", res)
    with pytest.raises(DataError, match="no-such-question"):
        load_forecastbench(qfile)


@pytest.mark.parametrize("lines", [
    [{"id": "a", "source": "manifold", "question": "Will it rain?", "resolution_dates": "N/A"},
     {"id": "b", "source": "manifold", "question": "Will it snow?", "resolution_dates": "N/A"}],
    [{"id": "a", "source": "manifold", "question": "Will it rain?", "resolution_dates": "N/A"}],  # one line: valid JSON
])
def test_a_jsonl_file_is_refused_in_one_line_that_names_the_question_set_layout(
        tmp_path: Path, lines: list[dict[str, str]]) -> None:
    path = _write(tmp_path / "questions.jsonl", "".join(json.dumps(line) + "\n" for line in lines))
    with pytest.raises(DataError) as err:
        load(path)
    message = str(err.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    assert "the forecast task expects one ForecastBench question-set JSON object" in message
    assert '{"forecast_due_date", "question_set", "questions": [{"id", "source", "question", "resolution_dates"' \
        in message
    if len(lines) > 1:
        assert "JSON Lines" in message and "Extra data" not in message
