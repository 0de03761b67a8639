"""The structured belief probe: a side request for ``{"probability": X}`` under a JSON schema, and its extractor."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from inspect_ai import eval as inspect_eval
from inspect_ai.event import ModelEvent
from inspect_ai.log import EvalLog, EvalSample, read_eval_log
from inspect_ai.model import ModelAPI, ModelOutput, ModelUsage, get_model
from martingale_plugins.structured import StructuredExtractor, read_structured

from martingale_harness.cli import main
from martingale_harness.errors import ConfigError
from martingale_harness.extraction.beliefs import FAILURE_KINDS
from martingale_harness.extraction.transcript import TURNS_KEY, Transcript, Turn
from martingale_harness.planning.cost import cost_report, load_prices
from martingale_harness.planning.estimate import estimate_grid
from martingale_harness.planning.grid import Grid
from martingale_harness.protocol.seeding import Call, call_seed
from martingale_harness.protocol.solver import (
    STRUCTURED_PROBE,
    STRUCTURED_RESPONSE_SCHEMA,
    STRUCTURED_SCHEMA,
    structured_mode,
)
from martingale_harness.reporting.agreement import agreement, pairwise_agreement, pairwise_table
from martingale_harness.reporting.rescore import rescore
from martingale_harness.stats.martingale import martingale_score
from martingale_harness.testing.plugins import check_extractor

SEED = 7
LIMIT = 3


def _eval(tmp_path: Path, model: object, extractors: str, limit: int = LIMIT, **task_args: object) -> EvalLog:
    log = inspect_eval("martingale/forecast", model=model, task_args={"extractors": extractors, **task_args},
                       limit=limit, seed=SEED, display="none", log_realtime=False, log_dir=str(tmp_path))[0]
    assert log.status == "success", log.error
    # long prompts are stored once as attachments; the checks read the requests' text
    log = read_eval_log(log.location, resolve_attachments=True)
    assert log.samples
    return log


def _is_structured(event: ModelEvent) -> bool:
    return bool(event.input) and event.input[-1].text.startswith(STRUCTURED_PROBE)


def _model_events(sample: EvalSample) -> list[ModelEvent]:
    return [e for e in sample.events if isinstance(e, ModelEvent)]


# ---- the protocol: every paradigm, with prior repeats -------------------------------------------------------


@pytest.mark.parametrize("paradigm", ["direct", "cot", "evidence", "debate"])
def test_every_belief_turn_and_repeat_gets_a_side_probe_the_conversation_never_sees(
        tmp_path: Path, paradigm: str) -> None:
    model = get_model("sim/noisy", noise=0.05, memoize=False)  # noise: the repeat restates the prior differently
    plain = _eval(tmp_path / "plain", model, "self_report", paradigm=paradigm, prior_samples=2)
    probed = _eval(tmp_path / "probed", model, "self_report,structured", paradigm=paradigm, prior_samples=2)
    conversations = {s.id: [(m.role, m.text) for m in s.messages] for s in plain.samples or []}
    for sample in probed.samples or []:
        # a side call: the conversation is exactly the one a run without the probe has
        assert [(m.role, m.text) for m in sample.messages] == conversations[sample.id]
        turns = sample.store.get(TURNS_KEY)
        repeats = turns[0]["repeats"]
        assert len(repeats) == 1
        records = [t["structured"] for t in turns] + [r["structured"] for r in repeats]
        assert all(r["mode"] == "constrained" and r["model"] == "sim/noisy" for r in records)
        # the extractor reads the belief the agent stated, turn by turn and in the repeat
        stated, structured = (sample.scores[name].metadata for name in ("self_report", "structured"))
        assert [t["status"] for t in structured["trajectory"]] == ["ok"] * len(turns)
        assert [t["value"] for t in structured["trajectory"]] == pytest.approx(
            [t["value"] for t in stated["trajectory"]], abs=6e-5)
        assert structured["prior_repeats"][0]["value"] == pytest.approx(stated["prior_repeats"][0]["value"], abs=6e-5)
        assert structured["prior_repeats"][0]["value"] != pytest.approx(structured["trajectory"][0]["value"])
        # one call per belief turn and repeat, under the schema, each with a seed of its own
        events = _model_events(sample)
        side = [e for e in events if _is_structured(e)]
        assert len(side) == len(turns) + len(repeats)
        assert all(_logged(e.config.response_schema) == _logged(STRUCTURED_RESPONSE_SCHEMA) for e in side)
        assert not any(e.config.response_schema for e in events if not _is_structured(e))
        expected = {call_seed(SEED, sample.id, sample.epoch, Call("structured", i)) for i in range(len(turns))}
        expected.add(call_seed(SEED, sample.id, sample.epoch, Call("structured", 0, 1)))
        assert {e.config.seed for e in side} == expected
        seeds = [e.config.seed for e in events]
        assert None not in seeds and len(set(seeds)) == len(seeds)


def test_no_structured_calls_unless_an_extractor_needs_them(tmp_path: Path) -> None:
    log = _eval(tmp_path, "sim/bayesian", "self_report,logprob")
    for sample in log.samples or []:
        assert not any(_is_structured(e) for e in _model_events(sample))
        assert all("structured" not in t for t in sample.store.get(TURNS_KEY))


def test_rescoring_a_log_without_structured_probes_is_refused(tmp_path: Path) -> None:
    log = _eval(tmp_path, "sim/bayesian", "self_report", limit=2)
    with pytest.raises(ConfigError, match="structured belief probe made at generation time"):
        rescore(log.location, "structured")


# ---- modes: constrained, inspect, prompt ------------------------------------------------------------------


class _Backend(ModelAPI):
    """A backend of none of inspect's providers (generate is never called)."""

    async def generate(self, input, tools, tool_choice, config):  # type: ignore[no-untyped-def, override]
        raise AssertionError("not called")


