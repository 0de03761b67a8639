"""Per-sample scores and dataset-level metrics, one scorer per extractor.

Each extractor gets an inspect scorer of the same name (``self_report``, ...). Its per-sample score is a
:class:`~martingale_harness.scoring.record.BeliefScore` (the record module says how it is laid out in the
log), written and read back only through that record.
The metric :func:`martingale_metrics` sees all samples at once and reports the keys of docs/architecture.md, section 3.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Callable, Sequence

import numpy as np
from inspect_ai.scorer import Metric, SampleScore, Score, Scorer, Target, metric, scorer
from inspect_ai.solver import TaskState

from martingale_harness._inspect_compat import called_by_live_display
from martingale_harness.extraction.base import safe_extract
from martingale_harness.extraction.beliefs import FAILURE_KINDS
from martingale_harness.extraction.transcript import Transcript
from martingale_harness.extraction.transcript_state import transcript_from_state
from martingale_harness.plugin.host import get_extractor, plugin_host
from martingale_harness.scoring.record import BeliefScore
from martingale_harness.stats import martingale as stats

logger = logging.getLogger(__name__)

_MS_KEYS: tuple[str, ...] = (
    "ms_slope",
    "ms_slope_se",
    "ms_slope_p",
    "ms_slope_ci_low",
    "ms_slope_ci_high",
    "ms_slope_se_robust",
    "ms_slope_p_robust",
    "ms_intercept_at_half",
    "ms_r2",
    "ms_signed_r2",
    "inertia",
    "mean_delta",
    "n_pairs",
)


DRAW_KEYS: tuple[str, ...] = ("n_draws", "n_questions", "delta_var_between", "delta_var_within")
"""What the metrics rest on, and where the updates vary. ``n_draws``: sample draws scored (samples ×
epochs, failed readings included: the denominator of ``extraction_failure_rate``); ``n_questions``: the
questions with at least one read (prior, posterior) pair, the units the bootstrap resamples. The variance
of the update Δ = posterior − prior split by sample (one-way ANOVA, :func:`stats.variance_split`):
``delta_var_between`` (how much samples' expected updates differ) and ``delta_var_within`` (draw to draw,
for one sample); NaN without two draws of some sample (one epoch)."""


def endpoint_key(key: str) -> str:
    """The first-vs-last twin of an ``ms_slope`` family key: ``ms_slope_se`` -> ``ms_slope_endpoints_se``."""
    if key.startswith("ms_slope"):
        return key.replace("ms_slope", "ms_slope_endpoints", 1)
    return f"{key}_endpoints"


METRIC_KEYS: tuple[str, ...] = (
    *_MS_KEYS,
    *(endpoint_key(k) for k in _MS_KEYS),
    "brier_prior",
    "brier_posterior",
    "extraction_failure_rate",
    *DRAW_KEYS,
)
"""Reported for every extractor. The ``ms_slope`` family regresses each update on the belief before
it over consecutive pairs (b_t, b_t+1) of every trajectory, clustered by question; the
``*_endpoints`` family uses first-vs-last (b_0, b_T) once per sample draw. With one update per sample
(``direct``, ``cot``, ``debate``) the two coincide. ``ms_slope_se``/``_p`` are the paper's classic OLS
t-test; the CI and the ``_robust`` keys are heteroscedasticity-robust (HC3, or a question-cluster
bootstrap when a question gives several pairs). With ``--epochs K`` every draw (sample-epoch) counts:
see :func:`martingale_metrics` and :data:`DRAW_KEYS`."""


FAILURE_KEYS: tuple[str, ...] = tuple(f"failures_{kind}" for kind in FAILURE_KINDS)
"""Failed belief readings (turns, not samples) by kind (:data:`~martingale_harness.extraction.beliefs.FAILURE_KINDS`);
a plugin's own kinds, and readings logged before kinds were recorded, count as ``other``."""


def failure_counts(records: Sequence[BeliefScore]) -> dict[str, float]:
    """The :data:`FAILURE_KEYS` over the belief steps of the records."""
    counts = dict.fromkeys(FAILURE_KEYS, 0.0)
    for record in records:
        for step in record.steps:
            kind = step.reading.kind
            if step.reading.status == "failed":
                counts[f"failures_{kind if kind in FAILURE_KINDS else 'other'}"] += 1
    return counts


