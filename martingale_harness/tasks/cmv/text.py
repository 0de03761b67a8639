"""Text of r/ChangeMyView posts and replies: the post record, HTML entities, and what is cut as after the fact.

Shared by the loader of the threads layout (:mod:`martingale_harness.tasks.cmv.dataset`) and those of the
ConvoKit and Tan et al. corpora (:mod:`martingale_harness.tasks.cmv.corpora`).
"""

from __future__ import annotations

import html
import html.entities
import re
from dataclasses import dataclass

CMV_PREFIX = re.compile(r"^(?:\s*\[?\s*CMV\b\s*\]?\s*[:\-–—]?\s*)+", re.IGNORECASE)  # some titles repeat it
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
GONE = re.compile(r"^\s*(?:\[deleted\]|\[removed\]|This comment has been overwritten\b)", re.IGNORECASE)
# DeltaBot's replies to an award: "Confirmed: 1 delta awarded to /u/...", "This delta has been rejected. ..."
DELTABOT = re.compile(r"^\s*(?:confirmed:\s*\d+\s+delta|this delta has been rejected)|\bdeltabot\b", re.IGNORECASE)
# the award itself: "!delta", or the delta sign (also as the HTML entity some dumps keep)
AWARD = re.compile(r"!delta\b|∆|Δ|&#8710;", re.IGNORECASE)


# a character reference closed by ";": numeric, or a name (checked against HTML5's names before decoding)
_ENTITY = re.compile(r"&(?:#[0-9]{1,8}|#[xX][0-9A-Fa-f]{1,8}|([A-Za-z][A-Za-z0-9]{0,31}));")
_UNESCAPE_PASSES = 3


def _decode_entity(match: re.Match[str]) -> str:
    name = match.group(1)
    if name is not None and f"{name};" not in html.entities.html5:
        return match.group()
    return html.unescape(match.group())


def unescape_html(text: str) -> str:
    """``text`` with its HTML character references decoded, as often as it was escaped (at most 3 times).

    Reddit's API and dumps escape comment text once (``&`` as ``&amp;``, ``>`` as ``&gt;``); some dumps
    escape it again (``&amp;amp;``, ``&amp;gt;``), and users type the delta sign as ``&#8710;``, which
    such a dump writes ``&amp;#8710;``. The rule: decode with ``html.unescape`` until nothing changes,
    at most three passes (once for Reddit, once for a dump that escapes again, once for an entity the
    author typed). Only references closed by ``;`` are decoded, a named one only if HTML5 defines that
    name: ``html.unescape`` alone also decodes some names without ``;``, which turns a link's
    ``...&copy=2&sectionNum=3`` into ``...©=2§ionNum=3`` (the real file has such links).

    Why this cannot corrupt real text much: text already decoded is left as is (a bare ``&``, ``&lt``
    without ``;``, ``AT&T`` are not references). Decoding one pass too many changes only a literal
    entity the author typed, and Reddit shows a typed entity as its character (that is how
    ``&#8710;`` awards a delta), so the decoded text is what readers saw. What is lost is text that
    writes out an escaped entity on purpose (a comment explaining that ``&amp;amp;`` means ``&``),
    which is rare in a debate forum and loses only the spelling of that entity.
    """
    for _ in range(_UNESCAPE_PASSES):
        if "&" not in text:
            break
        decoded = _ENTITY.sub(_decode_entity, text)
        if decoded == text:
            break
        text = decoded
    return text


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
    unpersuasive: tuple[str, ...] = ()
    """Replies matched to the persuasive ones that earned no delta (the corpora of Tan et al. only)."""


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
