"""Judge cost report: grader calls and tokens per extractor, price lookup and the ``martingale cost`` command."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from inspect_ai import eval as inspect_eval
from inspect_ai.event import ModelEvent
from inspect_ai.log import EvalLog, read_eval_log
from inspect_ai.model import ModelOutput, ModelUsage, get_model
from martingale_plugins.step_judge import MAX_ATTEMPTS

from martingale_harness.cli import main
from martingale_harness.errors import ConfigError
from martingale_harness.planning.cost import (
    EVALUATED_MODEL,
    UNKNOWN,
    CostReport,
    Price,
    cost_report,
    cost_table,
    format_cost,
    load_prices,
    price_of,
)

SAMPLES = 5


def _run(log_dir: Path, grader: object = "sim/judge", limit: int = SAMPLES) -> EvalLog:
    log = inspect_eval("martingale/forecast", model="sim/entrenched", model_args={"kappa": 0.2},
                       model_roles={"grader": grader}, task_args={"extractors": "self_report,step_judge"},
                       limit=limit, display="none", log_dir=str(log_dir))[0]
    assert log.status == "success", log.error
    return read_eval_log(log.location)


@pytest.fixture(scope="module")
def judged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EvalLog]:
    """A 5-sample eval judged by sim/judge, with a fresh model cache so every grader call is billed."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("INSPECT_CACHE_DIR", str(tmp_path_factory.mktemp("cost-cache")))
        yield _run(tmp_path_factory.mktemp("cost-logs"))


def _event_sums(log: EvalLog, grader: bool) -> tuple[int, int, int]:
    """Calls, input and output tokens summed straight from the sample events (independent of cost.py)."""
    calls = inp = out = 0
    for sample in log.samples or []:
        for e in sample.events:
            if isinstance(e, ModelEvent) and (e.role == "grader") == grader:
                calls += 1
                inp += e.output.usage.input_tokens if e.output.usage else 0
                out += e.output.usage.output_tokens if e.output.usage else 0
    return calls, inp, out


