"""Real-answer corpora for measuring extractors: the format, prompts rebuilt from the data, and the rates.

A corpus is JSONL, one belief turn per line (``benchmarks/extraction_corpus/README.md`` has every field
and the annotation rules). It keeps the model's answers and their annotations, never the question or
evidence text: :class:`PromptRebuilder` rebuilds each turn's prompt from the data file by sample id with
the same task code an eval runs, so extractors see what they would have seen in the run.

:func:`score_extractor` compares one extractor's readings with the annotations: turns read with the
annotated value (within :data:`TOLERANCE`), false reads (a number where the annotation is ``null``),
missed beliefs and wrong values, and the Martingale Score of the annotated beliefs beside the one
computed from the extractor's readings on the same transcripts.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from martingale_harness.errors import MartingaleError
from martingale_harness.extraction.beliefs import BeliefReading
from martingale_harness.extraction.transcript import Transcript, Turn
from martingale_harness.stats import martingale as stats

SHARED_DATA_ENV = "MARTINGALE_SHARED_DATA"
REPO = Path(__file__).resolve().parents[2]
TOLERANCE = 0.005
"""A reading within this distance of the annotated value is correct (``0.3`` for "about 30 %")."""
NULL_KINDS = ("no_number", "conflict", "restated", "other_event", "out_of_range", "truncated", "refusal")
"""Why an annotation is ``null`` (the corpus README's rules say when each applies)."""
REQUIRED = ("id", "task", "data", "sample_id", "paradigm", "system_prompt", "evidence_budget", "turn", "stage",
            "stop_reason", "answer")
ANNOTATION_FIELDS = ("expected", "kind", "annotation")
REBUILDABLE_PARADIGMS = ("direct", "cot", "evidence", "debate")
GENERATED_TASKS = ("bayes",)
"""Tasks without a data file: a row's ``task_args`` (its generator settings) rebuild its problem."""


class CorpusError(MartingaleError):
    """A corpus file that cannot be used: bad JSON, a missing field, an annotation without its reason."""


def shared_data_dir(path: Path | str | None = None) -> Path:
    """The shared data folder: ``path``, else ``$MARTINGALE_SHARED_DATA``, else ``../shared/data`` beside the
    current directory (run from the repository root) or beside this source checkout.

    Raises :class:`FileNotFoundError` naming where it looked when the folder is absent.
    """
    if path is not None:
        where = Path(path)
    elif SHARED_DATA_ENV in os.environ:
        where = Path(os.environ[SHARED_DATA_ENV])
    else:
        candidates = [Path.cwd().parent / "shared" / "data", REPO.parent / "shared" / "data"]
        where = next((c for c in candidates if c.is_dir()), candidates[0])
    if not where.is_dir():
        raise FileNotFoundError(
            f"shared data folder not found at {where}: the corpus keeps answers only, and prompts and evidence "
            f"are rebuilt from the data files by sample id; pass --shared-data or set {SHARED_DATA_ENV}")
    return where


@dataclass(frozen=True)
class CorpusTurn:
    """One annotated belief turn of a corpus."""

    id: str
    transcript: str
    row: dict[str, Any]
    expected: float | None
    kind: str
    annotation: str

    @property
    def stage(self) -> str:
        return str(self.row["stage"])

    @property
    def turn(self) -> int:
        return int(self.row["turn"])


def transcript_key(row: dict[str, Any]) -> str:
    """The conversation a row belongs to: its ``transcript`` field, else ``id`` without the last part."""
    return str(row.get("transcript") or str(row["id"]).rsplit("/", 1)[0])


def load_corpus(path: Path | str, *, annotated: bool = True) -> list[CorpusTurn]:
    """Read and check a corpus: every row has the fields that rebuild its prompt and, with ``annotated``,
    an ``expected`` value in [0, 1] or ``null`` with a ``kind`` from :data:`NULL_KINDS` and a one-line
    ``annotation``. Raises :class:`CorpusError` naming the file, line and field."""
    path = Path(path)
    turns: list[CorpusTurn] = []
    seen: set[str] = set()
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise CorpusError(f"{path}: cannot read the corpus: {e}") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            row = json.loads(line)
        except ValueError as e:
            raise CorpusError(f"{where}: not JSON ({e})") from None
        if not isinstance(row, dict):
            raise CorpusError(f"{where}: a row must be a JSON object")
        missing = [k for k in REQUIRED if k not in row]
        if missing:
            raise CorpusError(f"{where}: missing field(s) {', '.join(missing)}")
        if row["id"] in seen:
            raise CorpusError(f"{where}: duplicate id {row['id']!r}")
        seen.add(row["id"])
        expected, kind, note = _annotation(row, where, annotated)
        turns.append(CorpusTurn(id=str(row["id"]), transcript=transcript_key(row), row=row, expected=expected,
                                kind=kind, annotation=note))
    if not turns:
        raise CorpusError(f"{path}: the corpus has no rows")
    return turns


def _annotation(row: dict[str, Any], where: str, annotated: bool) -> tuple[float | None, str, str]:
    if not annotated and "expected" not in row:
        return None, "", ""
    for key in ANNOTATION_FIELDS:
        if key not in row:
            raise CorpusError(f"{where}: not annotated (no {key!r}); see the corpus README's rules")
    expected, kind, note = row["expected"], row["kind"], row["annotation"]
    if not isinstance(note, str) or not note.strip() or "\n" in note.strip():
        raise CorpusError(f"{where}: 'annotation' must be a one-line reason")
    if expected is None:
        if kind not in NULL_KINDS:
            raise CorpusError(f"{where}: kind {kind!r} for a null annotation; allowed: {', '.join(NULL_KINDS)}")
        return None, kind, note.strip()
    if isinstance(expected, bool) or not isinstance(expected, int | float) or not 0 <= expected <= 1:
        raise CorpusError(f"{where}: 'expected' must be a number in [0, 1] or null, got {expected!r}")
    if kind != "stated":
        raise CorpusError(f"{where}: kind must be 'stated' for an annotated value, got {kind!r}")
    return float(expected), kind, note.strip()


class PromptRebuilder:
    """Rebuilds each corpus turn's prompt (and its transcript's question) from the data by sample id.

    Uses the task code of an eval (``martingale.tasks``), so the question, the evidence, its cut at
    ``evidence_budget`` and the prompt wording are what the model saw. Each data file is loaded once.
    """

    def __init__(self, data_dir: Path | str | None = None) -> None:
        self.data_dir = shared_data_dir(data_dir)
        self._samples: dict[tuple[str, str, int], dict[str, Any]] = {}

    def _sample(self, row: dict[str, Any]) -> Any:
        task, data, sample_id = str(row["task"]), row["data"], str(row["sample_id"])
        budget = int(row["evidence_budget"])
        generated = task in GENERATED_TASKS
        if generated and not isinstance(row.get("task_args"), dict):
            raise CorpusError(f"{row['id']}: a {task} row needs 'task_args' (the generator settings of its problem)")
        source = json.dumps(row["task_args"], sort_keys=True) if generated else str(data)
        key = (task, source, budget)
        if key not in self._samples:
            from martingale import tasks

            if generated:
                built = getattr(tasks, task)(**row["task_args"], evidence_budget=budget)
            else:
                path = self.data_dir / str(data)
                if not path.exists():
                    raise CorpusError(f"data file {data} not found under {self.data_dir}")
                built = getattr(tasks, task)(data=str(path), evidence_budget=budget)
            self._samples[key] = {str(s.id): s for s in built.dataset}
        try:
            return self._samples[key][sample_id]
        except KeyError:
            raise CorpusError(f"sample {sample_id!r} is not in {source} (task {task})") from None

    def transcript(self, turns: Sequence[CorpusTurn]) -> Transcript:
        """The transcript of one conversation's turns (in turn order), prompts rebuilt."""
        from martingale_harness.protocol import solver as protocol

        ordered = sorted(turns, key=lambda t: t.turn)
        first = ordered[0].row
        if first["paradigm"] not in REBUILDABLE_PARADIGMS:
            raise CorpusError(f"{ordered[0].id}: paradigm {first['paradigm']!r} cannot be rebuilt from the data "
                              f"(its prompts hold generated text); allowed: {', '.join(REBUILDABLE_PARADIGMS)}")
        sample = self._sample(first)
        question = str(sample.input)
        evidence = [str(e) for e in (sample.metadata or {}).get("evidence", [])]
        built = []
        for t in ordered:
            context = tuple(str(c) for c in t.row.get("context") or ())
            if t.turn == 0:
                prompt = protocol.prior_prompt(question)
            elif first["paradigm"] == "direct":
                prompt = protocol.posterior_prompt(evidence)
            elif first["paradigm"] == "cot":
                prompt = protocol.cot_prompt(evidence)
            elif first["paradigm"] == "debate":
                prompt = protocol.debate_closing_prompt(_last_reply(t, context))
            else:
                items = evidence or [protocol.NO_EVIDENCE]
                prompt = protocol.evidence_prompt(items[t.turn - 1], t.turn, len(items))
            built.append(Turn(stage=t.stage, prompt=prompt, answer=str(t.row["answer"]),  # type: ignore[arg-type]
                              stop_reason=t.row.get("stop_reason"), context=context))
        return Transcript(question=question, turns=tuple(built))


def _last_reply(turn: CorpusTurn, context: tuple[str, ...]) -> str:
    """The opponent's last argument of a debate turn's ``context``, which its closing prompt shows."""
    from martingale_harness.protocol import solver as protocol

    replies = [c.removeprefix(protocol.DEBATE_OPPONENT_LABEL) for c in context
               if c.startswith(protocol.DEBATE_OPPONENT_LABEL)]
    if not replies:
        raise CorpusError(f"{turn.id}: a debate's closing turn needs 'context' with the opponent's arguments "
                          f"(lines starting {protocol.DEBATE_OPPONENT_LABEL!r})")
    return replies[-1]


def group_transcripts(turns: Iterable[CorpusTurn]) -> dict[str, list[CorpusTurn]]:
    """Corpus turns by conversation, each in turn order."""
    groups: dict[str, list[CorpusTurn]] = {}
    for t in turns:
        groups.setdefault(t.transcript, []).append(t)
    return {k: sorted(v, key=lambda t: t.turn) for k, v in groups.items()}


def rate_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The exact (Clopper–Pearson) interval of a rate ``k / n``: with a few dozen annotated turns a rate
    is a wide range, and the table says how wide. ``(nan, nan)`` when ``n`` is 0."""
    if n == 0:
        return math.nan, math.nan
    from scipy.stats import binomtest

    ci = binomtest(k, n).proportion_ci(confidence_level=confidence, method="exact")
    return float(ci.low), float(ci.high)


@dataclass
class AccuracyResult:
    """How one extractor's readings compare with the annotations (counts; rates as properties)."""

    extractor: str
    n_turns: int = 0
    n_stated: int = 0  # turns annotated with a value
    n_null: int = 0  # turns annotated null
    correct: int = 0
    wrong: int = 0
    missed: int = 0
    false_reads: int = 0
    failure_kinds: Counter[str] = field(default_factory=Counter)
    ms: MSComparison | None = None

    @property
    def correct_rate(self) -> float:
        return self.correct / self.n_stated if self.n_stated else math.nan

    @property
    def wrong_rate(self) -> float:
        return self.wrong / self.n_stated if self.n_stated else math.nan

    @property
    def missed_rate(self) -> float:
        return self.missed / self.n_stated if self.n_stated else math.nan

    @property
    def false_read_rate(self) -> float:
        return self.false_reads / self.n_null if self.n_null else math.nan


@dataclass(frozen=True)
class MSComparison:
    """MS of the annotated beliefs and of the extractor's readings on the transcripts both cover."""

    n_annotated: int  # transcripts whose prior and posterior are both annotated with a value
    n_read: int  # of those, transcripts the extractor read both beliefs of
    ms_annotated: float  # on the n_read transcripts
    ms_extractor: float
    bias: float  # ms_extractor - ms_annotated, paired over the same transcripts
    bias_ci_low: float
    bias_ci_high: float
    ms_all_reads: float  # the extractor's MS over every transcript it read (annotated or not): what a run reports
    n_all_reads: int


def score_extractor(extractor: str, turns: Sequence[CorpusTurn],
                    readings: dict[str, BeliefReading], *, resamples: int = 2000, seed: int = 0) -> AccuracyResult:
    """Compare ``readings`` (by corpus turn id) with the annotations of ``turns``."""
    result = AccuracyResult(extractor)
    for t in turns:
        reading = readings[t.id]
        result.n_turns += 1
        if not reading.is_ok:
            result.failure_kinds[reading.kind or "unknown"] += 1
        if t.expected is None:
            result.n_null += 1
            result.false_reads += reading.is_ok
        else:
            result.n_stated += 1
            if not reading.is_ok:
                result.missed += 1
            elif abs(float(reading.value) - t.expected) <= TOLERANCE:  # type: ignore[arg-type]
                result.correct += 1
            else:
                result.wrong += 1
    result.ms = compare_ms(turns, readings, resamples=resamples, seed=seed)
    return result


def _endpoints(turns: Sequence[CorpusTurn]) -> tuple[CorpusTurn, CorpusTurn] | None:
    prior = next((t for t in turns if t.stage == "prior"), None)
    posterior = next((t for t in reversed(turns) if t.stage == "posterior"), None)
    return (prior, posterior) if prior is not None and posterior is not None else None


def compare_ms(turns: Sequence[CorpusTurn], readings: dict[str, BeliefReading], *, resamples: int = 2000,
               seed: int = 0) -> MSComparison:
    """The extraction-induced MS bias: the extractor's MS minus the annotated MS on the same transcripts
    (prior and posterior annotated with values and both read by the extractor), with a paired
    transcript-bootstrap 95 % CI (:func:`stats.paired_slope_difference`)."""
    ann_p, ann_q, ext_p, ext_q, keys, all_p, all_q = [], [], [], [], [], [], []
    n_annotated = 0
    for key, group in group_transcripts(turns).items():
        ends = _endpoints(group)
        if ends is None:
            continue
        prior, posterior = ends
        rp, rq = readings[prior.id], readings[posterior.id]
        if rp.is_ok and rq.is_ok:
            all_p.append(rp.value)
            all_q.append(rq.value)
        if prior.expected is None or posterior.expected is None:
            continue
        n_annotated += 1
        if rp.is_ok and rq.is_ok:
            ann_p.append(prior.expected)
            ann_q.append(posterior.expected)
            ext_p.append(rp.value)
            ext_q.append(rq.value)
            keys.append(key)
    ms_annotated = stats.martingale_score(ann_p, ann_q).slope
    ms_extractor = stats.martingale_score(ext_p, ext_q).slope
    diff = stats.paired_slope_difference(ann_p, ann_q, keys, ext_p, ext_q, keys, resamples=resamples, seed=seed)
    return MSComparison(n_annotated=n_annotated, n_read=len(keys), ms_annotated=ms_annotated,
                        ms_extractor=ms_extractor, bias=diff.difference, bias_ci_low=diff.ci_low,
                        bias_ci_high=diff.ci_high, ms_all_reads=stats.martingale_score(all_p, all_q).slope,
                        n_all_reads=len(all_p))


async def read_corpus(extractor: Any, transcripts: dict[str, list[CorpusTurn]],
                      rebuilder: PromptRebuilder) -> dict[str, BeliefReading]:
    """Run one extractor on every corpus transcript: the reading of each turn, by corpus turn id.

    An extractor that returns the wrong number of readings is an error naming it and the transcript.
    """
    readings: dict[str, BeliefReading] = {}
    for key, group in transcripts.items():
        transcript = rebuilder.transcript(group)
        result = await extractor.extract(transcript)
        if len(result) != len(group):
            raise CorpusError(f"extractor {extractor.name!r} returned {len(result)} readings for the "
                              f"{len(group)} turns of {key}")
        readings.update({t.id: r for t, r in zip(group, result, strict=True)})
    return readings

