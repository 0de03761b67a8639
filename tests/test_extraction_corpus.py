"""The real-answer corpus and the extraction-accuracy benchmark: the corpus parses and follows its rules,
prompts are rebuilt exactly as an eval sent them, and the benchmark's rates and MS bias are computed
correctly on small hand-made corpora (checked against counts done by hand and statsmodels)."""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import statsmodels.api as sm
from inspect_ai import eval as inspect_eval

from martingale_harness.extraction.beliefs import FAILURE_KINDS, BeliefReading
from martingale_harness.extraction.corpus import (
    NULL_KINDS,
    CorpusError,
    CorpusTurn,
    PromptRebuilder,
    compare_ms,
    group_transcripts,
    load_corpus,
    rate_interval,
    read_corpus,
    score_extractor,
    shared_data_dir,
)
from martingale_harness.plugin.host import get_extractor

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "benchmarks" / "extraction_corpus" / "answers.jsonl"
HOLDOUT = REPO / "benchmarks" / "extraction_corpus" / "holdout.jsonl"
BENCHMARK = REPO / "benchmarks" / "extraction_accuracy.py"


# --- the shipped corpus -------------------------------------------------------------------------


def test_shipped_corpus_parses_and_follows_its_format() -> None:
    turns = load_corpus(CORPUS)
    assert len(turns) >= 400 and sum(t.row["split"] == "test" for t in turns) >= 100
    for t in turns:
        assert t.annotation, t.id
        assert (t.expected is None) == (t.kind in NULL_KINDS), t.id
        assert t.row["stop_reason"] in ("stop", "max_tokens"), t.id
        # dev: the answers self_report was developed on; test: answers generated and annotated after it was frozen
        assert t.row["split"] == ("test" if t.row["temperature"] == 0.5 else "dev"), t.id
    groups = group_transcripts(turns)
    for key, group in groups.items():
        assert [t.stage for t in group] == ["prior", "posterior"], key
        assert [t.turn for t in group] == [0, 1], key
    cells = Counter((t.row["task"], t.row["paradigm"], t.row["system_prompt"]) for t in turns)
    assert len(cells) == 3 * 2 * 3, "every task x paradigm x system prompt is in the corpus"
    assert {t.row["temperature"] for t in turns} == {0.3, 0.5, 0.7, 1.0}
    stated = sum(t.expected is not None for t in turns)
    assert 0.1 <= stated / len(turns) <= 0.9, "both committed and uncommitted answers are represented"
    assert any(t.row["stop_reason"] == "max_tokens" for t in turns)


def test_corpus_stores_no_data_text() -> None:
    # only answers (and a debate's arguments, the model's own output): no question, prompt or evidence
    for path in (CORPUS, HOLDOUT):
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            assert not {"prompt", "question", "evidence", "input", "messages"} & set(row)


def test_shipped_holdout_is_unlike_the_corpus_and_adjudicated() -> None:
    """The second test set: tasks, paradigms and temperatures the corpus does not have, each turn decided."""
    turns = load_corpus(HOLDOUT)
    corpus = load_corpus(CORPUS)
    assert len(turns) >= 100 and {t.row["split"] for t in turns} == {"holdout"}
    assert {t.row["paradigm"] for t in turns} >= {"evidence", "debate"}
    assert "bayes" in {t.row["task"] for t in turns}
    assert not {t.row["temperature"] for t in turns} & {t.row["temperature"] for t in corpus}
    assert {t.row["max_tokens"] for t in turns} == {350} and {t.row["max_tokens"] for t in corpus} == {200}
    assert not {t.transcript for t in turns} & {t.transcript for t in corpus}
    for t in turns:
        assert (t.expected is None) == (t.kind in NULL_KINDS) and t.annotation, t.id
    debates = [t for t in turns if t.row["paradigm"] == "debate" and t.stage == "posterior"]
    assert debates and all(t.row.get("context") for t in debates)
    assert all(isinstance(t.row.get("task_args"), dict) for t in turns if t.row["task"] == "bayes")


