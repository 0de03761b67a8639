"""Paper-review loading: the real ICLR 2017 file, PeerRead layouts and local hf: paths (never the network)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from martingale_harness.errors import ConfigError, DataError
from martingale_harness.tasks.base import item_to_sample
from martingale_harness.tasks.config import task_config
from martingale_harness.tasks.loaders import get_loader
from martingale_harness.tasks.openreview.dataset import UNKNOWN_VENUE, load, parse_hf_spec, venue_from_path

SECRET = "META-REVIEW TEXT THAT MUST NOT BE SHOWN"


@pytest.fixture
def hf_offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No network and no writes to the user's cache: datasets reads these settings at call time."""
    datasets_config = pytest.importorskip("datasets.config")
    hub_constants = pytest.importorskip("huggingface_hub.constants")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets_config, "HF_DATASETS_OFFLINE", True)
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets_config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")


def _raw(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]


def _usable(row: dict[str, Any]) -> bool:
    """The documented rule, applied here independently of the loader."""
    return (isinstance(row.get("title"), str) and bool(row["title"].strip()) and isinstance(row.get("accepted"), bool)
            and isinstance(row.get("reviews"), list) and any((r.get("review") or "").strip() for r in row["reviews"]))


def test_counts_match_the_raw_file(openreview_file: Path) -> None:
    raw = _raw(openreview_file)
    usable = [r for r in raw if _usable(r)]
    loaded = load(openreview_file)
    assert len(raw) == 300 and len(loaded.items) == len(usable) == 299
    assert [i.sample_id for i in loaded.items] == [r["forum_id"] for r in usable]
    assert [i.label for i in loaded.items] == [int(r["accepted"]) for r in usable]
    assert sum(i.label for i in loaded.items) == 118  # 113 posters + 5 orals; workshop invitations are 0
    assert [len(i.evidence) for i in loaded.items] == [len(r["reviews"]) for r in usable]
    assert [(s.where, s.reason) for s in loaded.skipped] == [(f"{openreview_file}:85", "empty or missing title")]


def test_question_and_reviews_as_shown(openreview_file: Path) -> None:
    raw = {r["forum_id"]: r for r in _raw(openreview_file)}
    items = load(openreview_file, evidence_budget=0).items
    for item in items:
        row = raw[item.sample_id]
        assert item.question.startswith("A paper was submitted to ICLR 2017.")
        assert f"Title: {' '.join(row['title'].split())}\n" in item.question
        assert "Should this paper be accepted at ICLR 2017?" in item.question
        assert "Accept (" not in item.question and "Workshop Track" not in item.question  # no decision text
        for k, (evidence, review) in enumerate(zip(item.evidence, row["reviews"], strict=True), 1):
            assert evidence.startswith(f"Review {k}")
            assert evidence.endswith(review["review"].strip())
            assert (f"Rating: {review['rating']}" in evidence) == bool(review["rating"])
            assert (f"Confidence: {review['confidence']}" in evidence) == bool(review["confidence"])
    sample = item_to_sample(items[0])
    assert sample.target == "1" and sample.metadata["decision"] == "Accept (Poster)"
    json.dumps(sample.metadata)
    other = load(openreview_file, venue="NeurIPS 2030").items[0]
    assert "Should this paper be accepted at NeurIPS 2030?" in other.question
    assert other.metadata["venue"] == "NeurIPS 2030"


@pytest.mark.parametrize("path,venue", [
    ("data/iclr2017_openreview_dylanjoo_sample300.jsonl", "ICLR 2017"),
    ("PeerRead/data/iclr_2017/train/reviews/304.json", "ICLR 2017"),
    ("PeerRead/data/conll_2016/dev/reviews", "CoNLL 2016"),
    ("neurips-2021.jsonl", "NeurIPS 2021"),
    ("reviews/papers.jsonl", None),
    ("miclr20171.jsonl", None),
])
def test_venue_from_path(path: str, venue: str | None) -> None:
    assert venue_from_path(path) == venue


