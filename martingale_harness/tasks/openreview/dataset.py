"""Paper review as belief items: should this paper be accepted? Evidence: its reviews, one by one.

Three input layouts, chosen by what the path is:

* a ``.jsonl`` file (any file not ending in ``.json``): one paper per line, either the OpenReview
  layout of ``../shared/data/openreview`` (``forum_id, title, abstract, decision, accepted,
  reviews: [{review_title, review, rating, confidence}]``) or the PeerRead layout below;
* PeerRead (allenai/PeerRead: ``id, title, abstract, accepted, reviews: [{comments, TITLE,
  RECOMMENDATION, REVIEWER_CONFIDENCE, IS_META_REVIEW, ...}]``): a directory of per-paper
  ``*.json`` files (a PeerRead ``reviews/`` folder, or the split folder holding it), or one
  ``.json`` file with one paper or a list of papers;
* ``hf:<name>[:<split>]``: a Hugging Face dataset read with ``datasets.load_dataset`` (the optional
  ``datasets`` extra); ``<name>`` is a Hub repo such as ``nhop/OpenReview`` or a local directory
  or data file. Without a split, ``train`` (or the only split) is used. ``HF_DATASETS_OFFLINE=1``
  is honoured by ``datasets`` itself.

Rows of all three layouts share one reader. ``nhop/OpenReview`` rows (``title, abstract, venue,
decision`` (bool), ``reviews: [{review: {paper_summary, main_review, strength_weakness, questions,
limitations, review_summary}, ...}]``, from its data model and code that uses it; the per-review
score fields could not be confirmed, so ``rating`` / ``score`` / ``confidence`` keys, plain or in
a ``scores`` object, are used when present) are read the same way.

Decisions:

* Label: ``accepted``, which must be a JSON boolean (strings such as "yes" are a bad row, not
  guessed at); where it is absent, a boolean ``decision`` (nhop's layout) serves. Decision texts
  ("Accept (Poster)", "Invite to Workshop Track") are never parsed: the files state
  ``accepted`` and ICLR 2017's workshop invitations count as not accepted there.
* Evidence: each review with text, in file order, written as a reviewer would (title, rating,
  confidence, text). Meta-reviews (``IS_META_REVIEW``, ``is_meta_review`` or ``meta_review`` true) and decision
  notes (a title such as "ICLR committee final decision") are never shown; the sample's metadata
  counts them. Reviews without text are dropped. A paper with no review left is a bad row.
* Venue: the ``venue`` argument; else the row's ``venue`` field (nhop); else a venue and year in
  the path (``iclr_2017/``, ``iclr2017_...jsonl`` give "ICLR 2017"); else the question says "the
  venue it was submitted to".
* Ids: ``forum_id``, ``id``, ``openreview_submission_id`` or ``paperhash``; else the file stem (per
  paper files) or stem and line / index. A repeated id is a bad row.
* The shared ICLR 2017 file keeps only the first character of a rating, so a 10 reads "1" (its
  3 ratings of "1" include at least the 2 of an oral paper); the loader cannot tell them from real
  ones and shows ratings as given.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from martingale_harness.errors import DataError
from martingale_harness.tasks.base import (
    DEFAULT_EVIDENCE_BUDGET,
    DomainItem,
    LoadResult,
    RowCollector,
    check_budget,
    jsonl_records,
    truncate_evidence,
)

HF_PREFIX = "hf:"
UNKNOWN_VENUE = "the venue it was submitted to"
_ID_FIELDS = ("forum_id", "id", "openreview_submission_id", "paperhash")
_TITLE_FIELDS = ("review_title", "TITLE", "title")
_TEXT_FIELDS = ("review", "comments", "text")
_RATING_FIELDS = ("rating", "RECOMMENDATION", "recommendation", "score", "overall")
_CONFIDENCE_FIELDS = ("confidence", "REVIEWER_CONFIDENCE", "reviewer_confidence")
_META_FLAGS = ("IS_META_REVIEW", "is_meta_review", "meta_review")
# nhop/OpenReview's structured review text, in reading order
_REVIEW_PARTS = (("paper_summary", "Summary"), ("summary", "Summary"), ("main_review", "Review"),
                 ("strength_weakness", "Strengths and weaknesses"), ("strengths", "Strengths"),
                 ("weaknesses", "Weaknesses"), ("questions", "Questions"), ("limitations", "Limitations"),
                 ("review_summary", "Summary of the review"))
_DECISION_NOTE = re.compile(r"\b(?:meta[- ]?review|final decision|paper decision|acceptance decision)\b",
                            re.IGNORECASE)
_VENUE_IN_PATH = re.compile(
    r"(?<![a-z])(iclr|neurips|nips|icml|acl|emnlp|naacl|conll|aaai|ijcai|colm|tmlr|corl|cvpr|iccv|eccv)"
    r"[ _-]?((?:19|20)\d\d)(?!\d)",
    re.IGNORECASE,
)
# name:split, the split as datasets writes it ("train", "train[:10%]", "train+test")
_HF_SPLIT = re.compile(r"(.+?):([A-Za-z_][\w.\-]*(?:\[[^\]]*\])?(?:\+[A-Za-z_][\w.\-]*(?:\[[^\]]*\])?)*)")
_VENUE_NAMES = {"neurips": "NeurIPS", "nips": "NIPS", "conll": "CoNLL"}


@dataclass(frozen=True)
class Review:
    """One reviewer's report, as shown to the model."""

    title: str
    text: str
    rating: str
    confidence: str


