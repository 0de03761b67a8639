"""Re-extraction: apply extractors to the transcripts of an existing eval log, without regenerating.

The result is written to a new log file; the original is never modified. This is a thin layer over
inspect's own ``score()`` (the same machinery as ``inspect score``), adding the harness's checks:
known extractor names, a bound grader for judges, no two metric blocks with the same name.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from inspect_ai import score
from inspect_ai.log import EvalLog, write_eval_log

from martingale_harness.errors import ConfigError
from martingale_harness.plugins import get_extractor
from martingale_harness.runs import read_log
from martingale_harness.scoring import belief_scorer
from martingale_harness.task import check_model_roles, parse_extractors
from martingale_harness.transcript import TURNS_KEY


def rescore(
    log_file: str | Path,
    extractors: str | Sequence[str],
    *,
    grader: str | None = None,
    replace: bool = False,
    output: str | Path | None = None,
) -> Path:
    """Score ``log_file`` with ``extractors`` and write the result to a new log; returns its path.

    ``replace`` drops the log's existing scores; otherwise the new blocks are added beside them
    and re-using an extractor name already in the log is an error.
    """
    source = Path(log_file)
    names = parse_extractors(extractors, default=())
    roles = {"grader": grader} if grader else {}
    check_model_roles(names, bound=roles, how="--grader <model>")
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
    scored = score(log, [belief_scorer(n) for n in names], model_roles=roles or None,
                   action="overwrite" if replace else "append", display="none")
    write_eval_log(scored, str(target))
    return target


def _check_probes(source: Path, log: EvalLog, names: Sequence[str]) -> None:
    """Refuse extractors that read generation-time probes the log does not have."""
    has_probes = any(
        "probe" in turn for sample in log.samples or [] for turn in (sample.store.get(TURNS_KEY) or [])
    )
    for name in names:
        if getattr(get_extractor(name), "needs_yes_no_probe", False) and not has_probes:
            raise ConfigError(
                f"{source}: extractor {name!r} reads token probabilities of a Yes/No probe made at generation "
                f"time, and this log has none; run the eval again with {name} among -T extractors"
            )
