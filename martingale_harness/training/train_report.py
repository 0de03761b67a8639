"""``martingale train-report RUN_DIR``: why a training run did or did not move the Martingale Score.

Reads what ``martingale train`` wrote (``metrics.jsonl``, ``training_config.json`` and, where the
run finished, ``adapter/martingale_card.json``) and writes ``train_report.md`` and
``training_curves.png``. Each point is one logged step (GRPO/RLOO: an optimizer step, whose
``martingale/...`` values are TRL's mean over the step's generation batches) or one round (expert
iteration). The diagnostics themselves are defined in :mod:`martingale_harness.training.diagnostics`.

The summary answers the question a research user asks of a run that did not move MS: did the MS term
give the policy any within-group signal (its share of the within-group reward variance), did the
groups have any signal at all, were the answers readable, did the priors vary enough for a slope, did
the batch MS move, how far did the policy go (KL), and what the held-out evaluation found.

Two more sections answer why MS did or did not move, from the run's own numbers:

* **Held-out per round** (per step for GRPO/RLOO): the start model's held-out evaluation (round 0, the
  card's ``evaluation.start``), the rounds evaluated with ``evaluation.every_round`` (the ``event: heldout``
  lines of ``metrics.jsonl``) and the trained adapter's (the last round, ``evaluation.trained``). A rise of
  held-out inertia above the start's by more than :data:`INERTIA_TRAP_RISE` is the *inertia trap*: the MS term
  met by not updating.
* **Batch slope's power**: from every generation batch's beliefs (``reward_batches.jsonl``; expert
  iteration's ``rounds/round-N.jsonl``), the power of the batch MS's test to detect the start model's held-out
  |MS| (:data:`DEFAULT_EFFECT` without one) at the batch's size, and the episodes 80 % power would need
  (:func:`~martingale_harness.training.diagnostics.slope_noise`, :mod:`martingale_harness.stats.power`).

The "why" finding names which of three explanations the numbers support: (a) the batch MS is too small to
detect (power below :data:`LOW_POWER`), (b) the MS term's share of the within-group reward variance is below
:data:`LOW_MS_SHARE` (reward shape), (c) the policy barely moved (final KL below :data:`LOW_KL`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from martingale_harness.errors import MartingaleError
from martingale_harness.stats.power import DEFAULT_POWER
from martingale_harness.training.diagnostics import batch_power, slope_noise
from martingale_harness.training.reward import METRIC_PREFIX

REPORT_MD = "train_report.md"
CURVES_PNG = "training_curves.png"
LOW_MS_SHARE = 0.10
"""Below this mean share of the within-group reward variance the MS term counts as giving no signal."""
HIGH_NO_SIGNAL = 0.5
"""Above this mean share of all-equal groups most of the batch gives no gradient."""
LOW_READABLE = 0.9
LOW_PRIOR_SD = 0.05
"""Priors whose SD is below this leave the batch slope with little leverage."""
INERTIA_TRAP_RISE = 0.10
"""Held-out inertia more than this above the start model's is the inertia trap (the MS term met by not
updating); within it the run passes (issue 30: "at most the start's + 0.10")."""
DEFAULT_EFFECT = 0.1
"""The MS whose detection the batch power is computed for when the card has no start evaluation: the smallest
MS worth training away."""
LOW_POWER = 0.5
"""Below this (median) power the batch slope mostly cannot tell the bias from 0: explanation (a)."""
LOW_KL = 0.005
"""A final KL to the start below this (per token) means the policy barely moved: explanation (c)."""


@dataclass
class TrainingLog:
    """The points of one run's ``metrics.jsonl`` and the files beside it."""

    run_dir: Path
    points: list[dict[str, float]]
    """One per logged step or round that carries reward metrics, in order."""
    unit: str
    """``step`` or ``round``."""
    prior_passes: list[dict[str, Any]] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    card: dict[str, Any] | None = None
    heldout: list[dict[str, Any]] = field(default_factory=list)
    """The ``event: heldout`` lines (a round's adapter on the held-out questions), in order."""
    batches: list[dict[str, Any]] = field(default_factory=list)
    """Each generation batch's ``items``, ``prior`` and ``posterior`` lists (None: not read)."""
    _power: list[PowerSummary | None] = field(default_factory=list, repr=False)
    """batch_power_summary's result, once computed (a power search per batch: worth doing once)."""

    def series(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """(x, values) of one metric over the points that logged it."""
        xs = [p["x"] for p in self.points if key in p]
        return np.asarray(xs, dtype=float), np.asarray([p[key] for p in self.points if key in p], dtype=float)

    def mean(self, key: str) -> float:
        values = self.series(key)[1]
        return float(values.mean()) if values.size else math.nan


def read_training_log(run_dir: str | Path) -> TrainingLog:
    """A run directory's metrics (raises MartingaleError with what is missing or malformed)."""
    root = Path(run_dir)
    metrics = root / "metrics.jsonl"
    if not metrics.is_file():
        raise MartingaleError(f"{root}: no metrics.jsonl; give the output_dir of a `martingale train` run")
    points: list[dict[str, float]] = []
    passes: list[dict[str, Any]] = []
    heldout: list[dict[str, Any]] = []
    unit = "step"
    for record in _json_lines(metrics):
        if record.get("event") == "prior_pass":
            passes.append(record)
            continue
        if record.get("event") == "heldout":
            heldout.append(record)
            continue
        if not any(str(k).startswith(METRIC_PREFIX) for k in record):
            continue  # TRL's end-of-training summary and other lines without reward metrics
        if record.get("event") == "round":
            unit = "round"
        x = record.get("round", record.get("step"))
        numbers = {k: float(v) for k, v in record.items()
                   if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)}
        points.append({**numbers, "x": float(x if isinstance(x, int | float) else len(points) + 1)})
    config_file = root / "training_config.json"
    config = json.loads(config_file.read_text(encoding="utf-8")) if config_file.is_file() else {}
    card_file = root / "adapter" / "martingale_card.json"
    card = json.loads(card_file.read_text(encoding="utf-8")) if card_file.is_file() else None
    if not points:
        raise MartingaleError(f"{metrics}: no step or round with reward metrics (martingale/...) was logged")
    return TrainingLog(run_dir=root, points=points, unit=unit, prior_passes=passes, config=config, card=card,
                       heldout=heldout, batches=_read_batches(root))