class _Constraining(_Backend):
    constrains_response_schema = True


class _Declining(_Backend):
    constrains_response_schema = False


def test_the_mode_follows_what_the_backend_declares() -> None:
    assert structured_mode(_Constraining("m")) == "constrained"
    assert structured_mode(_Declining("m")) == "prompt"
    assert structured_mode(_Backend("m")) == "prompt"  # nothing declared, not inspect's
    assert structured_mode(get_model("mockllm/model").api) == "inspect"
    assert structured_mode(get_model("sim/bayesian").api) == "constrained"


def test_a_backend_that_cannot_constrain_gets_the_schema_in_its_prompt_and_one_warning(tmp_path: Path) -> None:
    script = tmp_path / "answers.jsonl"
    script.write_text('{"answer": "Probability: 0.4"}\n{"turn": "other", "answer": "{\\"probability\\": 0.25}"}\n')
    log = _eval(tmp_path, get_model("sim/scripted", answers=str(script), memoize=False), "self_report,structured")
    schema = json.dumps(STRUCTURED_SCHEMA.model_dump(exclude_none=True, serialize_as_any=True))
    warnings = []
    for sample in log.samples or []:
        assert {t["structured"]["mode"] for t in sample.store.get(TURNS_KEY)} == {"prompt"}
        side = [e for e in _model_events(sample) if _is_structured(e)]
        assert len(side) == 2
        for event in side:
            assert schema in event.input[-1].text
            assert event.config.response_schema is None  # nothing claims a constraint that is not applied
        assert [t["value"] for t in sample.scores["structured"].metadata["trajectory"]] == [0.25, 0.25]
        warnings += [e.message.message for e in sample.events
                     if e.event == "logger" and "structured probe" in e.message.message]
    assert len(warnings) == 1  # once per model and run, not per sample or turn
    assert "sim/scripted" in warnings[0] and "prompted, not constrained" in warnings[0]


