"""CMV in its common layouts: delta threads with or without DeltaBot, ConvoKit's winning-args corpus, Tan et
al.'s pair lists; the evidence choice (persuasive, unpersuasive, both); format detection and override.

Every layout is tested on a small file written here in that layout (field names as the corpora document).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from inspect_ai import eval as inspect_eval

from martingale.tasks import cmv
from martingale_harness.errors import ConfigError, DataError
from martingale_harness.tasks.cmv.dataset import detect_format, load

PERSUASIVE = "Consider the costs to renters: the policy raises rents within two years."
FOLLOW_UP = "And the studies from three cities agree on that."
UNPERSUASIVE = "You are simply wrong about this and everyone knows it."


def _jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def test_delta_threads_without_deltabot_are_read_from_the_award(tmp_path: Path) -> None:
    posts = [{"post_index": i, "title": f"CMV: view {i}", "selftext": "Because.",
              "delta_threads": [{"row": 0, "comments": [f"{PERSUASIVE} ({i})", "!delta you are right"]}]}
             for i in range(67)]
    posts[1]["delta_threads"].append({"row": 1, "comments": ["An opening.", "OP defends.", "A better reply.",
                                                             "Δ\n\nThat changed my mind"]})
    posts[2]["delta_threads"] = [{"row": 0, "comments": ["Reply with the bot.", "!delta",
                                                         "Confirmed: 1 delta awarded to /u/x."]}]
    posts[3]["delta_threads"] = [{"row": 0, "comments": ["A reply.", "I still disagree."]}]  # no award: malformed
    loaded = load(_jsonl(tmp_path / "posts.jsonl", posts))
    assert len(loaded.items) == 66 and len(loaded.skipped) == 1
    assert "is not a chain of reply and delta award" in loaded.skipped[0].reason
    by_id = {i.sample_id: i for i in loaded.items}
    assert by_id["0"].evidence == (f"A reply to the post:\n\n{PERSUASIVE} (0)",)
    assert by_id["1"].evidence[1] == "A reply to the post:\n\nA better reply."  # the award's parent, not "OP defends"
    assert by_id["2"].evidence == ("A reply to the post:\n\nReply with the bot.",)
    assert all("delta" not in e.lower() for i in loaded.items for e in i.evidence)


def _convokit(folder: Path, nested_meta: bool = True) -> Path:
    folder.mkdir()
    utterances = [
        {"id": "t3_a", "speaker": "op", "conversation_id": "t3_a", "reply_to": None, "timestamp": 0,
         "text": "Rent control helps.", "meta": {"success": None, "pair_ids": []}},
        # the persuasive thread: the challenger, the OP's award, the challenger again
        {"id": "c1", "speaker": "alice", "conversation_id": "t3_a", "reply_to": "t3_a", "timestamp": 10,
         "text": PERSUASIVE, "meta": {"success": 1, "pair_ids": ["p_1"]}},
        {"id": "c2", "speaker": "op", "conversation_id": "t3_a", "reply_to": "c1", "timestamp": 20,
         "text": "∆ fair, you changed my view", "meta": {"success": 1, "pair_ids": ["p_1"]}},
        {"id": "c3", "speaker": "alice", "conversation_id": "t3_a", "reply_to": "c2", "timestamp": 30,
         "text": f"{FOLLOW_UP}\n\nEdit: thanks for the delta!", "meta": {"success": 1, "pair_ids": ["p_1"]}},
        # the unpersuasive thread and an unflagged comment
        {"id": "c4", "speaker": "bob", "conversation_id": "t3_a", "reply_to": "t3_a", "timestamp": 15,
         "text": UNPERSUASIVE, "meta": {"success": 0, "pair_ids": ["p_1"]}},
        {"id": "c5", "speaker": "carol", "conversation_id": "t3_a", "reply_to": "t3_a", "timestamp": 16,
         "text": "Unrelated joke.", "meta": {"success": None, "pair_ids": []}},
        # a second conversation whose persuasive reply is gone
        {"id": "t3_b", "speaker": "op2", "conversation_id": "t3_b", "reply_to": None, "timestamp": 0,
         "text": "Cats beat dogs.", "meta": {}},
        {"id": "d1", "speaker": "dan", "conversation_id": "t3_b", "reply_to": "t3_b", "timestamp": 5,
         "text": "[deleted]", "meta": {"success": 1, "pair_ids": ["p_2"]}},
        {"id": "d2", "speaker": "eve", "conversation_id": "t3_b", "reply_to": "t3_b", "timestamp": 6,
         "text": "Dogs are loyal.", "meta": {"success": 0, "pair_ids": ["p_2"]}},
    ]
    _jsonl(folder / "utterances.jsonl", utterances)
    meta = {"t3_a": {"op-userID": "op", "op-title": "CMV: Rent control helps tenants",
                     "op-text-body": "It keeps people in their homes.", "pair_ids": ["p_1"], "train": 1},
            "t3_b": {"op-userID": "op2", "op-title": "CMV: Cats beat dogs", "op-text-body": "Quieter.",
                     "pair_ids": ["p_2"], "train": 0}}
    conversations = {k: {"meta": v, "vectors": []} for k, v in meta.items()} if nested_meta else meta
    (folder / "conversations.json").write_text(json.dumps(conversations), encoding="utf-8")
    return folder


@pytest.mark.parametrize("nested_meta", [True, False])
def test_convokit_winning_args_folder_or_either_file(tmp_path: Path, nested_meta: bool) -> None:
    folder = _convokit(tmp_path / "winning-args-corpus", nested_meta)
    for path in (folder, folder / "utterances.jsonl", folder / "conversations.json"):
        assert detect_format(path) == "convokit"
        loaded = load(path, evidence="both")
        by_id = {i.sample_id: i for i in loaded.items}
        a = by_id["t3_a"]
        assert "View: Rent control helps tenants" in a.question and "keeps people in their homes" in a.question
        # the challenger's comments only, in time order, after-the-fact text removed; the OP's award never shown
        assert a.evidence == (f"A reply to the post:\n\n{PERSUASIVE}\n\n{FOLLOW_UP}",
                              f"A reply to the post:\n\n{UNPERSUASIVE}")
        assert a.metadata["evidence_kinds"] == ["persuasive", "unpersuasive"]
        assert a.metadata["cmv_format"] == "convokit" and a.metadata["evidence_choice"] == "both"
        assert by_id["t3_b"].evidence == ("A reply to the post:\n\nDogs are loyal.",)
        assert by_id["t3_b"].metadata["replies_gone"] == 1
    assert [i.sample_id for i in load(folder).items] == ["t3_a"]  # persuasive only: t3_b has none left
    assert load(folder).skipped[0].reason == "post t3_b: no persuasive reply to show"


def test_convokit_folder_without_conversations_is_refused(tmp_path: Path) -> None:
    folder = _convokit(tmp_path / "corpus")
    (folder / "conversations.json").unlink()
    with pytest.raises(DataError, match="not a ConvoKit corpus folder: conversations.json is missing"):
        load(folder)


def _pair(name: str, positive: str | list[str], negative: str) -> dict[str, Any]:
    return {"op_name": name, "op_author": "op", "op_title": f"CMV: view {name}", "op_text": "My reasons.",
            "positive": {"author": "alice", "comments": [{"author": "alice", "body": positive},
                                                         {"author": "op", "body": "∆ thanks"}]},
            "negative": {"author": "bob", "comments": [{"author": "bob", "body": negative}]}}


def test_pair_lists_merge_a_posts_pairs_and_keep_each_reply_once(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "train_pair_data.jsonlist", [
        _pair("t3_x", PERSUASIVE, UNPERSUASIVE),
        _pair("t3_x", ["A second", "persuasive reply."], UNPERSUASIVE),  # same negative in two pairs
        _pair("t3_y", FOLLOW_UP, "Meh."),
        {"op_name": "t3_z", "op_title": "CMV: broken"},
    ])
    assert detect_format(path) == "pairs"
    loaded = load(path, evidence="both", bad_rows="skip")
    x = next(i for i in loaded.items if i.sample_id == "t3_x")
    assert x.evidence == (f"A reply to the post:\n\n{PERSUASIVE}", f"A reply to the post:\n\n{UNPERSUASIVE}",
                          "A reply to the post:\n\nA second\n\npersuasive reply.")
    assert x.metadata["evidence_kinds"] == ["persuasive", "unpersuasive", "persuasive"]
    assert "∆ thanks" not in " ".join(x.evidence)  # the OP's comments in the thread are not the argument
    assert loaded.skipped[0].reason == "wrong schema: lacks field(s) positive, negative"
    unpersuasive = load(path, evidence="unpersuasive", bad_rows="skip")
    assert [i.evidence for i in unpersuasive.items] == [(f"A reply to the post:\n\n{UNPERSUASIVE}",),
                                                        ("A reply to the post:\n\nMeh.",)]


def test_evidence_choice_and_format_override_are_checked(tmp_path: Path, cmv_file: Path) -> None:
    with pytest.raises(ConfigError, match="threads layout does not have"):
        load(cmv_file, evidence="unpersuasive")
    with pytest.raises(ConfigError, match="evidence='all' is not allowed"):
        load(cmv_file, evidence="all")
    with pytest.raises(ConfigError, match="format='csv' is not allowed"):
        load(cmv_file, format="csv")
    odd = _jsonl(tmp_path / "odd.jsonl", [{"something": "else"}])
    with pytest.raises(DataError, match="cannot tell the CMV layout.*pass -T format=threads|convokit|pairs"):
        load(odd)
    # detection looks past a first row it cannot place; an explicit format is obeyed as given
    pairs = _jsonl(tmp_path / "pairs.jsonl", [{"note": "header"}, _pair("t3_x", PERSUASIVE, UNPERSUASIVE)])
    assert [i.sample_id for i in load(pairs, bad_rows="skip").items] == ["t3_x"]
    assert [i.sample_id for i in load(pairs, format="pairs", bad_rows="skip").items] == ["t3_x"]
    with pytest.raises(DataError, match="no usable post.*lacks field"):
        load(pairs, format="threads")


def test_the_task_records_the_layout_and_evidence_per_sample(tmp_path: Path) -> None:
    folder = _convokit(tmp_path / "corpus")
    (log,) = inspect_eval(cmv(data=str(folder), evidence="unpersuasive"), model="sim/bayesian", display="none",
                          log_dir=str(tmp_path / "logs"))
    assert log.status == "success", log.error
    assert {s.id for s in log.samples or []} == {"t3_a", "t3_b"}
    for sample in log.samples or []:
        assert sample.metadata["evidence_choice"] == "unpersuasive"
        assert sample.metadata["evidence_kinds"] == ["unpersuasive"]
        assert sample.metadata["cmv_format"] == "convokit"
