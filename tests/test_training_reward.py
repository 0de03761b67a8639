"""The Martingale reward (martingale_harness.training.reward) and the built-in reward terms.

The shares are checked against martingale_harness.stats.martingale and statsmodels; the entrenchment and
agreement tests score real harness transcripts of the simulated reasoners (inspect eval of
martingale/forecast with sim/entrenched and sim/inert), read by the same extractor as evaluation.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pluggy
import pytest
import statsmodels.api as sm
from inspect_ai import eval as inspect_eval
from inspect_ai.log import EvalLog, EvalSample

from martingale_harness.errors import ConfigError
from martingale_harness.extraction.transcript import TURNS_KEY
from martingale_harness.plugin import hookspecs
from martingale_harness.plugin.host import PluginHost, get_extractor, get_reward_term, plugin_host
from martingale_harness.plugin.reward_terms import RewardBatch
from martingale_harness.stats import martingale as stats
from martingale_harness.training.episodes import Episode, EpisodePrompts
from martingale_harness.training.processes import Processes
from martingale_harness.training.reward import MartingaleReward, RewardWeights, combine, ms_shares


def _batch(prior: list[float], posterior: list[float], label: list[float] | None = None,
           metadata: list[dict[str, Any]] | None = None) -> RewardBatch:
    n = len(prior)
    return RewardBatch(prior=np.array(prior, dtype=float), posterior=np.array(posterior, dtype=float),
                       label=np.array(label if label is not None else [math.nan] * n, dtype=float),
                       metadata=tuple(metadata if metadata is not None else [{}] * n))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("n", [3, 16, 257])
def test_shares_sum_to_the_stats_slope_and_to_statsmodels(seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.05, 0.95, n)
    q = np.clip(p + 0.3 * (p - 0.5) + rng.normal(0, 0.1, n), 0, 1)
    shares, slope = ms_shares(p, q)
    assert shares.shape == (n,)
    assert abs(shares.sum() - stats.martingale_score(p, q).slope) < 1e-12
    assert slope == stats.martingale_score(p, q).slope
    reference = sm.OLS(q - p, sm.add_constant(p)).fit().params[1]
    assert abs(shares.sum() - reference) < 1e-10


def test_undefined_slope_gives_zero_shares() -> None:
    shares, slope = ms_shares([0.3, 0.3, 0.3], [0.5, 0.1, 0.9])  # all priors equal: slope not identified
    assert math.isnan(slope) and not shares.any()
    shares, slope = ms_shares([0.2, 0.8], [0.1, 0.9])  # fewer than 3 pairs
    assert math.isnan(slope) and not shares.any()


@pytest.mark.parametrize("kappa", [0.4, -0.4])
def test_ms_term_pushes_toward_zero_from_either_side(kappa: float) -> None:
    rng = np.random.default_rng(7)
    p = rng.uniform(0.1, 0.9, 40)
    q = np.clip(p + kappa * (p - 0.5) + rng.normal(0, 0.05, 40), 0, 1)
    out = combine(_batch(list(p), list(q)), RewardWeights(ms_coef=1.0, info_coef=0.0), None)
    assert math.copysign(1, out.batch_ms) == math.copysign(1, kappa)
    # the batch mean of the MS term is -|MS|: the reward is best at MS = 0, not below it
    assert out.ms.mean() == pytest.approx(-abs(out.batch_ms), abs=1e-12)
    assert np.allclose(out.total, out.ms)
    # the samples pulling the slope away from 0 are the ones that lose reward
    pulling = np.sign(out.shares) == np.sign(out.batch_ms)
    assert out.ms[pulling].max() < 0 < out.ms[~pulling].min()


# --- on real harness transcripts of the simulated reasoners ----------------------------------------------------


def _eval(model: str, log_dir: Path, **model_args: object) -> EvalLog:
    logs = inspect_eval("martingale/forecast", model=model, model_args=model_args, display="none",
                        log_realtime=False, log_dir=str(log_dir))
    assert logs[0].status == "success", logs[0].error
    return logs[0]


def _episode(sample: EvalSample) -> Episode:
    meta = sample.metadata
    return Episode(sample_id=str(sample.id), question_id=str(meta["question_id"]), question=str(sample.input),
                   evidence=tuple(meta["evidence"]), label=meta["label"], metadata=meta)


def _score_transcripts(log: EvalLog, weights: RewardWeights, term_name: str | None) -> tuple[Any, list[float]]:
    """Run the TRL reward on each sample's (prior answer, posterior answer) as a one-batch GRPO step."""
    samples = log.samples or []
    prompts = EpisodePrompts()
    episodes = [_episode(s) for s in samples]
    answers = [[s.messages[t["message"]].text for t in s.store[TURNS_KEY]] for s in samples]
    breakdowns: list[Any] = []
    logged: dict[str, float] = {}
    reward = MartingaleReward([prompts.view(e) for e in episodes], get_extractor("self_report"), weights,
                              get_reward_term(term_name) if term_name else None, on_batch=breakdowns.append)
    completions = [[{"role": "assistant", "content": a[1]}] for a in answers]
    totals = asyncio.run(reward(prompts=[None] * len(samples), completions=completions,
                                item=list(range(len(samples))), prior_answer=[a[0] for a in answers],
                                log_metric=logged.__setitem__))
    expected = {"martingale/reward", "martingale/format_failure_rate"}
    if not np.isnan(breakdowns[0].batch_ms):  # an undefined batch MS is left out of the log, never logged as NaN
        expected |= {"martingale/reward_ms", "martingale/batch_ms"}
    assert set(logged) >= expected and all(np.isfinite(v) for v in logged.values())
    return breakdowns[0], totals