@dataclass(frozen=True)
class Paper:
    """One submission with its (non-meta) reviews and the decision."""

    paper_id: str
    title: str
    abstract: str
    accepted: bool
    reviews: tuple[Review, ...]
    venue: str | None
    decision: str | None
    """The decision text when the row has one (metadata only, never shown)."""
    meta_reviews_removed: int
    url: str | None
    where: str


def venue_from_path(path: str) -> str | None:
    """"ICLR 2017" for ``.../iclr_2017/...`` or ``iclr2017_x.jsonl``; None when the path names no venue."""
    found = None
    for m in _VENUE_IN_PATH.finditer(path):
        found = m  # the last one: the most specific part of the path
    if found is None:
        return None
    name = found.group(1).lower()
    return f"{_VENUE_NAMES.get(name, name.upper())} {found.group(2)}"


def read_papers(path: str | Path, rows: RowCollector | None = None) -> list[Paper]:
    """Read papers from any supported layout; bad rows are recorded in (or raised by) ``rows``."""
    rows = rows or RowCollector("skip")
    spec = str(path)
    papers: list[Paper] = []
    seen: dict[str, str] = {}
    for where, default_id, obj in _records(spec, rows):
        paper = _paper(obj, where, default_id)
        if isinstance(paper, str):
            rows.bad(where, paper)
        elif paper.paper_id in seen:
            rows.bad(where, f"duplicate paper id {paper.paper_id!r} (first at {seen[paper.paper_id]})")
        else:
            seen[paper.paper_id] = where
            papers.append(paper)
    if not papers:
        reasons = "; ".join(s.reason for s in rows.skipped[:3]) or "no rows"
        raise DataError(spec, f"no usable paper ({reasons})")
    return papers


