"""Write what an annotator reads: every belief turn of an unannotated corpus file, with its rebuilt prompts.

    python benchmarks/annotation_packet.py ROWS.jsonl --out packet.md [--shared-data DIR]

For each conversation, in turn order: the question, then per belief turn its id, stage, stop reason, the
prompt the model saw (rebuilt from the data, as ``extraction_accuracy.py`` rebuilds it), the debate's
arguments where there were any, and the answer verbatim. Nothing an extractor computes is in the packet:
annotators work from the corpus README's rules alone, and write one JSON line per turn
(``{"id", "expected", "kind", "annotation"}``) that ``annotator_agreement.py`` compares and merges.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from martingale_harness.extraction.corpus import CorpusError, PromptRebuilder, group_transcripts, load_corpus


def packet(rows_path: Path, rebuilder: PromptRebuilder) -> str:
    """The packet's markdown text for every conversation of ``rows_path``."""
    turns = load_corpus(rows_path, annotated=False)
    parts = [f"# Annotation packet: {len(turns)} belief turns\n"]
    for key, group in group_transcripts(turns).items():
        transcript = rebuilder.transcript(group)
        first = group[0].row
        parts.append(f"\n## Conversation {key}\n\ntask {first['task']}, paradigm {first['paradigm']}, "
                     f"system prompt {first['system_prompt']}\n\n**Question:**\n\n{_quote(transcript.question)}\n")
        for row, turn in zip(group, transcript.turns, strict=True):
            parts.append(f"\n### Turn `{row.id}`: {turn.stage}, stop reason `{turn.stop_reason}`\n")
            if turn.context:
                parts.append("\n**Debate before this turn:**\n\n" + "\n\n".join(_quote(c) for c in turn.context) + "\n")
            parts.append(f"\n**Prompt:**\n\n{_quote(turn.prompt)}\n\n**Answer:**\n\n```text\n{turn.answer}\n```\n")
    return "".join(parts)


def _quote(text: str) -> str:
    return "\n".join(f"> {line}" if line else ">" for line in text.splitlines())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rows", type=Path, help="the generated rows (make_extraction_corpus.py's output)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--shared-data", type=Path, default=None)
    args = parser.parse_args(argv)
    try:
        text = packet(args.rows, PromptRebuilder(args.shared_data))
    except (CorpusError, FileNotFoundError) as e:
        raise SystemExit(f"annotation_packet: {e}") from None
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out} ({text.count('### Turn')} turns)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