def _user_prices(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "prices.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_one_step_judge_call_per_sample(judged: EvalLog) -> None:
    report = cost_report(judged)
    assert report.samples == SAMPLES
    assert [(t.extractor, t.role, t.model) for t in report.judges] == [("step_judge", "grader", "sim/judge")]
    judge = report.judges[0]
    assert judge.calls == SAMPLES and judge.calls_per_sample == 1.0 and judge.max_calls_per_sample == 1
    assert judge.cached_calls == 0


def test_token_totals_match_the_events(judged: EvalLog) -> None:
    report = cost_report(judged)
    calls, inp, out = _event_sums(judged, grader=True)
    assert inp > 0 and out > 0
    assert (report.judge_calls, sum(t.input_tokens for t in report.judges),
            sum(t.output_tokens for t in report.judges)) == (calls, inp, out)
    assert report.judge_tokens == inp + out
    judge = report.judges[0]
    assert (judge.billed_input_tokens, judge.billed_output_tokens) == (inp, out)
    assert judge.tokens_per_sample == pytest.approx((inp + out) / SAMPLES)

    calls, inp, out = _event_sums(judged, grader=False)
    assert [t.extractor for t in report.evaluated] == [EVALUATED_MODEL]
    model = report.evaluated[0]
    assert (model.model, model.calls, model.input_tokens, model.output_tokens) == ("sim/entrenched", calls, inp, out)


def test_user_price_gives_the_exact_cost(judged: EvalLog, tmp_path: Path) -> None:
    prices = load_prices(_user_prices(tmp_path, "sim/judge: {input: 1.5, output: 4}\n"))
    report = cost_report(judged, prices)
    _, inp, out = _event_sums(judged, grader=True)
    expected = (inp * 1.5 + out * 4.0) / 1_000_000
    assert report.judges[0].cost == pytest.approx(expected, rel=1e-12)
    assert report.judge_cost == pytest.approx(expected, rel=1e-12)
    assert format_cost(expected) in cost_table(report)


def test_unknown_price_is_unknown_never_zero(judged: EvalLog) -> None:
    report = cost_report(judged)  # the shipped table has no sim/ models
    assert report.judges[0].cost is None and report.judge_cost is None
    table = cost_table(report)
    judge_row = next(line for line in table.splitlines() if line.startswith("|step_judge"))
    assert UNKNOWN in judge_row and "$0" not in table
    assert format_cost(None) == UNKNOWN


def test_cli_prints_the_table(judged: EvalLog, tmp_path: Path) -> None:
    prices = _user_prices(tmp_path, "sim/judge: {input: 1.5, output: 4}\n")
    result = CliRunner().invoke(main, ["cost", judged.location, "--prices", str(prices)])
    assert result.exit_code == 0, result.output
    assert "|step_judge" in result.output and EVALUATED_MODEL in result.output
    _, inp, out = _event_sums(judged, grader=True)
    assert format_cost((inp * 1.5 + out * 4.0) / 1_000_000) in result.output

    bad = _user_prices(tmp_path, "sim/judge: {input: free, output: 4}\n")
    result = CliRunner().invoke(main, ["cost", judged.location, "--prices", str(bad)])
    assert result.exit_code != 0 and "sim/judge.input must be a non-negative number" in result.output
    assert "Traceback" not in result.output


def test_shipped_prices_and_user_override(tmp_path: Path) -> None:
    shipped = load_prices()
    assert shipped["openai/gpt-4o-mini"] == Price(0.15, 0.60)
    assert {"openai/gpt-4o", "deepseek/deepseek-chat"} <= set(shipped)
    # dated snapshots use their undated entry; other variants are not guessed
    assert price_of("openai/gpt-4o-mini-2024-07-18", shipped) == shipped["openai/gpt-4o-mini"]
    assert price_of("anthropic/claude-3-5-haiku-20241022", shipped) == shipped["anthropic/claude-3-5-haiku"]
    assert price_of("openai/gpt-4o-audio-preview", shipped) is None
    assert price_of("sim/judge", shipped) is None

    merged = load_prices(_user_prices(tmp_path, "openai/gpt-4o-mini: {input: 1, output: 2}\nsim/judge: "
                                                "{input: 0, output: 0}\n"))
    assert merged["openai/gpt-4o-mini"] == Price(1.0, 2.0)
    assert merged["openai/gpt-4o"] == shipped["openai/gpt-4o"]  # merged model by model, not replaced
    assert merged["sim/judge"] == Price(0.0, 0.0)


@pytest.mark.parametrize("text,problem", [
    ("sim/judge: 3\n", "expected {input"),
    ("sim/judge: {input: 1}\n", "expected {input"),
    ("sim/judge: {input: -1, output: 1}\n", "non-negative"),
    ("- a list\n", "mapping at the top level"),
])
def test_bad_price_files(tmp_path: Path, text: str, problem: str) -> None:
    with pytest.raises(ConfigError, match="prices.yaml") as info:
        load_prices(_user_prices(tmp_path, text))
    assert problem in str(info.value)


def test_cached_calls_are_counted_but_not_billed(tmp_path: Path) -> None:
    prices = {"sim/judge": Price(1.0, 1.0)}
    first = cost_report(_run(tmp_path / "a", limit=2), prices)
    again = cost_report(_run(tmp_path / "b", limit=2), prices)  # same transcripts, same grader: cache hits
    assert first.judges[0].cached_calls == 0 and first.judge_cost > 0  # type: ignore[operator]
    judge = again.judges[0]
    assert judge.calls == judge.cached_calls == 2
    assert judge.input_tokens == first.judges[0].input_tokens and judge.billed_input_tokens == 0
    assert again.judge_cost == 0.0  # known price, nothing billed


def _failing_grader() -> object:
    outputs = []
    for _ in range(MAX_ATTEMPTS):
        out = ModelOutput.from_content(model="mockllm", content="no list here")
        out.usage = ModelUsage(input_tokens=10, output_tokens=5, total_tokens=15)  # no tiktoken download
        outputs.append(out)
    return get_model("mockllm/model", custom_outputs=outputs)


def test_retries_show_in_calls_per_sample(tmp_path: Path) -> None:
    report: CostReport = cost_report(_run(tmp_path, grader=_failing_grader(), limit=1))
    judge = report.judges[0]
    assert (judge.calls, judge.max_calls_per_sample) == (MAX_ATTEMPTS, MAX_ATTEMPTS)
    assert (judge.input_tokens, judge.output_tokens) == (10 * MAX_ATTEMPTS, 5 * MAX_ATTEMPTS)