def _records(spec: str, rows: RowCollector) -> Iterator[tuple[str, str, Any]]:
    """(where, default id, row) for every row of the source; unreadable rows go to ``rows``."""
    if spec.startswith(HF_PREFIX):
        yield from _hf_records(spec)
        return
    path = Path(spec)
    if not path.exists():
        raise DataError(path, "review data path does not exist")
    if path.is_dir():
        files = _paper_files(path)
        for file in files:
            try:
                obj = json.loads(file.read_text(encoding="utf-8-sig"))
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                rows.bad(str(file), f"file is not valid JSON ({_reason(e)})")
                continue
            yield from _json_papers(file, obj)
    elif path.suffix.lower() == ".json":
        try:
            obj = json.loads(path.read_text(encoding="utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise DataError(path, f"not valid JSON ({_reason(e)}); JSON Lines files must end in .jsonl") from None
        yield from _json_papers(path, obj)
    else:
        yield from _jsonl_records(path, rows)


def _reason(e: UnicodeDecodeError | json.JSONDecodeError) -> str:
    if isinstance(e, UnicodeDecodeError):
        return f"not UTF-8 text: {e.reason}"
    return f"{e.msg} at line {e.lineno}, column {e.colno}"


def _paper_files(directory: Path) -> list[Path]:
    files = sorted(directory.glob("*.json"))
    if not files and (directory / "reviews").is_dir():
        files = sorted((directory / "reviews").glob("*.json"))  # a PeerRead split folder
    if not files:
        raise DataError(directory, "directory has no *.json paper files (nor a PeerRead reviews/ folder with them)")
    return files


def _json_papers(file: Path, obj: Any) -> Iterator[tuple[str, str, Any]]:
    """A JSON document holds one paper (an object) or a list of papers."""
    if isinstance(obj, list):
        for i, paper in enumerate(obj):
            yield f"{file} #{i}", f"{file.stem}-{i}", paper
    else:
        yield str(file), file.stem, obj


def _jsonl_records(path: Path, rows: RowCollector) -> Iterator[tuple[str, str, Any]]:
    for lineno, obj in jsonl_records(path, rows):
        yield f"{path}:{lineno}", f"{path.stem}-{lineno}", obj


def parse_hf_spec(spec: str) -> tuple[str, str | None]:
    """``hf:name[:split]`` -> (name, split); a name that is an existing local path keeps its colons."""
    target = spec[len(HF_PREFIX):].strip()
    m = _HF_SPLIT.fullmatch(target)
    if m and not Path(target).exists():
        return m.group(1), m.group(2)
    return target, None


def _hf_records(spec: str) -> Iterator[tuple[str, str, Any]]:
    name, split = parse_hf_spec(spec)
    if not name:
        raise DataError(spec, "hf: needs a dataset name, e.g. hf:nhop/OpenReview or hf:nhop/OpenReview:train")
    try:
        import datasets
    except ImportError:
        raise DataError(spec, "reading Hugging Face datasets needs the 'datasets' package: "
                              "pip install 'martingale-harness[datasets]'") from None
    local = Path(name).expanduser()
    bars = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()  # inspect owns the terminal
    try:
        if local.is_file():
            builder = {".parquet": "parquet", ".csv": "csv"}.get(local.suffix.lower(), "json")
            data = datasets.load_dataset(builder, data_files=str(local), split=split or "train")
        else:
            data = datasets.load_dataset(str(local) if local.is_dir() else name, split=split)
    except Exception as e:  # datasets raises many types (offline, missing repo, bad split, cast errors)
        raise DataError(spec, f"could not load the Hugging Face dataset {name!r}: {type(e).__name__}: {e}") from None
    finally:
        if bars:
            datasets.enable_progress_bars()
    if isinstance(data, datasets.DatasetDict):
        splits = list(data)
        if "train" not in data and len(splits) != 1:
            raise DataError(spec, f"the dataset has splits {', '.join(splits)}: name one, e.g. {spec}:{splits[0]}")
        data = data["train"] if "train" in data else data[splits[0]]
    stem = local.stem if local.exists() else name.replace("/", "_")
    for i, row in enumerate(data):
        yield f"{spec} row {i}", f"{stem}-{i}", row


def _text(value: Any) -> str:
    if value is None or isinstance(value, dict | list):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _first(obj: dict[str, Any], fields: tuple[str, ...]) -> Any:
    for f in fields:
        if obj.get(f) not in (None, ""):
            return obj[f]
    return None


def _paper(obj: Any, where: str, default_id: str) -> Paper | str:
    """The paper in one row, or why the row cannot be used."""
    if not isinstance(obj, dict):
        return f"wrong schema: a paper must be a JSON object, got {type(obj).__name__}"
    title = obj.get("title")
    if not isinstance(title, str) or not title.strip():
        return "empty or missing title"
    abstract = obj.get("abstract")
    if abstract is not None and not isinstance(abstract, str):
        return f"abstract must be text, got {type(abstract).__name__}"
    accepted = obj.get("accepted")
    if accepted is None and isinstance(obj.get("decision"), bool):
        accepted = obj["decision"]  # nhop/OpenReview: decision is the boolean
    if accepted is None:
        return "lacks a boolean 'accepted' (or a boolean 'decision')"
    if not isinstance(accepted, bool):
        return f"'accepted' must be true or false, got {accepted!r}"
    raw_reviews = obj.get("reviews")
    if raw_reviews is None:
        return "lacks field reviews"
    if not isinstance(raw_reviews, list):
        return f"reviews must be a list, got {type(raw_reviews).__name__}"
    if not raw_reviews:
        return "empty review list"

    reviews: list[Review] = []
    meta = 0
    for k, raw in enumerate(raw_reviews):
        if not isinstance(raw, dict):
            return f"wrong schema: review #{k} must be a JSON object, got {type(raw).__name__}"
        review = _review(raw)
        if review is None:
            meta += 1
        elif review.text:
            reviews.append(review)
    if not reviews:
        return f"no review with text ({len(raw_reviews)} listed, {meta} of them meta-reviews or decision notes)"

    paper_id = _text(_first(obj, _ID_FIELDS)) or default_id
    venue = obj.get("venue")
    decision = obj.get("decision") if isinstance(obj.get("decision"), str) else obj.get("decision_text")
    url = obj.get("openreview_url") or obj.get("url")
    return Paper(
        paper_id=paper_id,
        title=" ".join(title.split()),
        abstract=(abstract or "").strip(),
        accepted=accepted,
        reviews=tuple(reviews),
        venue=venue.strip() if isinstance(venue, str) and venue.strip() else None,
        decision=decision if isinstance(decision, str) else None,
        meta_reviews_removed=meta,
        url=url if isinstance(url, str) else None,
        where=where,
    )


def _review(raw: dict[str, Any]) -> Review | None:
    """The review as shown, or None for a meta-review / decision note."""
    title = _text(_first(raw, _TITLE_FIELDS))
    if any(raw.get(flag) is True for flag in _META_FLAGS) or _DECISION_NOTE.search(title):
        return None
    body = _first(raw, _TEXT_FIELDS)
    if isinstance(body, dict):  # nhop: structured review text
        text = "\n\n".join(f"{label}: {_text(body[key])}" for key, label in _REVIEW_PARTS if _text(body.get(key)))
    else:
        text = _text(body)
    scores = raw.get("scores") if isinstance(raw.get("scores"), dict) else {}
    rating = _first(raw, _RATING_FIELDS)
    confidence = _first(raw, _CONFIDENCE_FIELDS)
    return Review(
        title=title,
        text=text,
        rating=_text(rating if rating is not None else _first(scores, _RATING_FIELDS)),
        confidence=_text(confidence if confidence is not None else _first(scores, _CONFIDENCE_FIELDS)),
    )


def question_text(paper: Paper, venue: str) -> str:
    """Title and abstract, asked as: should it be accepted? The belief is the probability of acceptance."""
    parts = [f"A paper was submitted to {venue}." if venue != UNKNOWN_VENUE else "A paper was submitted for review.",
             f"Title: {paper.title}"]
    if paper.abstract:
        parts.append(f"Abstract: {paper.abstract}")
    parts.append(f"Question: Should this paper be accepted at {venue}? Your probability is the probability "
                 "that the paper is accepted.")
    return "\n\n".join(parts)


def evidence_items(paper: Paper) -> list[str]:
    """One item per review: its title, rating and confidence when present, then the text."""
    items = []
    for i, review in enumerate(paper.reviews, 1):
        head = [f"Review {i}" + (f": {review.title}" if review.title else "")]
        if review.rating:
            head.append(f"Rating: {review.rating}")
        if review.confidence:
            head.append(f"Confidence: {review.confidence}")
        items.append("\n".join(head) + f"\n\n{review.text}")
    return items


def load(
    path: str | Path,
    *,
    evidence_budget: int | None = DEFAULT_EVIDENCE_BUDGET,
    bad_rows: str = "skip",
    venue: str | None = None,
) -> LoadResult:
    """The ``openreview`` domain loader (see ``tasks.base``); ``venue`` overrides the venue named in the data."""
    budget = check_budget(evidence_budget)
    rows = RowCollector(bad_rows)
    path_venue = venue_from_path(str(path))
    items = []
    for paper in read_papers(path, rows):
        shown_venue = (venue or "").strip() or paper.venue or path_venue or UNKNOWN_VENUE
        evidence, cut = truncate_evidence(evidence_items(paper), budget)
        items.append(DomainItem(
            sample_id=paper.paper_id,
            question_id=paper.paper_id,
            question=question_text(paper, shown_venue),
            evidence=evidence,
            label=int(paper.accepted),
            metadata={"source": "openreview", "paper_id": paper.paper_id, "venue": shown_venue,
                      "decision": paper.decision, "reviews": len(paper.reviews),
                      "meta_reviews_removed": paper.meta_reviews_removed, "url": paper.url, "row": paper.where},
            truncated=cut,
        ))
    return LoadResult(items=items, skipped=rows.skipped, evidence_budget=budget)
