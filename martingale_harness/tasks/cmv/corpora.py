"""The two r/ChangeMyView corpora of Tan et al. (2016, "Winning Arguments") as CMV posts.

Both pair each reply thread that won the original poster's delta (persuasive) with a similar thread
in the same discussion that did not (unpersuasive); a post gets the distinct persuasive replies as
``replies`` and the distinct unpersuasive ones as ``unpersuasive``.

* ConvoKit's ``winning-args-corpus``: a folder with ``utterances.jsonl`` (one comment per line:
  ``id``, ``speaker`` (``user`` in older dumps), ``conversation_id`` (``root``), ``reply_to``,
  ``timestamp``, ``text``, ``meta.success`` 1/0/null, ``meta.pair_ids``) and ``conversations.json``
  (per conversation ``op-title``, ``op-text-body``; the metadata directly or under ``meta``). An
  argument is the comments flagged with one ``success`` value and one set of ``pair_ids`` in a
  conversation; only its challenger's comments are shown (the author of its first comment), in
  time order: the OP's answers within the thread would give the outcome away (they hold the award).
* The pair lists (``pair_task/train_pair_data.jsonlist``): one pair per line with ``op_name``,
  ``op_title``, ``op_text`` and ``positive``/``negative`` threads ``{author, comments: [{body, author}]}``;
  a post with several pairs spans several lines, merged by ``op_name``. The comments shown are the
  thread author's (all of them when authors are missing).

Text is HTML-decoded and cleaned as in the threads layout (``cmv_text.unescape_html``: entities escaped
once or twice; ``cmv_text.strip_after_the_fact``: edits, footnotes and remarks about deltas go); comments
that are gone (``[deleted]``, ``[removed]``, empty) are dropped.
A malformed line follows ``bad_rows``; a post with neither kind of reply left is skipped and recorded.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from martingale_harness.errors import DataError
from martingale_harness.tasks.base import RowCollector, SkippedRow, jsonl_records
from martingale_harness.tasks.cmv.text import CMV_PREFIX, GONE, CmvPost, strip_after_the_fact, unescape_html


def _clean(texts: Iterable[Any]) -> str:
    """The comments of one argument as one reply, after-the-fact text removed; '' if nothing is left."""
    parts = []
    for text in texts:
        if isinstance(text, list):  # some dumps store a comment body as a list of strings
            text = "\n\n".join(str(t) for t in text)
        if not isinstance(text, str):
            continue
        text = unescape_html(text)
        if not text.strip() or GONE.match(text):
            continue
        cleaned, _ = strip_after_the_fact(text)
        if cleaned:
            parts.append(cleaned)
    return "\n\n".join(parts)


def _post(post_id: str, title: str, body: str, persuasive: list[str], unpersuasive: list[str],
          gone: int) -> CmvPost:
    cleaned_body, removed = strip_after_the_fact(unescape_html(body or ""))
    title = unescape_html(title)
    return CmvPost(post_id=post_id, title=CMV_PREFIX.sub("", title).strip() or title.strip(), body=cleaned_body,
                   replies=tuple(dict.fromkeys(persuasive)), delta_threads=len(persuasive), replies_gone=gone,
                   paragraphs_removed=removed, unpersuasive=tuple(dict.fromkeys(unpersuasive)))


def _usable(posts: list[CmvPost], rows: RowCollector, where: str) -> list[CmvPost]:
    kept = []
    for post in posts:
        if post.replies or post.unpersuasive:
            kept.append(post)
        else:
            rows.skipped.append(SkippedRow(where, f"post {post.post_id}: no evidence, every argument is gone"))
    if not kept:
        reasons = "; ".join(s.reason for s in rows.skipped[:3]) or "no argument pair found"
        raise DataError(where, f"no usable post ({reasons})")
    return kept


# --- ConvoKit -------------------------------------------------------------------------------------------


def _convokit_files(path: Path) -> tuple[Path, Path]:
    folder = path if path.is_dir() else path.parent
    utterances, conversations = folder / "utterances.jsonl", folder / "conversations.json"
    for needed in (utterances, conversations):
        if not needed.is_file():
            raise DataError(folder, f"not a ConvoKit corpus folder: {needed.name} is missing")
    return utterances, conversations


def _conversation_meta(conversations: Path) -> dict[str, dict[str, Any]]:
    try:
        raw = json.loads(conversations.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(conversations, f"not readable JSON ({e})") from None
    if not isinstance(raw, dict):
        raise DataError(conversations, "wrong schema: expected an object of conversations by id")
    meta = {}
    for cid, value in raw.items():
        if isinstance(value, dict):
            inner = value.get("meta")
            meta[str(cid)] = inner if isinstance(inner, dict) else value
    return meta


def read_convokit(path: Path, rows: RowCollector) -> list[CmvPost]:
    """The posts of a ConvoKit winning-args corpus (folder, or one of its two files)."""
    utterances, conversations = _convokit_files(path)
    meta = _conversation_meta(conversations)
    roots: dict[str, str] = {}  # conversation -> the OP's post text (the utterance whose id is the conversation's)
    speakers: dict[str, str] = {}  # conversation -> OP
    # (conversation, success, pair ids) -> [(timestamp, speaker, text)]
    arguments: dict[tuple[str, int, tuple[str, ...]], list[tuple[float, str, Any]]] = {}
    for lineno, obj in jsonl_records(utterances, rows):
        where = f"{utterances}:{lineno}"
        if not isinstance(obj, dict) or "id" not in obj or "text" not in obj:
            rows.bad(where, "wrong schema: an utterance needs id and text")
            continue
        conv = obj.get("conversation_id", obj.get("root"))
        speaker = obj.get("speaker", obj.get("user"))
        if conv is None:
            rows.bad(where, "wrong schema: an utterance needs conversation_id (or root)")
            continue
        conv = str(conv)
        if str(obj["id"]) == conv:
            roots[conv] = obj["text"] if isinstance(obj["text"], str) else ""
            speakers[conv] = str(speaker)
        umeta = obj.get("meta") if isinstance(obj.get("meta"), dict) else {}
        success = umeta.get("success")
        if success not in (0, 1) or isinstance(success, bool):
            continue
        pair_ids = tuple(sorted(str(p) for p in umeta.get("pair_ids") or []))
        try:
            stamp = float(obj.get("timestamp") or 0)
        except (TypeError, ValueError):
            stamp = 0.0
        arguments.setdefault((conv, int(success), pair_ids), []).append((stamp, str(speaker), obj["text"]))
    by_conv: dict[str, tuple[list[str], list[str], int]] = {}
    for (conv, success, _), comments in arguments.items():
        comments.sort(key=lambda c: c[0])
        op = speakers.get(conv) or str((meta.get(conv) or {}).get("op-userID"))
        challenger = next((who for _, who, _ in comments if who != op), None)
        text = _clean(t for _, who, t in comments if who == challenger)
        persuasive, unpersuasive, gone = by_conv.setdefault(conv, ([], [], 0))
        if not text:
            by_conv[conv] = (persuasive, unpersuasive, gone + 1)
        else:
            (persuasive if success else unpersuasive).append(text)
    posts = []
    for conv, (persuasive, unpersuasive, gone) in by_conv.items():
        info = meta.get(conv) or {}
        title = info.get("op-title") or ""
        if not isinstance(title, str) or not unescape_html(title).strip():
            rows.bad(f"{conversations}", f"post {conv}: empty or missing op-title")
            continue
        body = info.get("op-text-body", info.get("op-text", roots.get(conv, "")))
        posts.append(_post(conv, title, body if isinstance(body, str) else "", persuasive, unpersuasive, gone))
    return _usable(posts, rows, str(utterances))


# --- pair lists -----------------------------------------------------------------------------------------


def _thread_text(thread: Any) -> str | None:
    """The challenger's comments of a ``positive``/``negative`` thread; None when malformed."""
    if not isinstance(thread, dict) or not isinstance(thread.get("comments"), list):
        return None
    comments = [c for c in thread["comments"] if isinstance(c, dict)]
    author = thread.get("author")
    own = [c for c in comments if author is None or c.get("author") in (None, author)]
    return _clean(c.get("body") for c in own)


