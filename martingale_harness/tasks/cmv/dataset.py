"""r/ChangeMyView posts as belief items: is the original poster's view correct?

Three layouts are read (``-T format=threads|convokit|pairs``; by default the layout is recognised):

* ``threads``: JSONL, one post per line, in the layout of Priniski & Horne's top-post collection
  (``post_index, title, selftext, delta_threads, ...``). ``delta_threads`` lists the comment chains
  that earned a delta (the subreddit's "you changed my view" award), each ``{row, comments}`` with
  ``comments`` a reply chain from a top-level reply down to the award, ending with DeltaBot's
  confirmation or, in dumps without the bot's messages, with the award itself. No author names.
* ``convokit``: the ConvoKit "winning-args" corpus of Tan et al. (2016), a folder with
  ``utterances.jsonl`` and ``conversations.json`` (or one of those files); see ``cmv_corpora``.
* ``pairs``: Tan et al.'s pair lists (``pair_task/*_pair_data.jsonlist``), one persuasive and one
  non-persuasive reply thread per line; see ``cmv_corpora``.

The question is the view (title + body), asked as "is this view correct?"; the belief is the
probability that the view is correct. No label: the Martingale Score needs none. The evidence is
the replies that earned a delta (``-T evidence=persuasive``, the default), the matched replies that
did not (``unpersuasive``; the two corpora of Tan et al. only), or both, alternating (``both``); the
sample's metadata records the choice and each item's kind, so one can ask whether a model updates
more on arguments that moved people.

Decisions (from the real file, ``../shared/data/cmv``):

* Evidence is the delta-earning reply of each thread, ``comments[-3]``: DeltaBot replies to the
  award comment (``comments[-1]``), and the award comment (``comments[-2]``) replies to the comment
  that earned it. A chain whose last comment is the award (``!delta``, ∆) and not DeltaBot's reply
  was dumped without the bot's messages: its delta-earning reply is ``comments[-2]``. Without author
  names nothing else in a chain can be attributed robustly: chains
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
* Text is HTML-decoded before anything else reads it (``unescape_html``): Reddit's dumps escape it
  once (``&amp;``, ``&gt;``, the delta sign as ``&#8710;``) and some escape it again (``&amp;gt;``,
  ``&amp;#8710;``); undecoded, such an award is not recognised and the model sees the entities.
  Titles, bodies and comments are decoded, awards are recognised on the decoded text.
* Text written after the fact is removed, since it leaks the discussion's outcome into the prior
  or adds social proof to a reply: the moderators' footnote; edits (from a line starting with an
  ``Edit``/``Update``/``ETA`` marker to the end of its paragraph); and paragraphs that mention
  deltas or a changed view. This applies to the post and to the replies. The "CMV:" prefix of the
  title goes too (the question names the subreddit). The collector replaced every comma in
  ``selftext`` by a space; that cannot be undone reliably and is left as is.
* A post whose replies are all gone, or that has no delta thread, has no evidence: it is left out
  and recorded in the skipped rows in both ``bad_rows`` modes (it is well-formed, just unusable).
  Malformed rows (not JSON, no title, ``delta_threads`` not a list of ``{comments: [...]}`` chains
  ending with DeltaBot's confirmation or an award, a duplicate ``post_index``) follow ``bad_rows``.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from martingale_harness.errors import ConfigError, DataError
from martingale_harness.tasks.base import (
    DEFAULT_EVIDENCE_BUDGET,
    DomainItem,
    LoadResult,
    RowCollector,
    SkippedRow,
    check_budget,
    jsonl_records,
    truncate_evidence,
)
from martingale_harness.tasks.cmv.text import (
    AWARD,
    CMV_PREFIX,
    DELTABOT,
    GONE,
    CmvPost,
    strip_after_the_fact,
    unescape_html,
)


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
    title = unescape_html(obj["title"]) if isinstance(obj["title"], str) else obj["title"]
    if not isinstance(title, str) or not title.strip():
        return f"post {index}: empty or missing title"
    selftext = obj.get("selftext")
    if selftext is not None and not isinstance(selftext, str):
        return f"post {index}: selftext must be text, got {type(selftext).__name__}"
    selftext = unescape_html(selftext) if selftext else selftext
    threads = obj["delta_threads"]
    if not isinstance(threads, list):
        return f"post {index}: delta_threads must be a list, got {type(threads).__name__}"

    replies: list[str] = []
    gone = 0
    for k, thread in enumerate(threads):
        comments = thread.get("comments") if isinstance(thread, dict) else None
        if not isinstance(comments, list) or not all(c is None or isinstance(c, str) for c in comments):
            return f"post {index}: delta thread #{k} must be an object with a list of comment texts"
        earning = _delta_earning([c if c is None else unescape_html(c) for c in comments])
        if earning is False:
            return (f"post {index}: delta thread #{k} is not a chain of reply and delta award (the last comment "
                    "must be DeltaBot's confirmation of the award before it, or the award itself: !delta or ∆)")
        if not isinstance(earning, str) or not earning.strip() or GONE.match(earning):
            gone += 1
            continue
        reply, _ = strip_after_the_fact(earning)
        if not reply:
            gone += 1
        elif reply not in replies:
            replies.append(reply)

    cleaned_title = CMV_PREFIX.sub("", title).strip() or title.strip()
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


def _delta_earning(comments: list[str | None]) -> str | None | Literal[False]:
    """The reply that earned the delta of a chain (None if it is gone), or False if the chain has no award.

    A chain ends with DeltaBot's confirmation (reply, award, confirmation) or, in dumps without the bot's
    messages, with the award itself (reply, award: "!delta" or the delta sign).
    """
    last = comments[-1] if comments else None
    if len(comments) >= 3 and DELTABOT.search(last or ""):
        return comments[-3]
    if len(comments) >= 2 and AWARD.search(last or "") and not DELTABOT.search(last or ""):
        return comments[-2]
    return False


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


EVIDENCE_CHOICES: tuple[str, ...] = ("persuasive", "unpersuasive", "both")
FORMATS: tuple[str, ...] = ("threads", "convokit", "pairs")


def evidence_items(post: CmvPost, max_evidence: int | None = None,
                   evidence: str = "persuasive") -> tuple[list[str], list[str]]:
    """The replies shown as evidence, one item each, and the kind of each (``persuasive``/``unpersuasive``).

    ``both`` alternates the two kinds (persuasive first), so neither comes all at the end of the
    conversation; ``max_evidence`` keeps the first N of that order. Nothing in an item says its kind.
    """
    persuasive = [("persuasive", r) for r in post.replies]
    unpersuasive = [("unpersuasive", r) for r in post.unpersuasive]
    if evidence == "persuasive":
        chosen = persuasive
    elif evidence == "unpersuasive":
        chosen = unpersuasive
    else:
        chosen = [x for pair in itertools.zip_longest(persuasive, unpersuasive) for x in pair if x is not None]
    chosen = chosen[:max_evidence]
    return [f"A reply to the post:\n\n{reply}" for _, reply in chosen], [kind for kind, _ in chosen]


def detect_format(path: Path) -> str:
    """The layout of a CMV source: a ConvoKit folder or file, or a JSONL of threads or of pairs."""
    if path.is_dir() or path.name in ("utterances.jsonl", "conversations.json"):
        return "convokit"
    _check_path(path)
    objects = 0
    with path.open("rb") as f:
        for raw in itertools.islice(f, 50):
            try:
                obj = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                continue
            objects += isinstance(obj, dict)
            if isinstance(obj, dict) and "delta_threads" in obj:
                return "threads"
            if isinstance(obj, dict) and {"positive", "negative"} <= obj.keys():
                return "pairs"
    if not objects:  # nothing to tell by: the threads reader names each bad line
        return "threads"
    raise DataError(path, "cannot tell the CMV layout: expected JSONL posts with delta_threads (threads), a ConvoKit "
                          "winning-args folder (convokit) or Tan et al.'s pair lists with positive/negative (pairs); "
                          "pass -T format=threads|convokit|pairs")


def load(
    path: str | Path,
    *,
    evidence_budget: int | None = DEFAULT_EVIDENCE_BUDGET,
    bad_rows: str = "skip",
    max_evidence: int | None = None,
    format: str | None = None,
    evidence: str | None = None,
) -> LoadResult:
    """The ``cmv`` domain loader (see ``tasks.base``).

    ``format`` (``threads``, ``convokit``, ``pairs``; None: recognised from the source), ``evidence``
    (``persuasive``, the default, ``unpersuasive`` or ``both``), ``max_evidence`` keeps the first N replies.
    """
    from martingale_harness.tasks.cmv import corpora as cmv_corpora

    budget = check_budget(evidence_budget)
    if max_evidence is not None and (isinstance(max_evidence, bool) or not isinstance(max_evidence, int)
                                     or max_evidence < 1):
        raise ConfigError(f"max_evidence must be a positive number of replies (or None for all), got {max_evidence!r}")
    evidence = evidence or "persuasive"
    if evidence not in EVIDENCE_CHOICES:
        raise ConfigError(f"evidence={evidence!r} is not allowed; allowed: {', '.join(EVIDENCE_CHOICES)}")
    if format is not None and format not in FORMATS:
        raise ConfigError(f"format={format!r} is not allowed; allowed: {', '.join(FORMATS)} (or leave it out)")
    source = Path(path)
    if not source.exists():
        raise DataError(source, "CMV data file does not exist")
    layout = format or detect_format(source)
    if evidence != "persuasive" and layout == "threads":
        raise ConfigError(f"evidence={evidence} needs replies that earned no delta, which the threads layout does "
                          "not have (it lists delta threads only); use a ConvoKit winning-args corpus or Tan et al.'s "
                          "pairs")
    rows = RowCollector(bad_rows)
    readers = {"threads": read_posts, "convokit": cmv_corpora.read_convokit, "pairs": cmv_corpora.read_pairs}
    items = []
    for post in readers[layout](source, rows):
        texts, kinds = evidence_items(post, max_evidence, evidence)
        if not texts:
            rows.skipped.append(SkippedRow(str(source), f"post {post.post_id}: no {evidence} reply to show"))
            continue
        shown, cut = truncate_evidence(texts, budget)
        items.append(DomainItem(
            sample_id=post.post_id,
            question_id=post.post_id,
            question=question_text(post),
            evidence=shown,
            label=None,
            metadata={"source": "cmv", "cmv_format": layout, "post_index": post.post_id, "title": post.title,
                      "evidence_choice": evidence, "evidence_kinds": kinds,
                      "delta_threads": post.delta_threads, "replies_total": len(post.replies),
                      "unpersuasive_total": len(post.unpersuasive),
                      "replies_gone": post.replies_gone, "post_paragraphs_removed": post.paragraphs_removed},
            truncated=cut,
        ))
    if not items:
        raise DataError(source, f"no post has a {evidence} reply to show")
    return LoadResult(items=items, skipped=rows.skipped, evidence_budget=budget)
