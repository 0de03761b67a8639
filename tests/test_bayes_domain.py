"""martingale/bayes: the generated problems, their exact posteriors and the task that serves them.

The exact posteriors are checked against computations that share no code with the generator:
exact rational arithmetic (urn, diagnostic), numerical integration (coin), and Monte Carlo over
the generative process written out again here (every family).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from inspect_ai._util.error import PrerequisiteError
from scipy import integrate

from martingale.tasks import bayes as bayes_task
from martingale_harness.errors import ConfigError
from martingale_harness.tasks.bayes.dataset import (
    FAMILIES,
    PRIOR_RANGE,
    BayesProblem,
    GeneratorSettings,
    generate,
    read_settings,
    registered,
)
from martingale_harness.tasks.config import task_config
from martingale_harness.tasks.loaders import get_loader


@pytest.fixture(scope="module")
def problems() -> list[BayesProblem]:
    return generate(GeneratorSettings(n=150, seed=3, min_items=2, max_items=8))


def _by_family(problems: list[BayesProblem], family: str) -> list[BayesProblem]:
    return [p for p in problems if p.family == family]


def _rational(x: float, bound: int) -> Fraction:
    return Fraction(x).limit_denominator(bound)


@pytest.mark.parametrize("family", ["urn", "diagnostic"])
def test_two_hypothesis_posteriors_equal_exact_rational_bayes(problems: list[BayesProblem], family: str) -> None:
    for p in _by_family(problems, family):
        prior = _rational(p.params["prior"], 100)
        like_yes, like_no = _rational(p.params["p_yes"], 100), _rational(p.params["p_no"], 100)
        assert len(p.exact_posteriors) == len(p.observations) + 1 == len(p.evidence) + 1
        for k in range(len(p.observations) + 1):
            heads = sum(p.observations[:k])
            yes = prior * like_yes**heads * (1 - like_yes) ** (k - heads)
            no = (1 - prior) * like_no**heads * (1 - like_no) ** (k - heads)
            assert p.exact_posteriors[k] == pytest.approx(float(yes / (yes + no)), rel=1e-12, abs=1e-15)


def _beta_kernel(t: float, x: float, y: float) -> float:
    return t**x * (1 - t) ** y


def test_coin_posteriors_equal_numerical_integration(problems: list[BayesProblem]) -> None:
    for p in _by_family(problems, "coin"):
        a, b = p.params["alpha"], p.params["beta"]
        for k in range(len(p.observations) + 1):
            s = sum(p.observations[:k])
            powers = (a - 1 + s, b - 1 + k - s)
            above = integrate.quad(_beta_kernel, 0.5, 1.0, args=powers, epsabs=0, epsrel=1e-12)[0]
            total = above + integrate.quad(_beta_kernel, 0.0, 0.5, args=powers, epsabs=0, epsrel=1e-12)[0]
            assert p.exact_posteriors[k] == pytest.approx(above / total, rel=1e-8)


def _simulate(p: BayesProblem, draws: int, steps: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(truth, observations) drawn from the problem's stated model, independently of the generator."""
    if p.family == "coin":
        theta = rng.beta(p.params["alpha"], p.params["beta"], draws)
        return theta > 0.5, rng.random((draws, steps)) < theta[:, None]
    truth = rng.random(draws) < p.params["prior"]
    chance = np.where(truth, p.params["p_yes"], p.params["p_no"])
    return truth, rng.random((draws, steps)) < chance[:, None]


@pytest.mark.parametrize("family", FAMILIES)
def test_posteriors_match_monte_carlo_over_the_generative_process(problems: list[BayesProblem], family: str) -> None:
    rng = np.random.default_rng(11)
    checked = 0
    for p in _by_family(problems, family)[:4]:
        steps = min(4, len(p.observations))
        truth, obs = _simulate(p, 300_000, steps, rng)
        match = np.ones(truth.size, dtype=bool)
        for k in range(steps + 1):
            if k:
                match &= obs[:, k - 1] == bool(p.observations[k - 1])
            hits = int(match.sum())
            expected = p.exact_posteriors[k]
            se = math.sqrt(expected * (1 - expected) / hits)
            assert abs(truth[match].mean() - expected) < 4.5 * se + 1e-3, (p.question, k, hits)
            checked += 1
    assert checked >= 12


def test_truth_is_drawn_from_the_stated_prior_and_posteriors_are_calibrated() -> None:
    many = generate(GeneratorSettings(n=3000, seed=5, min_items=1, max_items=4))
    for family in FAMILIES:
        fam = _by_family(many, family)
        truth = np.array([p.truth for p in fam], dtype=float)
        for k in (0, -1):  # the prior, and the last posterior
            b = np.array([p.exact_posteriors[k] for p in fam])
            se = math.sqrt(float(np.mean(b * (1 - b))) / len(fam))
            assert abs(truth.mean() - b.mean()) < 4 * se
            # calibration: within each third of the beliefs, the truth is as frequent as believed
            for part in np.array_split(np.argsort(b), 3):
                se_part = math.sqrt(float(np.mean(b[part] * (1 - b[part]))) / part.size)
                assert abs(truth[part].mean() - b[part].mean()) < 4 * se_part + 1e-3


