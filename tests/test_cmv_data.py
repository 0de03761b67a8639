"""CMV loading on the real file in ../shared/data and on small files written here."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from martingale_harness.errors import ConfigError, DataError
from martingale_harness.tasks.base import item_to_sample
from martingale_harness.tasks.cmv.dataset import load
from martingale_harness.tasks.config import task_config
from martingale_harness.tasks.loaders import get_loader

GONE = ("[deleted]", "[removed]")


def _raw_posts(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]


def _earning_replies(post: dict[str, Any]) -> list[str]:
    """The documented rule, counted here independently: comments[-3] of each thread, gone ones out."""
    replies = []
    for thread in post["delta_threads"]:
        reply = thread["comments"][-3]
        if reply is None or reply.strip() in GONE or reply.startswith("This comment has been overwritten"):
            continue
        if reply.strip() not in replies:
            replies.append(reply.strip())
    return replies


def test_counts_match_the_raw_file(cmv_file: Path) -> None:
    raw = _raw_posts(cmv_file)
    loaded = load(cmv_file)
    by_id = {i.sample_id: i for i in loaded.items}
    assert len(by_id) == len(loaded.items) == 278
    assert len(loaded.items) + len(loaded.skipped) == len(raw) == 366

    no_threads = [p for p in raw if not p["delta_threads"]]
    all_gone = [p for p in raw if p["delta_threads"] and not _earning_replies(p)]
    only_remarks = [p for p in raw if _earning_replies(p) and str(p["post_index"]) not in by_id]
    assert (len(no_threads), len(all_gone), len(only_remarks)) == (82, 5, 1)
    # the one post left out for remarks: its only delta-earning "reply" is about deltas, not the view
    assert all("delta" in r.lower() for p in only_remarks for r in _earning_replies(p))
    reasons = [s.reason for s in loaded.skipped]
    assert sum("no delta thread" in r for r in reasons) == len(no_threads)
    assert sum("are gone" in r for r in reasons) == len(all_gone) + len(only_remarks)

    whole = {i.sample_id: i for i in load(cmv_file, evidence_budget=0).items}
    edited = re.compile(r"edit|update|eta\b|delta|∆|Δ|changed", re.IGNORECASE)
    exact = 0
    for post in raw:
        item = whole.get(str(post["post_index"]))
        if item is None:
            continue
        replies = _earning_replies(post)
        assert item.label is None and 1 <= len(item.evidence) <= len(replies)
        if not any(edited.search(r) for r in replies):  # nothing for the loader to clean
            shown = [" ".join(e.removeprefix("A reply to the post:\n\n").split()) for e in item.evidence]
            assert shown == [" ".join(r.split()) for r in replies]
            exact += 1
    assert exact > 150
    assert sum(len(i.evidence) for i in loaded.items) == 697


def test_only_the_delta_earning_replies_are_shown(cmv_file: Path) -> None:
    raw = {str(p["post_index"]): p for p in _raw_posts(cmv_file)}
    for item in load(cmv_file, evidence_budget=0).items:
        awards_and_bot = {c.strip() for t in raw[item.sample_id]["delta_threads"] for c in t["comments"][-2:] if c}
        for evidence in item.evidence:
            assert evidence.startswith("A reply to the post:\n\n")
            assert evidence.removeprefix("A reply to the post:\n\n") not in awards_and_bot
            assert "Confirmed: 1 delta" not in evidence and "!delta" not in evidence.lower()
    # post 9: 42 delta threads, most ending at the same few replies; each reply is shown once
    post9 = next(i for i in load(cmv_file).items if i.sample_id == "9")
    assert post9.metadata["delta_threads"] == 42 and len(post9.evidence) == len(set(post9.evidence)) == 6


def test_question_is_the_view_without_after_the_fact_text(cmv_file: Path) -> None:
    raw = {str(p["post_index"]): p for p in _raw_posts(cmv_file)}
    items = load(cmv_file).items
    for item in items:
        assert "Is this view correct?" in item.question and "probability that the view is correct" in item.question
        assert "This is a footnote" not in item.question
        assert not re.search(r"^\W*edit\b", item.question, re.IGNORECASE | re.MULTILINE)
        assert not item.metadata["title"].upper().startswith("CMV")
        assert raw[item.sample_id]["title"].endswith(item.metadata["title"])
    assert sum(i.metadata["post_paragraphs_removed"] > 0 for i in items) > 100
    # post 9's body ends with the OP saying how the view changed; that must not reach the prior
    post9 = next(i for i in items if i.sample_id == "9")
    assert "My view was changed" in raw["9"]["selftext"] and "My view was changed" not in post9.question


def _thread(reply: str, award: str = "!delta good point", who: str = "someone") -> dict[str, Any]:
    return {"row": 0, "comments": [reply, award, f"Confirmed: 1 delta awarded to /u/{who}."]}


def _post(index: Any, title: str | None = "CMV: Cats are better than dogs", threads: Any = None,
          selftext: str | None = "They are quieter.") -> dict[str, Any]:
    post: dict[str, Any] = {"post_index": index, "selftext": selftext,
                            "delta_threads": [_thread(f"Dogs help people, reply to post {index}.")]
                            if threads is None else threads}
    if title is not None:
        post["title"] = title
    return post


def _write(path: Path, lines: list[Any]) -> Path:
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n", encoding="utf-8")
    return path


def test_chains_duplicates_and_edits(tmp_path: Path) -> None:
    chain = {"row": 1, "comments": ["First argument.", "OP: I disagree, because...",
                                    "Follow-up that won the argument.\n\nEdit: thanks for the gold!",
                                    "!delta you got me", "Confirmed: 1 delta awarded to /u/x."]}
    threads = [_thread("Same reply."), chain, _thread("Same reply.", "!delta (not OP) me too"),
               _thread("[deleted]"), {"row": 4, "comments": [None, None, "Confirmed: 1 delta awarded to /u/y."]}]
    body = ("My view.\n\nEDIT: I awarded a delta, my view has changed.\n\n"
            "_____\n\n> *This is a footnote from the CMV moderators.")
    path = _write(tmp_path / "posts.jsonl", [_post(7, threads=threads, selftext=body)])
    item = load(path).items[0]
    assert [e.removeprefix("A reply to the post:\n\n") for e in item.evidence] == [
        "Same reply.", "Follow-up that won the argument."]
    assert item.metadata["replies_gone"] == 2 and item.metadata["delta_threads"] == 5
    assert item.metadata["post_paragraphs_removed"] == 1
    assert "My view." in item.question and "EDIT" not in item.question and "footnote" not in item.question
    assert "View: Cats are better than dogs" in item.question
    assert (item.sample_id, item.question_id, item.label) == ("7", "7", None)
    json.dumps(item_to_sample(item).metadata)  # JSON-serialisable for the eval log


def test_max_evidence_keeps_the_first_replies(tmp_path: Path) -> None:
    path = _write(tmp_path / "posts.jsonl", [_post(1, threads=[_thread(f"Reply {k}.") for k in range(4)])])
    item = load(path, max_evidence=2).items[0]
    assert [e[-8:] for e in item.evidence] == ["Reply 0.", "Reply 1."] and item.metadata["replies_total"] == 4
    assert len(load(path).items[0].evidence) == 4
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ConfigError, match="max_evidence"):
            load(path, max_evidence=bad)  # type: ignore[arg-type]


def test_bad_rows_are_skipped_with_file_and_line_or_fatal(tmp_path: Path) -> None:
    path = _write(tmp_path / "posts.jsonl", [
        _post(1),
        "{not json",
        _post(3, title=None),
        _post(4, title="   "),
        _post(5, threads={"row": 0}),
        _post(6, threads=[{"row": 0, "comments": ["only", "two"]}]),
        _post(1),
        _post(8, threads=[]),
        "",
        _post(10, threads=[_thread("[removed]")]),
        ["a", "list"],
    ])
    loaded = load(path)
    assert [i.sample_id for i in loaded.items] == ["1"]
    skipped = [(s.where, s.reason) for s in loaded.skipped]
    assert [w for w, _ in skipped] == [f"{path}:{n}" for n in (2, 3, 4, 5, 6, 7, 8, 10, 11)]
    reasons = [r for _, r in skipped]
    assert reasons[0].startswith("line is not valid JSON")
    assert reasons[1] == "wrong schema: lacks field(s) title"
    assert reasons[2] == "post 4: empty or missing title"
    assert reasons[3] == "post 5: delta_threads must be a list, got dict"
    assert "delta thread #0 is not a chain" in reasons[4]
    assert reasons[5] == f"duplicate post_index '1' (first at {path}:1)"
    assert reasons[6] == "post 8: no evidence, it has no delta thread"
    assert reasons[7].startswith("post 10: no evidence, the delta-earning replies")
    assert reasons[8] == "wrong schema: a line must be a JSON object, got list"
    assert load(path).report()["rows_skipped"] == 9

    with pytest.raises(DataError) as err:
        load(path, bad_rows="error")
    assert str(err.value).startswith(f"{path}:2: line is not valid JSON") and "bad_rows=error" in str(err.value)
    # a post without evidence is well-formed: recorded, but not fatal under bad_rows=error
    ok = _write(tmp_path / "ok.jsonl", [_post(1), _post(2, threads=[])])
    strict = load(ok, bad_rows="error")
    assert len(strict.items) == 1 and len(strict.skipped) == 1
    with pytest.raises(ConfigError, match="bad_rows"):
        load(ok, bad_rows="ignore")


def test_file_level_problems_are_fatal(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load(tmp_path / "nope.jsonl")
    with pytest.raises(DataError, match="not a ConvoKit corpus folder: utterances.jsonl is missing"):
        load(tmp_path)  # a folder is read as a ConvoKit corpus
    path = _write(tmp_path / "bad.jsonl", ["{oops", _post(2, threads=[])])
    with pytest.raises(DataError) as err:
        load(path)
    assert str(path) in str(err.value) and "no usable post" in str(err.value)
    with pytest.raises(DataError, match="no usable post"):
        load(_write(tmp_path / "empty.jsonl", [""]))


def test_long_replies_are_cut_with_a_marker_and_recorded(cmv_file: Path) -> None:
    whole = {i.sample_id: i for i in load(cmv_file, evidence_budget=0).items}
    assert whole == {i.sample_id: i for i in load(cmv_file, evidence_budget=None).items}
    assert not any(i.truncated for i in whole.values())
    loaded = load(cmv_file, evidence_budget=1500)
    expected = {(i.sample_id, k) for i in whole.values() for k, e in enumerate(i.evidence) if len(e) > 1500}
    assert {(i.sample_id, k) for i in loaded.items for k in i.truncated} == expected
    assert len(expected) > 50 and loaded.report()["evidence_items_truncated"] == len(expected)
    for item in loaded.items:
        for k in item.truncated:
            original = whole[item.sample_id].evidence[k]
            assert item.evidence[k].endswith(f"[... truncated: 1500 of {len(original)} characters shown]")
            assert item.evidence[k].startswith(original[:1400])
    assert load(cmv_file).report()["evidence_items_truncated"] == 23  # at the default budget
    with pytest.raises(ConfigError, match="evidence_budget"):
        load(cmv_file, evidence_budget=-1)


def test_bundled_demo_set_loads() -> None:
    path = task_config("cmv").default_data
    loaded = get_loader("cmv")(path)
    assert len(loaded.items) >= 40 and loaded.skipped == []
    assert all(1 <= len(i.evidence) <= 4 for i in loaded.items)
    assert len({i.sample_id for i in loaded.items}) == len(loaded.items)
    assert any(i.metadata["post_paragraphs_removed"] for i in loaded.items)
    assert any(i.metadata["delta_threads"] > len(i.evidence) for i in loaded.items)  # de-duplicated
