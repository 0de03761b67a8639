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
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from martingale_harness.errors import MartingaleError
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
    unit = "step"
    for number, line in enumerate(metrics.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            raise MartingaleError(f"{metrics}:{number}: not a JSON line") from None
        if not isinstance(record, dict):
            raise MartingaleError(f"{metrics}:{number}: not a JSON object")
        if record.get("event") == "prior_pass":
            passes.append(record)
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
    return TrainingLog(run_dir=root, points=points, unit=unit, prior_passes=passes, config=config, card=card)


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
    out: list[str] = []
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
    kl = log.series("kl")[1]
    if kl.size:
        out.append(f"KL to the start policy (per token) at the end: {kl[-1]:.4f} (max {kl.max():.4f}).")
    evaluation = (log.card or {}).get("evaluation")
    if evaluation:
        out.append(_evaluation_line(evaluation))
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
    return out


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
    passes = ["", "## Prior passes", "", "| at | priors | unreadable | mean | SD |", "|---|---|---|---|---|",
              *(f"| {p.get('step')} | {p.get('priors')} | {p.get('prior_failures')}{_kinds(p)} | "
                f"{_fmt(p.get('prior_mean'))} | {_fmt(p.get('prior_sd'))} |" for p in log.prior_passes)
              ] if log.prior_passes else []
    return "\n".join(head + rows + passes) + "\n"


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
            ax.errorbar(x, ms, yerr=[ms - low, high - ms], fmt="none", capsize=4, label="95% CI (clustered by episode)")
        elif low.size == ms.size == high.size:
            ax.fill_between(x, low, high, alpha=0.25, label="95% CI (clustered by episode)")
    else:
        ax.text(0.5, 0.5, "undefined in every batch\n(fewer than 3 readable pairs, or equal priors)",
                ha="center", va="center", transform=ax.transAxes)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_title("batch Martingale Score")
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

