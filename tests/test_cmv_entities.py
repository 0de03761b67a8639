"""CMV text as the dumps write it: HTML-escaped once (``&amp;``, ``&gt;``, the delta sign as ``&#8710;``) or
twice (``&amp;amp;``, ``&amp;gt;``, ``&amp;#8710;``), in every layout the loader reads.

Each file is written here, in tmp_path, from plain text escaped the way Reddit's dumps escape it.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

import pytest

from martingale_harness.tasks.base import DomainItem, item_to_sample
from martingale_harness.tasks.cmv.dataset import load
from martingale_harness.tasks.cmv.text import unescape_html

TITLE = "CMV: Rent & zoning rules <always> hurt renters"
BODY = "> a line quoted from the news\n\nPrices & rents rose by 5% in a year."
FOOTNOTE = "_____\n\n> *This is a footnote from the CMV moderators. Happy CMVing!*"
REPLY = "> prices & rents rose\n\nBut supply & demand say otherwise: 3 < 5 and AT&T agrees."
FOLLOW_UP = "And the studies from three cities agree."
THANKS = "Thanks for the ∆!"  # a remark about the award: never shown
AWARD = "∆ fair point, you changed my view"
UNPERSUASIVE = "You are simply wrong & everyone knows it."

# what must not reach the model: entities of any kind, escaped once or twice
_ENTITY = re.compile(r"&(?:[A-Za-z][A-Za-z0-9]*|#[0-9]+|#[xX][0-9A-Fa-f]+);")


def escape(text: str, times: int) -> str:
    """``text`` as a dump escaped ``times`` times writes it: the first pass writes the delta sign as ``&#8710;``."""
    text = html.escape(text, quote=False).replace("∆", "&#8710;")
    for _ in range(times - 1):
        text = html.escape(text, quote=False)
    return text


def _plain(item: DomainItem) -> list[str]:
    """Every text of the item the model sees (and the title kept in its metadata)."""
    sample = item_to_sample(item)
    return [str(sample.input), item.question, *item.evidence, item.metadata["title"]]


def _assert_decoded(items: list[DomainItem]) -> None:
    for item in items:
        for text in _plain(item):
            assert "&amp;" not in text and "&gt;" not in text and "&lt;" not in text and "#8710" not in text, text
            assert not _ENTITY.search(text), text
            assert "∆" not in text and "delta" not in text.lower()
        assert "View: Rent & zoning rules <always> hurt renters" in item.question
        assert "> a line quoted from the news\n\nPrices & rents rose by 5% in a year." in item.question
        assert "footnote" not in item.question  # its "> *" marker is only seen once "&gt;" is decoded


def _jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_entities_are_decoded_once_or_twice_but_no_further_than_the_text() -> None:
    assert unescape_html("AT&amp;T &gt; 3") == "AT&T > 3"
    assert unescape_html("AT&amp;amp;T &amp;gt; 3 &amp;#8710; &#8710;") == "AT&T > 3 ∆ ∆"
    assert unescape_html("&amp;amp;lt;") == "<"  # three escapings: still decoded within the bound
    assert unescape_html("&amp;amp;amp;lt;") == "&lt;"  # four: the bound of three passes stops it
    assert unescape_html("a & b; 5 &lt 6") == "a & b; 5 &lt 6"  # a bare "&" and unterminated names are text
    # query strings: names like "copy", "sect", "not" are entities in HTML only with their ";"
    url = "https://example.com/?q=1&amp;copy=2&amp;sectionNum=3&amp;not=4"
    assert unescape_html(url) == "https://example.com/?q=1&copy=2&sectionNum=3&not=4"
    assert unescape_html(escape(REPLY, 2)) == REPLY and unescape_html(escape(AWARD, 1)) == AWARD


def _thread_posts(times: int) -> list[dict[str, Any]]:
    """Posts whose delta threads end with DeltaBot's confirmation or with the award itself."""
    posts = []
    for k, (kind, award) in enumerate((("deltabot", AWARD), ("award", AWARD), ("award", "!delta &, thanks"),
                                       ("award", f"Good point.\n\n{AWARD}"))):
        reply = f"{REPLY} (reply {k})\n\n{THANKS}"
        chain = ["An opening.", "The OP defends.", reply, award]
        if kind == "deltabot":
            chain.append("Confirmed: 1 delta awarded to /u/someone.")
        posts.append({"post_index": k, "title": escape(TITLE, times),
                      "selftext": escape(f"{BODY}\n\n{FOOTNOTE}", times),
                      "delta_threads": [{"row": 0, "comments": [escape(c, times) for c in chain]}]})
    return posts