def _read_batches(root: Path) -> list[dict[str, Any]]:
    """The beliefs of every generation batch: ``reward_batches.jsonl`` (GRPO/RLOO), else expert iteration's
    ``rounds/round-N.jsonl`` (one sample a line; one round is one batch)."""
    keys = ("items", "prior", "posterior")
    batches_file = root / "reward_batches.jsonl"
    if batches_file.is_file():
        batches = [{k: b[k] for k in keys} for b in _json_lines(batches_file)
                   if all(isinstance(b.get(k), list) and len(b[k]) == len(b["items"]) for k in keys)]
        if batches:
            return batches
    numbered = {int(f.stem.removeprefix("round-")): f for f in (root / "rounds").glob("round-*.jsonl")
                if f.stem.removeprefix("round-").isdigit()}
    out = []
    for number in sorted(numbered):
        samples = _json_lines(numbered[number])
        out.append({"items": [x.get("item") for x in samples], "prior": [x.get("prior") for x in samples],
                    "posterior": [x.get("posterior") for x in samples]})
    return out


def _json_lines(path: Path) -> list[dict[str, Any]]:
    out = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            raise MartingaleError(f"{path}:{number}: not a JSON line") from None
        if not isinstance(record, dict):
            raise MartingaleError(f"{path}:{number}: not a JSON object")
        out.append(record)
    return out


