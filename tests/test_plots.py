"""martingale_harness.reporting.figures on runs made by hand (known slope, labels, inertia) and on one real log."""

from __future__ import annotations

import dataclasses
import io
import math
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.image import imread
from scipy import stats as sps

from martingale_harness.errors import MartingaleError
from martingale_harness.reporting import figures as plots
from martingale_harness.reporting.runs import Run, SampleBeliefs, read_run
from martingale_harness.stats import martingale as stats
from martingale_harness.stats.martingale import inertia, martingale_score

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _samples(seed: int, n: int, kappa: float, steps: int = 1, labelled: bool = True,
             stuck: float = 0.0) -> list[SampleBeliefs]:
    """Trajectories with E[Δ | b] = kappa·(b − 0.5); a share ``stuck`` of the updates is exactly 0."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        path = [float(rng.uniform(0.05, 0.95))]
        for _ in range(steps):
            b = path[-1]
            moved = 0.0 if rng.random() < stuck else kappa * (b - 0.5) + rng.normal(0, 0.05)
            path.append(float(np.clip(b + moved, 0.0, 1.0)))
        label = float(rng.random() < path[-1]) if labelled else None
        out.append(SampleBeliefs(sample_id=str(i), question_id=f"q{i}", prior=path[0], posterior=path[-1],
                                 trajectory=tuple(path), label=label, status="ok"))
    return out


def _run(samples: dict[str, list[SampleBeliefs]], task: str = "martingale/forecast", model: str = "sim/entrenched",
         paradigm: str = "direct", metrics: dict[str, dict[str, float]] | None = None, name: str = "a") -> Run:
    return Run(path=Path(f"/logs/{name}.eval"), task=task, model=model, version="1", task_args={},
               metadata={"paradigm": paradigm, "system_prompt": "none"}, metrics=metrics or {}, samples=samples)


def _pairs(samples: list[SampleBeliefs]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The consecutive pairs, computed here independently of plots.update_pairs."""
    before, after, question = [], [], []
    for s in samples:
        for a, b in zip(s.trajectory, s.trajectory[1:], strict=False):
            if a is not None and b is not None and not (math.isnan(a) or math.isnan(b)):
                before.append(a)
                after.append(b)
                question.append(s.question_id)
    return np.array(before), np.array(after), question


def _by_gid(ax, gid: str) -> list:
    return [a for a in ax.get_children() if a.get_gid() == gid]


def _is_png(path: Path) -> None:
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    assert path.stat().st_size > 10_000
    image = imread(path)
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 200
    assert image.std() > 0  # not a blank canvas


@pytest.fixture(scope="module")
def runs() -> list[Run]:
    """Two runs of the same task and model told apart only by paradigm; the second has two extractors."""
    return [
        _run({"self_report": _samples(0, 150, 0.3, stuck=0.2)}, paradigm="direct", name="a"),
        _run({"self_report": _samples(1, 60, -0.2, steps=4), "step_judge": _samples(2, 40, 0.0)},
             paradigm="evidence", name="b"),
    ]


def test_write_plots_writes_three_pngs(runs: list[Run], tmp_path: Path) -> None:
    out = tmp_path / "nested" / "plots"
    written = plots.write_plots(runs, out)
    assert [p.name for p in written] == ["update_vs_prior.png", "calibration.png", "delta_distribution.png"]
    for path in written:
        assert path.parent == out
        _is_png(path)


def test_works_in_threads() -> None:
    # no pyplot state: two threads drawing at once do not interfere, and render the same bytes
    small = [_run({"self_report": _samples(10, 20, 0.2)})]

    def render(_: int) -> bytes:
        buffer = io.BytesIO()
        plots.update_vs_prior_figure(small).savefig(buffer, format="png")
        return buffer.getvalue()

    with ThreadPoolExecutor(max_workers=2) as pool:
        first, second = pool.map(render, range(2))
    assert first[:8] == PNG_SIGNATURE and first == second


def test_update_vs_prior_fit_is_martingale_score(runs: list[Run]) -> None:
    fig = plots.update_vs_prior_figure(runs)
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    expected = [s for run in runs for s in run.samples.values()]
    for ax, samples in zip(fig.axes, expected, strict=True):
        before, after, question = _pairs(samples)
        ms = martingale_score(before, after, cluster=question)
        (line,) = _by_gid(ax, plots.GID_FIT)
        x, y = (np.asarray(v, dtype=float) for v in line.get_data())
        assert (y[-1] - y[0]) / (x[-1] - x[0]) == pytest.approx(ms.slope, abs=1e-9)
        assert y[0] - ms.slope * x[0] == pytest.approx(ms.intercept, abs=1e-9)
        assert (x[0], x[-1]) == pytest.approx((before.min(), before.max()))
        (points,) = _by_gid(ax, plots.GID_PAIRS)
        np.testing.assert_allclose(points.get_offsets(), np.column_stack([before, after - before]))
        assert len(_by_gid(ax, plots.GID_ZERO)) == 1 and len(_by_gid(ax, plots.GID_BAND)) == 1
        assert f"MS = {ms.slope:.3f} [{ms.ci_low:.3f}, {ms.ci_high:.3f}]" in ax.get_title()
    assert "paradigm=direct" in fig.axes[0].get_title() and "paradigm=evidence" in fig.axes[1].get_title()
    assert "step_judge" in fig.axes[2].get_title()