def test_inspect_providers_are_sent_the_schema(tmp_path: Path) -> None:
    outputs = []
    for text in ["Probability: 0.3", '{"probability": 0.35}', "Probability: 0.4", '{"probability": 0.45}']:
        out = ModelOutput.from_content(model="mockllm", content=text)
        out.usage = ModelUsage(input_tokens=10, output_tokens=2, total_tokens=12)  # no tiktoken download
        outputs.append(out)
    log = _eval(tmp_path, get_model("mockllm/model", custom_outputs=outputs), "self_report,structured", limit=1)
    (sample,) = log.samples or []
    assert [t["structured"]["mode"] for t in sample.store.get(TURNS_KEY)] == ["inspect", "inspect"]
    side = [e for e in _model_events(sample) if _is_structured(e)]
    assert [e.input[-1].text for e in side] == [STRUCTURED_PROBE] * 2
    assert all(_logged(e.config.response_schema) == _logged(STRUCTURED_RESPONSE_SCHEMA) for e in side)
    assert sample.scores["structured"].value["prior"] == 0.35
    assert sample.scores["structured"].value["posterior"] == 0.45


def _logged(schema: Any) -> dict[str, Any]:
    """A response schema as the eval log records it (inspect's JSONSchema fields: no ``multipleOf``)."""
    return schema.model_dump(exclude_none=True)


def test_the_schema_is_what_the_extractor_enforces() -> None:
    schema = STRUCTURED_SCHEMA.model_dump(exclude_none=True, serialize_as_any=True)
    # the decoder bounds the digits (at most 4 decimals); the extractor reads any number in [0, 1]
    assert schema["properties"]["probability"]["multipleOf"] == 0.0001
    assert schema["required"] == ["probability"] and schema["additionalProperties"] is False
    assert schema["properties"]["probability"]["type"] == "number"
    assert (schema["properties"]["probability"]["minimum"], schema["properties"]["probability"]["maximum"]) == (0, 1)
    assert STRUCTURED_RESPONSE_SCHEMA.strict is True


# ---- the extractor's reading rules ------------------------------------------------------------------------


def _turn(completion: str | None, stop_reason: str = "stop") -> Turn:
    record = None if completion is None else {"completion": completion, "model": "m/x", "mode": "constrained",
                                              "stop_reason": stop_reason}
    return Turn("prior", "p", "Probability: 0.3", structured=record)


@pytest.mark.parametrize(("completion", "value"), [
    ('{"probability": 0.42}', 0.42), (' \n{"probability": 1}\n', 1.0), ('{"probability": 0}', 0.0),
    ('{"probability": 4.2e-1}', 0.42),
])
def test_a_schema_valid_reply_is_read(completion: str, value: float) -> None:
    reading = read_structured(_turn(completion))
    assert reading.is_ok and reading.value == value and reading.matched == completion.strip()


@pytest.mark.parametrize(("completion", "stop_reason", "kind", "reason"), [
    (None, "stop", "other", "no structured probe was recorded"),
    ("", "stop", "no_number", "not valid JSON"),
    ("Probability: 0.4", "stop", "no_number", "not valid JSON"),
    ('```json\n{"probability": 0.4}\n```', "stop", "no_number", "not valid JSON"),  # strict: no fence
    ('{"probability": 0.4} I think', "stop", "no_number", "not valid JSON"),
    ('{"probability": NaN}', "stop", "no_number", "not valid JSON"),
    ("0.4", "stop", "no_number", "not an object"),
    ('{"belief": 0.4}', "stop", "no_number", "has no 'probability'"),
    ('{"probability": "0.4"}', "stop", "no_number", "is not a number"),
    ('{"probability": true}', "stop", "no_number", "is not a number"),
    ('{"probability": null}', "stop", "no_number", "is not a number"),
    ('{"probability": 0.4, "confidence": "high"}', "stop", "other", "keys the schema does not allow (confidence)"),
    ('{"probability": 1.5}', "stop", "out_of_range", "outside [0, 1]"),
    ('{"probability": -0.1}', "stop", "out_of_range", "outside [0, 1]"),
    ('{"probability": 1e999}', "stop", "out_of_range", "outside [0, 1]"),
    ('{"probability": 0.', "max_tokens", "truncated", "cut off by the token limit"),
    ('{"probability": 0.', "stop", "no_number", "not valid JSON"),
])
def test_anything_else_is_a_failure_of_its_kind(completion: str | None, stop_reason: str, kind: str,
                                                 reason: str) -> None:
    reading = read_structured(_turn(completion, stop_reason))
    assert not reading.is_ok and reading.value is None
    assert reading.kind == kind and kind in FAILURE_KINDS
    assert reason in (reading.reason or "")


