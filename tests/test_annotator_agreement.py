"""The second test set's tooling: annotators' agreement (Cohen's κ), the merge, and the packet."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from martingale_harness.extraction.corpus import CorpusError, load_corpus

REPO = Path(__file__).resolve().parents[1]


def _module(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_kappa_is_the_closed_form_of_a_two_by_two_table() -> None:
    # 20 yes/yes, 5 yes/no, 10 no/yes, 15 no/no: p_o = 0.7, p_e = 0.5*0.6 + 0.5*0.4 = 0.5, κ = 0.4
    first = ["y"] * 25 + ["n"] * 25
    second = ["y"] * 20 + ["n"] * 5 + ["y"] * 10 + ["n"] * 15
    assert _module("annotator_agreement").kappa(first, second) == pytest.approx(0.4)


def test_kappa_of_three_categories_matches_its_definition() -> None:
    import random
    from collections import Counter

    rng = random.Random(5)
    labels = ["stated", "no_number", "truncated"]
    first = [rng.choice(labels) for _ in range(200)]
    second = [x if rng.random() < 0.7 else rng.choice(labels) for x in first]
    n = len(first)
    p_o = sum(a == b for a, b in zip(first, second, strict=True)) / n
    ca, cb = Counter(first), Counter(second)
    p_e = sum(ca[k] * cb[k] for k in labels) / n**2
    assert _module("annotator_agreement").kappa(first, second) == pytest.approx((p_o - p_e) / (1 - p_e))


def _rows(tmp_path: Path) -> Path:
    rows = [{"id": f"forecast/s{i}/direct/none/t0.4/{t}", "task": "forecast", "data": "x.json", "sample_id": f"s{i}",
             "paradigm": "direct", "system_prompt": "none", "evidence_budget": 400, "turn": t,
             "stage": "prior" if t == 0 else "posterior", "stop_reason": "stop", "answer": "Probability: 0.3"}
            for i in range(3) for t in range(2)]
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _annotations(path: Path, values: dict[str, tuple[float | None, str]]) -> Path:
    path.write_text("".join(json.dumps({"id": i, "expected": v, "kind": k, "annotation": f"{k} by rule"}) + "\n"
                            for i, (v, k) in values.items()))
    return path


def test_agreement_counts_kinds_values_and_lists_what_to_adjudicate(tmp_path: Path) -> None:
    module = _module("annotator_agreement")
    rows = _rows(tmp_path)
    ids = [t.id for t in load_corpus(rows, annotated=False)]
    a = dict.fromkeys(ids, (0.3, "stated"))
    b = {**a, ids[1]: (0.302, "stated"), ids[2]: (0.4, "stated"), ids[3]: (None, "conflict")}
    a_file, b_file = _annotations(tmp_path / "a.jsonl", a), _annotations(tmp_path / "b.jsonl", b)
    result = module.agreement(ids, module.read_annotations(a_file), module.read_annotations(b_file))
    assert (result.n, result.kind_agree, result.n_both_values, result.value_agree) == (6, 5, 5, 4)
    assert result.disagreements == [ids[2], ids[3]]  # 0.302 is 0.3 within the tolerance
    # merging needs a decision for each disagreement, and takes it
    out = tmp_path / "corpus.jsonl"
    with pytest.raises(SystemExit, match="needs --adjudicated"):
        module.main([str(rows), str(a_file), str(b_file), "--out", str(out)])
    decided = _annotations(tmp_path / "c.jsonl", {ids[2]: (0.4, "stated")})
    with pytest.raises(SystemExit, match="no decision for it"):
        module.main([str(rows), str(a_file), str(b_file), "--adjudicated", str(decided), "--out", str(out)])
    decided = _annotations(tmp_path / "c.jsonl", {ids[2]: (0.4, "stated"), ids[3]: (None, "conflict")})
    assert module.main([str(rows), str(a_file), str(b_file), "--adjudicated", str(decided), "--out", str(out)]) == 0
    merged = {t.id: (t.expected, t.kind) for t in load_corpus(out)}
    assert merged[ids[2]] == (0.4, "stated") and merged[ids[3]] == (None, "conflict")
    assert merged[ids[1]] == (0.3, "stated")


def test_an_annotation_missing_a_turn_or_a_field_is_an_error(tmp_path: Path) -> None:
    module = _module("annotator_agreement")
    rows = _rows(tmp_path)
    ids = [t.id for t in load_corpus(rows, annotated=False)]
    a = _annotations(tmp_path / "a.jsonl", dict.fromkeys(ids[:-1], (0.3, "stated")))
    with pytest.raises(CorpusError, match="not annotated by both"):
        module.agreement(ids, module.read_annotations(a), module.read_annotations(a))
    (tmp_path / "bad.jsonl").write_text(json.dumps({"id": ids[0], "expected": 0.3}) + "\n")
    with pytest.raises(CorpusError, match="missing kind, annotation"):
        module.read_annotations(tmp_path / "bad.jsonl")


def test_the_packet_shows_each_turn_with_its_rebuilt_prompt_and_the_debate(tmp_path: Path,
                                                                           forecastbench_dir: Path) -> None:
    from inspect_ai import eval as inspect_eval

    from martingale_harness.extraction.corpus import PromptRebuilder

    data = forecastbench_dir / "2025-10-26-llm.json"
    log = inspect_eval("martingale/forecast", model="sim/bayesian", limit=2, display="none", log_dir=str(tmp_path),
                       task_args={"data": str(data), "paradigm": "debate", "rounds": 1, "evidence_budget": 300})[0]
    assert log.samples
    rows = []
    for sample in log.samples:
        for i, turn in enumerate(sample.store["martingale_turns"]):
            rows.append({"id": f"forecast/{sample.id}/debate/none/t0.4/{i}", "task": "forecast",
                         "data": f"{forecastbench_dir.name}/{data.name}", "sample_id": str(sample.id),
                         "paradigm": "debate", "system_prompt": "none", "evidence_budget": 300, "turn": i,
                         "stage": turn["stage"], "stop_reason": turn["stop_reason"],
                         "answer": sample.messages[turn["message"]].text,
                         **({"context": turn["context"]} if "context" in turn else {})})
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    text = _module("annotation_packet").packet(path, PromptRebuilder(forecastbench_dir.parent))
    assert text.count("### Turn `") == len(rows) == 4
    for row, sample_turn in zip(rows, [t for s in log.samples for t in s.store["martingale_turns"]], strict=True):
        assert f"### Turn `{row['id']}`: {row['stage']}, stop reason `stop`" in text
        assert all(line in text for line in row["answer"].splitlines() if line.strip())
        assert all(f"> {line}" in text for line in sample_turn["prompt"].splitlines() if line.strip())
    assert text.count("**Debate before this turn:**") == 2  # the closing turn of each debate
    assert "Opponent (arguing No): " in text