IV_KEYS: tuple[str, ...] = ("ms_slope_iv", "ms_slope_iv_ci_low", "ms_slope_iv_ci_high", "n_iv")
"""Added when the prior was elicited more than once (``prior_samples`` >= 2): the instrumental-
variable slope of the first-vs-last update on the prior, instrumented by the repeated prior (the
mean of the repeats), with a question-cluster bootstrap CI."""


BAYES_KEYS: tuple[str, ...] = (
    "bayes_mae", "bayes_mae_ci_low", "bayes_mae_ci_high",
    "update_ratio", "update_ratio_ci_low", "update_ratio_ci_high",
    "base_rate_neglect", "base_rate_neglect_ci_low", "base_rate_neglect_ci_high",
)
"""Added when samples carry their exact posteriors (``metadata["exact_posteriors"]``, b*_0..b*_T:
``martingale/bayes``), over those samples only; see :func:`stats.exact_bayes_metrics`. The belief of
turn t is compared with b*_t, the posterior (last) turn with b*_T, so ``direct``, ``cot`` and
``debate`` compare their one update with the whole evidence's."""


def _missing(value: float | None) -> bool:
    return value is None or math.isnan(value)


def _ms_family(p: np.ndarray, q: np.ndarray, cluster: np.ndarray) -> dict[str, float]:
    ms = stats.martingale_score(p, q, cluster=cluster)
    return {
        "ms_slope": ms.slope,
        "ms_slope_se": ms.se,
        "ms_slope_p": ms.p,
        "ms_slope_ci_low": ms.ci_low,
        "ms_slope_ci_high": ms.ci_high,
        "ms_slope_se_robust": ms.se_robust,
        "ms_slope_p_robust": ms.p_robust,
        "ms_intercept_at_half": ms.intercept_at_half,
        "ms_r2": ms.r2,
        "ms_signed_r2": ms.signed_r2,
        "inertia": stats.inertia(p, q),
        "mean_delta": float(np.mean(q - p)) if len(p) else math.nan,
        "n_pairs": float(len(p)),
    }


