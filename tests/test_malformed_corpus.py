"""Malformed model output: the self_report parser and the step judge's reply parser never guess.

Two corpora under ``tests/data``:

* ``malformed_answers.jsonl``: ``{"text", "expected", "note"}`` free-text answers; ``expected`` is
  the probability the documented rules give, or ``null`` where the reading must fail with a
  reason. Lines marked ``"known_issue": true`` state what the rules say but the parser does not do
  yet; they are expected failures (strict, so a fix shows up as XPASS).
* ``malformed_judge_replies.jsonl``: ``{"reply", "expected_count", "expected", "note"}`` grader
  replies for :func:`parse_beliefs`.

The end-to-end test feeds corpus answers through ``martingale/forecast`` with a scripted model and
checks that failed readings reach ``extraction_failure_rate`` and the per-sample trajectory.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from inspect_ai import eval as inspect_eval
from inspect_ai.model import Model, ModelOutput, ModelUsage, get_model
from martingale_plugins.self_report import read_probability
from martingale_plugins.step_judge import parse_beliefs

DATA = Path(__file__).parent / "data"
TOLERANCE = 1e-9


def _load(name: str) -> list[dict[str, Any]]:
    with (DATA / name).open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


ANSWERS = _load("malformed_answers.jsonl")
JUDGE_REPLIES = _load("malformed_judge_replies.jsonl")


def _answer_params() -> list[Any]:
    marks = pytest.mark.xfail(reason="known parser issue (see the line's note)", strict=True)
    return [
        pytest.param(row, id=f"a{i:03d}", marks=marks if row.get("known_issue") else ())
        for i, row in enumerate(ANSWERS, 1)
    ]


def test_corpus_sizes_and_shape() -> None:
    assert len(ANSWERS) >= 220
    assert len(JUDGE_REPLIES) >= 60
    for row in ANSWERS:
        assert isinstance(row["text"], str) and row["note"]
        assert row["expected"] is None or isinstance(row["expected"], int | float)
    for row in JUDGE_REPLIES:
        assert isinstance(row["reply"], str) and row["note"] and row["expected_count"] >= 1
        assert row["expected"] is None or len(row["expected"]) == row["expected_count"]
    parseable = sum(row["expected"] is not None for row in ANSWERS)
    assert 0.35 <= parseable / len(ANSWERS) <= 0.65, "the answer corpus should be about half parseable"
    assert sum(bool(row.get("known_issue")) for row in ANSWERS) <= 10, "known issues are for clear bugs only"


@pytest.mark.parametrize("row", _answer_params())
def test_answer(row: dict[str, Any]) -> None:
    reading = read_probability(row["text"])
    if row["expected"] is None:
        assert reading.status == "failed", f"read {reading.value!r} from {row['note']}"
        assert reading.value is None
        assert reading.reason and reading.reason.strip()
    else:
        assert reading.status == "ok", f"{row['note']}: {reading.reason}"
        assert reading.value == pytest.approx(row["expected"], abs=TOLERANCE)


@pytest.mark.parametrize("row", [pytest.param(r, id=f"j{i:03d}") for i, r in enumerate(JUDGE_REPLIES, 1)])
def test_judge_reply(row: dict[str, Any]) -> None:
    beliefs, problem = parse_beliefs(row["reply"], row["expected_count"])
    if row["expected"] is None:
        assert beliefs is None, f"accepted {beliefs!r}: {row['note']}"
        assert problem.strip()
    else:
        assert beliefs is not None, f"{row['note']}: {problem}"
        assert problem == ""
        assert all(isinstance(b, float) for b in beliefs)
        assert beliefs == pytest.approx(row["expected"], abs=TOLERANCE)


def _scripted(texts: list[str]) -> Model:
    outputs = []
    for text in texts:
        output = ModelOutput.from_content(model="mockllm", content=text)
        output.usage = ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2)  # avoids a tiktoken download
        outputs.append(output)
    return get_model("mockllm/model", custom_outputs=outputs)


def test_failures_reach_extraction_failure_rate(tmp_path: Path) -> None:
    # With max_connections=1 and the default sample order, the scripted outputs are consumed as
    # sample1-prior, sample1-posterior, sample2-prior, ... (checked below through the trajectories).
    usable = [r for r in ANSWERS if not r.get("known_issue")]
    parseable = [r for r in usable if r["expected"] is not None]
    failing = [r for r in usable if r["expected"] is None]
    n = 30
    priors = parseable[::5][:n]
    # every third posterior parses, the rest is spread over the failure categories
    posteriors = [parseable[3 + 5 * i] if i % 3 == 0 else failing[(11 * i) % len(failing)] for i in range(n)]
    # make sure an empty answer, an unclosed <think> and a very long answer go through the pipeline
    posteriors[1] = next(r for r in failing if r["text"] == "")
    posteriors[2] = next(r for r in failing if r["text"].startswith("<think>") and "</think>" not in r["text"])
    posteriors[4] = next(r for r in failing if len(r["text"]) > 5000)
    assert len(priors) == len(posteriors) == n
    texts = [t for pair in zip(priors, posteriors, strict=True) for t in (pair[0]["text"], pair[1]["text"])]

    log = inspect_eval(
        "martingale/forecast",
        model=_scripted(texts),
        limit=n,
        display="none",
        log_realtime=False,
        max_connections=1,
        log_dir=str(tmp_path),
    )[0]
    assert log.status == "success", log.error
    assert log.samples is not None and len(log.samples) == n

    n_failed = sum(p["expected"] is None for p in posteriors)
    assert 0 < n_failed < n
    assert log.results is not None
    block = next(s for s in log.results.scores if s.name == "self_report")
    assert block.metrics["extraction_failure_rate"].value == pytest.approx(n_failed / n)
    assert block.metrics["n_pairs"].value == n - n_failed

    for sample, prior, posterior in zip(log.samples, priors, posteriors, strict=True):
        assert sample.scores is not None
        trajectory = sample.scores["self_report"].metadata["trajectory"]
        assert [t["stage"] for t in trajectory] == ["prior", "posterior"]
        for entry, row in zip(trajectory, (prior, posterior), strict=True):
            if row["expected"] is None:
                assert entry["status"] == "failed" and entry["value"] is None, row["note"]
                assert isinstance(entry["reason"], str) and entry["reason"].strip()
            else:
                assert entry["status"] == "ok", (row["note"], entry["reason"])
                assert entry["value"] == pytest.approx(row["expected"], abs=TOLERANCE)