def test_title_uses_logged_metrics() -> None:
    samples = _samples(3, 50, 0.2)
    logged = {"self_report": {"ms_slope": 0.123456, "ms_slope_ci_low": 0.01, "ms_slope_ci_high": 0.2}}
    fig = plots.update_vs_prior_figure([_run({"self_report": samples}, metrics=logged)])
    assert "MS = 0.123 [0.010, 0.200]" in fig.axes[0].get_title()


def test_hc3_band_matches_statsmodels() -> None:
    from statsmodels.regression.linear_model import OLS  # the module alone: statsmodels.api is slow to import

    pairs = plots.update_pairs(_samples(4, 80, 0.25))
    fit = martingale_score(pairs.before, pairs.after, cluster=pairs.question)
    assert fit.ci_method == "hc3"  # one pair per question
    grid = np.linspace(0.1, 0.9, 9)
    band = plots.robust_band(pairs, fit, grid)
    design = np.column_stack([np.ones(len(pairs)), pairs.before])
    hc3 = OLS(pairs.delta, design).fit(cov_type="HC3")
    g = np.column_stack([np.ones(grid.size), grid])
    se = np.sqrt(np.einsum("ij,jk,ik->i", g, hc3.cov_params(), g))
    t = sps.t.ppf(0.975, len(pairs) - 2)
    np.testing.assert_allclose(band.fit, g @ hc3.params, atol=1e-12)
    np.testing.assert_allclose(band.high - band.fit, t * se, rtol=1e-9)
    np.testing.assert_allclose(band.fit - band.low, t * se, rtol=1e-9)
    assert hc3.bse[1] == pytest.approx(fit.se_robust, rel=1e-9)  # the title's interval, the same covariance


def test_cluster_band_uses_the_draws_of_the_ms_interval() -> None:
    rng = np.random.default_rng(11)
    samples = [s for q in range(30) for s in _samples(q, 3, 0.2)]
    samples = [SampleBeliefs(sample_id=f"{i}", question_id=f"q{i // 3}", prior=s.prior, posterior=s.posterior,
                             trajectory=s.trajectory, label=s.label, status="ok") for i, s in enumerate(samples)]
    pairs = plots.update_pairs(samples)
    fit = martingale_score(pairs.before, pairs.after, cluster=pairs.question)
    assert fit.ci_method == "cluster_bootstrap"
    intercepts, slopes = stats.cluster_bootstrap_lines(pairs.before, pairs.after, pairs.question)
    assert tuple(np.percentile(slopes[np.isfinite(slopes)], [2.5, 97.5])) == pytest.approx((fit.ci_low, fit.ci_high))
    x = np.sort(rng.uniform(0.1, 0.9, 5))
    band = plots.robust_band(pairs, fit, x)
    lines = intercepts[:, None] + slopes[:, None] * x[None, :]
    np.testing.assert_allclose(band.low, np.percentile(lines, 2.5, axis=0))
    np.testing.assert_allclose(band.high, np.percentile(lines, 97.5, axis=0))
    assert np.all(band.low < band.fit) and np.all(band.fit < band.high)


def test_calibration_bins_match_numpy(runs: list[Run]) -> None:
    fig = plots.calibration_figure(runs)
    assert fig is not None and len(fig.axes) == 3
    expected = [s for run in runs for s in run.samples.values()]
    for ax, samples in zip(fig.axes, expected, strict=True):
        for name in ("prior", "posterior"):
            forecast = np.array([getattr(s, name) for s in samples])
            label = np.array([s.label for s in samples])
            edges = np.arange(11) / 10
            count, _ = np.histogram(forecast, bins=edges)
            hits, _ = np.histogram(forecast, bins=edges, weights=label)
            total, _ = np.histogram(forecast, bins=edges, weights=forecast)
            filled = count > 0
            (points,) = _by_gid(ax, f"calibration_{name}")
            offsets = np.asarray(points.get_offsets())
            np.testing.assert_allclose(offsets[:, 1], hits[filled] / count[filled], atol=1e-12)
            np.testing.assert_allclose(offsets[:, 0], total[filled] / count[filled], atol=1e-12)


