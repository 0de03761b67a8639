"""Task YAML: lm-eval vocabulary, include chains, safe loading, errors naming file, key and allowed values."""

from __future__ import annotations

from pathlib import Path

import pytest
from inspect_ai import eval as inspect_eval

from martingale_harness.errors import ConfigError
from martingale_harness.project_files import read_yaml
from martingale_harness.tasks.config import ProtocolSettings, load_task_config, task_config


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.fixture
def base(tmp_path: Path) -> Path:
    return _write(tmp_path / "base.yaml", """\
tag: [martingale]
doc_to_text: "{question}"
protocol:
  paradigm: cot
  system_prompt: critical
  extractors: [self_report]
  rounds: 3
dataset_kwargs:
  data: base-data.json
metadata:
  version: 2.5
""")


def test_include_merges_mappings_and_replaces_scalars(tmp_path: Path, base: Path) -> None:
    child = _write(tmp_path / "child.yaml", """\
include: base.yaml
task: mine
dataset_path: cmv
protocol:
  system_prompt: prior_conforming
  extractors: self_report,step_judge
""")
    config = load_task_config(child)
    assert config.task == "mine" and config.dataset_path == "cmv" and config.version == "2.5"
    assert config.protocol == ProtocolSettings(paradigm="cot", system_prompt="prior_conforming",
                                               extractors=("self_report", "step_judge"), rounds=3)
    assert config.default_data == tmp_path / "base-data.json"
    assert config.tags == ("martingale",)


@pytest.mark.parametrize(
    "body,message",
    [("task: x\ndataset_path: cmv\ndataset_kwargs: {data: d}\nnum_fewshot: 3\n",
      "unknown key(s) num_fewshot; allowed: task, tag, include"),
     ("task: x\ndataset_path: cmv\ndataset_kwargs: {data: d}\nprotocol: {paradigm: socratic}\n",
      "protocol.paradigm='socratic' is not allowed; allowed: direct, cot, debate, evidence"),
     ("task: x\ndataset_path: cmv\ndataset_kwargs: {data: d}\nprotocol: {temperature: 0}\n",
      "unknown key(s) protocol.temperature; allowed: paradigm, system_prompt"),
     ("task: x\ndataset_path: cmv\ndataset_kwargs: {data: d}\nprotocol: {rounds: 0}\n",
      "protocol.rounds=0 is not allowed; allowed: an integer from 1 to 10"),
     ("task: x\ndataset_path: cmv\ndataset_kwargs: {data: d}\nprotocol: {evidence_budget: -5}\n",
      "protocol.evidence_budget=-5 is not allowed"),
     ("task: x\ndataset_path: cmv\ndataset_kwargs: {data: d}\nprotocol: {bad_rows: ignore}\n",
      "protocol.bad_rows='ignore' is not allowed; allowed: skip_few, skip, error"),
     ("task: x\ndataset_path: reddit\ndataset_kwargs: {data: d}\n",
      "dataset_path='reddit' has no loader; allowed: forecastbench, cmv, openreview"),
     ("task: x\ndataset_path: cmv\n", "missing key dataset_kwargs.data"),
     ("dataset_path: cmv\ndataset_kwargs: {data: d}\n", "missing key 'task'"),
     ("task: x\ndataset_path: cmv\ndataset_kwargs: {data: d}\ndoc_to_text: 'Q: {title}'\n",
      "doc_to_text must contain {question}"),
     ("task: x\ndataset_path: cmv\ndataset_kwargs: {data: d}\ndoc_to_target: decision\n",
      "doc_to_target='decision' is not allowed; allowed: label"),
     ("task: x\ninclude: missing.yaml\n", "missing.yaml: file does not exist"),
     ("task: [unclosed\n", "invalid YAML")],
)
def test_config_errors_name_file_key_and_allowed(tmp_path: Path, body: str, message: str) -> None:
    path = _write(tmp_path / "task.yaml", body)
    with pytest.raises(ConfigError) as err:
        load_task_config(path)
    assert message in str(err.value)
    assert "task.yaml" in str(err.value) or "missing.yaml" in str(err.value)


