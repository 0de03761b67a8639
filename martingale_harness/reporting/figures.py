"""PNG figures of finished runs: belief updates against the prior, calibration, and the update distribution.

Every figure has one panel per (run, extractor), in run order then the run's extractor order.
The update figures use the pairs the ``ms_slope`` family regresses: consecutive beliefs
(b_t, b_t+1) of each sample's trajectory, a pair being left out when either belief is missing
(None, NaN, or outside [0, 1]). A sample built by hand with no trajectory gives its
(prior, posterior) pair, as :func:`martingale_harness.scoring.scorer.summarize` does without trajectories.

matplotlib is optional (``pip install 'martingale-harness[plots]'``) and imported only when a
figure is made. Figures are :class:`matplotlib.figure.Figure` objects with their own Agg canvas,
never pyplot's global state, so plotting needs no display and can run in worker threads.
"""

from __future__ import annotations

import math
import re
import textwrap
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats as sps

from martingale_harness.errors import MartingaleError
from martingale_harness.reporting.runs import (
    Run,
    SampleBeliefs,
    UpdatePairs,
    metric_value,
    simulated_label_note,
    update_pairs,
    valid_belief,
)
from martingale_harness.stats import martingale as stats

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

UPDATE_VS_PRIOR = "update_vs_prior"
CALIBRATION = "calibration"
DELTA_DISTRIBUTION = "delta_distribution"
FORMATS = ("png", "pdf", "svg")
"""Figure file formats: PNG (raster, at :data:`DPI`) or vector PDF/SVG for papers."""

CALIBRATION_BINS = 10
DELTA_BINS = 40
"""Bins of the nonzero updates, over a range symmetric about 0 (so 0 is a bin edge)."""
CONFIDENCE = 0.95
DPI = 120
PANEL_SIZE = (4.8, 4.6)
"""Inches per panel (width, height)."""
PANEL_MARGINS = (0.75, 0.2, 0.8, 1.05)
"""Inches around each panel's axes: left, right, top, bottom."""
SUPTITLE_HEIGHT = 0.4
TITLE_SIZE = 10
LEGEND_SIZE = 8
SMALL_SIZE = 7
"""Font sizes (points) of panel titles, legends, and counts/footnotes: readable at a paper's column width."""
MAX_COLUMNS = 3

# gids of the artists tests (and callers) look up in a figure
GID_FIT = "ms_fit"
GID_BAND = "ms_band"
GID_ZERO = "zero_line"
GID_PAIRS = "pairs"
GID_INERTIA_BAR = "inertia_bar"
GID_NOTE = "note"

PRIOR_COLOR = "tab:blue"
POSTERIOR_COLOR = "tab:orange"

_SHORT_REASON = re.compile(r" \(|, ")
"""Where a reason's first clause ends (the title shows it; the panel's note has the whole reason)."""
_SECRET_ARG = re.compile(r"key|token|secret|password|auth", re.IGNORECASE)


class PlotDependencyError(MartingaleError):
    """matplotlib is not installed."""