def _m(key: str) -> str:
    return METRIC_PREFIX + key


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def findings(log: TrainingLog) -> list[str]:
    """Plain-language statements of what the diagnostics say, most important first."""
    out: list[str] = [why_finding(log)]
    reward = log.config.get("reward", {})
    ms_coef = float(reward.get("ms_coef", 1.0))
    share_ms = log.mean(_m("share_ms"))
    no_signal = log.mean(_m("no_signal_groups"))
    readable = log.mean(_m("readable_rate"))
    if ms_coef == 0:
        out.append("The MS term is off (ms_coef = 0): this run does not train on the Martingale Score.")
    elif math.isnan(share_ms):
        out.append("No group had rewards that differ, so no within-group variance to split: the reward gave "
                   "no signal at all.")
    elif share_ms < LOW_MS_SHARE:
        out.append(f"**The MS term gave (almost) no within-group signal**: on average it supplied "
                   f"{share_ms:.1%} of the within-group reward variance (below {LOW_MS_SHARE:.0%}), so the "
                   "advantages (or selections) came from the other terms and the run cannot be expected to "
                   "move MS.")
    else:
        out.append(f"The MS term supplied on average {share_ms:.1%} of the within-group reward variance "
                   f"(information {_pct(log.mean(_m('share_info')))}, format {_pct(log.mean(_m('share_format')))}).")
    if not math.isnan(no_signal) and no_signal > HIGH_NO_SIGNAL:
        out.append(f"{no_signal:.0%} of the groups had all-equal rewards on average (zero advantage, no "
                   "gradient).")
    if not math.isnan(readable) and readable < LOW_READABLE:
        out.append(f"Only {readable:.0%} of the posteriors were readable on average; unreadable ones get the "
                   "format penalty and stay out of the MS fit.")
    sds = [p["prior_sd"] for p in log.prior_passes if isinstance(p.get("prior_sd"), int | float)]
    if sds and float(np.mean(sds)) < LOW_PRIOR_SD:
        out.append(f"The priors barely vary (mean SD {np.mean(sds):.3f} across prior passes): the batch slope "
                   "has little leverage, and the MS shares are small or noisy.")
    fails = [p["prior_failures"] / p["priors"] for p in log.prior_passes if p.get("priors")]
    if fails and max(fails) > 0.5:
        out.append(f"Up to {max(fails):.0%} of the priors could not be read: those episodes get no MS reward "
                   "(the answers are in priors/pass-<step>.jsonl).")
    x, ms = log.series(_m("batch_ms"))
    if ms.size >= 2:
        k = max(1, ms.size // 4)
        out.append(f"Batch MS: {np.mean(ms[:k]):+.3f} over the first {k} {log.unit}(s), {np.mean(ms[-k:]):+.3f} "
                   f"over the last {k}.")
    _, low = log.series(_m("batch_ms_ci_low"))
    _, high = log.series(_m("batch_ms_ci_high"))
    if low.size >= 2 and low.size == high.size and ((low[0] > 0 and high[-1] < 0) or (high[0] < 0 and low[-1] > 0)):
        out.append("The batch MS crossed 0 with both ends clearly away from it: the policy overshot (a smaller "
                   f"learning rate or fewer updates per {log.unit} would land nearer 0).")
    if low.size and low.size == high.size:
        detected = float(np.mean((low > 0) | (high < 0)))
        out.append(f"The batch MS's 95 % interval excluded 0 in {detected:.0%} of the {log.unit}s"
                   + (": within one batch the bias is too small to tell from noise, so the MS shares are "
                      "mostly noise too (more episodes per batch would help)." if detected < 0.5 else "."))
    power = batch_power_summary(log)
    if power is not None:
        out.append(power.finding())
    kl = log.series("kl")[1]
    if kl.size:
        out.append(f"KL to the start policy (per token) at the end: {kl[-1]:.4f} (max {kl.max():.4f}).")
    evaluation = (log.card or {}).get("evaluation")
    inertia = inertia_finding(log)
    if evaluation:
        out.append(_evaluation_line(evaluation))
        if inertia:
            out.append(inertia)
        held = ((evaluation.get("trained") or {}).get("metrics") or {})
        low_h, high_h = held.get("ms_slope_ci_low"), held.get("ms_slope_ci_high")
        # expert iteration samples a round before fine-tuning on it: its batch MS of round N is the policy
        # after N - 1 rounds, so a one-round run has no batch measurement of a trained policy at all
        before = " (sampled before the last round's fine-tuning)" if log.unit == "round" else ""
        if log.unit == "round" and ms.size == 1:
            out.append("The only round's batch MS was measured on the start policy's samples (expert iteration "
                       "samples a round before fine-tuning on it): the held-out evaluation is the only measurement "
                       "of the trained policy.")
        elif ms.size and isinstance(low_h, int | float) and isinstance(high_h, int | float) \
                and not low_h <= ms[-1] <= high_h:
            out.append(f"**The training batches and the held-out questions disagree**: the last batch MS{before} "
                       f"was {ms[-1]:+.3f}, outside the trained adapter's held-out interval [{low_h:.3f}, "
                       f"{high_h:.3f}]: what the policy learnt on its training questions did not carry over (too "
                       "few or too unlike the held-out ones).")
    elif log.card is None:
        out.append("The run has no adapter/martingale_card.json (unfinished?): no held-out evaluation to report.")
        if inertia:
            out.append(inertia)
    return out


# --- held-out per round --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HeldoutRow:
    """One held-out evaluation of the run: after ``x`` rounds (steps) of training; 0 = the start model."""

    x: int
    source: str
    """``start`` (the card's ``evaluation.start``), ``round`` (an ``event: heldout`` line) or ``trained``."""
    metrics: dict[str, Any]

    @property
    def label(self) -> str:
        return {"start": f"{self.x} (start)", "trained": f"{self.x} (trained)"}.get(self.source, str(self.x))


def _number(value: Any) -> float | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else None


def _nan(value: Any) -> float:
    number = _number(value)
    return math.nan if number is None else number


def _last_x(log: TrainingLog) -> int:
    """The round (step) the trained adapter stands for: the config's rounds, else the last logged point."""
    rounds = (log.config.get("expert_iteration") or {}).get("rounds") if log.unit == "round" else None
    return rounds if isinstance(rounds, int) else int(max(p["x"] for p in log.points))


def heldout_rows(log: TrainingLog) -> list[HeldoutRow]:
    """Every held-out evaluation of the run in order: the start (0), the rounds of ``evaluation.every_round``
    (1 .. R - 1) and the trained adapter (R)."""
    evaluation = (log.card or {}).get("evaluation") or {}
    last = _last_x(log)
    rows = []
    start = evaluation.get("start")
    if isinstance(start, dict) and isinstance(start.get("metrics"), dict):
        rows.append(HeldoutRow(0, "start", start["metrics"]))
    trained = evaluation.get("trained")
    has_trained = isinstance(trained, dict) and isinstance(trained.get("metrics"), dict)
    for line in sorted(log.heldout, key=lambda h: h.get("round") if isinstance(h.get("round"), int) else 0):
        x = line.get("round")
        if isinstance(x, int) and isinstance(line.get("metrics"), dict) and not (has_trained and x == last):
            rows.append(HeldoutRow(x, "round", line["metrics"]))
    if has_trained:
        rows.append(HeldoutRow(last, "trained", trained["metrics"]))
    return rows


def inertia_finding(log: TrainingLog) -> str | None:
    """The inertia trap (held-out inertia above the start's by more than INERTIA_TRAP_RISE), or that it stayed
    within; None without the start's and one trained evaluation's inertia."""
    rows = [(row, v) for row in heldout_rows(log) if (v := _number(row.metrics.get("inertia"))) is not None]
    if len(rows) < 2 or rows[0][0].source != "start":
        return None
    start = rows[0][1]
    each = ", ".join(f"{log.unit} {row.x}: {v:.3f}" for row, v in rows)
    risen = [(row, v) for row, v in rows[1:] if v - start > INERTIA_TRAP_RISE]
    if risen:
        row, v = risen[0]
        return (f"**Inertia trap**: held-out inertia rose from {start:.3f} (start) to {v:.3f} ({log.unit} {row.x}), "
                f"more than {INERTIA_TRAP_RISE:.2f} above the start ({each}): the MS term is being met by not "
                "updating.")
    return f"Held-out inertia stayed within +{INERTIA_TRAP_RISE:.2f} of the start's ({each}): no inertia trap."


def _count(value: Any) -> str:
    number = _number(value)
    return "n/a" if number is None else f"{number:.0f}"


def _heldout_table(log: TrainingLog) -> list[str]:
    rows = heldout_rows(log)
    if not rows:
        return []
    out = ["", f"## Held-out per {log.unit}", "",
           f"| {log.unit} | held-out MS [95 % CI] | inertia | readable rate | n_pairs |", "|---|---|---|---|---|"]
    for row in rows:
        m = row.metrics
        failures = _number(m.get("extraction_failure_rate"))
        out.append(f"| {row.label} | {_fmt(m.get('ms_slope'))} [{_fmt(m.get('ms_slope_ci_low'))}, "
                   f"{_fmt(m.get('ms_slope_ci_high'))}] | {_fmt(m.get('inertia'))} | "
                   f"{_fmt(None if failures is None else 1 - failures)} | {_count(m.get('n_pairs'))} |")
    failed = [h for h in log.heldout if h.get("error")]
    if failed:
        out += ["", *(f"- {log.unit} {h.get('round')}: the held-out evaluation failed: {h['error']}" for h in failed)]
    return out


# --- why MS did (not) move -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PowerSummary:
    """The batch slope's power, each quantity the median over the batches whose slope could be fitted."""

    batches: int
    total: int
    """All batches (some may have had under 3 episodes with readable pairs, or priors that did not vary)."""
    episodes: float
    draws: float
    sd_prior: float
    sd_delta: float
    sd_within: float
    effect: float
    effect_source: str
    power: float
    needed: float
    """Episodes for DEFAULT_POWER (80 %) power at the batch's K and SDs (inf: beyond any run)."""

    def finding(self) -> str:
        needed = f"{math.ceil(self.needed)} episodes" if math.isfinite(self.needed) else "more episodes than any run"
        return (f"At {self.episodes:g} episodes × {self.draws:g} draws the batch slope has power {self.power:.2f} "
                f"to detect MS = {self.effect:.3f} ({self.effect_source}); it would need {needed} for "
                f"{DEFAULT_POWER:.0%} (median over {self.batches} batch(es)).")

    def table(self) -> list[str]:
        needed = f"{math.ceil(self.needed)}" if math.isfinite(self.needed) else "beyond any run"
        return ["", "## Batch slope's power", "",
                f"Median over {self.batches} of {self.total} generation batch(es); the effect to detect is "
                f"MS = {self.effect:.3f} ({self.effect_source}).", "",
                "| quantity | median over batches |", "|---|---|",
                f"| episodes with readable pairs | {self.episodes:g} |", f"| draws per episode (K) | {self.draws:g} |",
                f"| SD of the priors | {self.sd_prior:.3f} |",
                f"| residual SD of the updates | {self.sd_delta:.3f} |",
                f"| within-episode SD of the posteriors | {self.sd_within:.3f} |",
                f"| power to detect MS = {self.effect:.3f} | {self.power:.3f} |",
                f"| episodes for {DEFAULT_POWER:.0%} power | {needed} |"]


def effect_to_detect(log: TrainingLog) -> tuple[float, str]:
    """|start held-out MS| from the card where it is there (and not 0), else DEFAULT_EFFECT; and where from."""
    start = ((log.card or {}).get("evaluation") or {}).get("start") or {}
    ms = _number((start.get("metrics") or {}).get("ms_slope"))
    if ms:
        return abs(ms), "the start model's held-out |MS|"
    return DEFAULT_EFFECT, "the default: the smallest MS worth training away"


def batch_power_summary(log: TrainingLog) -> PowerSummary | None:
    """The batch slope's power over the run's batches (None: no batch where a slope could be fitted)."""
    if not log._power:
        log._power.append(_batch_power_summary(log))
    return log._power[0]


def _batch_power_summary(log: TrainingLog) -> PowerSummary | None:
    effect, source = effect_to_detect(log)
    per = []
    for batch in log.batches:
        noise = slope_noise(batch["items"], batch["prior"], batch["posterior"])
        if noise is not None:
            per.append((noise, *batch_power(noise, effect, DEFAULT_POWER)))
    if not per:
        return None

    def median(values: list[float]) -> float:
        return float(np.median(values))

    return PowerSummary(batches=len(per), total=len(log.batches),
                        episodes=median([n.episodes for n, _, _ in per]), draws=median([n.draws for n, _, _ in per]),
                        sd_prior=median([n.sd_prior for n, _, _ in per]),
                        sd_delta=median([n.sd_delta for n, _, _ in per]),
                        sd_within=median([n.sd_within for n, _, _ in per]), effect=effect, effect_source=source,
                        power=median([p for _, p, _ in per]), needed=median([m for _, _, m in per]))


def _ms_moved(log: TrainingLog) -> tuple[bool | None, str]:
    """Whether held-out MS moved from the start (None: not known), and the numbers that say so."""
    evaluation = (log.card or {}).get("evaluation") or {}
    comparison = evaluation.get("comparison") or {}
    d = _number(comparison.get("ms_difference"))
    ci = comparison.get("ms_difference_ci") or [None, None]
    low, high = (_number(v) for v in ci[:2]) if len(ci) >= 2 else (None, None)
    if d is not None and low is not None and high is not None:
        moved = not low <= 0 <= high
        return moved, (f"paired held-out ΔMS (trained − start) {d:+.3f} [{low:.3f}, {high:.3f}] "
                       f"{'excludes' if moved else 'includes'} 0")
    start = _number(((evaluation.get("start") or {}).get("metrics") or {}).get("ms_slope"))
    trained = (evaluation.get("trained") or {}).get("metrics") or {}
    ms, t_low, t_high = (_number(trained.get(k)) for k in ("ms_slope", "ms_slope_ci_low", "ms_slope_ci_high"))
    if start is not None and ms is not None and t_low is not None and t_high is not None:
        moved = not t_low <= start <= t_high
        return moved, (f"held-out MS {start:+.3f} at the start, {ms:+.3f} [{t_low:.3f}, {t_high:.3f}] trained: the "
                       f"start's value lies {'outside' if moved else 'inside'} the trained interval")
    return None, "no held-out start and trained evaluation to compare: whether it moved is not known"


def why_finding(log: TrainingLog) -> str:
    """Which of (a) too little power, (b) too small an MS share, (c) too small a policy change the numbers
    support (thresholds LOW_POWER, LOW_MS_SHARE, LOW_KL); all that hold are named."""
    moved, how = _ms_moved(log)
    holds: list[str] = []
    clear: list[str] = []
    unknown: list[str] = []
    power = batch_power_summary(log)
    if power is None:
        unknown.append("(a) (no batch with 3 episodes of readable pairs and varying priors)")
    elif power.power < LOW_POWER:
        holds.append(f"(a) the batch MS is too small to detect at this batch size (power {power.power:.2f} < "
                     f"{LOW_POWER:g} to detect MS = {power.effect:.3f} at {power.episodes:g} episodes × "
                     f"{power.draws:g} draws)")
    else:
        clear.append(f"batch-slope power {power.power:.2f} ≥ {LOW_POWER:g}")
    ms_coef = float(log.config.get("reward", {}).get("ms_coef", 1.0))
    share = log.mean(_m("share_ms"))
    b = "(b) the MS term gives little within-group signal (reward shape)"
    if ms_coef == 0:
        holds.append(f"{b} (it is off: ms_coef = 0)")
    elif math.isnan(share):
        holds.append(f"{b} (no group's rewards differed: no within-group signal at all)")
    elif share < LOW_MS_SHARE:
        holds.append(f"{b} (MS share {share:.1%} < {LOW_MS_SHARE:.0%})")
    else:
        clear.append(f"MS share {share:.1%} ≥ {LOW_MS_SHARE:.0%}")
    x, kl = log.series("kl")
    if log.unit == "round":  # round r's KL is measured on its samples, before its fine-tuning: round 1's is 0
        kl = kl[x >= 2]
    grad = log.mean("grad_norm")
    grad_text = "" if math.isnan(grad) else f", mean gradient norm {grad:.3g}"
    if not kl.size:
        unknown.append("(c) (no KL of a trained policy logged: expert iteration measures a round's KL before "
                       "its fine-tuning, so a one-round run has none)" if log.unit == "round" else "(c) (no KL logged)")
    elif kl[-1] < LOW_KL:
        holds.append(f"(c) the policy barely moved (gradient/KL too small) (final KL {kl[-1]:.4f} < {LOW_KL:g}"
                     f"{grad_text})")
    else:
        clear.append(f"final KL {kl[-1]:.4f} ≥ {LOW_KL:g}{grad_text}")
    head = {True: "**Why MS moved**", False: "**Why MS did not move**", None: "**Why MS did (not) move**"}[moved]
    if moved:
        text = (f"{head} ({how}): it moved although " + "; ".join(holds) if holds
                else f"{head} ({how}): none of the three obstacles held ({', '.join(clear)})")
    elif holds:
        text = f"{head} ({how}): the numbers support " + "; ".join(holds)
    else:
        text = f"{head} ({how}): none of the three" + (f" ({', '.join(clear)})" if clear else "")
    return text + "." + (f" Not assessed: {', '.join(unknown)}." if unknown else "")


def _pct(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.1%}"


def _evaluation_line(evaluation: dict[str, Any]) -> str:
    parts = []
    for name in ("start", "trained"):
        run = evaluation.get(name)
        if run:
            m = run["metrics"]
            parts.append(f"{name} MS {_fmt(m.get('ms_slope'))} [{_fmt(m.get('ms_slope_ci_low'))}, "
                         f"{_fmt(m.get('ms_slope_ci_high'))}], inertia {_fmt(m.get('inertia'))}, "
                         f"failures {_fmt(m.get('extraction_failure_rate'))}")
    comparison = evaluation.get("comparison") or {}
    if "ms_difference" in comparison:
        low, high = comparison["ms_difference_ci"]
        parts.append(f"paired ΔMS (trained − start) {_fmt(comparison['ms_difference'])} [{_fmt(low)}, {_fmt(high)}] "
                     f"on {comparison['n_matched']} samples")
    return f"Held-out ({evaluation.get('heldout_samples')} samples): " + "; ".join(parts) + "."


TABLE_KEYS: tuple[tuple[str, str], ...] = (
    ("batch MS", _m("batch_ms")), ("batch MS CI low", _m("batch_ms_ci_low")),
    ("batch MS CI high", _m("batch_ms_ci_high")), ("batch inertia", _m("batch_inertia")),
    ("readable rate", _m("readable_rate")), ("reward", _m("reward")), ("MS term", _m("reward_ms")),
    ("information term", _m("reward_info")), ("MS share of within-group variance", _m("share_ms")),
    ("information share", _m("share_info")), ("format share", _m("share_format")),
    ("groups without signal", _m("no_signal_groups")), ("kept (expert iteration)", _m("kept_rate")),
    ("KL", "kl"), ("gradient norm", "grad_norm"), ("loss", "loss"),
)


def report_markdown(log: TrainingLog) -> str:
    """The markdown summary: the run, the findings, and each diagnostic's first, last and mean value."""
    config = log.config
    reward = config.get("reward", {})
    head = [f"# Training report: `{log.run_dir}`", "",
            f"- algorithm: `{config.get('algorithm', '?')}`, base `{config.get('base_model', '?')}`"
            + (f", start adapter `{config['init_adapter']}`" if config.get("init_adapter") else ""),
            f"- reward: ms_coef {reward.get('ms_coef')}, {reward.get('info_term')} x {reward.get('info_coef')}, "
            f"format penalty {reward.get('format_penalty')}, extractor `{reward.get('extractor')}`",
            f"- {len(log.points)} {log.unit}(s) with reward metrics, {len(log.prior_passes)} prior pass(es)", "",
            "## What the diagnostics say", "", *(f"- {line}" for line in findings(log)), "",
            f"## Diagnostics per {log.unit}", "", "| diagnostic | first | last | mean |", "|---|---|---|---|"]
    rows = []
    for label, key in TABLE_KEYS:
        values = log.series(key)[1]
        if values.size:
            rows.append(f"| {label} | {_fmt(float(values[0]))} | {_fmt(float(values[-1]))} | "
                        f"{_fmt(float(values.mean()))} |")
    sections = _heldout_table(log)
    power = batch_power_summary(log)
    if power is not None:
        sections += power.table()
    passes = ["", "## Prior passes", "", "| at | priors | unreadable | mean | SD |", "|---|---|---|---|---|",
              *(f"| {p.get('step')} | {p.get('priors')} | {p.get('prior_failures')}{_kinds(p)} | "
                f"{_fmt(p.get('prior_mean'))} | {_fmt(p.get('prior_sd'))} |" for p in log.prior_passes)
              ] if log.prior_passes else []
    return "\n".join(head + rows + sections + passes) + "\n"


def _kinds(prior_pass: dict[str, Any]) -> str:
    kinds = prior_pass.get("prior_failure_kinds") or {}
    return f" ({', '.join(f'{k} {n}' for k, n in kinds.items())})" if kinds else ""


def curves_figure(log: TrainingLog) -> Any:
    """Six panels over steps/rounds: batch MS with CI; inertia and readable rates (posteriors, and the priors
    of each prior pass); reward components; variance shares; groups without signal (and kept share); KL and
    gradient norm."""
    from martingale_harness.reporting.figures import _figure_classes

    figure_class, canvas = _figure_classes()
    fig = figure_class(figsize=(13, 7.5), layout="constrained")
    canvas(fig)
    axes = fig.subplots(2, 3, sharex=True).ravel()

    def line(ax: Any, key: str, label: str, **kwargs: Any) -> None:
        x, y = log.series(key)
        if y.size:
            ax.plot(x, y, marker="o", markersize=3, label=label, **kwargs)

    ax = axes[0]
    x, ms = log.series(_m("batch_ms"))
    _, low = log.series(_m("batch_ms_ci_low"))
    _, high = log.series(_m("batch_ms_ci_high"))
    if ms.size:
        ax.plot(x, ms, marker="o", markersize=3, label="batch MS")
        if low.size == ms.size == high.size and ms.size == 1:  # one round: a band of one point is invisible
            # clipped: a bootstrap interval need not hold its point, and matplotlib refuses negative error bars
            ax.errorbar(x, ms, yerr=np.clip([ms - low, high - ms], 0, None), fmt="none", capsize=4,
                        label="95% CI (clustered by episode)")
        elif low.size == ms.size == high.size:
            ax.fill_between(x, low, high, alpha=0.25, label="95% CI (clustered by episode)")
    else:
        ax.text(0.5, 0.5, "undefined in every batch\n(fewer than 3 readable pairs, or equal priors)",
                ha="center", va="center", transform=ax.transAxes)
    held = heldout_rows(log)
    hx = np.array([row.x for row in held], dtype=float)
    hms = np.array([_nan(row.metrics.get("ms_slope")) for row in held], dtype=float)
    if np.isfinite(hms).any():
        h_low = np.array([_nan(row.metrics.get("ms_slope_ci_low")) for row in held], dtype=float)
        h_high = np.array([_nan(row.metrics.get("ms_slope_ci_high")) for row in held], dtype=float)
        bars = np.clip([np.nan_to_num(hms - h_low), np.nan_to_num(h_high - hms)], 0, None)
        ax.errorbar(hx, hms, yerr=bars, marker="D",
                    markersize=5, capsize=3, linestyle=":", color="tab:purple", label=f"held-out MS (after {log.unit})")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_title("batch Martingale Score")
    hin = np.array([_nan(row.metrics.get("inertia")) for row in held], dtype=float)
    if np.isfinite(hin).any():
        axes[1].plot(hx, hin, marker="D", markersize=5, linestyle=":", color="tab:purple",
                     label=f"held-out inertia (after {log.unit})")
    line(axes[1], _m("batch_inertia"), "inertia")
    line(axes[1], _m("readable_rate"), "readable rate")
    passes = [(float(q["step"]) + 1, 1 - q["prior_failures"] / q["priors"]) for q in log.prior_passes
              if q.get("priors") and isinstance(q.get("step"), int | float)]
    if passes:  # a pass at step s gives the priors of the steps (rounds) after s
        axes[1].plot(*zip(*passes, strict=True), marker="^", markersize=8, markerfacecolor="none", linestyle="--",
                     label="priors readable (pass before)")  # hollow: the posteriors' rate shows through
    axes[1].set_ylim(-0.05, 1.05)
    axes[1].set_title("inertia and readable answers")
    for key, label in (("reward", "total"), ("reward_ms", "MS term"), ("reward_info", "information term")):
        line(axes[2], _m(key), label)
    axes[2].set_title("reward components (batch mean, before coefficients)")
    for key, label in (("share_ms", "MS"), ("share_info", "information"), ("share_format", "format")):
        line(axes[3], _m(key), label)
    axes[3].axhline(0, color="black", linewidth=0.8)
    axes[3].set_title("share of within-group reward variance")
    line(axes[4], _m("no_signal_groups"), "groups with all-equal rewards")
    line(axes[4], _m("kept_rate"), "groups kept (expert iteration)")
    axes[4].set_ylim(-0.05, 1.05)
    axes[4].set_title("groups without signal")
    line(axes[5], "kl", "KL to start (per token)")
    right = axes[5].twinx()
    x, g = log.series("grad_norm")
    if g.size:
        right.plot(x, g, color="tab:red", marker="s", markersize=3, label="gradient norm")
        right.set_ylabel("gradient norm", color="tab:red")
    axes[5].set_title("KL and gradient norm")
    from matplotlib.ticker import MaxNLocator

    handles, labels = right.get_legend_handles_labels()
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        extra = (handles, labels) if ax is axes[5] else ([], [])
        own = ax.get_legend_handles_labels()
        if own[0] or extra[0]:
            ax.legend(own[0] + extra[0], own[1] + extra[1], fontsize=8, loc="best")
    for ax in axes[3:]:
        ax.set_xlabel(log.unit)
    fig.suptitle(f"{log.run_dir}: {log.config.get('algorithm', '')}")
    return fig


def write_train_report(run_dir: str | Path, output_dir: str | Path | None = None,
                       plots: bool = True) -> tuple[str, list[Path]]:
    """Write the report of ``run_dir`` (default into ``run_dir/report``); returns the markdown and the files."""
    log = read_training_log(run_dir)
    out = Path(output_dir) if output_dir is not None else log.run_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    text = report_markdown(log)
    files = [out / REPORT_MD]
    files[0].write_text(text, encoding="utf-8")
    if plots:
        fig = curves_figure(log)
        fig.savefig(out / CURVES_PNG, dpi=120)
        files.append(out / CURVES_PNG)
    return text, files