def _peerread(paper_id: Any, accepted: Any = True, title: Any = "A Paper", n: int = 2) -> dict[str, Any]:
    reviews = [{"comments": f"Review text {k} of paper {paper_id}.", "TITLE": f"Title {k}", "RECOMMENDATION": 5 + k,
                "REVIEWER_CONFIDENCE": 3, "IS_META_REVIEW": False, "OTHER_KEYS": "x"} for k in range(n)]
    reviews.append({"comments": SECRET, "TITLE": "ICLR committee final decision", "IS_META_REVIEW": True})
    reviews.append({"comments": SECRET, "TITLE": "Area chair summary", "is_meta_review": True})
    reviews.append({"comments": SECRET, "TITLE": "ICLR committee final decision", "IS_META_REVIEW": False})
    reviews.append({"comments": "", "TITLE": "Pre-review question", "IS_META_REVIEW": False})
    paper = {"title": title, "abstract": "We study things.", "accepted": accepted, "reviews": reviews,
             "histories": [], "id": paper_id}
    if paper_id is None:
        del paper["id"]
    return paper


PEERREAD = [_peerread("101", True, n=2), _peerread("102", False, n=3), _peerread(None, True, n=1),
            _peerread("104", False, n=2)]


def _check_peerread(loaded: Any, ids: list[str]) -> None:
    """Counts from the objects written, by the documented rule: reviews with text that are not meta."""
    expected = [len([r for r in p["reviews"] if r["comments"] and r["comments"] != SECRET]) for p in PEERREAD]
    assert [i.sample_id for i in loaded.items] == ids
    assert [len(i.evidence) for i in loaded.items] == expected == [2, 3, 1, 2]
    assert [i.label for i in loaded.items] == [1, 0, 1, 0]
    assert all(i.metadata["meta_reviews_removed"] == 3 for i in loaded.items)
    assert not any(SECRET in e or "final decision" in e for i in loaded.items for e in i.evidence)
    assert "Review 2: Title 1\nRating: 6\nConfidence: 3\n\nReview text 1 of paper 102." == loaded.items[1].evidence[1]
    assert loaded.skipped == []


def test_peerread_directory_of_paper_files(tmp_path: Path) -> None:
    reviews = tmp_path / "iclr_2017" / "train" / "reviews"
    reviews.mkdir(parents=True)
    for k, paper in enumerate(PEERREAD):
        (reviews / f"{k + 1}.json").write_text(json.dumps(paper))
    loaded = load(reviews)
    _check_peerread(loaded, ["101", "102", "3", "104"])  # the third has no id: its file stem
    assert loaded.items[0].question.startswith("A paper was submitted to ICLR 2017.")
    _check_peerread(load(reviews.parent), ["101", "102", "3", "104"])  # the split folder holding reviews/


def test_peerread_single_json_and_jsonl(tmp_path: Path) -> None:
    many = tmp_path / "papers.json"
    many.write_text(json.dumps(PEERREAD))
    _check_peerread(load(many), ["101", "102", "papers-2", "104"])
    lines = tmp_path / "papers.jsonl"
    lines.write_text("\n".join(json.dumps(p) for p in PEERREAD) + "\n")
    _check_peerread(load(lines), ["101", "102", "papers-3", "104"])
    one = tmp_path / "205.json"
    one.write_text(json.dumps(_peerread(None, False, n=3)))
    single = load(one)
    assert [(i.sample_id, len(i.evidence), i.label) for i in single.items] == [("205", 3, 0)]
    assert single.items[0].metadata["venue"] == UNKNOWN_VENUE
    assert "accepted at the venue it was submitted to?" in single.items[0].question


