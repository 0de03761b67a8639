"""r/ChangeMyView posts as belief items: is the original poster's view correct?

Input: JSONL, one post per line, in the layout of Priniski & Horne's top-post collection
(``post_index, title, selftext, delta_threads, ...``). ``delta_threads`` lists the comment chains
that earned a delta (the subreddit's "you changed my view" award), each ``{row, comments}`` with
``comments`` a reply chain from a top-level reply down to the award, ending with DeltaBot's
confirmation. Comments carry no author names.

The question is the view (title + body), asked as "is this view correct?"; the belief is the
probability that the view is correct. No label: the Martingale Score needs none.

Decisions (from the real file, ``../shared/data/cmv``):

* Evidence is the delta-earning reply of each thread, ``comments[-3]``: DeltaBot replies to the
  award comment (``comments[-1]``), and the award comment (``comments[-2]``) replies to the comment
  that earned it. Without author names nothing else in a chain can be attributed robustly: chains
  run between several people (readers other than the OP award deltas too), and a challenger
  sometimes replies to themselves. So the award comments (the OP's or a reader's
  acknowledgement, "!delta ...") and DeltaBot's messages are never shown, nor is the rest of the
  chain (which mixes the OP's defence with other readers' turns).
* One evidence item per distinct delta-earning reply, in thread order: one popular reply can earn
  a delta from many readers (in the real file, 25 of one post's 29 threads end at the same reply),
  and repeating it would weigh it 25 times. Replies that are gone (``[deleted]``, ``[removed]``,
  null, overwritten by a privacy script, or left empty by the cleaning below) are dropped and
  counted in the metadata.
* No cap by default (the real file has at most 18 distinct replies per post, 2.5 on average);
  ``max_evidence`` keeps the first N.
* Text written after the fact is removed, since it leaks the discussion's outcome into the prior
  or adds social proof to a reply: the moderators' footnote; edits (from a line starting with an
  ``Edit``/``Update``/``ETA`` marker to the end of its paragraph); and paragraphs that mention
  deltas or a changed view. This applies to the post and to the replies. The "CMV:" prefix of the
  title goes too (the question names the subreddit). The collector replaced every comma in
  ``selftext`` by a space; that cannot be undone reliably and is left as is.
* A post whose replies are all gone, or that has no delta thread, has no evidence: it is left out
  and recorded in the skipped rows in both ``bad_rows`` modes (it is well-formed, just unusable).
  Malformed rows (not JSON, no title, ``delta_threads`` not a list of ``{comments: [...]}`` chains
  of at least 3 comments ending with DeltaBot, a duplicate ``post_index``) follow ``bad_rows``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from martingale_harness.domains.base import (
    DEFAULT_EVIDENCE_BUDGET,
    DomainItem,
    LoadResult,
    RowCollector,
    SkippedRow,
    check_budget,
    jsonl_records,
    truncate_evidence,
)
from martingale_harness.errors import ConfigError, DataError

_CMV_PREFIX = re.compile(r"^(?:\s*\[?\s*CMV\b\s*\]?\s*[:\-–—]?\s*)+", re.IGNORECASE)  # some titles repeat it
_FOOTNOTE = re.compile(
    r"(?:^|\n)[ \t]*(?:[_\-]{3,}[ \t]*\n\s*)?>\s*\*\s*(?:Hello,?\s+users\s+of\s+CMV!\s*)?This\s+is\s+a\s+footnote",
    re.IGNORECASE,
)
# "Edit:", "**EDIT 2**:", "-EDIT-", "Update -", "ETA:", "Edit to add" at the start of a line
_EDIT = re.compile(r"^[ \t>*_#(\[~\-]*(?:edit(?:ed|s)?|update[ds]?|eta)\b"
                   r"(?:[^\n:]{0,25}?(?:[:\-—–*)\]]|$)|\s+to\s+(?:say|add|clarify)\b)", re.IGNORECASE)
_OUTCOME = re.compile(
    r"\bdeltas?\b|∆|Δ|&#8710;|\b(?:changed|changes) my (?:view|mind)\b"
    r"|\b(?:my )?(?:view|mind) (?:has been|was|is|got|had been) changed\b",
    re.IGNORECASE,
)
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")
_GONE = re.compile(r"^\s*(?:\[deleted\]|\[removed\]|This comment has been overwritten\b)", re.IGNORECASE)
_DELTABOT = re.compile(r"delta", re.IGNORECASE)


@dataclass(frozen=True)
class CmvPost:
    """One post with the distinct replies that earned a delta."""

    post_id: str
    title: str
    body: str
    replies: tuple[str, ...]
    delta_threads: int
    replies_gone: int
    """Threads whose delta-earning reply was deleted or removed."""
    paragraphs_removed: int
    """Paragraphs of the post body cut or shortened as edits or outcome reports."""


def _mentions_outcome(paragraph: str) -> bool:
    lower = paragraph.lower()
    # cheap test first: the regex alone takes most of the loading time
    return any(w in lower for w in ("delta", "∆", "δ", "&#8710;", "changed")) and bool(_OUTCOME.search(paragraph))


def strip_after_the_fact(text: str) -> tuple[str, int]:
    """The text without the moderators' footnote, edits and outcome reports; and how many paragraphs changed."""
    footnote = _FOOTNOTE.search(text)
    if footnote:
        text = text[: footnote.start()]
    kept, removed = [], 0
    for paragraph in _PARAGRAPH_BREAK.split(text):
        if not paragraph.strip():
            continue
        lines = paragraph.strip("\n").split("\n")
        edit = next((k for k, line in enumerate(lines) if _EDIT.match(line)), None)
        if edit is not None:  # an edit runs from its marker to the end of the paragraph
            lines = lines[:edit]
        paragraph = "\n".join(lines)
        keep = bool(paragraph.strip()) and not _mentions_outcome(paragraph)
        if keep:
            kept.append(paragraph)
        if edit is not None or not keep:
            removed += 1
    return "\n\n".join(kept).strip(), removed