def test_the_extractor_keeps_the_plugin_contract() -> None:
    transcript = Transcript("Q?", (_turn('{"probability": 0.2}'), _turn(None),
                                   Turn("posterior", "p", "a", structured=_turn('{"probability": 2}').structured)))
    readings = check_extractor(StructuredExtractor(), transcript)
    assert [(r.value, r.kind) for r in readings] == [(0.2, None), (None, "other"), (None, "out_of_range")]
    assert StructuredExtractor.needs_structured_probe is True


# ---- agreement: every pair, with the paired ΔMS -----------------------------------------------------------


def _both_read(*beliefs: np.ndarray) -> np.ndarray:
    return ~np.any(np.isnan(np.stack(beliefs)), axis=0)


def test_three_extractors_give_three_pairs_each_with_its_paired_delta_ms() -> None:
    rng = np.random.default_rng(5)
    n = 90
    questions = np.repeat(np.arange(30), 3)  # three samples per question: the bootstrap resamples questions
    p = rng.uniform(0.1, 0.9, n)
    q = np.clip(p + 0.2 * (p - 0.5) + rng.normal(0, 0.05, n), 0, 1)
    # b reads with noise, c squeezes every belief toward 0.5
    priors = {"a": p, "b": np.clip(p + rng.normal(0, 0.08, n), 0, 1), "c": 0.8 * p + 0.1}
    posteriors = {"a": q, "b": np.clip(q + rng.normal(0, 0.08, n), 0, 1), "c": 0.8 * q + 0.1}
    posteriors["b"][:6] = np.nan  # b failed on six samples: the pairs with b are fitted without them
    results = pairwise_agreement(priors, posteriors, cluster=questions, resamples=300)
    assert [(r.a, r.b) for r in results] == [("a", "b"), ("a", "c"), ("b", "c")]
    for r in results:
        ok = _both_read(priors[r.a], posteriors[r.a], priors[r.b], posteriors[r.b])
        independent = (martingale_score(priors[r.b][ok], posteriors[r.b][ok]).slope
                       - martingale_score(priors[r.a][ok], posteriors[r.a][ok]).slope)
        assert r.delta_ms.difference == pytest.approx(independent, abs=1e-12)
        assert r.n_both == ok.sum() and r.delta_ms.n_clusters == len(set(questions[ok]))
        assert r.delta_ms.ci_low <= r.delta_ms.difference <= r.delta_ms.ci_high
        assert r.delta_ms.reason is None
    table = pairwise_table(results)
    pair_rows = [line for line in table.splitlines() if line.startswith(("| a | b |", "| a | c |", "| b | c |"))]
    assert len(pair_rows) == 3
    assert f"{results[0].delta_ms.difference:+.4f}" in pair_rows[0]
    assert f"[{results[0].delta_ms.ci_low:+.4f}, {results[0].delta_ms.ci_high:+.4f}]" in pair_rows[0]


