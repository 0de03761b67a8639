"""Synthetic problems with exact Bayesian posteriors (the ``martingale/bayes`` task).

Every problem states a prior, a model of how evidence arises, and a Yes/No question; the evidence
then arrives one observation per turn (the ``evidence`` paradigm), and the exact posterior after
each observation is known in closed form. Three families:

* ``urn``: two urns (bags, jars, ...) of two-coloured balls; one was picked with a stated
  probability; balls are drawn with replacement. Question: was it this urn?
  ``logit b*_k = logit prior + sum log(P(colour | urn) / P(colour | other urn))``.
* ``diagnostic``: a base rate, a test's sensitivity and specificity, repeated tests that are
  independent given the condition. Question: does the subject have the condition?
  Likelihood ratio ``se / (1 - sp)`` per positive, ``(1 - se) / sp`` per negative.
* ``coin``: a Beta(a, b) prior on a success chance theta (a bent coin, a thumbtack, a player's
  free throws) and outcomes revealed one by one. Question: is theta above 1/2?
  ``b*_k = P(theta > 1/2 | data) = I_{1/2}(b + failures, a + successes)`` (regularised incomplete beta).

The latent truth (the urn, the condition, theta) is drawn from the stated prior and the
observations from the stated model given that truth, so the label is a real outcome and Brier
scores mean something; the exact posteriors b*_0 (the prior itself) .. b*_T are stored in the
sample's metadata (``exact_posteriors``, the key the training reward term reads).

Generation is deterministic for ``(n, seed, families, min_items, max_items)``. Families take turns
(shuffled), and within a family the priors are stratified over [0.05, 0.95] (one draw from each of
``n_family`` equal-width strata, in random order), so any ``n`` gives a balanced spread. The
wording varies per problem: the scenario, the names, the order of the sentences, whether the prior
is given as a percentage, a count, odds or for the other hypothesis, how the test's accuracy is
put, and how each observation is reported; the numbers are always stated exactly.

The task's "data" is a small YAML file of generator settings (``martingale_harness/tasks/bayes/generator.yaml``:
``n, seed, families, min_items, max_items``); each setting can also be given as a task argument.

Generated problems are recorded in a process-wide table (question text -> evidence -> exact
posteriors, :func:`registered`) so the simulated reasoners can act on the actual problem
(``backends/sim_bayes.py``): on these problems a ``sim/*`` agent is an oracle for the problem's
model, not a reasoner.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import numpy as np
from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, StrictInt, model_validator
from pydantic.dataclasses import dataclass as config_class
from scipy.optimize import brentq
from scipy.special import betainc, expit, logit

from martingale_harness.project_files import config_keys, not_allowed, read_yaml, validate_config
from martingale_harness.tasks.base import (
    DEFAULT_EVIDENCE_BUDGET,
    DomainItem,
    LoadResult,
    RowCollector,
    check_budget,
    truncate_evidence,
)
from martingale_harness.tasks.config import each_once, name_tuple

Family = Literal["urn", "diagnostic", "coin"]
FAMILIES: tuple[str, ...] = get_args(Family)
PRIOR_RANGE: tuple[float, float] = (0.05, 0.95)
MAX_ITEMS = 20
MAX_PROBLEMS = 100_000


@config_class(frozen=True, config=ConfigDict(extra="forbid"))
class GeneratorSettings:
    """What the generator is asked for; a bad value is refused when the settings are made."""

    n: StrictInt = Field(120, ge=1, le=MAX_PROBLEMS, description=f"an integer from 1 to {MAX_PROBLEMS}")
    seed: StrictInt = Field(0, ge=0, description="an integer >= 0")
    families: Annotated[tuple[Family, ...], BeforeValidator(name_tuple), AfterValidator(each_once)] = Field(
        FAMILIES, min_length=1, description=f"a comma-separated subset of {', '.join(FAMILIES)}, each once")
    min_items: StrictInt = Field(3, ge=1, le=MAX_ITEMS, description=f"an integer from 1 to {MAX_ITEMS}")
    max_items: StrictInt = Field(6, description=f"an integer from min_items to {MAX_ITEMS}")

    @model_validator(mode="after")
    def _items_range(self) -> GeneratorSettings:
        if not self.min_items <= self.max_items <= MAX_ITEMS:
            allowed = f"an integer from min_items ({self.min_items}) to {MAX_ITEMS}"
            raise not_allowed("max_items", self.max_items, allowed)
        return self

    def override(self, where: str, **values: Any) -> GeneratorSettings:
        """These settings with the non-``None`` ``values`` replacing them (``-T`` strings are parsed)."""
        given = {k: v if k == "families" else _int_text(v) for k, v in values.items() if v is not None}
        return validate_config(GeneratorSettings, {**vars(self), **given}, where)


GENERATOR_KEYS: tuple[str, ...] = tuple(config_keys(GeneratorSettings))


def _int_text(value: Any) -> Any:
    # -T may pass numbers as text; a file's numbers must be numbers
    return int(value) if isinstance(value, str) and value.strip().lstrip("-").isdigit() else value


@dataclass(frozen=True)
class BayesProblem:
    """One generated problem with its latent truth and exact posteriors b*_0..b*_T."""

    index: int
    family: str
    question: str
    evidence: tuple[str, ...]
    observations: tuple[int, ...]
    """1 = the first outcome (the first colour, a positive test, a success), 0 = the other."""
    truth: int
    """1 when the answer to the question is Yes."""
    exact_posteriors: tuple[float, ...]
    params: dict[str, float] = field(default_factory=dict)
    """The stated model: ``prior, p_yes, p_no`` (chance of observation 1 under Yes / No) for
    ``urn`` and ``diagnostic`` (there also ``sensitivity, specificity``), ``alpha, beta`` for
    ``coin``; plus the latent ``theta`` for ``coin``."""


# --- exact posteriors -------------------------------------------------------------------------


def two_hypothesis_posteriors(
    prior: float, p_yes: float, p_no: float, observations: Sequence[int]
) -> tuple[float, ...]:
    """P(Yes | first k observations), k = 0..T, for i.i.d. binary observations given the hypothesis.

    ``p_yes`` and ``p_no`` are P(observation = 1) under Yes and under No. Summed in log-odds, so
    long runs of evidence do not lose precision the way multiplied probabilities would.
    """
    _check_probability("prior", prior, open_interval=True)
    _check_probability("p_yes", p_yes, open_interval=True)
    _check_probability("p_no", p_no, open_interval=True)
    obs = np.asarray(observations, dtype=np.int64)
    if obs.size and not np.isin(obs, (0, 1)).all():
        raise ValueError("observations must be 0 or 1")
    step = np.where(obs == 1, math.log(p_yes / p_no), math.log((1 - p_yes) / (1 - p_no)))
    log_odds = logit(prior) + np.concatenate([[0.0], np.cumsum(step)])
    return tuple(float(v) for v in expit(log_odds))


def coin_posteriors(alpha: float, beta: float, observations: Sequence[int]) -> tuple[float, ...]:
    """P(theta > 1/2 | first k outcomes), k = 0..T, for a Beta(alpha, beta) prior on theta.

    The posterior after s successes and f failures is Beta(alpha + s, beta + f), and
    P(theta > 1/2) = 1 - I_{1/2}(alpha + s, beta + f) = I_{1/2}(beta + f, alpha + s).
    """
    if not (alpha > 0 and beta > 0):
        raise ValueError(f"Beta parameters must be positive, got ({alpha}, {beta})")
    obs = np.asarray(observations, dtype=np.int64)
    if obs.size and not np.isin(obs, (0, 1)).all():
        raise ValueError("observations must be 0 or 1")
    successes = np.concatenate([[0], np.cumsum(obs)])
    failures = np.arange(obs.size + 1) - successes
    return tuple(float(v) for v in betainc(beta + failures, alpha + successes, 0.5))


def _check_probability(name: str, value: float, open_interval: bool = False) -> None:
    ok = 0.0 < value < 1.0 if open_interval else 0.0 <= value <= 1.0
    if not ok:
        raise ValueError(f"{name} must lie in {'(0, 1)' if open_interval else '[0, 1]'}, got {value}")


# --- wording helpers --------------------------------------------------------------------------

_ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth")


def ordinal(k: int) -> str:
    """``first`` .. ``tenth``, then ``11th``, ``12th``, ``21st`` ..."""
    if 1 <= k <= len(_ORDINALS):
        return _ORDINALS[k - 1]
    suffix = "th" if 10 <= k % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(k % 10, "th")
    return f"{k}{suffix}"


def _pct(p: float) -> str:
    """A probability on the 0.01 grid as a percentage, exactly ("35%", "7.5%" never occurs)."""
    return f"{round(100 * p)}%"


def _chance_phrases(p: float) -> list[str]:
    """Exact ways to say a probability on the 0.01 grid: '35%', '35 in 100', '7 in 20', 'odds 7 to 13'."""
    frac = Fraction(round(100 * p), 100)
    phrases = [_pct(p), f"{frac.numerator} in {frac.denominator}"]
    if frac.denominator != 100:
        phrases.append(f"{round(100 * p)} in 100")
    return phrases


def _odds(p: float) -> str:
    frac = Fraction(round(100 * p), 100)
    return f"{frac.numerator} to {frac.denominator - frac.numerator}"


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _pick(rng: np.random.Generator, options: Sequence[Any]) -> Any:
    return options[int(rng.integers(len(options)))]


def _join(sentences: Sequence[str]) -> str:
    return " ".join(s.strip() for s in sentences if s.strip())


@dataclass(frozen=True)
class _Draft:
    """A problem before its truth is drawn: the question, how an observation is reported, the model."""

    question: str
    line: str
    """Evidence line template with ``{k}``, ``{ord}``, ``{Ord}`` (the item's number) and ``{out}``."""
    words: tuple[str, str]
    """How observation 0 and observation 1 are reported."""
    params: dict[str, float]


# --- urns -------------------------------------------------------------------------------------

_CONTAINERS = (("urn", "urns"), ("bag", "bags"), ("box", "boxes"), ("jar", "jars"), ("basket", "baskets"))
_ITEMS = (("ball", "balls"), ("marble", "marbles"), ("chip", "chips"), ("token", "tokens"), ("bead", "beads"))
_COLOURS = (("red", "blue"), ("black", "white"), ("green", "yellow"), ("orange", "purple"), ("silver", "gold"))
_LABELS = (("A", "B"), ("1", "2"), ("X", "Y"), ("P", "Q"), ("North", "South"))
_PICKERS = ("a friend", "the game host", "a croupier", "your sister", "a colleague", "the experimenter")


def _urn(rng: np.random.Generator, prior: float) -> _Draft:
    (box, boxes), (item, items) = _pick(rng, _CONTAINERS), _pick(rng, _ITEMS)
    colour1, colour2 = _pick(rng, _COLOURS)[:: 1 if rng.random() < 0.5 else -1]
    label1, label2 = _pick(rng, _LABELS)
    name1, name2 = f"{box} {label1}", f"{box} {label2}"
    while True:  # compositions far enough apart that a draw carries evidence
        size1, size2 = int(rng.integers(4, 13)), int(rng.integers(4, 13))
        red1, red2 = int(rng.integers(1, size1)), int(rng.integers(1, size2))
        if abs(red1 / size1 - red2 / size2) >= 0.2:
            break
    # the question asks about the first or the second container described
    target_first = rng.random() < 0.5
    target, other = (name1, name2) if target_first else (name2, name1)
    p_yes, p_no = (red1 / size1, red2 / size2) if target_first else (red2 / size2, red1 / size1)

    def contents(name: str, red: int, size: int) -> str:
        other = size - red
        return _pick(rng, (
            f"{_cap(name)} holds {red} {colour1} {item if red == 1 else items} and {other} {colour2} "
            f"{item if other == 1 else items}.",
            f"{_cap(name)} contains {size} {items}: {red} {colour1}, the rest {colour2}.",
            f"In {name} there {'is' if other == 1 else 'are'} {other} {colour2} {item if other == 1 else items} "
            f"and {red} {colour1} {'one' if red == 1 else 'ones'}.",
        ))

    picker = _pick(rng, _PICKERS)
    # the prior is stated for the asked-about container or, as often, for the other one
    stated, named, unnamed = (prior, target, other) if rng.random() < 0.6 else (1 - prior, other, target)
    chance = _pick(rng, _chance_phrases(stated))
    prior_sentence = _pick(rng, (
        f"Out of your sight, {picker} chose one of the two {boxes}, picking {named} with probability {chance} "
        f"and {unnamed} otherwise.",
        f"{_cap(picker)} drew a ticket from a hat holding 100 tickets, {round(100 * stated)} of which say "
        f"'{named}' while the rest say '{unnamed}', and took the {box} the ticket named.",
        f"One {box} was selected at random; the odds that it was {named} rather than {unnamed} were "
        f"{_odds(stated)}.",
        f"The chance that {picker} set {named} in front of you is {chance}; otherwise it is {unnamed}.",
    ))
    draws = _pick(rng, (
        f"{_cap(items)} are then drawn from the chosen {box} one at a time; each is shown to you and put back, "
        f"and the {box} is shaken before the next draw.",
        f"You watch {items} being drawn from that {box} one by one, with replacement (every {item} goes back in "
        "before the next draw).",
        f"Draws are made with replacement from the selected {box}, and you learn the colour of each {item}.",
    ))
    setup = [contents(name1, red1, size1), contents(name2, red2, size2)]
    ordered = [*setup, prior_sentence] if rng.random() < 0.5 else [prior_sentence, *setup]
    question = _pick(rng, (
        f"Is the chosen {box} {target}?",
        f"Were the {items} drawn from {target}?",
        f"Is {target} the {box} being drawn from?",
        f"Did the draws come from {target}?",
    ))
    line = _pick(rng, (
        "Draw {k}: {out}.",
        "The {ord} " + item + " drawn is {out}.",
        "{Ord} draw: the " + item + " is {out}.",
        _cap(item) + " number {k} comes out {out}.",
    ))
    return _Draft(_join([*ordered, draws, question]), line, (colour2, colour1),
                  {"prior": prior, "p_yes": p_yes, "p_no": p_no})


# --- diagnostic tests -------------------------------------------------------------------------

_DIAGNOSTIC = (
    {"one": "a patient referred to the clinic", "the": "the patient", "members": "patients",
     "group": "patients referred to this clinic", "has": "have {cond}", "hasnt": "are free of {cond}",
     "conds": ("Drell fever", "Morrow syndrome", "a Tavi virus infection", "Oska deficiency"),
     "test": "test", "tests": "tests", "words": ("negative", "positive"),
     "questions": ("Does {the} have {cond}?", "Is {the} suffering from {cond}?")},
    {"one": "a circuit board from the line", "the": "the board", "members": "boards",
     "group": "boards coming off this production line", "has": "carry {cond}", "hasnt": "are free of {cond}",
     "conds": ("a hidden solder fault", "a cracked inner layer"),
     "test": "X-ray scan", "tests": "scans", "words": ("clear", "flagged"),
     "questions": ("Does {the} carry {cond}?", "Is {the} one with {cond}?")},
    {"one": "a banknote from the batch", "the": "the note", "members": "notes",
     "group": "notes in this batch", "has": "are counterfeit", "hasnt": "are genuine", "conds": ("",),
     "test": "scanner check", "tests": "checks", "words": ("clean", "suspicious"),
     "questions": ("Is {the} counterfeit?", "Is {the} a forgery?")},
    {"one": "a seed lot from the shipment", "the": "the lot", "members": "lots",
     "group": "seed lots in this shipment", "has": "carry {cond}", "hasnt": "are free of {cond}",
     "conds": ("the blight fungus", "the mosaic virus"),
     "test": "PCR assay", "tests": "assays", "words": ("negative", "positive"),
     "questions": ("Does {the} carry {cond}?", "Is {the} infected with {cond}?")},
)


def _diagnostic(rng: np.random.Generator, prior: float) -> _Draft:
    s = _pick(rng, _DIAGNOSTIC)
    cond = _pick(rng, s["conds"])
    the, members, test, tests = s["the"], s["members"], s["test"], s["tests"]
    has, hasnt = s["has"].format(cond=cond), s["hasnt"].format(cond=cond)
    neg, pos = s["words"]
    while True:  # an informative test: se + sp well above 1
        se, sp = (round(float(v), 2) for v in rng.uniform(0.55, 0.95, 2))
        if se + sp >= 1.2:
            break
    intro = _pick(rng, (f"{_cap(s['one'])} is picked at random.", f"Consider {s['one']}, chosen at random."))
    if rng.random() < 0.6:
        base = _pick(rng, (
            f"{_pct(prior)} of {s['group']} {has}.",
            f"{Fraction(round(100 * prior), 100).numerator} in every {Fraction(round(100 * prior), 100).denominator} "
            f"{s['group']} {has}.",
            f"Among {s['group']}, the share that {has} is {_pct(prior)}.",
        ))
    else:  # the complement: the reader has to turn it around
        base = _pick(rng, (f"{_pct(1 - prior)} of {s['group']} {hasnt}.",
                           f"Among {s['group']}, {_pct(1 - prior)} {hasnt}; the rest {has}."))
    accuracy = _pick(rng, (
        f"The {test} has a sensitivity of {_pct(se)} and a specificity of {_pct(sp)}.",
        f"The {test} comes back {pos} for {_pct(se)} of {members} that {has}, and {neg} for {_pct(sp)} of "
        f"{members} that {hasnt}.",
        f"The {test} misses {_pct(1 - se)} of {members} that {has} (it comes back {neg} for them) and comes back "
        f"{pos} for {_pct(1 - sp)} of {members} that {hasnt}.",
    ))
    independence = _pick(rng, (
        f"{_cap(the)} is tested repeatedly; given whether {the} is affected or not, repeated {tests} are "
        "independent of each other.",
        f"Several {tests} are run on {the}. Their results are independent given the true state of {the}.",
    ))
    middle = [base, accuracy] if rng.random() < 0.7 else [accuracy, base]
    question = _pick(rng, s["questions"]).format(the=the, cond=cond)
    line = _pick(rng, (
        _cap(test) + " {k}: {out}.",
        "The {ord} " + test + " comes back {out}.",
        "Result of the {ord} " + test + ": {out}.",
    ))
    return _Draft(_join([intro, *middle, independence, question]), line, (neg, pos),
                  {"prior": prior, "p_yes": se, "p_no": round(1 - sp, 2), "sensitivity": se, "specificity": sp})


# --- coins ------------------------------------------------------------------------------------

_COINS = (
    {"thing": "a bent coin", "theta": "its chance of landing heads", "trial": "flip", "trials": "flips",
     "words": ("tails", "heads"), "plural": ("tails", "heads"),
     "questions": ("Is the coin's chance of landing heads above one half?",
                   "In the long run, does this coin land heads more than half of the time?",
                   "Is heads more likely than tails for this coin?")},
    {"thing": "a thumbtack", "theta": "its chance of landing point up", "trial": "toss", "trials": "tosses",
     "words": ("point down", "point up"), "plural": ("point-down landings", "point-up landings"),
     "questions": ("Is the tack more likely to land point up than point down?",
                   "Is the tack's chance of landing point up greater than 50%?")},
    {"thing": "a new player's free throws", "theta": "her long-run free-throw success rate", "trial": "free throw",
     "trials": "free throws", "words": ("missed", "made"), "plural": ("misses", "makes"),
     "questions": ("Does she make more than half of her free throws in the long run?",
                   "Is her long-run free-throw success rate above 50%?")},
    {"thing": "a new seed variety", "theta": "its germination rate", "trial": "planted seed",
     "trials": "plantings", "words": ("failed", "sprouted"), "plural": ("failures", "sprouts"),
     "questions": ("Does more than half of this variety's seed germinate?",
                   "Is the variety's germination rate above one half?")},
    {"thing": "a redesigned button on a web page", "theta": "the chance that a visitor who sees it clicks it",
     "trial": "visitor", "trials": "visitors", "words": ("no click", "click"), "plural": ("non-clicks", "clicks"),
     "questions": ("Do most visitors click the button, in the long run?",
                   "Is the button's click-through rate above 50%?")},
)
_INTEGER_BETA = tuple(
    (float(a), float(b)) for a in range(1, 20) for b in range(1, 20)
    if a + b <= 20 and PRIOR_RANGE[0] <= float(betainc(b, a, 0.5)) <= PRIOR_RANGE[1]
)


def _beta_for(rng: np.random.Generator, target: float) -> tuple[float, float]:
    """Beta(a, b) with P(theta > 1/2) close to ``target`` (integers or one decimal, a, b >= 1)."""
    if rng.random() < 0.35:
        near = [ab for ab in _INTEGER_BETA if abs(float(betainc(ab[1], ab[0], 0.5)) - target) <= 0.02]
        if near:
            return _pick(rng, near)
    for _ in range(1000):
        total = float(rng.integers(4, 17))
        a = brentq(lambda x, c: float(betainc(c - x, x, 0.5)) - target, 1e-6, total - 1e-6, args=(total,))
        a, b = round(a, 1), round(total - a, 1)
        if a >= 1 and b >= 1 and PRIOR_RANGE[0] <= float(betainc(b, a, 0.5)) <= PRIOR_RANGE[1]:
            return a, b
    raise RuntimeError(f"no Beta prior found for P(theta > 1/2) = {target}")  # not reached for targets in range


def _num(x: float) -> str:
    return f"{x:g}"


def _coin(rng: np.random.Generator, target: float) -> _Draft:
    s = _pick(rng, _COINS)
    a, b = _beta_for(rng, target)
    fail_word, success_word = s["words"]
    fails, successes = s["plural"]
    options = [
        f"Your uncertainty about {s['theta']} is described by a Beta({_num(a)}, {_num(b)}) distribution.",
        f"Treat {s['theta']} as drawn from a Beta distribution with alpha = {_num(a)} (counting {successes}) "
        f"and beta = {_num(b)} (counting {fails}).",
    ]
    if a > 1 and b > 1:
        options.append(f"Call {s['theta']} p. Before any {s['trials']}, your prior density for p is proportional "
                       f"to p^{_num(round(a - 1, 1))} (1 - p)^{_num(round(b - 1, 1))} on [0, 1].")
    if a.is_integer() and b.is_integer():
        options.append(f"You started from a uniform prior on {s['theta']} and have since seen an earlier session "
                       f"with {int(a) - 1} {successes} and {int(b) - 1} {fails}; that is all you know about it.")
    intro = _pick(rng, (f"You are studying {s['thing']}.", f"Consider {s['thing']}.",
                        f"This problem is about {s['thing']}.", f"A colleague asks you about {s['thing']}."))
    independence = _pick(rng, (
        f"Given {s['theta']}, the outcomes are independent of each other.",
        f"Outcomes are independent of each other given {s['theta']}.",
        f"Given {s['theta']}, outcomes are independent, and you will see them one at a time.",
    ))
    question = _pick(rng, s["questions"])
    line = _pick(rng, (
        _cap(s["trial"]) + " {k}: {out}.",
        "The {ord} " + s["trial"] + ": {out}.",
        "Result for " + s["trial"] + " number {k}: {out}.",
        "Outcome {k}: {out}.",
    ))
    middle = [_pick(rng, options), independence] if rng.random() < 0.7 else [independence, _pick(rng, options)]
    return _Draft(_join([intro, *middle, question]), line, (fail_word, success_word),
                  {"alpha": a, "beta": b, "prior": float(betainc(b, a, 0.5))})


# --- generation -------------------------------------------------------------------------------

_BUILDERS: dict[str, Callable[[np.random.Generator, float], _Draft]] = {
    "urn": _urn, "diagnostic": _diagnostic, "coin": _coin,
}
_SEED_TAG = 0x6261796573  # "bayes": keeps these streams apart from other seeded uses of the same seed


def stratified_priors(rng: np.random.Generator, m: int) -> np.ndarray:
    """``m`` targets in PRIOR_RANGE, one uniform draw from each of ``m`` equal strata, in random order."""
    lo, hi = PRIOR_RANGE
    return lo + (hi - lo) * (rng.permutation(m) + rng.random(m)) / m


def generate(settings: GeneratorSettings) -> list[BayesProblem]:
    """``settings.n`` problems, deterministic for the settings (see the module docstring)."""
    n, k = settings.n, len(settings.families)
    rng = np.random.default_rng(np.random.SeedSequence([settings.seed, _SEED_TAG]))
    families = [settings.families[j] for j in rng.permutation(np.arange(n) % k)]
    targets = np.empty(n)
    for family in settings.families:
        where = [i for i, f in enumerate(families) if f == family]
        targets[where] = stratified_priors(rng, len(where))

    problems = []
    for i, family in enumerate(families):
        # one stream per problem: its wording and draws do not depend on the problems before it
        prng = np.random.default_rng(np.random.SeedSequence([settings.seed, _SEED_TAG, i + 1]))
        target = float(targets[i])
        if family != "coin":  # stated priors are whole percentages
            target = min(max(round(target, 2), PRIOR_RANGE[0]), PRIOR_RANGE[1])
        draft = _BUILDERS[family](prng, target)
        steps = int(prng.integers(settings.min_items, settings.max_items + 1))
        params = dict(draft.params)
        if family == "coin":
            theta = float(prng.beta(params["alpha"], params["beta"]))
            truth = int(theta > 0.5)
            observations = tuple(int(v) for v in prng.random(steps) < theta)
            exact = coin_posteriors(params["alpha"], params["beta"], observations)
            params["theta"] = theta
        else:
            truth = int(prng.random() < params["prior"])
            chance = params["p_yes"] if truth else params["p_no"]
            observations = tuple(int(v) for v in prng.random(steps) < chance)
            exact = two_hypothesis_posteriors(params["prior"], params["p_yes"], params["p_no"], observations)
        evidence = tuple(draft.line.format(k=j, ord=ordinal(j), Ord=_cap(ordinal(j)), out=draft.words[o])
                         for j, o in enumerate(observations, start=1))
        problems.append(BayesProblem(index=i, family=family, question=draft.question, evidence=evidence,
                                     observations=observations, truth=truth, exact_posteriors=exact, params=params))
    return problems


# --- the oracle table the simulated agents read ----------------------------------------------

_ORACLE: dict[str, dict[tuple[str, ...], tuple[float, ...]]] = {}


def register(question: str, evidence: Sequence[str], exact_posteriors: Sequence[float]) -> None:
    """Record a problem as its reader sees it (question text, evidence texts) with b*_0..b*_T."""
    if len(exact_posteriors) != len(evidence) + 1:
        raise ValueError(f"{len(evidence)} evidence items need {len(evidence) + 1} exact posteriors, "
                         f"got {len(exact_posteriors)}")
    _ORACLE.setdefault(question, {})[tuple(evidence)] = tuple(float(b) for b in exact_posteriors)


def registered(question: str) -> Mapping[tuple[str, ...], tuple[float, ...]]:
    """The generated problems with this exact question text: evidence texts -> exact posteriors."""
    return _ORACLE.get(question, {})


# --- the domain loader ------------------------------------------------------------------------


def read_settings(path: str | Path) -> GeneratorSettings:
    """Generator settings from a YAML file (``n, seed, families, min_items, max_items``)."""
    return validate_config(GeneratorSettings, read_yaml(Path(path)), str(path))


def load(
    path: str | Path, *, evidence_budget: int | None = DEFAULT_EVIDENCE_BUDGET, bad_rows: str = "skip",
    **overrides: Any,
) -> LoadResult:
    """The ``bayes`` domain loader: ``path`` is a generator settings file, ``overrides`` replace its values.

    Problems are generated, not read, so there are no bad rows (``bad_rows`` is only checked);
    evidence lines are far below any budget but go through the same cut as every domain's.
    """
    RowCollector(bad_rows)
    return load_generated(read_settings(path).override("-T", **overrides), evidence_budget=evidence_budget)


def load_generated(settings: GeneratorSettings, *, evidence_budget: int | None = DEFAULT_EVIDENCE_BUDGET) -> LoadResult:
    """Generate the problems as domain items (label = truth, ``exact_posteriors`` in metadata) and
    record each in the oracle table under its question text."""
    budget = check_budget(evidence_budget)
    items = []
    for problem in generate(settings):
        evidence, cut = truncate_evidence(problem.evidence, budget)
        register(problem.question, evidence, problem.exact_posteriors)
        sample_id = f"bayes-s{settings.seed}-{problem.index:05d}"
        items.append(DomainItem(
            sample_id=sample_id,
            question_id=sample_id,
            question=problem.question,
            evidence=evidence,
            label=problem.truth,
            metadata={"family": problem.family, "exact_posteriors": list(problem.exact_posteriors),
                      "observations": list(problem.observations), "params": dict(problem.params),
                      "generator_seed": settings.seed},
            truncated=cut,
        ))
    return LoadResult(items=items, skipped=[], evidence_budget=budget)