def test_bad_rows_are_skipped_with_file_and_line_or_fatal(tmp_path: Path) -> None:
    path = tmp_path / "papers.jsonl"
    rows = [
        _peerread("1"),
        _peerread("2", title=""),
        {**_peerread("3"), "reviews": []},
        _peerread("4", accepted="yes"),
        {k: v for k, v in _peerread("5").items() if k != "accepted"},
        "{not json",
        {**_peerread("7"), "reviews": "great paper"},
        {**_peerread("8"), "reviews": [{"comments": SECRET, "IS_META_REVIEW": True}]},
        _peerread("9", accepted=1),
        _peerread("1"),
        {**_peerread("11"), "decision": "Accept (Poster)", "accepted": None},
    ]
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    loaded = load(path)
    assert [i.sample_id for i in loaded.items] == ["1"]
    assert [(s.where, s.reason) for s in loaded.skipped] == [
        (f"{path}:2", "empty or missing title"),
        (f"{path}:3", "empty review list"),
        (f"{path}:4", "'accepted' must be true or false, got 'yes'"),
        (f"{path}:5", "lacks a boolean 'accepted' (or a boolean 'decision')"),
        (f"{path}:6", "line is not valid JSON (Expecting property name enclosed in double quotes at column 2)"),
        (f"{path}:7", "reviews must be a list, got str"),
        (f"{path}:8", "no review with text (1 listed, 1 of them meta-reviews or decision notes)"),
        (f"{path}:9", "'accepted' must be true or false, got 1"),
        (f"{path}:10", f"duplicate paper id '1' (first at {path}:1)"),
        (f"{path}:11", "lacks a boolean 'accepted' (or a boolean 'decision')"),
    ]
    with pytest.raises(DataError) as err:
        load(path, bad_rows="error")
    assert str(err.value).startswith(f"{path}:2: empty or missing title")


def test_bad_paper_files_are_reported_by_file_and_index(tmp_path: Path) -> None:
    folder = tmp_path / "reviews"
    folder.mkdir()
    (folder / "1.json").write_text(json.dumps(_peerread("1")))
    (folder / "2.json").write_text("{broken")
    (folder / "3.json").write_text(json.dumps([_peerread("3"), _peerread("4", accepted="no")]))
    loaded = load(folder)
    assert [i.sample_id for i in loaded.items] == ["1", "3"]
    assert [s.where for s in loaded.skipped] == [str(folder / "2.json"), f"{folder / '3.json'} #1"]
    assert loaded.skipped[0].reason.startswith("file is not valid JSON")