def test_an_undefined_side_gives_an_undefined_delta_naming_the_extractor() -> None:
    p = np.linspace(0.2, 0.8, 12)
    res = agreement("moving", "flat", p, p + 0.1 * (p - 0.5), np.full(12, 0.5), np.full(12, 0.6))
    assert math.isnan(res.delta_ms.difference) and math.isnan(res.delta_ms.ci_low)
    assert (res.delta_ms.reason or "").startswith("MS of flat on the samples both read: ")
    assert "ΔMS (flat − moving) undefined: MS of flat" in pairwise_table([res])


def test_the_agreement_command_reports_every_pair_of_a_log(tmp_path: Path) -> None:
    grader = get_model("sim/judge", noise=0.1, memoize=False)  # a noisy reader: a ΔMS that is not 0
    log = inspect_eval("martingale/forecast", model="sim/entrenched", model_args={"kappa": 0.2},
                       model_roles={"grader": grader}, task_args={"extractors": "self_report,structured,step_judge"},
                       limit=30, display="none", log_realtime=False, log_dir=str(tmp_path))[0]
    assert log.status == "success", log.error
    out = CliRunner().invoke(main, ["agreement", str(log.location)])
    assert out.exit_code == 0, out.output
    rows = {tuple(c.strip() for c in line.split("|")[1:3]): [c.strip() for c in line.split("|")[1:-1]]
            for line in out.output.splitlines() if line.count("|") == 12}
    assert set(rows) - {("A", "B"), ("---", "---")} == {
        ("self_report", "structured"), ("self_report", "step_judge"), ("structured", "step_judge")}
    samples = log.samples or []

    def beliefs(name: str) -> tuple[np.ndarray, np.ndarray]:
        return tuple(np.array([s.scores[name].value[k] for s in samples], float)  # type: ignore[return-value]
                     for k in ("prior", "posterior"))

    (pa, qa), (pb, qb) = beliefs("self_report"), beliefs("step_judge")
    ok = _both_read(pa, qa, pb, qb)
    independent = martingale_score(pb[ok], qb[ok]).slope - martingale_score(pa[ok], qa[ok]).slope
    row = rows[("self_report", "step_judge")]
    assert float(row[8]) == pytest.approx(independent, abs=1e-4) and abs(independent) > 1e-3
    low, high = (float(v) for v in row[9].strip("[]").split(","))
    assert low <= float(row[8]) <= high
    assert float(rows[("self_report", "structured")][8]) == pytest.approx(0.0, abs=1e-3)
    # two extractors keep the one-pair layout, with the ΔMS rows added
    two = CliRunner().invoke(main, ["agreement", str(log.location), "--extractors", "self_report,step_judge"])
    assert two.exit_code == 0 and "| slope signs agree |" in two.output
    assert f"| ΔMS (step_judge − self_report), samples both read | {row[8]} |" in two.output
    one = CliRunner().invoke(main, ["agreement", str(log.location), "--extractors", "self_report"])
    assert one.exit_code != 0 and "two or more different extractors" in one.output


# ---- what the probe costs ---------------------------------------------------------------------------------


def test_martingale_cost_counts_the_probe_calls(tmp_path: Path) -> None:
    def evaluated_calls(extractors: str) -> int:
        log = _eval(tmp_path / extractors, "sim/bayesian", extractors, prior_samples=2)
        return sum(t.calls for t in cost_report(log, prices={}).evaluated)

    # per sample: prior, one repeat, posterior; the probe adds one call after each
    assert evaluated_calls("self_report") == LIMIT * 3
    assert evaluated_calls("self_report,structured") == LIMIT * 6


def test_the_grid_dry_run_counts_the_probe_calls() -> None:
    def per_sample(extractors: str) -> float:
        grid = Grid(tasks=("forecast",), models=("openai/gpt-4o-mini",), paradigms=("direct",),
                    task_args={"extractors": extractors})
        (cell,) = estimate_grid(grid, load_prices(), answer_tokens=20, limit=LIMIT).cells
        return cell.per_sample(cell.model)

    assert per_sample("self_report") == 2
    assert per_sample("self_report,structured") == 4