def consecutive_pairs(
    trajectories: Sequence[Sequence[float | None]], cluster: Sequence[object],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(b_t, b_t+1, question) of every draw's trajectory with both beliefs read: the ``ms_slope`` pairs."""
    before, after, pair_cluster = [], [], []
    for i, path in enumerate(trajectories):
        for a, b in itertools.pairwise(path):
            if not _missing(a) and not _missing(b):
                before.append(a)
                after.append(b)
                pair_cluster.append(str(cluster[i]))
    return np.array(before, dtype=np.float64), np.array(after, dtype=np.float64), np.array(pair_cluster)


def summarize(
    prior: Sequence[float | None],
    posterior: Sequence[float | None],
    label: Sequence[float | None],
    cluster: Sequence[object],
    trajectories: Sequence[Sequence[float | None]] | None = None,
    prior_repeat: Sequence[float | None] | None = None,
    sample: Sequence[object] | None = None,
) -> dict[str, float]:
    """The metric values over all sample draws (missing beliefs are ``None`` or NaN).

    One entry per draw (a sample, or a sample-epoch with ``--epochs``); ``cluster`` is each draw's
    question, ``sample`` its sample (default: the cluster), the group of :data:`DRAW_KEYS`'s variance split.
    ``trajectories`` (b_0..b_T per draw) give the consecutive pairs; without them each draw's
    only pair is (prior, posterior). A draw missing any belief counts as an extraction failure.
    ``prior_repeat`` (an independent re-elicitation of each prior) adds the :data:`IV_KEYS`.
    """
    n_samples = len(prior)
    if trajectories is None:
        trajectories = [[prior[i], posterior[i]] for i in range(n_samples)]
    keep = [i for i in range(n_samples) if not _missing(prior[i]) and not _missing(posterior[i])]
    p = np.array([prior[i] for i in keep], dtype=np.float64)
    q = np.array([posterior[i] for i in keep], dtype=np.float64)
    endpoints = _ms_family(p, q, np.array([str(cluster[i]) for i in keep]))

    x, y, pair_cluster = consecutive_pairs(trajectories, cluster)
    # one update per sample (direct, cot, debate): the pairs are the endpoints, so is the fit
    # (this runs on every refresh of inspect's display, and the bootstrap is the costly part)
    same = x.shape == p.shape and np.array_equal(x, p) and np.array_equal(y, q)
    steps = endpoints if same else _ms_family(x, y, np.array(pair_cluster))

    kept = set(keep)
    complete = sum(i in kept and not any(_missing(b) for b in path) for i, path in enumerate(trajectories))
    labelled = [k for k, i in enumerate(keep) if not _missing(label[i])]
    y = np.array([label[keep[k]] for k in labelled], dtype=np.float64)
    iv: dict[str, float] = {}
    if prior_repeat is not None:
        usable = [i for i in keep if not _missing(prior_repeat[i])]
        result = stats.iv_slope(p[[keep.index(i) for i in usable]], q[[keep.index(i) for i in usable]],
                                np.array([prior_repeat[i] for i in usable], dtype=np.float64),
                                cluster=np.array([str(cluster[i]) for i in usable]))
        iv = {"ms_slope_iv": result.slope, "ms_slope_iv_ci_low": result.ci_low,
              "ms_slope_iv_ci_high": result.ci_high, "n_iv": float(result.n)}
    groups = [str((sample if sample is not None else cluster)[i]) for i in keep]
    split = stats.variance_split(q - p, np.array(groups, dtype=object))
    return {
        **steps,
        **{endpoint_key(k): v for k, v in endpoints.items()},
        **iv,
        "brier_prior": stats.brier(p[labelled], y),
        "brier_posterior": stats.brier(q[labelled], y),
        "extraction_failure_rate": 1.0 - complete / n_samples if n_samples else math.nan,
        "n_draws": float(n_samples),
        "n_questions": float(len({str(cluster[i]) for i in keep})),
        "delta_var_between": split.between,
        "delta_var_within": split.within,
    }


def exact_at_turns(stages: Sequence[str], exact_posteriors: Sequence[float]) -> list[float]:
    """The exact posterior each belief turn should state: b*_t at turn t, b*_T at the posterior turn."""
    last = len(exact_posteriors) - 1
    index = [last if stage == "posterior" else t for t, stage in enumerate(stages)]
    if len(stages) > len(exact_posteriors):  # no paradigm asks more often than there are items + 1
        raise ValueError(f"{len(stages)} belief turns but only {len(exact_posteriors)} exact posteriors "
                         f"(b*_0..b*_{last}); the sample's metadata does not match its transcript")
    return [float(exact_posteriors[i]) for i in index]


def bayes_summary(
    trajectories: Sequence[Sequence[float | None]],
    stages: Sequence[Sequence[str]],
    exact_posteriors: Sequence[Sequence[float] | None],
    cluster: Sequence[object],
) -> dict[str, float]:
    """The :data:`BAYES_KEYS` over the samples that have exact posteriors (empty when none has)."""
    keep = [i for i, e in enumerate(exact_posteriors) if e is not None]
    if not keep:
        return {}
    stated = [[None if _missing(b) else b for b in trajectories[i]] for i in keep]
    exact = [exact_at_turns(stages[i], exact_posteriors[i]) for i in keep]  # type: ignore[arg-type]
    result = stats.exact_bayes_metrics(stated, exact, cluster=[str(cluster[i]) for i in keep])
    return {key: getattr(result, key) for key in BAYES_KEYS}


def _live_display_call() -> bool:
    """Whether inspect's live display is asking (not the final results, ``inspect score`` or a report).

    inspect recomputes live metrics at most every 0.9 s (ten times the computation's own duration when
    that is longer), so the value it shows beside "Samples: 64/64" can be for far fewer samples: three
    identical 64-sample runs showed MS -0.19, -0.15 and -0.13 there while each run's MS was -0.018. A
    number that disagrees with the result is worse than none, so the live display gets no Martingale
    metrics; the final results and the log have them.
    """
    return called_by_live_display()


@metric(scores="unreduced")
def martingale_metrics() -> Metric:
    """Martingale Score and companions over all sample draws of one extractor (docs/architecture.md, section 3).

    Epochs: the metric receives every sample-epoch score (``scores="unreduced"``). Each draw's
    belief pairs enter the MS family, inertia, Brier, failure counts, IV and the exact-Bayes metrics
    as pairs of their own, and the bootstrap resamples questions, so all draws of all samples of a
    question move together: more draws narrow the interval by the draw-to-draw part of the noise only.
    inspect's epoch reducers (``--epochs-reducer``) therefore do not apply to these metrics: reducing
    first would average K priors and K posteriors into one pair per sample, which measures the MS of
    mean beliefs (a different quantity: averaging changes the prior's noise, so its attenuation) and
    discards draws.
    Left out of inspect's live display (see :func:`_live_display_call`). An undefined MS is NaN, and its
    reason is logged as a warning (inspect prints it above the results panel).
    """

    def compute(scores: list[SampleScore]) -> dict[str, float]:
        if _live_display_call():
            return {}
        records = [BeliefScore.from_score(s.score) for s in scores]
        clusters = [
            (s.sample_metadata or {}).get("question_id", s.sample_id) for s in scores
        ]
        trajectories = [list(r.trajectory) for r in records]
        metrics = summarize(
            [r.prior for r in records],
            [r.posterior for r in records],
            [r.label for r in records],
            clusters,
            trajectories,
            [r.prior_repeat for r in records] if any(r.has_repeats for r in records) else None,
            [s.sample_id for s in scores],
        )
        metrics.update(failure_counts(records))
        exact = [(s.sample_metadata or {}).get("exact_posteriors") for s in scores]
        if any(e is not None for e in exact):
            metrics.update(bayes_summary(trajectories, [list(r.stages) for r in records], exact, clusters))
        if math.isnan(metrics["ms_slope"]):
            # metric values are numbers only; the reason goes where inspect shows warnings, under the results
            before, after, _ = consecutive_pairs(trajectories, clusters)
            extractor = next((r.extractor for r in records), "?")
            logger.warning("%s: MS undefined: %s", extractor,
                           stats.undefined_reason(before, after - before) or "not identified on these pairs")
        return metrics

    return compute


def _make_scorer(extractor_name: str) -> Scorer:
    extractor = get_extractor(extractor_name)

    async def score(state: TaskState, target: Target) -> Score:
        transcript = transcript_from_state(state)
        # a broken extractor plugin fails its own readings, never the sample (other extractors' scores)
        readings = await safe_extract(extractor, transcript) if transcript.turns else []
        stages = [t.stage for t in transcript.turns]
        label = (state.metadata or {}).get("label")
        repeats = transcript.turns[0].repeats if transcript.turns else ()
        # each repeat is read on its own, exactly as a one-turn transcript would be
        repeat_readings = [(await safe_extract(extractor, Transcript(transcript.question, (r,))))[0]
                           for r in repeats]
        record = BeliefScore.from_readings(extractor_name, stages, readings, label, repeat_readings)
        return record.to_score()

    return score


_SCORER_FACTORIES: dict[str, Callable[[], Scorer]] = {}


def register_scorer(extractor_name: str) -> Callable[[], Scorer]:
    """Register (once) the inspect scorer named after ``extractor_name`` and return its factory.

    One registered scorer per extractor gives one block of metrics per extractor in the log
    (``results.scores[i].name == extractor``) and lets ``inspect score`` find it by name
    (``martingale_harness/<extractor>``).
    """
    if extractor_name not in _SCORER_FACTORIES:

        def factory() -> Scorer:
            return _make_scorer(extractor_name)

        factory.__name__ = extractor_name
        _SCORER_FACTORIES[extractor_name] = scorer(metrics=[martingale_metrics()], name=extractor_name)(factory)
    return _SCORER_FACTORIES[extractor_name]


def register_all_scorers() -> None:
    """Register a scorer for every extractor the installed plugins provide."""
    for name in plugin_host().extractors():
        register_scorer(name)


def belief_scorer(extractor_name: str) -> Scorer:
    """The scorer for one extractor (unknown names fail here, listing the known ones)."""
    get_extractor(extractor_name)
    return register_scorer(extractor_name)()