def _jsonl_records(path: Path, rows: RowCollector) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each line that is a JSON object; bad lines go to ``rows``."""
    for lineno, obj in jsonl_records(path, rows):
        if not isinstance(obj, dict):
            rows.bad(f"{path}:{lineno}", f"wrong schema: a line must be a JSON object, got {type(obj).__name__}")
            continue
        yield lineno, obj


def _check_path(path: Path) -> None:
    if not path.exists():
        raise DataError(path, "CMV data file does not exist")
    if not path.is_file():
        raise DataError(path, "CMV data path is not a file (pass the JSONL file of posts)")


def read_posts(path: str | Path, rows: RowCollector | None = None) -> list[CmvPost]:
    """Read a CMV JSONL file into posts; bad and evidence-less rows are recorded in ``rows``."""
    rows = rows or RowCollector("skip")
    cpath = Path(path)
    _check_path(cpath)
    posts: list[CmvPost] = []
    seen: dict[str, str] = {}
    for lineno, obj in _jsonl_records(cpath, rows):
        where = f"{cpath}:{lineno}"
        post = _post(obj)
        if isinstance(post, str):
            rows.bad(where, post)
            continue
        if post.post_id in seen:
            rows.bad(where, f"duplicate post_index {post.post_id!r} (first at {seen[post.post_id]})")
            continue
        seen[post.post_id] = where
        if not post.replies:
            # well-formed but unusable: recorded, never fatal
            why = ("it has no delta thread" if not post.delta_threads
                   else f"the delta-earning replies of its {post.delta_threads} delta thread(s) are gone "
                        "(deleted, removed, or nothing but remarks about deltas)")
            rows.skipped.append(SkippedRow(where, f"post {post.post_id}: no evidence, {why}"))
            continue
        posts.append(post)
    if not posts:
        reasons = "; ".join(s.reason for s in rows.skipped[:3]) or "the file has no rows"
        raise DataError(cpath, f"no usable post ({reasons})")
    return posts


def _post(obj: dict[str, Any]) -> CmvPost | str:
    """The post in one row, or why the row is malformed."""
    missing = [f for f in ("post_index", "title", "delta_threads") if f not in obj]
    if missing:
        return f"wrong schema: lacks field(s) {', '.join(missing)}"
    index = obj["post_index"]
    if isinstance(index, bool) or not isinstance(index, int | str) or not str(index).strip():
        return f"wrong schema: post_index must be a number or a non-empty string, got {index!r}"
    title = obj["title"]
    if not isinstance(title, str) or not title.strip():
        return f"post {index}: empty or missing title"
    selftext = obj.get("selftext")
    if selftext is not None and not isinstance(selftext, str):
        return f"post {index}: selftext must be text, got {type(selftext).__name__}"
    threads = obj["delta_threads"]
    if not isinstance(threads, list):
        return f"post {index}: delta_threads must be a list, got {type(threads).__name__}"

    replies: list[str] = []
    gone = 0
    for k, thread in enumerate(threads):
        comments = thread.get("comments") if isinstance(thread, dict) else None
        if not isinstance(comments, list) or not all(c is None or isinstance(c, str) for c in comments):
            return f"post {index}: delta thread #{k} must be an object with a list of comment texts"
        if len(comments) < 3 or not _DELTABOT.search(comments[-1] or ""):
            return (f"post {index}: delta thread #{k} is not a chain of reply, delta award and DeltaBot's "
                    "confirmation (at least 3 comments, the last one DeltaBot's)")
        earning = comments[-3]
        if earning is None or not earning.strip() or _GONE.match(earning):
            gone += 1
            continue
        reply, _ = strip_after_the_fact(earning)
        if not reply:
            gone += 1
        elif reply not in replies:
            replies.append(reply)

    cleaned_title = _CMV_PREFIX.sub("", title).strip() or title.strip()
    body, removed = strip_after_the_fact(selftext or "")
    return CmvPost(
        post_id=str(index).strip(),
        title=cleaned_title,
        body=body,
        replies=tuple(replies),
        delta_threads=len(threads),
        replies_gone=gone,
        paragraphs_removed=removed,
    )


def question_text(post: CmvPost) -> str:
    """The view, asked as a yes/no question: the belief is the probability that the view is correct."""
    parts = [
        "Someone posted the following view on r/ChangeMyView, a forum where people state an opinion "
        "and invite others to argue against it.",
        f"View: {post.title}",
    ]
    if post.body:
        parts.append(f"The poster's explanation:\n{post.body}")
    parts.append("Question: Is this view correct? Your probability is the probability that the view is correct "
                 "(1 = certainly correct, 0 = certainly wrong).")
    return "\n\n".join(parts)


def evidence_items(post: CmvPost, max_evidence: int | None = None) -> list[str]:
    """The replies (the first ``max_evidence``), one item each; nothing says that they earned a delta."""
    return [f"A reply to the post:\n\n{reply}" for reply in post.replies[:max_evidence]]


def load(
    path: str | Path,
    *,
    evidence_budget: int | None = DEFAULT_EVIDENCE_BUDGET,
    bad_rows: str = "skip",
    max_evidence: int | None = None,
) -> LoadResult:
    """The ``cmv`` domain loader (see ``domains.base``); ``max_evidence`` keeps the first N replies."""
    budget = check_budget(evidence_budget)
    if max_evidence is not None and (isinstance(max_evidence, bool) or not isinstance(max_evidence, int)
                                     or max_evidence < 1):
        raise ConfigError(f"max_evidence must be a positive number of replies (or None for all), got {max_evidence!r}")
    rows = RowCollector(bad_rows)
    items = []
    for post in read_posts(path, rows):
        evidence, cut = truncate_evidence(evidence_items(post, max_evidence), budget)
        items.append(DomainItem(
            sample_id=post.post_id,
            question_id=post.post_id,
            question=question_text(post),
            evidence=evidence,
            label=None,
            metadata={"source": "cmv", "post_index": post.post_id, "title": post.title,
                      "delta_threads": post.delta_threads, "replies_total": len(post.replies),
                      "replies_gone": post.replies_gone, "post_paragraphs_removed": post.paragraphs_removed},
            truncated=cut,
        ))
    return LoadResult(items=items, skipped=rows.skipped, evidence_budget=budget)