def test_include_cycle_is_an_error(tmp_path: Path) -> None:
    _write(tmp_path / "a.yaml", "include: b.yaml\ntask: a\n")
    _write(tmp_path / "b.yaml", "include: a.yaml\n")
    with pytest.raises(ConfigError, match="nested more than"):
        load_task_config(tmp_path / "a.yaml")


def test_yaml_is_loaded_safely(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = _write(tmp_path / "evil.yaml",
                  f"task: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        read_yaml(path)
    assert not marker.exists()


def test_bundled_tasks_share_the_defaults() -> None:
    for name in ("forecast", "cmv", "openreview"):
        config = task_config(name)
        assert config.task == name
        assert config.protocol == ProtocolSettings()
        assert config.default_data.exists()
        assert {m["metric"] for m in config.metric_list} >= {"ms_slope", "ms_slope_endpoints"}


def test_overrides_are_validated_like_the_yaml() -> None:
    settings = ProtocolSettings().override(paradigm="debate", rounds="3", extractors="self_report, logprob")
    assert (settings.paradigm, settings.rounds, settings.extractors) == ("debate", 3, ("self_report", "logprob"))
    with pytest.raises(ConfigError, match="-T: protocol.system_prompt='grumpy' is not allowed"):
        ProtocolSettings().override(system_prompt="grumpy")


def test_every_protocol_key_is_a_task_argument(tmp_path: Path) -> None:
    log = inspect_eval("martingale/forecast", model="sim/bayesian", limit=2, display="none", log_dir=str(tmp_path),
                       task_args={"paradigm": "debate", "rounds": 1, "system_prompt": "critical",
                                  "evidence_budget": 100, "bad_rows": "error", "extractors": "self_report"})[0]
    assert log.status == "success", log.error
    meta = log.eval.metadata or {}
    assert (meta["paradigm"], meta["rounds"], meta["system_prompt"]) == ("debate", 1, "critical")
    assert meta["evidence_budget"] == 100 and meta["bad_rows"] == "error"
    assert meta["data_report"]["evidence_items_truncated"] > 0


@pytest.mark.parametrize(("task_name", "passed", "expected"), [
    ("martingale/forecast", {}, {"paradigm": "direct", "system_prompt": "none", "extractors": "self_report",
                                 "rounds": 2, "prior_samples": 1, "bad_rows": "skip_few"}),
    ("martingale/forecast", {"paradigm": "cot", "prior_samples": 2}, {"paradigm": "cot", "prior_samples": 2}),
    ("martingale/bayes", {"n": 3}, {"paradigm": "evidence", "n": 3, "seed": 0, "families": "urn,diagnostic,coin"}),
])
def test_the_log_records_the_task_arguments_actually_used(tmp_path: Path, task_name: str,
                                                          passed: dict[str, object],
                                                          expected: dict[str, object]) -> None:
    (log,) = inspect_eval(task_name, model="sim/bayesian", task_args=passed, limit=1, display="none",
                          log_dir=str(tmp_path))
    assert log.status == "success", log.error
    recorded = log.eval.task_args
    assert {k: recorded[k] for k in expected} == expected
    assert recorded["evidence_budget"] == task_config(task_name.split("/")[1]).protocol.evidence_budget
    assert Path(recorded["data"]).is_file()
    assert log.eval.task_args_passed == passed  # what eval-retry replays


@pytest.mark.parametrize(("entry", "message"), [
    ("  - metric: ms_slop\n    aggregation: mean\n",
     r"metric_list\[0\]\.metric must be a metric the scorer reports .*got 'ms_slop'"),
    ("  - metric: ms_slope\n    aggregation: median\n",
     r"metric_list\[0\]\.aggregation='median' is not allowed; allowed: martingale_score, brier, mean"),
    ("  - metric: inertia\n    aggregation: mean\n    better: up\n", r"unknown key\(s\) metric_list\[0\]\.better"),
])
def test_a_metric_list_entry_the_scorer_cannot_honour_is_refused(tmp_path: Path, entry: str, message: str) -> None:
    path = _write(tmp_path / "task.yaml", "task: x\ndataset_path: forecastbench\ndataset_kwargs: {data: d.json}\n"
                                          "metric_list:\n" + entry)
    with pytest.raises(ConfigError, match=message):
        load_task_config(path)
