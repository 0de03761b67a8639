"""How far two independent annotations of a corpus agree, what to adjudicate, and the merged corpus.

    python benchmarks/annotator_agreement.py ROWS.jsonl A.jsonl B.jsonl [--adjudicated C.jsonl --out CORPUS.jsonl]

``A`` and ``B`` hold one JSON line per turn, ``{"id", "expected", "kind", "annotation"}``, written from the
corpus README's rules by two annotators who did not see each other's work. Printed:

* kind: the share of turns given the same kind (``stated`` or a null kind) and Cohen's κ over the kinds;
* committed or not: κ over "a value" vs ``null`` alone;
* value, on the turns both read a value: the share equal within the corpus tolerance (±0.005) and κ over
  the values as categories (rounded to 3 decimals);
* every disagreement, with both annotations, for adjudication.

κ is statsmodels' ``cohens_kappa`` on the contingency table. With ``--adjudicated`` (lines of the same form
for the disagreements, carrying the decision) and ``--out``, the corpus is written: each row with ``A``'s
annotation where the two agree and the adjudicated one where they do not; a disagreement left without a
decision is an error naming it.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from martingale_harness.extraction.corpus import TOLERANCE, CorpusError, load_corpus

FIELDS = ("expected", "kind", "annotation")


@dataclass(frozen=True)
class Agreement:
    """Two annotators' agreement on one corpus."""

    n: int
    kind_agree: int
    kind_kappa: float
    committed_kappa: float
    n_both_values: int
    value_agree: int
    value_kappa: float
    disagreements: list[str]


def read_annotations(path: Path) -> dict[str, dict[str, Any]]:
    """One annotator's lines by turn id; a line without the three fields, or a repeated id, is an error."""
    found: dict[str, dict[str, Any]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        missing = [k for k in ("id", *FIELDS) if k not in row]
        if missing:
            raise CorpusError(f"{path}:{number}: missing {', '.join(missing)}")
        if row["id"] in found:
            raise CorpusError(f"{path}:{number}: id {row['id']!r} annotated twice")
        found[str(row["id"])] = row
    return found


def kappa(first: list[str], second: list[str]) -> float:
    """Cohen's κ of two raters' labels of the same items (statsmodels, on their contingency table)."""
    import numpy as np
    from statsmodels.stats.inter_rater import cohens_kappa

    labels = sorted(set(first) | set(second))
    index = {label: i for i, label in enumerate(labels)}
    table = np.zeros((len(labels), len(labels)))
    for a, b in zip(first, second, strict=True):
        table[index[a], index[b]] += 1
    if len(labels) == 1:
        return float("nan")  # one category: κ is undefined (no chance agreement to correct)
    return float(cohens_kappa(table, return_results=False))


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    if a["expected"] is None or b["expected"] is None:
        return a["expected"] is None and b["expected"] is None and a["kind"] == b["kind"]
    return abs(float(a["expected"]) - float(b["expected"])) <= TOLERANCE


def agreement(ids: list[str], a: dict[str, dict[str, Any]], b: dict[str, dict[str, Any]]) -> Agreement:
    """The agreement of annotations ``a`` and ``b`` over the turns ``ids`` (each must be in both)."""
    absent = [i for i in ids if i not in a or i not in b]
    if absent:
        raise CorpusError(f"{len(absent)} turn(s) not annotated by both, e.g. {absent[0]!r}")
    kinds_a, kinds_b = [a[i]["kind"] for i in ids], [b[i]["kind"] for i in ids]
    both = [i for i in ids if a[i]["expected"] is not None and b[i]["expected"] is not None]
    values_a = [f"{float(a[i]['expected']):.3f}" for i in both]
    values_b = [f"{float(b[i]['expected']):.3f}" for i in both]
    return Agreement(
        n=len(ids), kind_agree=sum(x == y for x, y in zip(kinds_a, kinds_b, strict=True)),
        kind_kappa=kappa(kinds_a, kinds_b),
        committed_kappa=kappa([str(k == "stated") for k in kinds_a], [str(k == "stated") for k in kinds_b]),
        n_both_values=len(both),
        value_agree=sum(abs(float(a[i]["expected"]) - float(b[i]["expected"])) <= TOLERANCE for i in both),
        value_kappa=kappa(values_a, values_b) if both else float("nan"),
        disagreements=[i for i in ids if not _same(a[i], b[i])])


def merge(rows_path: Path, a: dict[str, dict[str, Any]], b: dict[str, dict[str, Any]],
          decided: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The corpus rows with their annotation: ``a``'s where ``a`` and ``b`` agree, else the decision."""
    rows = [t.row for t in load_corpus(rows_path, annotated=False)]
    merged = []
    for row in rows:
        i = str(row["id"])
        chosen = a[i] if _same(a[i], b[i]) else decided.get(i)
        if chosen is None:
            raise CorpusError(f"{i}: the annotators disagree and --adjudicated has no decision for it")
        merged.append({**row, **{k: chosen[k] for k in FIELDS}})
    return merged


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rows", type=Path)
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    parser.add_argument("--adjudicated", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    try:
        ids = [t.id for t in load_corpus(args.rows, annotated=False)]
        a, b = read_annotations(args.a), read_annotations(args.b)
        result = agreement(ids, a, b)
    except CorpusError as e:
        raise SystemExit(f"annotator_agreement: {e}") from None
    print(f"{result.n} turns; kind: {result.kind_agree}/{result.n} the same ({result.kind_agree / result.n:.1%}), "
          f"Cohen's κ {result.kind_kappa:.3f}; value or null: κ {result.committed_kappa:.3f}")
    if result.n_both_values:
        print(f"value, on the {result.n_both_values} turns both read one: {result.value_agree}/{result.n_both_values} "
              f"within ±{TOLERANCE} ({result.value_agree / result.n_both_values:.1%}), κ {result.value_kappa:.3f}")
    print(f"\n{len(result.disagreements)} disagreement(s):")
    for i in result.disagreements:
        print(f"- {i}\n    A: {a[i]['expected']} ({a[i]['kind']}): {a[i]['annotation']}"
              f"\n    B: {b[i]['expected']} ({b[i]['kind']}): {b[i]['annotation']}")
    if args.out:
        if args.adjudicated is None and result.disagreements:
            raise SystemExit("annotator_agreement: --out needs --adjudicated with a decision for each disagreement")
        decided = read_annotations(args.adjudicated) if args.adjudicated else {}
        try:
            merged = merge(args.rows, a, b, decided)
        except CorpusError as e:
            raise SystemExit(f"annotator_agreement: {e}") from None
        args.out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in merged), encoding="utf-8")
        load_corpus(args.out)  # the merged corpus passes the corpus checks
        print(f"\nwrote {len(merged)} annotated turns to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