def test_rate_intervals_are_the_exact_binomial_ones() -> None:
    from statsmodels.stats.proportion import proportion_confint

    for k, n in ((9, 12), (0, 105), (105, 105), (6, 105), (1, 2)):
        assert rate_interval(k, n) == pytest.approx(proportion_confint(k, n, alpha=0.05, method="beta"), abs=1e-9)
    assert all(math.isnan(x) for x in rate_interval(0, 0))


# --- loading and its errors -----------------------------------------------------------------------


def _row(i: int, turn: int, expected: float | None, kind: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"id": f"forecast/s{i}/direct/none/t0.7/{turn}", "task": "forecast", "data": "x.json",
            "sample_id": f"s{i}", "paradigm": "direct", "system_prompt": "none", "evidence_budget": 400,
            "turn": turn, "stage": "prior" if turn == 0 else "posterior", "stop_reason": "stop",
            "answer": "a", "expected": expected, "kind": kind or ("stated" if expected is not None else "no_number"),
            "annotation": "why", **extra}


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.mark.parametrize(("change", "message"), [
    ({"annotation": ""}, "one-line reason"),
    ({"annotation": "two\nlines"}, "one-line reason"),
    ({"expected": 1.5}, r"number in \[0, 1\] or null"),
    ({"expected": True}, r"number in \[0, 1\] or null"),
    ({"expected": None, "kind": "stated"}, "kind 'stated' for a null annotation"),
    ({"kind": "no_number"}, "kind must be 'stated'"),
])
def test_bad_annotations_are_refused_naming_the_line(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    rows = [_row(1, 0, 0.3), {**_row(1, 1, 0.4), **change}]
    with pytest.raises(CorpusError, match=message) as e:
        load_corpus(_write(tmp_path / "c.jsonl", rows))
    assert "c.jsonl:2" in str(e.value)


def test_missing_fields_duplicates_and_unannotated_rows(tmp_path: Path) -> None:
    row = _row(1, 0, 0.3)
    del row["stop_reason"]
    with pytest.raises(CorpusError, match="missing field.*stop_reason"):
        load_corpus(_write(tmp_path / "a.jsonl", [row]))
    with pytest.raises(CorpusError, match="duplicate id"):
        load_corpus(_write(tmp_path / "b.jsonl", [_row(1, 0, 0.3), _row(1, 0, 0.3)]))
    bare = {k: v for k, v in _row(1, 0, 0.3).items() if k not in ("expected", "kind", "annotation")}
    with pytest.raises(CorpusError, match="not annotated"):
        load_corpus(_write(tmp_path / "c.jsonl", [bare]))
    assert load_corpus(tmp_path / "c.jsonl", annotated=False)[0].expected is None
    (tmp_path / "d.jsonl").write_text("{not json\n", encoding="utf-8")
    with pytest.raises(CorpusError, match="not JSON"):
        load_corpus(tmp_path / "d.jsonl")


def test_missing_shared_data_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="rebuilt from the data files by sample id"):
        shared_data_dir(tmp_path / "absent")


# --- the rates, on a corpus whose counts are known ------------------------------------------------


def _turns(rows: list[dict[str, Any]]) -> list[CorpusTurn]:
    return [CorpusTurn(id=r["id"], transcript=r["id"].rsplit("/", 1)[0], row=r, expected=r["expected"],
                       kind=r["kind"], annotation=r["annotation"]) for r in rows]