def test_calibration_counts_stay_inside_their_panel(runs: list[Run]) -> None:
    # a bin whose observed frequency is 0 or 1 puts its count at the panel's edge, where it once covered the title
    # every label Yes (No): every bin at frequency 1 (0), all counts at the top (bottom) edge
    edges = [[_run({"self_report": [dataclasses.replace(s, label=y) for s in _samples(7, 40, 0.1)]})]
             for y in (1.0, 0.0)]
    for fig in (plots.calibration_figure(runs), *(plots.calibration_figure(e) for e in edges)):
        assert fig is not None
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
        for ax in fig.axes:
            box = ax.get_window_extent(renderer)
            counts = [t for t in ax.texts if t.get_gid() == "calibration_count"]
            assert counts
            for text in counts:
                extent = text.get_window_extent(renderer)
                assert box.y0 <= extent.y0 and extent.y1 <= box.y1, text.get_text()


def test_reliability_bins_edges() -> None:
    # a stated 0.3 belongs to [0.3, 0.4) and 1.0 to the last bin, 0.0 to the first
    bins = plots.reliability_bins([0.0, 0.3, 0.3, 0.39, 1.0, 0.95], [0, 1, 0, 1, 1, 0])
    np.testing.assert_array_equal(bins.count, [1, 0, 0, 3, 0, 0, 0, 0, 0, 2])
    assert bins.frequency[3] == pytest.approx(2 / 3) and bins.frequency[9] == 0.5
    assert math.isnan(bins.frequency[1])


def test_no_labels_no_calibration_file(tmp_path: Path) -> None:
    runs = [_run({"self_report": _samples(5, 30, 0.1, labelled=False)})]
    assert plots.calibration_figure(runs) is None
    written = plots.write_plots(runs, tmp_path)
    assert [p.name for p in written] == ["update_vs_prior.png", "delta_distribution.png"]
    assert not (tmp_path / "calibration.png").exists()


def test_calibration_skips_unlabelled_extractor() -> None:
    run = _run({"self_report": _samples(6, 30, 0.1), "logprob": _samples(7, 30, 0.1, labelled=False)})
    fig = plots.calibration_figure([run])
    assert fig is not None and len(fig.axes) == 1 and "self_report" in fig.axes[0].get_title()


def test_inertia_share_is_exact(runs: list[Run]) -> None:
    fig = plots.delta_distribution_figure(runs)
    assert len(fig.axes) == 3
    expected = [s for run in runs for s in run.samples.values()]
    for ax, samples in zip(fig.axes, expected, strict=True):
        before, after, _ = _pairs(samples)
        share = inertia(before, after)
        (bar,) = _by_gid(ax, plots.GID_INERTIA_BAR)
        assert bar.get_height() == share  # exact: the spike's height is the share
        assert any(f"inertia = {share:.3f}" in t.get_text() for t in ax.get_legend().get_texts())
        assert f"inertia = {share:.3f}" in ax.get_title()
        # the spike and the histogram of the nonzero updates are shares of all pairs: they sum to 1
        heights = [p.get_height() for p in ax.patches]
        assert sum(heights) == pytest.approx(1.0)
    assert 0.1 < inertia(*_pairs(expected[0])[:2]) < 0.3  # the stuck updates are really there


def test_degenerate_panels_do_not_crash(tmp_path: Path) -> None:
    few = _samples(8, 2, 0.2)
    empty = [SampleBeliefs(sample_id=str(i), question_id=str(i), prior=math.nan, posterior=None,
                           trajectory=(math.nan, None), label=None, status="failed") for i in range(5)]
    flat = [SampleBeliefs(sample_id=str(i), question_id=str(i), prior=0.4, posterior=0.4 + 0.01 * i,
                          trajectory=(0.4, 0.4 + 0.01 * i), label=1.0, status="ok") for i in range(5)]
    runs = [_run({"self_report": few, "step_judge": empty, "logprob": flat})]
    fig = plots.update_vs_prior_figure(runs)
    assert len(fig.axes) == 3
    notes = [[t.get_text() for t in _by_gid(ax, plots.GID_NOTE)] for ax in fig.axes]
    assert notes[0] == ["too few pairs (2): no fit"]
    assert notes[1] == ["no valid pairs"]
    assert "priors are equal" in notes[2][0]
    assert not any(_by_gid(ax, plots.GID_FIT) for ax in fig.axes)
    assert "step_judge: MS undefined (need at least 3 pairs" in fig.axes[1].get_title()
    assert len(plots.write_plots(runs, tmp_path)) == 3


def test_single_panel_grid(tmp_path: Path) -> None:
    runs = [_run({"self_report": _samples(9, 20, 0.2)})]
    for fig in (plots.update_vs_prior_figure(runs), plots.calibration_figure(runs),
                plots.delta_distribution_figure(runs)):
        assert fig is not None and len(fig.axes) == 1