@pytest.fixture(scope="module")
def entrenched_log(tmp_path_factory: pytest.TempPathFactory) -> EvalLog:
    return _eval("sim/entrenched", tmp_path_factory.mktemp("entrenched"), kappa=0.3)


def test_reward_batch_ms_is_the_evaluation_ms(entrenched_log: EvalLog) -> None:
    out, totals = _score_transcripts(entrenched_log, RewardWeights(info_coef=0.0), None)
    metrics = entrenched_log.results.scores[0].metrics  # type: ignore[union-attr]
    assert not out.format_failed.any()
    # the reward reads the transcripts exactly as the scorer did: same beliefs, same MS
    assert abs(out.batch_ms - metrics["ms_slope"].value) < 1e-12
    assert out.batch_ms > 0.15
    assert totals == pytest.approx(list(out.total))


@dataclass(frozen=True)
class _GatheredBy(Processes):
    """One of two processes whose gather returns every process's share, as accelerate's gather_object does."""

    parts: tuple[Any, ...] = ()

    def gather(self, value: Any) -> list[Any]:
        assert value == self.parts[self.index]  # what this process contributes is what it read
        return list(self.parts)


def test_each_process_fits_the_gathered_batch_and_gets_its_own_slice(entrenched_log: EvalLog) -> None:
    samples = entrenched_log.samples or []
    prompts = EpisodePrompts()
    views = [prompts.view(_episode(s)) for s in samples]
    answers = [[s.messages[t["message"]].text for t in s.store[TURNS_KEY]] for s in samples]
    weights = RewardWeights(info_coef=0.5)
    items = list(range(len(samples)))
    _, whole = _score_transcripts(entrenched_log, weights, "update_magnitude")

    slices = [items[:24], items[24:]]  # TRL hands each process its share; here two of unequal size
    single = MartingaleReward(views, get_extractor("self_report"), weights, get_reward_term("update_magnitude"))
    parts = []
    for part in slices:
        read = asyncio.run(single.read(part, [answers[i][0] for i in part], [answers[i][1] for i in part]))
        parts.append((part, read.prior.tolist(), read.posterior.tolist()))
    totals, logged = [], []
    for index, part in enumerate(slices):
        metrics: dict[str, float] = {}
        reward = MartingaleReward(views, get_extractor("self_report"), weights, get_reward_term("update_magnitude"),
                                  processes=_GatheredBy(index=index, count=2, parts=tuple(parts)))
        totals += asyncio.run(reward(prompts=[None] * len(part), completions=[answers[i][1] for i in part],
                                     item=part, prior_answer=[answers[i][0] for i in part],
                                     log_metric=metrics.__setitem__))
        logged.append(metrics)
    # the two slices' rewards are the one-process rewards of the whole batch, in order
    assert totals == pytest.approx(whole, abs=1e-12)
    ms = entrenched_log.results.scores[0].metrics["ms_slope"].value  # type: ignore[union-attr]
    assert logged[0] == logged[1] and abs(logged[0]["martingale/batch_ms"] - ms) < 1e-12