def read_pairs(path: Path, rows: RowCollector) -> list[CmvPost]:
    """The posts of Tan et al.'s pair lists (JSONL, one persuasive/unpersuasive pair per line)."""
    if not path.is_file():
        raise DataError(path, "CMV pair list is not a file")
    order: list[str] = []
    found: dict[str, dict[str, Any]] = {}
    for lineno, obj in jsonl_records(path, rows):
        where = f"{path}:{lineno}"
        if not isinstance(obj, dict):
            rows.bad(where, f"wrong schema: a line must be a JSON object, got {type(obj).__name__}")
            continue
        missing = [f for f in ("op_name", "op_title", "positive", "negative") if f not in obj]
        if missing:
            rows.bad(where, f"wrong schema: lacks field(s) {', '.join(missing)}")
            continue
        name, title = str(obj["op_name"]), obj["op_title"]
        if not isinstance(title, str) or not unescape_html(title).strip():
            rows.bad(where, f"post {name}: empty or missing op_title")
            continue
        positive, negative = _thread_text(obj["positive"]), _thread_text(obj["negative"])
        if positive is None or negative is None:
            rows.bad(where, f"post {name}: positive and negative must be threads with a list of comments")
            continue
        if name not in found:
            order.append(name)
            found[name] = {"title": title, "body": obj.get("op_text") or "", "persuasive": [], "unpersuasive": [],
                           "gone": 0}
        post = found[name]
        for text, kind in ((positive, "persuasive"), (negative, "unpersuasive")):
            if text:
                post[kind].append(text)
            else:
                post["gone"] += 1
    posts = [_post(n, found[n]["title"], found[n]["body"] if isinstance(found[n]["body"], str) else "",
                   found[n]["persuasive"], found[n]["unpersuasive"], found[n]["gone"]) for n in order]
    return _usable(posts, rows, str(path))
