"""How well each extractor reads beliefs from real model answers, against a hand-annotated corpus.

    python benchmarks/extraction_accuracy.py [--corpus PATH] [--split dev|test|all] [--extractors a,b]
                                             [--grader MODEL] [--shared-data DIR] [--show N]

For every extractor, on the corpus's belief turns (``benchmarks/extraction_corpus/answers.jsonl`` by
default; its README has the format and the annotation rules):

* correct: turns annotated with a value that the extractor read within ±0.005 of it (share of those turns,
  with its exact 95 % interval, as for false reads);
* wrong: such turns read with another value; missed: such turns the extractor failed on;
* false reads: turns annotated ``null`` (no committed belief) that the extractor read a number from;
* the Martingale Score of the annotated beliefs beside the extractor's, on the transcripts whose prior
  and posterior are both annotated with values and both read by the extractor, and their difference
  (the bias extraction alone puts into MS) with a paired transcript-bootstrap 95 % CI; and the MS over
  every transcript the extractor read, which is what a run would report.

Prompts and evidence are rebuilt from the shared data folder by sample id (the corpus stores answers
only); without that folder the script says so and stops. Extractors that need a grader model
(``step_judge``, ``single_judge``) run only with ``--grader`` (any inspect model, e.g. ``sim/judge``
offline or ``openai/gpt-4o-mini``). ``logprob`` needs the Yes/No probes an eval records at generation
time, which a corpus of answers does not have, so it is not measured here.
"""

from __future__ import annotations

import argparse
import asyncio
import math
from collections import Counter
from pathlib import Path

from martingale_harness.extraction.corpus import (
    AccuracyResult,
    CorpusError,
    CorpusTurn,
    PromptRebuilder,
    group_transcripts,
    load_corpus,
    rate_interval,
    read_corpus,
    score_extractor,
)

DEFAULT_CORPUS = Path(__file__).resolve().parent / "extraction_corpus" / "answers.jsonl"
OFFLINE = ("self_report", "answer_line")


def _pct(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{100 * x:.1f} %"


def _num(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:+.3f}"


def _ci(k: int, n: int) -> str:
    low, high = rate_interval(k, n)
    return "" if math.isnan(low) else f"[{100 * low:.0f}, {100 * high:.0f}]"


def table(results: list[AccuracyResult]) -> str:
    """The benchmark's markdown table, one row per extractor."""
    from pytablewriter import MarkdownTableWriter

    rows = []
    for r in results:
        ms = r.ms
        assert ms is not None
        rows.append([
            r.extractor, r.n_turns, r.n_stated, r.n_null,
            f"{_pct(r.correct_rate)} ({r.correct}) {_ci(r.correct, r.n_stated)}", f"{_pct(r.wrong_rate)} ({r.wrong})",
            f"{_pct(r.missed_rate)} ({r.missed})", f"{_pct(r.false_read_rate)} ({r.false_reads}) "
                                                   f"{_ci(r.false_reads, r.n_null)}",
            f"{ms.n_read}/{ms.n_annotated}", _num(ms.ms_annotated), _num(ms.ms_extractor),
            f"{_num(ms.bias)} [{_num(ms.bias_ci_low)}, {_num(ms.bias_ci_high)}]",
            f"{_num(ms.ms_all_reads)} (n={ms.n_all_reads})",
        ])
    writer = MarkdownTableWriter(
        headers=["extractor", "turns", "stated", "null", "correct", "wrong", "missed", "false reads",
                 "MS pairs", "MS annotated", "MS extractor", "MS bias [95% CI]", "MS, all its reads"],
        value_matrix=rows, margin=1)
    return writer.dumps()


def _examples(turns: list[CorpusTurn], readings: dict, limit: int) -> list[str]:
    lines = []
    for t in turns:
        r = readings[t.id]
        bad = (t.expected is None) == r.is_ok or (r.is_ok and abs(r.value - t.expected) > 0.005)
        if bad and len(lines) < limit:
            answer = " ".join(str(t.row["answer"]).split())
            got = f"read {r.value} from {r.matched!r}" if r.is_ok else f"failed ({r.kind}: {r.reason})"
            lines.append(f"- {t.id}: annotated {t.expected} ({t.kind}: {t.annotation}); {got}\n    {answer[:400]}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--split", choices=("all", "dev", "test"), default="all")
    parser.add_argument("--extractors", default=None,
                        help=f"comma-separated (default: {', '.join(OFFLINE)}, and the judges with --grader)")
    parser.add_argument("--grader", default=None, help="inspect model for the judges' grader role")
    parser.add_argument("--shared-data", type=Path, default=None)
    parser.add_argument("--show", type=int, default=0,
                        help="print up to N false reads, wrong values and missed beliefs per extractor")
    parser.add_argument("--resamples", type=int, default=2000)
    args = parser.parse_args(argv)

    from martingale_harness.plugin.host import get_extractor

    try:
        turns = load_corpus(args.corpus)
        rebuilder = PromptRebuilder(args.shared_data)
    except (CorpusError, FileNotFoundError) as e:
        raise SystemExit(f"extraction_accuracy: {e}") from None
    if args.split != "all":
        turns = [t for t in turns if t.row.get("split") == args.split]
        if not turns:
            raise SystemExit(f"extraction_accuracy: no turns in split {args.split!r} of {args.corpus}")
    names = args.extractors.split(",") if args.extractors else [*OFFLINE, *(("step_judge", "single_judge")
                                                                          if args.grader else ())]
    if args.grader:
        from inspect_ai.model import get_model

        from martingale_harness._inspect_compat import init_model_roles  # what an eval does with --model-role

        init_model_roles({"grader": get_model(args.grader)})
    transcripts = group_transcripts(turns)
    kinds = Counter(t.kind for t in turns)
    print(f"corpus {args.corpus} ({args.split}): {len(turns)} belief turns in {len(transcripts)} transcripts; "
          f"annotations: " + ", ".join(f"{k} {n}" for k, n in kinds.most_common()))
    results, examples = [], []
    for name in names:
        extractor = get_extractor(name)
        if getattr(extractor, "model_roles", ()) and not args.grader:
            print(f"{name}: skipped, it needs a grader model (--grader)")
            continue
        try:
            readings = asyncio.run(read_corpus(extractor, transcripts, rebuilder))
        except CorpusError as e:
            raise SystemExit(f"extraction_accuracy: {e}") from None
        result = score_extractor(name, turns, readings, resamples=args.resamples)
        results.append(result)
        if args.show:
            examples += [f"{name}:", *_examples(turns, readings, args.show)]
        breakdown = ", ".join(f"{k} {n}" for k, n in result.failure_kinds.most_common())
        print(f"{name}: failed readings by kind: {breakdown or 'none'}")
    print()
    print(table(results))
    if examples:
        print("\n".join(examples))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