def test_rates_count_correct_wrong_missed_and_false_reads() -> None:
    rows = [_row(1, 0, 0.3), _row(1, 1, 0.5), _row(2, 0, 0.7), _row(2, 1, None, "conflict"),
            _row(3, 0, None, "truncated"), _row(3, 1, 0.2)]
    turns = _turns(rows)
    readings = {
        turns[0].id: BeliefReading.ok(0.304),  # within 0.005: correct
        turns[1].id: BeliefReading.ok(0.51),  # wrong value
        turns[2].id: BeliefReading.failed("x", "no_number"),  # missed
        turns[3].id: BeliefReading.ok(0.9),  # false read
        turns[4].id: BeliefReading.failed("y", "truncated"),  # correctly none
        turns[5].id: BeliefReading.ok(0.2),  # correct
    }
    r = score_extractor("x", turns, readings, resamples=50)
    assert (r.n_turns, r.n_stated, r.n_null) == (6, 4, 2)
    assert (r.correct, r.wrong, r.missed, r.false_reads) == (2, 1, 1, 1)
    assert r.correct_rate == pytest.approx(0.5) and r.wrong_rate == pytest.approx(0.25)
    assert r.missed_rate == pytest.approx(0.25) and r.false_read_rate == pytest.approx(0.5)
    assert r.failure_kinds == Counter({"no_number": 1, "truncated": 1})


def _ols_slope(prior: list[float], posterior: list[float]) -> float:
    x = np.asarray(prior)
    fit = sm.OLS(np.asarray(posterior) - x, sm.add_constant(x)).fit()
    return float(fit.params[1])


def test_ms_bias_is_the_extractors_slope_minus_the_annotated_one_on_the_same_transcripts() -> None:
    rng = np.random.default_rng(7)
    rows, readings = [], {}
    truth_p, truth_q, read_p, read_q, all_p, all_q = [], [], [], [], [], []
    for i in range(40):
        p, q = float(rng.uniform(0.1, 0.9)), float(rng.uniform(0.1, 0.9))
        annotated_posterior = None if i % 10 == 9 else q  # some posteriors carry no belief
        rows += [_row(i, 0, round(p, 4)), _row(i, 1, None if annotated_posterior is None else round(q, 4))]
        # the extractor regresses priors to 0.5 (the bias of a noisy reader) and misses every 7th prior
        rp = None if i % 7 == 3 else round(0.5 + 0.5 * (p - 0.5), 4)
        rq = round(q, 4)
        readings[rows[-2]["id"]] = BeliefReading.failed("m", "no_number") if rp is None else BeliefReading.ok(rp)
        readings[rows[-1]["id"]] = BeliefReading.ok(rq)
        if rp is not None:
            all_p.append(rp)
            all_q.append(rq)
        if rp is not None and annotated_posterior is not None:
            truth_p.append(round(p, 4))
            truth_q.append(round(q, 4))
            read_p.append(rp)
            read_q.append(rq)
    ms = compare_ms(_turns(rows), readings, resamples=300)
    assert ms.n_annotated == 36 and ms.n_read == len(truth_p) == 30
    assert ms.ms_annotated == pytest.approx(_ols_slope(truth_p, truth_q), abs=1e-9)
    assert ms.ms_extractor == pytest.approx(_ols_slope(read_p, read_q), abs=1e-9)
    assert ms.bias == pytest.approx(ms.ms_extractor - ms.ms_annotated, abs=1e-9)
    assert ms.bias_ci_low < ms.bias < ms.bias_ci_high
    assert ms.ms_all_reads == pytest.approx(_ols_slope(all_p, all_q), abs=1e-9) and ms.n_all_reads == 34
    # an extractor that reads every annotated belief exactly puts no bias into MS
    exact = {t.id: BeliefReading.ok(t.expected) if t.expected is not None else BeliefReading.failed("n", "no_number")
             for t in _turns(rows)}
    same = compare_ms(_turns(rows), exact, resamples=100)
    assert same.bias == 0 and same.bias_ci_low == 0 and same.bias_ci_high == 0 and same.n_read == 36


# --- prompts rebuilt from the data -----------------------------------------------------------------


