"""Re-extraction: apply extractors to the transcripts of an existing eval log, without regenerating.

The result is written to a new log file; the original is never modified. This is a thin layer over
inspect's own ``score_async()`` (the same machinery as ``inspect score``), adding the harness's checks
(known extractor names, a bound grader for judges, no two metric blocks with the same name) and three
things ``inspect score`` does not do:

* only the models rescore calls are constructed: the grader. inspect's scoring otherwise rebuilds the
  log's evaluated model (``get_model(log.eval.model, **log.eval.model_args)``) and the log's own model
  roles, which for a ``local/...`` model loads its weights although nothing calls it. The active model
  is inspect's ``none`` model (an error if an extractor calls it) and the log's roles are not rebuilt.
* the grader takes generation settings in inspect's flat ``--model-role`` form (:func:`parse_grader`).
* work is kept as it goes: every rescored sample is appended (and flushed) to a progress file beside
  the output, ``<output>.partial.jsonl``; a rerun with the same settings resumes from it, the final log
  is written at the end and the progress file is then removed (:func:`partial_path`).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import yaml
from inspect_ai import score_async
from inspect_ai.event import Event
from inspect_ai.log import EvalLog, EvalResults, EvalSample, write_eval_log
from inspect_ai.model import GenerateConfig, Model, get_model
from inspect_ai.scorer import Score, Scorer, Target
from inspect_ai.solver import TaskState
from pydantic import BaseModel, ConfigDict, ValidationError

from martingale_harness._inspect_compat import run_coroutine
from martingale_harness.errors import ConfigError
from martingale_harness.plugin.host import get_extractor
from martingale_harness.project_files import load_yaml
from martingale_harness.protocol.turns import read_turns
from martingale_harness.reporting.runs import read_log
from martingale_harness.scoring.scorer import belief_scorer
from martingale_harness.tasks.builder import check_model_roles, parse_extractors

GRADER_EXAMPLE = '--grader "{model: openai/gpt-4o-mini, temperature: 0.3, max_tokens: 512}"'
PARTIAL_SUFFIX = ".partial.jsonl"
PARTIAL_FORMAT = "martingale-rescore/1"


@dataclass(frozen=True)
class GraderSpec:
    """The grader as given: model name, model args and generation settings (validated by GenerateConfig)."""

    model: str
    model_args: dict[str, Any] = field(default_factory=dict)
    config: GenerateConfig = field(default_factory=GenerateConfig)

    def settings(self) -> dict[str, Any]:
        """JSON-ready form, compared when a stopped run is resumed."""
        return {"model": self.model, "model_args": self.model_args,
                "config": self.config.model_dump(mode="json", exclude_none=True)}

    def load(self) -> Model:
        """Construct the grader (for a local model this loads its weights): as inspect's ``--model-role``."""
        return get_model(self.model, config=self.config, memoize=False, **self.model_args)


def parse_grader(value: str | Mapping[str, Any]) -> GraderSpec:
    """``--grader``: a model name, or inspect's flat ``--model-role`` mapping in YAML/JSON,
    ``{model: openai/gpt-4o-mini, temperature: 0.3, max_tokens: 512, model_args: {...}}``.

    Every key besides ``model`` and ``model_args`` is a GenerateConfig field, checked by GenerateConfig.
    The nested ``{model: ..., config: {...}}`` form is refused with the flat form it means.
    """
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise ConfigError(f"--grader: give a model name, e.g. {GRADER_EXAMPLE}")
        try:
            parsed = load_yaml(text)
        except yaml.YAMLError as e:
            if text.startswith("{"):
                problem = str(e).splitlines()[0]
                raise ConfigError(f"--grader: not a YAML mapping ({problem}); e.g. {GRADER_EXAMPLE}") from None
            parsed = text
        if not isinstance(parsed, dict):
            return GraderSpec(model=text)
        value = parsed
    settings = dict(value)
    if "config" in settings:
        nested = settings.pop("config")
        flat = {**settings, **(nested if isinstance(nested, dict) else {})}
        shown = yaml.safe_dump(flat, default_flow_style=True, sort_keys=False, width=1_000_000).strip()
        raise ConfigError(f'--grader: generation settings go beside model, not under config: (inspect\'s flat '
                          f'form), e.g. --grader "{shown}"')
    model = settings.pop("model", None)
    if not isinstance(model, str) or not model.strip():
        raise ConfigError(f"--grader: the mapping needs model: <name>, e.g. {GRADER_EXAMPLE}")
    model_args = settings.pop("model_args", None) or {}
    if not isinstance(model_args, dict):
        raise ConfigError(f"--grader: model_args must be a mapping, got {model_args!r}")
    try:
        config = GenerateConfig(**settings)
    except ValidationError as e:
        problems = "; ".join(
            (f"{'.'.join(map(str, err['loc']))}: " if err["loc"] else "") + err["msg"].removeprefix("Value error, ")
            for err in e.errors()
        )
        raise ConfigError(f"--grader: {problems}") from None
    return GraderSpec(model=model.strip(), model_args=model_args, config=config)