def test_run_labels_tell_runs_apart() -> None:
    a = _run({}, name="a")
    b = _run({}, name="b", paradigm="cot")
    c = _run({}, name="c", model="sim/bayesian")
    d = _run({}, name="d")  # the same settings as a: only the file name differs
    labels = plots.run_labels([a, b, c, d])
    assert len(set(labels)) == 4
    assert labels[2] == "martingale/forecast (sim/bayesian)"
    assert "paradigm=cot" in labels[1] and "a.eval" in labels[0] and "d.eval" in labels[3]
    assert plots.run_labels([a, a]) == [f"{plots.run_labels([a])[0]} #1", f"{plots.run_labels([a])[0]} #2"]


def test_no_runs_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no runs"):
        plots.write_plots([], tmp_path)


def test_missing_matplotlib_says_how_to_install(monkeypatch: pytest.MonkeyPatch, runs: list[Run]) -> None:
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)  # makes `import name` raise ImportError
    with pytest.raises(plots.PlotDependencyError, match=r"pip install 'martingale-harness\[plots\]'"):
        plots.update_vs_prior_figure(runs)


def test_real_log(tmp_path: Path) -> None:
    from inspect_ai import eval as inspect_eval

    (log,) = inspect_eval("martingale/forecast", model="sim/entrenched", model_args={"kappa": 0.2}, limit=20,
                          display="none", log_realtime=False, log_dir=str(tmp_path / "logs"))
    assert log.status == "success", log.error
    run = read_run(log.location)
    written = plots.write_plots([run], tmp_path / "plots")
    assert [p.name for p in written] == ["update_vs_prior.png", "calibration.png", "delta_distribution.png"]
    for path in written:
        _is_png(path)
    (line,) = _by_gid(plots.update_vs_prior_figure([run]).axes[0], plots.GID_FIT)
    x, y = (np.asarray(v, dtype=float) for v in line.get_data())
    assert (y[-1] - y[0]) / (x[-1] - x[0]) == pytest.approx(run.metrics["self_report"]["ms_slope"], abs=1e-9)


def test_calibration_of_a_simulated_run_says_its_labels_test_the_code_only() -> None:
    sim = plots.calibration_figure([_run({"self_report": _samples(1, 60, 0.2)})])
    (note,) = [t for t in sim.texts if t.get_gid() == "footnote"]
    assert "sim/entrenched: simulated reasoners" in note.get_text().replace("\n", " ")
    real = plots.calibration_figure([_run({"self_report": _samples(1, 60, 0.2)}, model="openai/gpt-4o")])
    assert not [t for t in real.texts if t.get_gid() == "footnote"]
    bayes = plots.calibration_figure([_run({"self_report": _samples(1, 60, 0.2)}, task="martingale/bayes")])
    assert not [t for t in bayes.texts if t.get_gid() == "footnote"]


def test_panels_of_a_figure_share_their_axes(runs: list[Run]) -> None:
    for fig in (plots.update_vs_prior_figure(runs), plots.calibration_figure(runs),
                plots.delta_distribution_figure(runs)):
        assert fig is not None and len(fig.axes) == 3
        fig.canvas.draw()
        assert len({ax.get_xlim() for ax in fig.axes}) == 1 and len({ax.get_ylim() for ax in fig.axes}) == 1
    # the shared y range holds every panel's updates
    fig = plots.update_vs_prior_figure(runs)
    low, high = fig.axes[0].get_ylim()
    for run in runs:
        for samples in run.samples.values():
            before, after, _ = _pairs(samples)
            assert low <= (after - before).min() and (after - before).max() <= high


def test_no_label_sits_on_the_data(runs: list[Run]) -> None:
    # legends are below the axes, no text artist inside a delta panel but the degenerate-panel note
    fig = plots.delta_distribution_figure(runs)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        assert ax.get_legend().get_window_extent(renderer).y1 < ax.get_window_extent(renderer).y0
        assert not [t for t in ax.texts if t.get_gid() != plots.GID_NOTE]


@pytest.mark.parametrize(("fmt", "magic"), [("pdf", b"%PDF"), ("svg", b"<?xml"), ("png", PNG_SIGNATURE)])
def test_figures_in_vector_formats_are_reproducible(runs: list[Run], tmp_path: Path, fmt: str, magic: bytes) -> None:
    first = plots.write_plots(runs, tmp_path / "a", format=fmt)
    second = plots.write_plots(runs, tmp_path / "b", format=fmt)
    assert [p.name for p in first] == [f"{n}.{fmt}" for n in ("update_vs_prior", "calibration", "delta_distribution")]
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes().startswith(magic) and a.read_bytes() == b.read_bytes()
    with pytest.raises(MartingaleError, match="figure format .jpg."):
        plots.write_plots(runs, tmp_path, format="jpg")