def test_rebuilt_prompts_are_the_ones_the_eval_sent(tmp_path: Path, forecastbench_dir: Path) -> None:
    data = forecastbench_dir / "2025-10-26-llm.json"
    for paradigm in ("direct", "cot"):
        log = inspect_eval("martingale/forecast", model="sim/bayesian", limit=3, display="none",
                           log_dir=str(tmp_path), task_args={"data": str(data), "paradigm": paradigm,
                                                             "evidence_budget": 300})[0]
        assert log.samples
        rebuilder = PromptRebuilder(forecastbench_dir.parent)
        for sample in log.samples:
            recorded = sample.store["martingale_turns"]
            rows = [{**_row(0, i, 0.5), "id": f"{sample.id}/{i}", "data": f"{forecastbench_dir.name}/{data.name}",
                     "sample_id": str(sample.id), "paradigm": paradigm, "evidence_budget": 300,
                     "answer": sample.messages[turn["message"]].text, "stop_reason": turn["stop_reason"]}
                    for i, turn in enumerate(recorded)]
            transcript = rebuilder.transcript(_turns(rows))
            assert [t.prompt for t in transcript.turns] == [turn["prompt"] for turn in recorded]
            assert transcript.question == sample.input
            assert all(t.stop_reason == "stop" for t in transcript.turns)


@pytest.mark.parametrize("task,paradigm", [("forecast", "debate"), ("forecast", "evidence"), ("bayes", "evidence"),
                                           ("bayes", "debate")])
def test_rebuilt_prompts_of_the_holdout_cells_are_the_ones_the_eval_sent(
        tmp_path: Path, forecastbench_dir: Path, task: str, paradigm: str) -> None:
    """The second test set's rows (generated tasks, debates) rebuild their prompts from task_args and context."""
    data = forecastbench_dir / "2025-10-26-llm.json"
    source = ({"data": f"{forecastbench_dir.name}/{data.name}"} if task == "forecast"
              else {"data": None, "task_args": {"n": 6, "seed": 11, "min_items": 2, "max_items": 3}})
    task_args = {"data": str(data)} if task == "forecast" else dict(source["task_args"])
    log = inspect_eval(f"martingale/{task}", model="sim/bayesian", limit=2, display="none", log_dir=str(tmp_path),
                       task_args={**task_args, "paradigm": paradigm, "evidence_budget": 300, "rounds": 1})[0]
    assert log.samples
    rebuilder = PromptRebuilder(forecastbench_dir.parent)
    for sample in log.samples:
        recorded = sample.store["martingale_turns"]
        rows = [{**_row(0, i, 0.5), **source, "task": task, "id": f"{sample.id}/{i}", "sample_id": str(sample.id),
                 "paradigm": paradigm, "evidence_budget": 300, "answer": sample.messages[turn["message"]].text,
                 **({"context": turn["context"]} if "context" in turn else {})}
                for i, turn in enumerate(recorded)]
        transcript = rebuilder.transcript(_turns(rows))
        assert [t.prompt for t in transcript.turns] == [turn["prompt"] for turn in recorded]
        assert [list(t.context) for t in transcript.turns] == [turn.get("context", []) for turn in recorded]
        assert transcript.question == sample.input
        assert len(recorded) >= (3 if (task, paradigm) == ("bayes", "evidence") else 2)


def test_unknown_sample_and_unrebuildable_rows_are_clear_errors(forecastbench_dir: Path) -> None:
    rebuilder = PromptRebuilder(forecastbench_dir.parent)
    row = {**_row(0, 0, 0.5), "data": f"{forecastbench_dir.name}/2025-10-26-llm.json", "sample_id": "nope"}
    with pytest.raises(CorpusError, match="sample 'nope' is not in"):
        rebuilder.transcript(_turns([row]))
    from martingale import tasks

    real = {**row, "sample_id": str(tasks.forecast(data=str(forecastbench_dir / "2025-10-26-llm.json")).dataset[0].id)}
    debate = [{**real, "paradigm": "debate"}, {**real, "paradigm": "debate", "turn": 1, "stage": "posterior",
                                               "id": "x/1"}]
    with pytest.raises(CorpusError, match="needs 'context' with the opponent's arguments"):
        rebuilder.transcript(_turns(debate))
    with pytest.raises(CorpusError, match="a bayes row needs 'task_args'"):
        rebuilder.transcript(_turns([{**row, "task": "bayes", "data": None}]))