def test_file_level_problems_are_fatal(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load(tmp_path / "nope.jsonl")
    with pytest.raises(DataError, match=r"no \*\.json paper files"):
        load(tmp_path)
    broken = tmp_path / "papers.json"
    broken.write_text('{"title": "x"}\n{"title": "y"}\n')
    with pytest.raises(DataError, match="must end in .jsonl") as err:
        load(broken)
    assert str(broken) in str(err.value)
    bad_only = tmp_path / "bad.jsonl"
    bad_only.write_text(json.dumps(_peerread("1", accepted="true")) + "\n")
    with pytest.raises(DataError, match="no usable paper"):
        load(bad_only)


def test_nhop_style_rows(tmp_path: Path) -> None:
    row = {"paperhash": "doe|a_paper", "title": "A Paper", "abstract": "Abstract.", "venue": "ICLR 2023",
           "decision": True, "decision_text": "Accept: poster",
           "reviews": [{"review": {"paper_summary": "It does X.", "main_review": "Solid work.",
                                   "limitations": None}, "scores": {"rating": 8.0, "confidence": 4}},
                       {"review": {"main_review": SECRET}, "meta_review": True}]}
    path = tmp_path / "nhop.jsonl"
    path.write_text(json.dumps(row) + "\n" + json.dumps({**row, "paperhash": "x", "decision": None}) + "\n")
    loaded = load(path)
    item = loaded.items[0]
    assert (item.sample_id, item.label, item.metadata["venue"], item.metadata["decision"]) == (
        "doe|a_paper", 1, "ICLR 2023", "Accept: poster")
    assert item.evidence == ("Review 1\nRating: 8\nConfidence: 4\n\nSummary: It does X.\n\nReview: Solid work.",)
    assert "Should this paper be accepted at ICLR 2023?" in item.question
    assert [s.reason for s in loaded.skipped] == ["lacks a boolean 'accepted' (or a boolean 'decision')"]


def _layout_a_rows(n: int) -> list[dict[str, Any]]:
    return [{"forum_id": f"f{k}", "title": f"Paper {k}", "abstract": "Abs.", "decision": "?", "accepted": k % 3 == 0,
             "reviews": [{"review_title": "T", "review": f"Text {k}.{j}", "rating": "5", "confidence": "3"}
                         for j in range(1 + k % 3)]} for k in range(n)]


def test_hf_local_directory_and_files(tmp_path: Path, hf_offline: None) -> None:
    pandas = pytest.importorskip("pandas")
    rows = _layout_a_rows(7)
    folder = tmp_path / "hfdata"
    folder.mkdir()
    (folder / "train.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    parquet = tmp_path / "papers.parquet"
    pandas.DataFrame(rows).to_parquet(parquet)
    for spec in (f"hf:{folder}", f"hf:{folder}:train", f"hf:{parquet}", f"hf:{parquet}:train"):
        loaded = load(spec)
        assert [i.sample_id for i in loaded.items] == [r["forum_id"] for r in rows], spec
        assert [len(i.evidence) for i in loaded.items] == [len(r["reviews"]) for r in rows]
        assert [i.label for i in loaded.items] == [int(r["accepted"]) for r in rows]
        assert loaded.skipped == []
    with pytest.raises(DataError, match="could not load") as err:
        load(f"hf:{folder}:validation")
    assert "validation" in str(err.value)


def test_hf_hub_names_stay_offline(hf_offline: None) -> None:
    with pytest.raises(DataError) as err:
        load("hf:nobody-here/no-such-dataset")
    assert str(err.value).startswith("hf:nobody-here/no-such-dataset: could not load")
    with pytest.raises(DataError, match="needs a dataset name"):
        load("hf:")


def test_hf_without_the_datasets_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)  # import fails as if not installed
    with pytest.raises(DataError, match=r"pip install 'martingale-harness\[datasets\]'"):
        load("hf:nhop/OpenReview")


@pytest.mark.parametrize("spec,parsed", [
    ("hf:nhop/OpenReview", ("nhop/OpenReview", None)),
    ("hf:nhop/OpenReview:test", ("nhop/OpenReview", "test")),
    ("hf:/data/papers.parquet:train[:10]", ("/data/papers.parquet", "train[:10]")),
    ("hf:/data/dir", ("/data/dir", None)),
])
def test_parse_hf_spec(spec: str, parsed: tuple[str, str | None]) -> None:
    assert parse_hf_spec(spec) == parsed


def test_long_reviews_are_cut_with_a_marker_and_recorded(openreview_file: Path) -> None:
    whole = {i.sample_id: i for i in load(openreview_file, evidence_budget=0).items}
    assert whole == {i.sample_id: i for i in load(openreview_file, evidence_budget=None).items}
    loaded = load(openreview_file, evidence_budget=2000)
    expected = {(i.sample_id, k) for i in whole.values() for k, e in enumerate(i.evidence) if len(e) > 2000}
    assert {(i.sample_id, k) for i in loaded.items for k in i.truncated} == expected and len(expected) > 100
    for sample_id, k in expected:
        shown, original = {i.sample_id: i for i in loaded.items}[sample_id].evidence[k], whole[sample_id].evidence[k]
        assert shown.endswith(f"[... truncated: 2000 of {len(original)} characters shown]")
        assert shown.startswith(original[:1900])
    assert load(openreview_file).report()["evidence_items_truncated"] == 7  # at the default budget
    with pytest.raises(ConfigError, match="evidence_budget"):
        load(openreview_file, evidence_budget=-5)


def test_bundled_demo_set_loads() -> None:
    path = task_config("openreview").default_data
    loaded = get_loader("openreview")(path)
    assert len(loaded.items) >= 40 and loaded.skipped == []
    assert all(2 <= len(i.evidence) <= 4 for i in loaded.items)
    assert 0.3 <= sum(i.label for i in loaded.items) / len(loaded.items) <= 0.4
    raw = _raw(path)
    assert [i.label for i in loaded.items] == [int(r["accepted"]) for r in raw]
    assert all(r["accepted"] == r["decision"].startswith("Accept") for r in raw)