def test_entrenching_samples_get_lower_ms_reward(entrenched_log: EvalLog) -> None:
    out, _ = _score_transcripts(entrenched_log, RewardWeights(info_coef=0.0), None)
    p = np.array([s.scores["self_report"].value["prior"] for s in entrenched_log.samples or []])
    q = np.array([s.scores["self_report"].value["posterior"] for s in entrenched_log.samples or []])
    entrenching = (q - p) * (p - 0.5) > 0  # moved further from 0.5, toward what it already believed
    assert 10 < entrenching.sum() < len(p) - 10
    assert out.ms[entrenching].mean() < out.ms[~entrenching].mean() - 0.1
    # and by rank: an entrenching sample usually gets less than a non-entrenching one (AUC)
    pairs = out.ms[entrenching][:, None] < out.ms[~entrenching][None, :]
    assert pairs.mean() > 0.75


def test_all_inert_batch_gets_no_ms_reward_and_is_penalised_by_update_magnitude(tmp_path: Path) -> None:
    log = _eval("sim/inert", tmp_path)
    out, totals = _score_transcripts(log, RewardWeights(ms_coef=1.0, info_coef=0.5), "update_magnitude")
    assert not out.format_failed.any()
    # no update varies, so the batch MS is undefined (as in evaluation) and its term adds nothing
    assert np.isnan(out.batch_ms) and np.all(np.isnan(out.ms)) and np.all(out.shares == 0.0)
    assert np.all(out.info == -1.0)
    assert totals == pytest.approx([-0.5] * len(totals))
    # brier_gain cannot see inertia either: no update, no gain
    out, _ = _score_transcripts(log, RewardWeights(ms_coef=1.0, info_coef=0.5), "brier_gain")
    assert np.nanmax(np.abs(out.info)) == 0.0


def test_failed_extractions_get_the_format_penalty_and_leave_the_fit() -> None:
    prompts = EpisodePrompts()
    episodes = [Episode(sample_id=str(i), question_id=str(i), question=f"Will event {i} happen?", evidence=("e",),
                        label=i % 2, metadata={}) for i in range(6)]
    priors = ["Probability: 0.2", "Probability: 0.4", "Probability: 0.5", "Probability: 0.7", "Probability: 0.9",
              "Probability: 0.6"]
    posteriors = ["Probability: 0.1", "I'd say 35%.", "I cannot assign a probability to this.", "Probability: 0.8",
                  "Probability: 0.95", "The evidence is mixed and I will not give a number."]
    breakdowns: list[Any] = []
    reward = MartingaleReward([prompts.view(e) for e in episodes], get_extractor("self_report"),
                              RewardWeights(ms_coef=1.0, info_coef=0.5, format_penalty=0.75),
                              get_reward_term("brier_gain"), on_batch=breakdowns.append)
    totals = asyncio.run(reward(prompts=[None] * 6, completions=posteriors, item=list(range(6)),
                                prior_answer=priors))
    out = breakdowns[0]
    assert list(out.format_failed) == [False, False, True, False, False, True]
    assert totals[2] == totals[5] == -0.75
    assert math.isnan(out.ms[2]) and math.isnan(out.info[2])
    # never a made-up belief: the fit uses the four readable pairs only
    ok = [0, 1, 3, 4]
    p, q = np.array([0.2, 0.4, 0.7, 0.9]), np.array([0.1, 0.35, 0.8, 0.95])
    assert out.n_pairs == 4
    assert out.batch_ms == pytest.approx(stats.martingale_score(p, q).slope, abs=1e-12)
    y = np.array([0, 1, 1, 0])
    expected = -np.sign(out.batch_ms) * 4 * ms_shares(p, q)[0] + 0.5 * ((p - y) ** 2 - (q - y) ** 2)
    assert np.array(totals)[ok] == pytest.approx(expected, abs=1e-12)


def test_unreadable_prior_gets_no_ms_or_info_reward() -> None:
    out = combine(_batch([math.nan, 0.3, 0.5, 0.8], [0.6, 0.2, 0.5, 0.9], [1, 0, 1, 1]),
                  RewardWeights(ms_coef=1.0, info_coef=1.0), get_reward_term("brier_gain"))
    assert out.prior_failed[0] and not out.format_failed[0]
    assert out.total[0] == 0.0 and math.isnan(out.ms[0]) and math.isnan(out.info[0])
    assert out.n_pairs == 3


# --- the built-in terms -----------------------------------------------------------------------------------------


def test_brier_gain_values_and_check() -> None:
    term = get_reward_term("brier_gain")
    values = term.values(_batch([0.3, 0.6, 0.5], [0.7, 0.2, 0.9], [1, 0, math.nan]))
    assert values[:2] == pytest.approx([0.49 - 0.09, 0.36 - 0.04])
    assert math.isnan(values[2])
    term.check([None, 1], [{}, {}])
    with pytest.raises(ConfigError, match="brier_gain' needs labels"):
        term.check([None, None], [{}, {}])