def test_read_corpus_refuses_an_extractor_that_skips_turns(forecastbench_dir: Path) -> None:
    turns = load_corpus(CORPUS)[:2]

    class Short:
        name = "short"

        async def extract(self, transcript: Any) -> list[BeliefReading]:
            return [BeliefReading.ok(0.5)]

    with pytest.raises(CorpusError, match="returned 1 readings for the 2 turns"):
        asyncio.run(read_corpus(Short(), group_transcripts(turns), PromptRebuilder(forecastbench_dir.parent)))


def test_benchmark_script_prints_the_rates_of_a_hand_made_corpus(tmp_path: Path, forecastbench_dir: Path) -> None:
    # three real transcripts with answers written here: self_report reads 3 of the 4 stated beliefs
    # right, answer_line 2 (it takes the "Probability: X" line only), and both read the null turn 3
    shipped = [t.row for t in load_corpus(CORPUS) if t.row["task"] == "forecast" and t.row["paradigm"] == "direct"]
    answers = [("Probability: 0.3", 0.3, "stated"), ("Probability: 0.5", 0.5, "stated"),
               ("I would say 70%.", 0.7, "stated"), ("Probability: 0.6", None, "conflict"),
               ("Maybe.", None, "no_number"), ("Probability: 0.25", 0.2, "stated")]
    rows = []
    for k, (answer, expected, kind) in enumerate(answers):
        base = shipped[k]
        rows.append({**base, "id": f"hand/{k // 2}/{k % 2}", "transcript": f"hand/{k // 2}", "answer": answer,
                     "sample_id": shipped[2 * (k // 2)]["sample_id"], "data": shipped[2 * (k // 2)]["data"],
                     "turn": k % 2, "stage": "prior" if k % 2 == 0 else "posterior", "stop_reason": "stop",
                     "expected": expected, "kind": kind, "annotation": "hand-made"})
    corpus = _write(tmp_path / "hand.jsonl", rows)
    out = subprocess.run([sys.executable, str(BENCHMARK), "--corpus", str(corpus), "--shared-data",
                          str(forecastbench_dir.parent), "--extractors", "self_report,answer_line",
                          "--resamples", "50"], capture_output=True, text=True, check=True).stdout
    table = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:]] for line in out.splitlines()
             if line.startswith("| self_report") or line.startswith("| answer_line")}
    # columns: turns, stated, null, correct, wrong, missed, false reads, ...
    # rates with their exact 95 % intervals (3 of 4: [19, 99]; 1 of 2: [1, 99]; 2 of 4: [7, 93])
    assert table["self_report"][:7] == ["6", "4", "2", "75.0 % (3) [19, 99]", "25.0 % (1)", "0.0 % (0)",
                                        "50.0 % (1) [1, 99]"]
    assert table["answer_line"][:7] == ["6", "4", "2", "50.0 % (2) [7, 93]", "25.0 % (1)", "25.0 % (1)",
                                        "50.0 % (1) [1, 99]"]


def test_benchmark_script_without_shared_data_says_why(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, str(BENCHMARK), "--shared-data", str(tmp_path / "absent")],
                         capture_output=True, text=True)
    assert out.returncode != 0
    assert "shared data folder not found" in out.stderr and "rebuilt from the data files by sample id" in out.stderr


def test_every_builtin_offline_extractor_reports_known_failure_kinds(forecastbench_dir: Path) -> None:
    turns = load_corpus(CORPUS)
    groups = dict(list(group_transcripts(turns).items())[:40])
    rebuilder = PromptRebuilder(forecastbench_dir.parent)
    for name in ("self_report", "answer_line"):
        readings = asyncio.run(read_corpus(get_extractor(name), groups, rebuilder))
        for r in readings.values():
            assert r.is_ok or (r.kind in FAILURE_KINDS and r.reason)


# --- the corpus generator: model args -------------------------------------------------------------