def _figure_classes() -> tuple[type[Figure], Any]:
    """``Figure`` and the Agg canvas, imported on first use so the harness runs without matplotlib."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise PlotDependencyError(
            "plots need matplotlib, which is not installed: pip install 'martingale-harness[plots]'"
        ) from None
    return Figure, FigureCanvasAgg


# ----------------------------------------------------------------------------------------------
# data


@dataclass(frozen=True)
class MeanBand:
    """The fitted mean update on a grid of priors with its pointwise confidence band."""

    x: NDArray[np.float64]
    fit: NDArray[np.float64]
    low: NDArray[np.float64]
    high: NDArray[np.float64]


def robust_band(pairs: UpdatePairs, fit: stats.MartingaleResult, grid: ArrayLike,
                confidence: float = CONFIDENCE) -> MeanBand:
    """The band of the mean line from the same robust method as the MS interval in the panel title.

    ``fit.ci_method == "hc3"``: b0 + b1·x ± t(n−2)·sqrt(g' V g), g = (1, x), V the HC3 covariance of
    (b0, b1) (its slope entry is ``fit.se_robust``²). ``cluster_bootstrap``: the pointwise percentiles
    of the resampled lines, from the very draws behind ``fit.ci_low``/``ci_high``.
    """
    x = np.asarray(grid, dtype=np.float64)
    line = fit.intercept + fit.slope * x
    alpha = (1 - confidence) / 2
    if fit.ci_method == "cluster_bootstrap":
        intercepts, slopes = stats.cluster_bootstrap_lines(pairs.before, pairs.after, pairs.question)
        keep = np.isfinite(slopes)
        lines = intercepts[keep, None] + slopes[keep, None] * x[None, :]
        if keep.sum() < 2:
            return MeanBand(x, line, np.full_like(x, np.nan), np.full_like(x, np.nan))
        low, high = np.percentile(lines, [100 * alpha, 100 * (1 - alpha)], axis=0)
        return MeanBand(x, line, low, high)
    design = np.column_stack([np.ones(len(pairs)), pairs.before])
    resid = pairs.delta - design @ np.array([fit.intercept, fit.slope])
    bread = np.linalg.inv(design.T @ design)
    leverage = np.einsum("ij,jk,ik->i", design, bread, design)
    meat = design.T @ (design * (resid / (1.0 - leverage))[:, None] ** 2)
    cov = bread @ meat @ bread
    g = np.column_stack([np.ones_like(x), x])
    half = float(sps.t.ppf(1 - alpha, len(pairs) - 2)) * np.sqrt(np.einsum("ij,jk,ik->i", g, cov, g))
    return MeanBand(x, line, line - half, line + half)


BAND_LABELS = {"hc3": "95 % CI of the mean line (HC3, as the MS CI)",
               "cluster_bootstrap": "95 % CI of the mean line (question bootstrap, as the MS CI)"}


@dataclass(frozen=True)
class ReliabilityBins:
    """A reliability diagram's numbers: per equal-width forecast bin, its samples and outcomes.

    Bin k holds forecasts in [k/n, (k+1)/n), the last bin also 1.0. Empty bins have NaN means.
    """

    edges: NDArray[np.float64]
    count: NDArray[np.int64]
    mean_forecast: NDArray[np.float64]
    frequency: NDArray[np.float64]
    """Observed frequency of the outcome (mean label) in the bin."""


def reliability_bins(forecast: ArrayLike, outcome: ArrayLike, n_bins: int = CALIBRATION_BINS) -> ReliabilityBins:
    f = np.asarray(forecast, dtype=np.float64)
    o = np.asarray(outcome, dtype=np.float64)
    if f.shape != o.shape:
        raise ValueError(f"forecast and outcome differ in length: {f.size} vs {o.size}")
    # k/n rather than linspace, so a stated 0.3 sits exactly on its edge and falls in [0.3, 0.4)
    edges = np.arange(n_bins + 1, dtype=np.float64) / n_bins
    index = np.clip(np.searchsorted(edges, f, side="right") - 1, 0, n_bins - 1)
    count = np.bincount(index, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_forecast = np.bincount(index, weights=f, minlength=n_bins) / count
        frequency = np.bincount(index, weights=o, minlength=n_bins) / count
    return ReliabilityBins(edges, count.astype(np.int64), mean_forecast, frequency)


def labelled_endpoints(samples: Sequence[SampleBeliefs]) -> tuple[NDArray[np.float64], ...]:
    """(prior, posterior, label) of the samples with a label and both beliefs (the Brier metrics' samples)."""
    rows = [(s.prior, s.posterior, s.label) for s in samples
            if valid_belief(s.prior) and valid_belief(s.posterior) and s.label is not None and math.isfinite(s.label)]
    arr = np.array(rows, dtype=np.float64).reshape(-1, 3)
    return arr[:, 0], arr[:, 1], arr[:, 2]


def run_labels(runs: Sequence[Run]) -> list[str]:
    """A label per run: ``task (model's short name)``, plus what tells apart runs that would share it.

    Among runs with the same label so far, the paradigm, system prompt, model arguments and the
    log's file name are added in turn, each only where it differs within the group.
    """

    def setting(name: str) -> Callable[[Run], str]:
        return lambda r: f"{name}={r.metadata.get(name, r.task_args.get(name))}"

    def model_args(r: Run) -> str:
        shown = {k: v for k, v in sorted(r.model_args.items()) if not _SECRET_ARG.search(k)}
        return ", ".join(f"{k}={v}" for k, v in shown.items()) or "no model args"

    extras: list[Callable[[Run], str]] = [
        setting("paradigm"), setting("system_prompt"), model_args, lambda r: r.path.name,
    ]
    parts: list[list[str]] = [[r.display_model] for r in runs]

    def label(i: int) -> str:
        return f"{runs[i].task} ({', '.join(parts[i])})"

    for extra in extras:
        groups: dict[str, list[int]] = {}
        for i in range(len(runs)):
            groups.setdefault(label(i), []).append(i)
        for members in groups.values():
            if len(members) > 1 and len({extra(runs[i]) for i in members}) > 1:
                for i in members:
                    parts[i].append(extra(runs[i]))
    labels = [label(i) for i in range(len(runs))]
    total = Counter(labels)
    seen: Counter[str] = Counter()
    for i, text in enumerate(labels):  # the same log given twice
        if total[text] > 1:
            seen[text] += 1
            labels[i] = f"{text} #{seen[text]}"
    return labels


@dataclass(frozen=True)
class Panel:
    run: Run
    label: str
    extractor: str
    samples: list[SampleBeliefs]


def panels(runs: Sequence[Run]) -> list[Panel]:
    """One panel per (run, extractor), in run order then extractor order."""
    if not runs:
        raise ValueError("no runs to plot")
    out = [Panel(run, label, extractor, samples)
           for run, label in zip(runs, run_labels(runs), strict=True)
           for extractor, samples in run.samples.items()]
    if not out:
        raise ValueError("the runs have no extractor with samples to plot")
    return out


# ----------------------------------------------------------------------------------------------
# figures


def _grid(n: int, suptitle: str, footnote: str | None = None) -> tuple[Figure, list[Axes]]:
    """A figure with exactly ``n`` axes (no empty slots), row by row, in cells of :data:`PANEL_SIZE`.

    The margins are fixed in inches (room for a 4-line title above each panel and the x label and
    legend below it) rather than left to a layout engine, which costs about a third of the drawing time.
    All panels share their x and y axes. A ``footnote`` gets its own strip below the panels (gid ``footnote``).
    """
    figure_cls, canvas_cls = _figure_classes()
    ncols = min(MAX_COLUMNS, n)
    nrows = math.ceil(n / ncols)
    lines = textwrap.wrap(footnote, int(PANEL_SIZE[0] * ncols * 15)) if footnote else []
    strip = 0.15 + 0.13 * len(lines) if lines else 0.0
    width, height = PANEL_SIZE[0] * ncols, PANEL_SIZE[1] * nrows + SUPTITLE_HEIGHT + strip
    fig = figure_cls(figsize=(width, height))
    canvas_cls(fig)  # attach an Agg canvas: savefig never consults a global backend
    left, right, top, bottom = PANEL_MARGINS
    axes_w, axes_h = PANEL_SIZE[0] - left - right, PANEL_SIZE[1] - top - bottom
    fig.subplots_adjust(left=left / width, right=1 - right / width, bottom=(bottom + strip) / height,
                        top=1 - (top + SUPTITLE_HEIGHT) / height,
                        wspace=(left + right) / axes_w, hspace=(top + bottom) / axes_h)
    # one scale for every panel of a figure: different slopes must look different side by side
    first = fig.add_subplot(nrows, ncols, 1)
    axes = [first, *(fig.add_subplot(nrows, ncols, i + 1, sharex=first, sharey=first) for i in range(1, n))]
    for ax in axes[1:]:
        ax.tick_params(labelleft=True, labelbottom=True)  # sharing hides nothing: each panel reads alone
    fig.suptitle(suptitle, y=1 - 0.12 / height, va="top")
    if lines:
        fig.text(0.5, 0.08 / height, "\n".join(lines), ha="center", va="bottom", fontsize=SMALL_SIZE, style="italic",
                 gid="footnote")
    return fig, axes


TITLE_LABEL_LINES = 2
"""Lines of a panel title given to the run's label (cut with an ellipsis beyond): with the detail line,
a title stays within the room :func:`_grid` leaves above each panel."""


def _panel_title(panel: Panel, detail: str) -> str:
    label = textwrap.wrap(panel.label, 55, max_lines=TITLE_LABEL_LINES, placeholder=" …")
    return "\n".join([*label, f"{panel.extractor}: {detail}"])


def _note(ax: Axes, text: str, y: float = 0.5) -> None:
    ax.text(0.5, y, text, transform=ax.transAxes, ha="center", va="center", color="0.35",
            fontsize=10, gid=GID_NOTE, bbox={"facecolor": "white", "edgecolor": "0.7", "alpha": 0.85})


def _legend(ax: Axes, ncol: int = 2, **kwargs: Any) -> None:
    # below the axes: inside, it would hide points wherever they happen to fall
    legend = ax.legend(fontsize=LEGEND_SIZE, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=ncol,
                       frameon=False, **kwargs)
    for handle in legend.legend_handles:  # one marker size for a scatter whose sizes carry counts
        if hasattr(handle, "set_sizes"):
            handle.set_sizes([30])


def _fmt(value: Any) -> str:
    number = metric_value(value)
    return f"{number:.3f}" if math.isfinite(number) else "n/a"


def _ms_text(panel: Panel, fit: stats.MartingaleResult) -> str:
    """``MS = x.xxx [lo, hi]``: the log's values when it has them, else the fit's."""
    logged = panel.run.metrics.get(panel.extractor, {})
    if "ms_slope" in logged:
        slope = metric_value(logged["ms_slope"])
        low, high = metric_value(logged.get("ms_slope_ci_low")), metric_value(logged.get("ms_slope_ci_high"))
    else:
        slope, low, high = fit.slope, fit.ci_low, fit.ci_high
    if not math.isfinite(slope):
        reason = fit.reason or panel.run.ms_reason(panel.extractor) or "not identified"
        short = textwrap.shorten(_SHORT_REASON.split(reason, maxsplit=1)[0], width=30, placeholder=" …")
        return f"MS undefined ({short})"
    ci = f" [{_fmt(low)}, {_fmt(high)}]" if math.isfinite(low) and math.isfinite(high) else ""
    return f"MS = {_fmt(slope)}{ci}"


def update_vs_prior_figure(runs: Sequence[Run]) -> Figure:
    """Δ = b_t+1 − b_t against b_t per (run, extractor), with the OLS line and its robust 95 % band.

    The line's slope is :func:`stats.martingale_score`'s on the panel's pairs (clustered by
    question); with fewer than 3 pairs, or no spread in the priors, the points are drawn without
    a line and a note says why.
    """
    items = panels(runs)
    fig, axes = _grid(len(items), "Belief update against the prior (consecutive pairs)")
    for ax, panel in zip(axes, items, strict=True):
        pairs = update_pairs(panel.samples)
        fit = stats.martingale_score(pairs.before, pairs.after, cluster=pairs.question)
        ax.axhline(0.0, color="0.4", linewidth=0.8, linestyle="--", gid=GID_ZERO)
        ax.scatter(pairs.before, pairs.delta, s=12, alpha=0.45, color=PRIOR_COLOR, edgecolors="none",
                   label=f"pairs (n = {len(pairs)})", gid=GID_PAIRS)
        if len(pairs) < stats.MIN_PAIRS:
            _note(ax, f"too few pairs ({len(pairs)}): no fit" if len(pairs) else "no valid pairs")
        elif not math.isfinite(fit.slope):
            # above the middle: the points of updates that do not vary lie on one line, often Δ = 0
            _note(ax, textwrap.fill(fit.reason or "slope undefined", 40), y=0.8)
        else:
            lo, hi = float(pairs.before.min()), float(pairs.before.max())
            band = robust_band(pairs, fit, np.linspace(lo, hi, 101))  # no extrapolation past the data
            ax.fill_between(band.x, band.low, band.high, color="tab:red", alpha=0.18, linewidth=0,
                            label=BAND_LABELS[fit.ci_method], gid=GID_BAND)
            ax.plot(band.x, band.fit, color="tab:red", linewidth=1.8, label=f"OLS fit, slope {fit.slope:.3f}",
                    gid=GID_FIT)
        ax.set_xlim(-0.02, 1.02)
        ax.set_xlabel("prior $b_t$")
        ax.set_ylabel("update Δ = $b_{t+1} - b_t$")
        ax.set_title(_panel_title(panel, _ms_text(panel, fit)), fontsize=TITLE_SIZE)
        _legend(ax, ncol=1)  # the band's label is too long to share a row within the panel's width
    _readable_update_scale(axes[0])
    return fig


MIN_UPDATE_SPAN = 0.1
"""The update axis spans at least this much: updates that are all (nearly) equal would otherwise get
an axis of width ~1e-17, labelled as an offset, that draws rounding noise as if it were data."""


def _readable_update_scale(ax: Axes) -> None:
    """Widen a (shared) update axis narrower than :data:`MIN_UPDATE_SPAN` about its middle; no offset labels."""
    low, high = ax.get_ylim()
    if high - low < MIN_UPDATE_SPAN:
        middle = round((low + high) / 2, 2)
        ax.set_ylim(middle - MIN_UPDATE_SPAN / 2, middle + MIN_UPDATE_SPAN / 2)
    ax.ticklabel_format(axis="y", useOffset=False, style="plain")


def calibration_figure(runs: Sequence[Run], n_bins: int = CALIBRATION_BINS) -> Figure | None:
    """Reliability diagrams of the prior (b_0) and posterior (b_T) per (run, extractor) with labels.

    Uses the samples with a label and both beliefs (those the Brier metrics score), in ``n_bins``
    equal-width bins: the observed frequency against the bin's mean forecast, marker area growing
    with the bin's count, the count written beside it. A (run, extractor) without labelled samples
    gets no panel; when none has any the result is None.
    """
    items = [p for p in panels(runs) if labelled_endpoints(p.samples)[2].size]
    if not items:
        return None
    fig, axes = _grid(len(items), f"Calibration of prior and posterior ({n_bins} equal-width bins)",
                      footnote=simulated_label_note([p.run for p in items]))
    for ax, panel in zip(axes, items, strict=True):
        prior, posterior, label = labelled_endpoints(panel.samples)
        ax.plot([0, 1], [0, 1], color="0.5", linestyle="--", linewidth=0.8, label="perfect calibration")
        largest = 1
        binned = {}
        for name, forecast in (("prior", prior), ("posterior", posterior)):
            binned[name] = reliability_bins(forecast, label, n_bins)
            largest = max(largest, int(binned[name].count.max()))
        for (name, bins), color, offset in zip(binned.items(), (PRIOR_COLOR, POSTERIOR_COLOR), (-8, 8), strict=True):
            filled = bins.count > 0
            x, y, n = bins.mean_forecast[filled], bins.frequency[filled], bins.count[filled]
            forecast = prior if name == "prior" else posterior
            brier = stats.brier(forecast, label) if np.all((label == 0) | (label == 1)) else math.nan
            ax.plot(x, y, color=color, linewidth=1, alpha=0.7)
            size = 15 + 185 * n / largest
            if name == "prior":
                # a ring, larger than the posterior's dot: where beliefs did not move the two coincide,
                # and a filled prior marker would vanish under the posterior's
                ax.scatter(x, y, s=size * 2.2 + 30, facecolors="none", edgecolors=color, linewidths=1.6, zorder=3,
                           label=f"{name} (Brier {_fmt(brier)})", gid=f"calibration_{name}")
            else:
                ax.scatter(x, y, s=size, color=color, alpha=0.8, edgecolors="white", zorder=4,
                           label=f"{name} (Brier {_fmt(brier)})", gid=f"calibration_{name}")
            for xi, yi, ni in zip(x, y, n, strict=True):
                # a count beside a point at the top (bottom) edge goes below (above) it, inside the panel
                dy = -abs(offset) if yi > 0.9 else abs(offset) if yi < 0.1 else offset
                ax.annotate(str(ni), (xi, yi), textcoords="offset points", xytext=(offset, dy),
                            ha="center", va="center", fontsize=SMALL_SIZE, color=color, in_layout=False,
                            gid="calibration_count")
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(-0.02, 1.02)
        ax.set_aspect("equal")
        ax.set_xlabel("forecast probability (bin mean)")
        ax.set_ylabel("observed frequency")
        ax.set_title(_panel_title(panel, f"{label.size} labelled samples"), fontsize=TITLE_SIZE)
        _legend(ax, title="marker area ∝ samples in the bin, count beside it", title_fontsize=SMALL_SIZE)
    return fig


def delta_distribution_figure(runs: Sequence[Run]) -> Figure:
    """Histogram of the updates Δ per (run, extractor), as shares of all pairs.

    Updates with |Δ| < 1e-9 (no movement, :data:`stats.INERTIA_TOL`) are not in the histogram
    but a separate bar at 0 whose height is the inertia, so the bars and the spike sum to 1.
    """
    items = panels(runs)
    fig, axes = _grid(len(items), "Distribution of belief updates Δ (consecutive pairs)")
    deltas = [update_pairs(panel.samples).delta for panel in items]
    moved_all = [np.abs(d[np.abs(d) >= stats.INERTIA_TOL]) for d in deltas]
    reach = max((float(m.max()) for m in moved_all if m.size), default=0.0)
    limit = max(0.05, math.ceil(reach * 20) / 20)  # symmetric, a multiple of 0.05, one for all panels
    edges = np.linspace(-limit, limit, DELTA_BINS + 1)
    for ax, panel, delta in zip(axes, items, deltas, strict=True):
        n = delta.size
        still = np.abs(delta) < stats.INERTIA_TOL
        share = float(still.mean()) if n else math.nan
        moved = delta[~still]
        ax.hist(moved, bins=edges, weights=np.full(moved.size, 1.0 / n) if n else None, color=PRIOR_COLOR,
                alpha=0.75, label=f"Δ ≠ 0 ({moved.size} pairs)")
        inertia_text = f"inertia = {_fmt(share) if n else 'n/a'}"
        if n:
            # the share is named in the legend and the title: a label beside the spike covered bars
            ax.bar([0.0], [share], width=limit / 25, color="tab:red", zorder=3, gid=GID_INERTIA_BAR,
                   label=f"Δ = 0: {inertia_text} ({int(still.sum())} of {n})")
        else:
            _note(ax, "no valid pairs")
        ax.axvline(0.0, color="0.4", linewidth=0.6, linestyle=":")
        ax.set_xlim(-limit, limit)
        ax.locator_params(axis="x", nbins=6)  # tick labels like -0.075 would run into each other
        ax.set_xlabel("update Δ = $b_{t+1} - b_t$")
        ax.set_ylabel("share of pairs")
        ax.set_title(_panel_title(panel, f"n = {n} pairs, {inertia_text}"), fontsize=TITLE_SIZE)
        _legend(ax)
    return fig


def ms_brier_figure(rows: Sequence[Any]) -> Figure | None:
    """|MS| against the posterior Brier score, one point per leaderboard row with labels (the paper's figure).

    ``rows`` are :class:`~martingale_harness.reporting.leaderboard.LeaderboardRow`; None when no row has a Brier score.
    Points are coloured by task and named by model (and setting, where it varies).
    """
    items = [r for r in rows if math.isfinite(r.brier_posterior) and math.isfinite(r.ms)]
    if not items:
        return None
    fig, (ax,) = _grid(1, "Entrenchment against accuracy (one point per run and extractor)")
    varying = [c for c in ("paradigm", "system_prompt", "extractor") if len({getattr(r, c) for r in items}) > 1]
    tasks = sorted({r.task for r in items})
    colors = {t: f"C{i % 10}" for i, t in enumerate(tasks)}
    for task in tasks:
        mine = [r for r in items if r.task == task]
        ax.scatter([abs(r.ms) for r in mine], [r.brier_posterior for r in mine], s=30, color=colors[task],
                   label=task, gid=f"ms_brier_{task}", zorder=3)
        for r in mine:
            name = ", ".join([r.name or r.model, *(str(getattr(r, c)) for c in varying)])
            ax.annotate(name, (abs(r.ms), r.brier_posterior), textcoords="offset points", xytext=(4, 4),
                        fontsize=SMALL_SIZE, color=colors[task])
    ax.set_xlabel("|MS| (entrenchment or its mirror image)")
    ax.set_ylabel("posterior Brier score (lower is better)")
    ax.set_xlim(left=0)
    ax.set_title("|MS| vs Brier", fontsize=TITLE_SIZE)
    _legend(ax, ncol=1)
    return fig


def write_plots(runs: Sequence[Run], output_dir: Path, format: str = "png") -> list[Path]:
    """Write the figures of ``runs`` into ``output_dir`` (created if needed) as ``format`` files.

    ``update_vs_prior`` and ``delta_distribution`` are always written; ``calibration`` only when some
    run has labelled samples (it is then left out of the result, and an older file of that name in
    ``output_dir`` is left as it is). ``format`` is one of :data:`FORMATS`.
    """
    if format not in FORMATS:
        raise MartingaleError(f"figure format {format!r} is not one of {', '.join(FORMATS)}")
    output_dir = Path(output_dir)
    figures = {
        UPDATE_VS_PRIOR: update_vs_prior_figure(runs),
        CALIBRATION: calibration_figure(runs),
        DELTA_DISTRIBUTION: delta_distribution_figure(runs),
    }
    output_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, fig in figures.items():
        if fig is None:
            continue
        path = output_dir / f"{name}.{format}"
        save_figure(fig, path, format)
        written.append(path)
    return written


def save_figure(fig: Figure, path: Path, format: str) -> None:
    """Save ``fig`` as ``format`` with fixed metadata: the same figure gives byte-identical files."""
    from matplotlib import rc_context

    metadata = {"png": {}, "pdf": {"CreationDate": None}, "svg": {"Date": None}}[format]
    with rc_context({"svg.hashsalt": "martingale-harness"}):  # else SVG element ids are random
        fig.savefig(path, dpi=DPI, format=format, metadata=metadata)