def partial_path(target: str | Path) -> Path:
    """The progress file of a rescore writing ``target``: ``<target>.partial.jsonl``."""
    target = Path(target)
    return target.with_name(target.name + PARTIAL_SUFFIX)


class RescoredSample(BaseModel):
    """One line of the progress file: a sample's scores and events after rescoring (its whole lists)."""

    model_config = ConfigDict(ser_json_inf_nan="constants")  # NaN beliefs stay NaN, as in inspect's logs

    id: int | str
    epoch: int
    scores: dict[str, Score]
    events: list[Event]


SampleKey = tuple[int | str, int]


def rescore(
    log_file: str | Path,
    extractors: str | Sequence[str],
    *,
    grader: str | Mapping[str, Any] | None = None,
    replace: bool = False,
    output: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Score ``log_file`` with ``extractors`` and write the result to a new log; returns its path.

    ``replace`` drops the log's existing scores; otherwise the new blocks are added beside them
    and re-using an extractor name already in the log is an error. ``grader`` is what
    :func:`parse_grader` reads. ``progress`` receives one-line progress reports.

    Each rescored sample is appended to ``partial_path(output)`` as it finishes; a rerun with the same
    log, extractors, grader and ``replace`` skips the samples found there (other settings are refused),
    and the file is removed once the final log is written.
    """
    source = Path(log_file)
    names = parse_extractors(extractors, default=())
    spec = parse_grader(grader) if grader is not None else None
    check_model_roles(names, bound={"grader"} if spec else set(), how="--grader <model>")
    if spec is not None and not any("grader" in getattr(get_extractor(n), "model_roles", ()) for n in names):
        raise ConfigError(f"--grader: none of the extractors ({', '.join(names)}) calls a grader; leave it out")
    log = read_log(source)
    if not log.samples:
        raise ConfigError(f"{source}: the log holds no samples to re-extract")
    _check_probes(source, log, names)
    if not replace and log.results is not None:
        clash = sorted({b.name for b in log.results.scores} & set(names))
        if clash:
            raise ConfigError(f"{source} already has scores for {', '.join(clash)}; pass --replace to "
                              "write a log with only the new extractors' scores")
    target = Path(output) if output else source.with_name(f"{source.stem}-rescored-{'-'.join(names)}{source.suffix}")
    if target.resolve() == source.resolve():
        raise ConfigError("the output must be a new file: the original log is never modified")
    settings = {"format": PARTIAL_FORMAT, "log": {"eval_id": log.eval.eval_id, "samples": len(log.samples)},
                "extractors": names, "replace": replace, "grader": spec.settings() if spec else None}
    partial = partial_path(target)
    done = _read_partial(partial, settings, {(s.id, s.epoch) for s in log.samples})
    report = _Progress(len(log.samples), len(done), progress)
    report.start(partial, names, spec)
    # the grader is the one model constructed, after every check that costs nothing
    roles: dict[str, str | Model] = {"grader": spec.load()} if spec else {}
    with _open_partial(partial, settings, fresh=not partial.exists()) as sink:
        scored = run_coroutine(_score(log, names, roles, replace, done, sink, report))
    write_eval_log(scored, str(target))
    partial.unlink(missing_ok=True)
    return target


async def _score(
    log: EvalLog,
    names: Sequence[str],
    roles: dict[str, str | Model],
    replace: bool,
    done: dict[SampleKey, RescoredSample],
    sink: IO[str],
    report: _Progress,
) -> EvalLog:
    """inspect's ``score_async`` over every sample; samples in ``done`` get their recorded scores and
    events back without any model call, the others are appended to ``sink`` as each finishes."""
    samples = log.samples or []
    header = log.model_copy(update={"samples": None}).model_copy(deep=True)
    header.eval.model_roles = None  # the log's own roles (its grader, say) are not rebuilt: nothing calls them
    if header.results is None:
        header.results = EvalResults(total_samples=len(samples),
                                     completed_samples=sum(s.error is None for s in samples))
    total_before = header.results.total_samples
    header.results.total_samples = len(samples)  # score_async's sample count when it streams samples

    @contextlib.asynccontextmanager
    async def read_sample(index: int) -> AsyncIterator[EvalSample]:
        sample = samples[index]
        yield sample
        # reached once the sample's new scores and events are in it (not when its scoring failed)
        record = done.get((sample.id, sample.epoch))
        if record is not None:
            sample.scores, sample.events = dict(record.scores), list(record.events)
            return
        line = RescoredSample(id=sample.id, epoch=sample.epoch, scores=sample.scores or {}, events=sample.events)
        sink.write(line.model_dump_json() + "\n")
        sink.flush()
        report.sample_done()

    scorers = [_resuming(belief_scorer(n), n, done) for n in names]
    scored = await score_async(header, scorers, model=get_model("none"), model_roles=roles or None,
                               action="overwrite" if replace else "append", display="none", copy=False,
                               samples=read_sample)
    if not replace and scored.results is not None:
        scored.results.total_samples = total_before
    scored.eval.model_roles = log.eval.model_roles
    scored.samples = samples
    return scored


def _resuming(inner: Scorer, name: str, done: Mapping[SampleKey, RescoredSample]) -> Scorer:
    """``inner``, except that a sample rescored by an earlier run gets its recorded score (no extraction)."""

    async def score(state: TaskState, target: Target) -> Score | None:
        record = done.get((state.sample_id, state.epoch))
        if record is not None:
            return record.scores[name]
        return await inner(state, target)

    score.__dict__.update(inner.__dict__)  # inspect's registry info: the scorer's name and metrics
    return score


def _read_partial(path: Path, settings: dict[str, Any], keys: set[SampleKey]) -> dict[SampleKey, RescoredSample]:
    """The samples a stopped run with the same settings rescored; a line cut short by the stop is dropped."""
    if not path.exists():
        return {}
    raw = path.read_bytes()
    first, newline, rest = raw.partition(b"\n")
    if not newline:  # stopped while writing the first line: nothing was rescored
        path.unlink()
        return {}
    try:
        header = json.loads(first)
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get("format") != PARTIAL_FORMAT:
        raise ConfigError(f"{path} is in the way and is not a rescore progress file; move it or give another --output")
    if header.get("settings") != settings:
        before = header.get("settings") or {}
        differ = [k for k in settings if before.get(k) != settings[k]] or ["format"]
        raise ConfigError(
            f"{path} holds samples rescored with other settings ({', '.join(differ)} differ); rerun with the "
            "same settings to resume, or delete it to start over"
        )
    done: dict[SampleKey, RescoredSample] = {}
    good = len(first) + 1
    for line in rest.split(b"\n")[:-1]:  # the last piece has no newline: empty, or a line cut short
        try:
            record = RescoredSample.model_validate_json(line)
        except ValidationError:
            break
        key = (record.id, record.epoch)
        if key not in keys:
            raise ConfigError(f"{path}: sample {record.id} (epoch {record.epoch}) is not in the log; delete it "
                              "to start over")
        done[key] = record
        good += len(line) + 1
    if good < len(raw):
        with path.open("r+b") as f:
            f.truncate(good)
    return done


@contextlib.contextmanager
def _open_partial(path: Path, settings: dict[str, Any], fresh: bool) -> Iterator[IO[str]]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w" if fresh else "a", encoding="utf-8") as sink:
        if fresh:
            sink.write(json.dumps({"format": PARTIAL_FORMAT, "settings": settings}) + "\n")
            sink.flush()
        yield sink


class _Progress:
    """One-line reports: where work is kept, then samples done / total at every tenth and every 30 s."""

    INTERVAL_S = 30.0

    def __init__(self, total: int, resumed: int, report: Callable[[str], None] | None) -> None:
        self.total, self.done, self.resumed, self.report = total, resumed, resumed, report
        self.started = self.last = time.monotonic()
        self.next_tenth = self._tenth_after(resumed)

    def _tenth_after(self, done: int) -> int:
        return next((k * self.total // 10 for k in range(1, 11) if k * self.total // 10 > done), self.total)

    def start(self, partial: Path, names: Sequence[str], spec: GraderSpec | None) -> None:
        if self.report is None:
            return
        what = ", ".join(names) + (f" (grader {spec.model})" if spec else "")
        if self.resumed:
            self.report(f"rescore: resuming, {self.resumed}/{self.total} samples already rescored in {partial}; "
                        f"rescoring the other {self.total - self.resumed} with {what}")
        else:
            self.report(f"rescore: {self.total} samples with {what}; each is kept in {partial} until the log "
                        "is written")

    def sample_done(self) -> None:
        self.done += 1
        now = time.monotonic()
        if self.report is None or (self.done < self.next_tenth and now - self.last < self.INTERVAL_S
                                   and self.done < self.total):
            return
        self.last = now
        self.next_tenth = self._tenth_after(self.done)
        elapsed = int(now - self.started)
        self.report(f"rescore: {self.done}/{self.total} samples ({elapsed // 60}m{elapsed % 60:02d}s)")


def _check_probes(source: Path, log: EvalLog, names: Sequence[str]) -> None:
    """Refuse extractors that read generation-time probes the log does not have."""
    turns = [turn for sample in log.samples or [] for turn in read_turns(sample.store)]
    has_probes = any(turn.probe is not None for turn in turns)
    has_structured = any(turn.structured is not None for turn in turns)
    for name in names:
        if getattr(get_extractor(name), "needs_yes_no_probe", False) and not has_probes:
            raise ConfigError(
                f"{source}: extractor {name!r} reads token probabilities of a Yes/No probe made at generation "
                f"time, and this log has none; run the eval again with {name} among -T extractors"
            )
        if getattr(get_extractor(name), "needs_structured_probe", False) and not has_structured:
            raise ConfigError(
                f"{source}: extractor {name!r} reads a structured belief probe made at generation time, and "
                f"this log has none; run the eval again with {name} among -T extractors"
            )