def _generator_module() -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_extraction_corpus", REPO / "benchmarks"
                                                  / "make_extraction_corpus.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fake_generation(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Replace the tasks and inspect's eval: every eval call is recorded and answers one turn per task."""
    from types import SimpleNamespace

    import inspect_ai

    from martingale import tasks

    calls: list[dict[str, Any]] = []
    for name in ("forecast", "cmv", "openreview", "bayes"):
        monkeypatch.setattr(tasks, name, lambda **task_args: task_args)

    def fake_eval(built: list[Any], **kwargs: Any) -> list[Any]:
        calls.append({"tasks": built, **kwargs})
        turn = {"message": 0, "stage": "prior", "stop_reason": "stop"}
        sample = SimpleNamespace(id="q1", store={"martingale_turns": [turn]},
                                 messages=[SimpleNamespace(text="Probability: 0.4")])
        return [SimpleNamespace(status="success", samples=[sample], error=None) for _ in built]

    monkeypatch.setattr(inspect_ai, "eval", fake_eval)
    return calls


def test_corpus_generator_passes_model_args_through(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _fake_generation(monkeypatch)
    out = tmp_path / "answers.jsonl"
    common = ["--model", "/models/base.gguf", "--shared-data", str(tmp_path), "--temperatures", "0.3",
              "--per-cell", "1", "--batch-size", "4"]
    module = _generator_module()
    assert module.main(["--out", str(out), *common, "-M", "chat_template=/t/gemma.jinja", "-M", "device=cuda",
                        "-M", "trust-remote-code=true"]) == 0
    (call,) = calls
    assert call["model"] == "local//models/base.gguf" and len(call["tasks"]) == 18
    # read as inspect's -M: YAML values, dashes in names become underscores; --batch-size joins them
    assert call["model_args"] == {"chat_template": "/t/gemma.jinja", "device": "cuda", "trust_remote_code": True,
                                  "batch_size": 4}
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 18
    assert all(r["model_args"] == {"chat_template": "/t/gemma.jinja", "device": "cuda", "trust_remote_code": True}
               for r in rows)
    # without -M: only the batch size, and rows keep their old shape
    assert module.main(["--out", str(out), *common]) == 0
    assert calls[1]["model_args"] == {"batch_size": 4}
    assert "model_args" not in json.loads(out.read_text().splitlines()[0])


@pytest.mark.parametrize(("flag", "message"), [("device", "-M takes name=value"),
                                               ("batch_size=2", "give the batch size with --batch-size")])
def test_corpus_generator_refuses_bad_model_args(
    flag: str, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls = _fake_generation(monkeypatch)
    with pytest.raises(SystemExit) as stopped:
        _generator_module().main(["--out", str(tmp_path / "a.jsonl"), "--shared-data", str(tmp_path), "-M", flag])
    assert stopped.value.code == 2 and message in capsys.readouterr().err
    assert calls == []


def test_holdout_grid_makes_the_cells_the_corpus_lacks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _fake_generation(monkeypatch)
    module = _generator_module()
    out = tmp_path / "holdout.jsonl"
    assert module.main(["--grid", "holdout", "--out", str(out), "--model", "/m.gguf", "--shared-data", str(tmp_path),
                        "--temperatures", "0.4"]) == 0
    built = [t for call in calls for t in call["tasks"]]
    assert len(built) == len(module.HOLDOUT)
    # one eval call per sample count, each with the grid's token limit
    assert sorted(call["limit"] for call in calls) == sorted({n for *_, n in module.HOLDOUT})
    assert {call["max_tokens"] for call in calls} == {350}
    bayes = [t for t in built if "data" not in t]
    assert bayes and all(t["min_items"] == 2 and t["max_items"] == 3 and "seed" in t for t in bayes)
    assert all(t["rounds"] == 1 for t in built if t["paradigm"] == "debate")
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert {r["split"] for r in rows} == {"holdout"} and all("limit" not in r for r in rows)
    assert {(r["task"], r["paradigm"]) for r in rows} == {(t, p) for t, p, *_ in module.HOLDOUT}
    assert all(r["task_args"]["seed"] == next(t["seed"] for t in bayes if t["paradigm"] == r["paradigm"]
                                              and t["system_prompt"] == r["system_prompt"])
               for r in rows if r["task"] == "bayes")