def test_update_magnitude_is_capped() -> None:
    values = get_reward_term("update_magnitude").values(_batch([0.5, 0.5, 0.5, 0.5], [0.5, 0.55, 0.6, 1.0]))
    assert values == pytest.approx([-1.0, -0.5, 0.0, 0.0])


def test_bayes_distance_reads_the_exact_posterior_and_refuses_items_without_it() -> None:
    term = get_reward_term("bayes_distance")
    meta = [{"exact_posteriors": [0.3, 0.5, 0.8]}, {"exact_posteriors": [0.6, 0.1]}]
    values = term.values(_batch([0.3, 0.6], [0.7, 0.1], metadata=meta))
    assert values == pytest.approx([-0.01, 0.0])
    term.check([None, None], meta)
    with pytest.raises(ConfigError, match="1 of 2 lack it"):
        term.check([None, None], [meta[0], {"exact_posteriors": []}])


def test_bayes_distance_on_the_bayes_task_items() -> None:
    from martingale_harness.tasks.builder import domain_task

    try:
        task = domain_task("bayes")
    except ConfigError as e:
        pytest.skip(f"martingale/bayes is not registered here: {e}")
    samples = list(task.dataset)
    get_reward_term("bayes_distance").check([s.metadata["label"] for s in samples], [s.metadata for s in samples])
    exact = np.array([s.metadata["exact_posteriors"][-1] for s in samples])
    values = get_reward_term("bayes_distance").values(
        _batch([0.5] * len(samples), list(exact), metadata=[s.metadata for s in samples]))
    assert np.all(values == 0.0)


# --- the reward-term hook ---------------------------------------------------------------------------------------


def test_builtin_terms_come_through_the_entry_point() -> None:
    host = plugin_host()
    assert {"brier_gain", "update_magnitude", "bayes_distance"} <= set(host.reward_terms())
    record = next(r for r in host.records if r.name == "reward_terms")
    assert (record.status, record.origin) == ("loaded", "built-in")
    assert ("reward_terms", "reward_term", "bayes_distance") in [(c.plugin, c.kind, c.name)
                                                                  for c in host.contributions()]


class _Negated:
    name = "negated_brier"

    def check(self, labels: Any, metadata: Any) -> None:
        return None

    def values(self, batch: RewardBatch) -> np.ndarray:
        return -(batch.posterior - batch.label) ** 2


def _host(*plugins: object) -> PluginHost:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    for i, plugin in enumerate(plugins):
        pm.register(plugin, name=f"plugin{i}")
    return PluginHost(pm)


def test_a_third_party_term_registers_through_the_hook() -> None:
    class Plugin:
        @hookspecs.hookimpl
        def martingale_register_reward_terms(self, register: Any) -> None:
            register(_Negated())

    host = _host(Plugin())
    term = get_reward_term("negated_brier", host)
    out = combine(_batch([0.5, 0.5, 0.5], [0.9, 0.2, 0.5], [1, 0, 1]), RewardWeights(ms_coef=0.0, info_coef=2.0),
                  term)
    assert out.total == pytest.approx([-0.02, -0.08, -0.5])
    with pytest.raises(ConfigError, match="unknown reward term 'nope'; available: negated_brier"):
        get_reward_term("nope", host)


def test_duplicate_and_malformed_terms_are_refused() -> None:
    class Twice:
        @hookspecs.hookimpl
        def martingale_register_reward_terms(self, register: Any) -> None:
            register(_Negated())

    with pytest.raises(ConfigError, match="two plugins register a reward term named 'negated_brier'"):
        _host(Twice(), Twice()).reward_terms()

    class Broken:
        @hookspecs.hookimpl
        def martingale_register_reward_terms(self, register: Any) -> None:
            register(object())

    with pytest.raises(ConfigError, match="is not a RewardTerm"):
        _host(Broken()).reward_terms()


def test_training_prompts_are_the_evaluations_conversation(entrenched_log: EvalLog) -> None:
    """The trained turn's prompt is the protocol's conversation up to the posterior question, verbatim."""
    prompts = EpisodePrompts()
    for sample in entrenched_log.samples or []:
        episode = _episode(sample)
        prior_answer = sample.messages[sample.store[TURNS_KEY][0]["message"]].text
        conversation = [m.model_dump(include={"role", "content"}) for m in sample.messages]
        assert prompts.prior_messages(episode) == conversation[:1]
        assert prompts.posterior_messages(episode, prior_answer) == conversation[:3]
        view = prompts.view(episode)
        assert [view.prior_prompt, view.posterior_prompt] == [t["prompt"] for t in sample.store[TURNS_KEY]]