def test_stated_numbers_are_in_the_question(problems: list[BayesProblem]) -> None:
    def said(p: float) -> list[str]:
        pct = round(100 * p)
        frac = Fraction(pct, 100)
        return [f"{pct}%", f"{frac.numerator} in {frac.denominator}", f"{pct} in 100",
                f"{frac.numerator} in every {frac.denominator}", f"{pct} of which",
                f"{frac.numerator} to {frac.denominator - frac.numerator}"]

    for p in problems:
        q = p.question
        if p.family == "coin":
            a, b = p.params["alpha"], p.params["beta"]
            found = set(re.findall(r"\d+(?:\.\d+)?", q))
            # Beta(a, b) itself, or the exponents / earlier counts a - 1 and b - 1
            assert {f"{a:g}", f"{b:g}"} <= found or {f"{round(a - 1, 1):g}", f"{round(b - 1, 1):g}"} <= found, q
            continue
        assert any(s in q for s in said(p.params["prior"]) + said(1 - p.params["prior"])), q
        if p.family == "diagnostic":
            se, sp = p.params["sensitivity"], p.params["specificity"]
            assert f"{round(100 * se)}%" in q or f"{round(100 * (1 - se))}%" in q, q
            assert f"{round(100 * sp)}%" in q or f"{round(100 * (1 - sp))}%" in q, q
        else:
            assert p.params["p_yes"] != p.params["p_no"]


def test_generator_is_deterministic_and_sized() -> None:
    first = generate(GeneratorSettings(n=40, seed=7))
    assert first == generate(GeneratorSettings(n=40, seed=7))
    assert first != generate(GeneratorSettings(n=40, seed=8))
    for n in (1, 2, 7, 40):
        made = generate(GeneratorSettings(n=n, seed=1, families=("coin", "urn")))
        assert len(made) == n
        counts = Counter(p.family for p in made)
        assert set(counts) <= {"coin", "urn"} and max(counts.values()) - min(counts.values(), default=0) <= 1
    assert all(3 <= len(p.evidence) <= 6 for p in first)
    assert all(len(p.evidence) == 5 for p in generate(GeneratorSettings(n=12, min_items=5, max_items=5)))


def test_priors_are_spread_evenly_over_the_range() -> None:
    made = generate(GeneratorSettings(n=270, seed=2))
    for family in FAMILIES:
        priors = np.array([p.exact_posteriors[0] for p in made if p.family == family])
        assert priors.size == 90
        assert PRIOR_RANGE[0] <= priors.min() and priors.max() <= PRIOR_RANGE[1]
        counts, _ = np.histogram(priors, bins=9, range=PRIOR_RANGE)
        assert counts.min() >= 6 and counts.max() <= 14, (family, counts)  # 10 each when exactly stratified


def test_wording_varies(problems: list[BayesProblem]) -> None:
    assert len({p.question for p in problems}) == len(problems)
    for family in FAMILIES:
        fam = _by_family(problems, family)
        skeletons = {re.sub(r"\d+(?:\.\d+)?", "#", p.question) for p in fam}
        openings = {" ".join(p.question.split()[:3]) for p in fam}
        questions = {re.sub(r"\d", "#", p.question.rsplit(". ", 1)[-1]) for p in fam}
        lines = {re.sub(r"\d+|first|second", "#", p.evidence[0]).split(":")[0] for p in fam}
        assert len(skeletons) >= 0.9 * len(fam)
        assert len(openings) >= 4 and len(questions) >= 4 and len(lines) >= 3, (family, openings, questions, lines)


def test_task_defaults_to_the_evidence_paradigm_and_records_exact_posteriors() -> None:
    task = bayes_task(n="9", families="coin,diagnostic", seed=4)
    assert task.metadata["paradigm"] == "evidence"
    assert task.metadata["generator"] == {"n": 9, "seed": 4, "families": ["coin", "diagnostic"],
                                          "min_items": 3, "max_items": 6}
    samples = list(task.dataset)
    assert len(samples) == 9 and len({s.id for s in samples}) == 9
    for s in samples:
        meta = s.metadata or {}
        assert meta["family"] in ("coin", "diagnostic")
        assert len(meta["exact_posteriors"]) == len(meta["evidence"]) + 1
        assert meta["label"] in (0, 1) and s.target == str(meta["label"])
        # the sim agents find the problem under the question text they are sent
        assert registered(str(s.input))[tuple(meta["evidence"])] == tuple(meta["exact_posteriors"])


def test_loader_interface_reads_the_bundled_settings() -> None:
    config = task_config("bayes")
    settings = read_settings(config.default_data)
    loaded = get_loader(config.dataset_path)(config.default_data, evidence_budget=6000, bad_rows="skip")
    assert len(loaded.items) == settings.n and loaded.skipped == []
    assert {i.metadata["family"] for i in loaded.items} == set(settings.families)


@pytest.mark.parametrize("args,message", [
    ({"families": "urn,dice"}, "families='urn,dice' is not allowed; allowed: a comma-separated subset of urn"),
    ({"n": 0}, "n=0 is not allowed"),
    ({"min_items": 5, "max_items": 2}, "max_items=2 is not allowed; allowed: an integer from min_items (5)"),
    ({"max_items": 21}, "max_items=21 is not allowed"),
    ({"paradigm": "socratic"}, "protocol.paradigm='socratic' is not allowed"),
])
def test_bad_task_arguments_are_clear(args: dict[str, object], message: str) -> None:
    with pytest.raises(PrerequisiteError) as err:
        bayes_task(**args)
    assert message in str(err.value)


def test_bad_settings_file_names_the_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "gen.yaml"
    path.write_text("n: 10\nsteps: 4\n")
    with pytest.raises(ConfigError, match=r"gen\.yaml: unknown key\(s\) steps; allowed: n, seed"):
        read_settings(path)
    path.write_text("n: ten\n")
    with pytest.raises(ConfigError, match=r"gen\.yaml: n='ten' is not allowed"):
        read_settings(path)