@pytest.mark.parametrize("times", [1, 2])
def test_threads_layout_decodes_awards_and_text(tmp_path: Path, times: int) -> None:
    posts = _thread_posts(times)
    loaded = load(_jsonl(tmp_path / "posts.jsonl", posts))
    assert loaded.skipped == []  # every post with a delta thread loads: its award is recognised
    assert [i.sample_id for i in loaded.items] == [str(p["post_index"]) for p in posts]
    for k, item in enumerate(loaded.items):
        # the award's parent is the evidence (not the OP's defence), its remark about the delta gone
        assert item.evidence == (f"A reply to the post:\n\n{REPLY} (reply {k})",)
        assert item.metadata["post_paragraphs_removed"] == 0  # the footnote is cut before paragraphs are counted
    _assert_decoded(loaded.items)


def _convokit(folder: Path, times: int) -> Path:
    folder.mkdir()

    def utt(uid: str, speaker: str, stamp: int, text: str, success: int | None, conv: str = "t3_a") -> dict[str, Any]:
        return {"id": uid, "speaker": speaker, "conversation_id": conv, "reply_to": conv, "timestamp": stamp,
                "text": escape(text, times), "meta": {"success": success, "pair_ids": ["p_1"] if success is not None
                                                      else []}}

    utterances = [
        utt("t3_a", "op", 0, f"{BODY}\n\n{FOOTNOTE}", None),
        utt("c1", "alice", 10, REPLY, 1),
        utt("c2", "op", 20, AWARD, 1),
        utt("c3", "alice", 30, f"{FOLLOW_UP}\n\n{THANKS}", 1),
        utt("c4", "bob", 15, UNPERSUASIVE, 0),
    ]
    _jsonl(folder / "utterances.jsonl", utterances)
    meta = {"t3_a": {"op-userID": "op", "op-title": escape(TITLE, times),
                     "op-text-body": escape(f"{BODY}\n\n{FOOTNOTE}", times), "pair_ids": ["p_1"]}}
    (folder / "conversations.json").write_text(json.dumps({k: {"meta": v} for k, v in meta.items()}), encoding="utf-8")
    return folder


@pytest.mark.parametrize("times", [1, 2])
def test_convokit_layout_decodes_text(tmp_path: Path, times: int) -> None:
    loaded = load(_convokit(tmp_path / "winning-args-corpus", times), evidence="both")
    assert loaded.skipped == []
    (item,) = loaded.items
    assert item.evidence == (f"A reply to the post:\n\n{REPLY}\n\n{FOLLOW_UP}",
                             f"A reply to the post:\n\n{UNPERSUASIVE}")
    _assert_decoded(loaded.items)


def _pair(name: str, times: int, authors: bool) -> dict[str, Any]:
    def comment(author: str, body: str) -> dict[str, Any]:
        return {"author": author, "body": escape(body, times)} if authors else {"body": escape(body, times)}

    positive = [comment("alice", REPLY), comment("op", AWARD), comment("alice", f"{FOLLOW_UP}\n\n{THANKS}")]
    thread: dict[str, Any] = {"comments": positive}
    negative: dict[str, Any] = {"comments": [comment("bob", UNPERSUASIVE)]}
    if authors:
        thread["author"], negative["author"] = "alice", "bob"
    return {"op_name": name, "op_author": "op", "op_title": escape(TITLE, times),
            "op_text": escape(f"{BODY}\n\n{FOOTNOTE}", times), "positive": thread, "negative": negative}


@pytest.mark.parametrize("times", [1, 2])
@pytest.mark.parametrize("authors", [True, False])
def test_pairs_layout_decodes_awards_and_text(tmp_path: Path, times: int, authors: bool) -> None:
    path = _jsonl(tmp_path / "train_pair_data.jsonlist", [_pair("t3_x", times, authors), _pair("t3_y", times, authors)])
    loaded = load(path, evidence="both")
    assert loaded.skipped == [] and [i.sample_id for i in loaded.items] == ["t3_x", "t3_y"]
    # without authors every comment of the thread is read: the OP's award is recognised and left out
    for item in loaded.items:
        assert item.evidence == (f"A reply to the post:\n\n{REPLY}\n\n{FOLLOW_UP}",
                                 f"A reply to the post:\n\n{UNPERSUASIVE}")
    _assert_decoded(loaded.items)
