"""Reading the probability a model states in its free-text answer: the rules of the ``self_report`` extractor.

Published in the plugin API (:func:`read_probability`, :func:`strip_reasoning`) so that the built-in
extractors and third-party ones read text by the same rules.

Strict by design: a reading is a number the text clearly states, or a failure with a short reason;
never a default or a best guess (a failed reading is counted, a wrong one biases the score).

How an answer is read (:func:`read_probability`):

1. Reasoning is dropped: ``<think>...</think>`` blocks, everything before a stray ``</think>``
   (R1-style templates put the opening tag in the prompt) and everything after an unclosed
   ``<think>``. Nothing left means no answer.
2. Numbers that are not probabilities are blanked out: dates, money, times, version numbers,
   list markers ("1." at a line start) and ordinals like "Step 3".
3. Candidates come in tiers:

   * final: ``final``/``updated``/``revised``/``new``/``posterior``/``overall`` labels, ``\\boxed{}``;
   * explicit: ``label: value``, ``label = value`` or a ``| label | value |`` table row (labels:
     probability, estimate, belief, forecast, credence, likelihood, chance, answer, prediction,
     P(yes), Yes), JSON objects with such a key, and first-person statements ("my estimate is",
     "I'd put it at", "I estimate");
   * prose: "the probability is", "chance of", "a 30% chance", anywhere in the answer;
   * otherwise the last probability-shaped number (percentage, fraction such as "7/10" or
     "3 in 10", range, decimal in [0, 1]) of the last paragraph.

   A value restating a candidate in another form right after it ("0.3 (30%)", "1/2 or 50%", "0.3,
   which is approximately 3%", and chains of such forms) joins its tier. Labels for an earlier or
   someone else's number ("previous estimate", "market probability", "base-rate probability") are never
   answers, nor is a prose value in a clause that names someone else ("Markets give a 45% chance") or
   gives it to the reader ("You are given a probability of 0.6"), nor a probability of another event
   ("a 30% chance of rain" when no word of the event is in the question or prompt: kind
   ``other_event``), nor a value that equals a probability the model was shown (``given``: the question
   and the turn's prompt, so the crowd forecast or market price it repeats) unless the answer adopts it:
   its ``Probability: X`` line, a first-person statement ("my estimate is") or a JSON answer (kind
   ``restated``). These exclusions hold for the last-number fallback too.
4. Deciding, with values more than 0.005 apart (the corpus's reading tolerance) a conflict (failure kind
   ``conflict``); values within it are one belief, and the last one not a rounded restatement is read:

   * final-tier candidates decide when there are any (they must agree among themselves);
   * else, when the protocol's answer line ``Probability: X`` ends the answer (no candidate after
     it), the explicit candidates decide: the line outranks what prose said in passing, but another
     answer the model labelled as its own still contradicts it;
   * else every candidate of every tier must agree (a labelled answer and a prose statement that
     disagree, with none of them final, are a conflict);
   * the last-number fallback reads a number with its restatement as one statement too
     ("0.0375, which is approximately 0.0375%" is a conflict).
5. An answer cut off by the token limit (``truncated``: the turn's stop reason is ``max_tokens``) is
   read only when it holds a final-tier candidate or a ``Probability: X`` line; otherwise it fails as
   ``truncated``, since its conclusion is missing. Its last number is not read either when the cut
   comes right after it (nothing or a lone "." follows) before its third decimal: "Probability: 0."
   may have become "0.35"; "0.92419..." is read, later digits move it by under 0.001.
6. A refusal ("I cannot assign a probability", "As an AI I can't predict") fails (``refusal``) unless
   the text still gives a final or explicit answer; a hedge ("... with certainty, but ...") is no
   refusal.

Failure kinds: ``no_number``, ``conflict``, ``refusal``, ``truncated``, ``out_of_range``, ``restated``,
``other_event`` (see :data:`martingale_harness.extraction.beliefs.FAILURE_KINDS`). These rules are the ones of
the real-answer
corpus (``benchmarks/extraction_corpus/README.md``, whose "Precedence of the rules" orders them);
``benchmarks/extraction_accuracy.py`` measures
how closely this parser follows them.

Numbers without a % sign: a number is a probability only inside [0, 1]. "Probability: 70" might
mean 70% or might be a slip; reading it either way would be a guess, so it fails as outside [0, 1].
It is a percentage only when the label says so: "Probability (%): 70", "percent chance: 70", a JSON
key containing "percent"/"pct". Under such a label every number without its own % is a percentage
(``{"percent": 0.5}`` is 0.005). Ranges ("65-70%", "between 0.6 and 0.7") read as their midpoint.
"a/b" with a + b = 100 ("50/50", "60/40") is the odds-split idiom and reads a%; an echoed
placeholder ("0.XX") or the whole scale ("0 to 1", "0-100%") is no number; "\\%" and non-breaking
spaces read as plain "%" and spaces.
A bare number above 1 followed by a word ("chance of 3 candidates") is a count, not an answer.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import json
import re
from dataclasses import dataclass

from martingale_harness.extraction.beliefs import BeliefReading

__all__ = ["read_probability", "strip_reasoning"]

_TOLERANCE = 0.005
"""Values at most this far apart are one belief ("0.01174, which is approximately 1.17%"): the corpus's
reading tolerance, so a parser never calls a conflict what a reader records as one value."""
_FINAL, _EXPLICIT, _PROSE = 0, 1, 2
# Blanked spans keep their length so match offsets still index the visible text.
_MASK = "\x00"

# --- reasoning blocks -------------------------------------------------------------------------
_THINK_BLOCK = re.compile(r"<(think(?:ing)?)\s*>.*?</\1\s*>", re.I | re.S)
_THINK_OPEN = re.compile(r"<think(?:ing)?\s*>", re.I)
_THINK_CLOSE = re.compile(r"</think(?:ing)?\s*>", re.I)

# --- numbers that are not probabilities ----------------------------------------------------------
_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\b\.?"
)
_NOT_PROBABILITY = re.compile(
    # (?<!\w) first: the engine then only tries alternatives at token starts (speed).
    rf"""(?<!\w)(?:
      \b\d{{4}}[-/.]\d{{1,2}}[-/.]\d{{1,2}}\b
    | \b\d{{1,2}}[-/.]\d{{1,2}}[-/.]\d{{2,4}}\b
    | \b{_MONTH}[ \t]+\d{{1,2}}(?:st|nd|rd|th)?\b(?:,?[ \t]+\d{{4}}\b)?(?!%|[.,]?\d)
    | \b\d{{1,2}}(?:st|nd|rd|th)?[ \t]+(?:of[ \t]+)?{_MONTH}(?:,?[ \t]+\d{{4}}\b)?
    | [$€£¥][ \t]?\d[\d,]*(?:\.\d+)?(?:[ \t]?(?:k|m|bn|b|thousand|million|billion|trillion)\b)?
    | \b\d[\d,]*(?:\.\d+)?[ \t]?(?:usd|eur|gbp|dollars?|euros?|pounds?|cents?)\b
    | ^[ \t]*(?:[-*+][ \t]+)?\(?\d+[.)](?=[ \t]|$)
    | \b(?:step|stage|point|item|reason|option|scenario|factor|phase|round|section|part|page|chapter
         |question|version|no\.)[ \t]*\#?[1-9]\d*(?:\.\d+)*(?![ \t]?%)
    | \#\d+\b
    | \bv\d+(?:\.\d+)+\b | \b\d+\.\d+\.\d+\b
    | \b\d{{1,2}}:\d{{2}}\b
    )""",
    re.I | re.X | re.M,
)

# --- values ------------------------------------------------------------------------------------
_NUM = r"(?:\d+(?:\.\d+)?|\.\d+)"
_PCT = r"(?:[ \t]?(?:%|percent\b|per[ \t]?cent\b|pct\b))"
_INT = r"(?:\d{1,3}(?:,\d{3})+|\d+)"
_VALUE = rf"""
(?P<value>
    (?=[\d.\-−]|between)  # cheap first-character test before the alternatives (speed)
    (?<![\w.,/\-−])
    (?:
        (?P<range>between[ \t]+{_NUM}{_PCT}?[ \t]*and[ \t]*{_NUM}{_PCT}?
                 |(?<!from[ ]){_NUM}{_PCT}?(?:-|[ \t]?–[ \t]?|[ \t]+to[ \t]+){_NUM}{_PCT}?)
      | (?P<frac>\d+[ \t]?/[ \t]?\d+|\d+[ \t]+(?:in|out[ \t]+of)[ \t]+{_INT})
      | (?P<single>(?P<sign>[-−])?(?P<x>{_NUM})(?P<pct>{_PCT})?)
    )
    (?![\w%]|[.,:/]\d|-[^\W\d])
)"""
_VALUE_RE = re.compile(_VALUE, re.I | re.X)
_NUM_RE = re.compile(_NUM)
_INT_RE = re.compile(_INT)
_PCT_RE = re.compile(_PCT, re.I)
# A number above 1 followed by a word on the same line counts something ("3 candidates").
_WORD_AFTER = re.compile(r"[ \t]+[^\W\d_]")

# --- labels -------------------------------------------------------------------------------------
_WORDS = r"probability|prob|likelihood|chance|estimate|forecast|belief|credence|answer|prediction"
_PROMOTE = r"final|updated|revised|new|posterior|overall|adjusted"
# Someone else's or an earlier number, reported in passing.
_DEMOTE = (
    r"previous|earlier|initial|original|old|starting|base[ \t-]?rate|baseline|market|implied|historical"
    r"|crowd|consensus|community|polymarket|metaculus|average|median|their|his|her|experts?"
)
_QUAL = rf"""
    [ \t]*\([ \t]*(?:yes|of[ \t]+yes|0[ \t]*[-–][ \t]*1|0[ \t]+to[ \t]+1|{_WORDS})[ \t]*\)
  | [ \t]+(?:of|for|that)[ \t]+
    (?:(?:a|an|the|this|it|event|question|outcome|market|resolution|resolving|resolves?|will|yes|view|paper
          |being|its)
       [ \t]+){{0,4}}?
    (?:yes|resolution|this|it|event|outcome|question|happening|happens|occurring|occurs|acceptance|accepted
       |correct)\b
  # the protocol's own wording, echoed: "probability that the answer to this question is Yes"
  | [ \t]+(?:that|of)[ \t]+(?:the|this)[ \t]+(?:answer|view)(?:[ \t]+to[ \t]+(?:this|the)[ \t]+question)?
    [ \t]+(?:is|being|will[ \t]+be)[ \t]+(?:yes|correct)\b
  | [ \t]+to[ \t]+(?:this|the)[ \t]+question\b
"""
_PCT_QUAL = r"""
    [ \t]*\([ \t]*(?:%|percent|in[ \t]+%|in[ \t]+percent|percentage)[ \t]*\)
  | [ \t]+(?:in[ \t]+percent|as[ \t]+a[ \t]+percentage)\b
  | [ \t]*\[%\]
"""
_SEP = r"""
(?P<sep>
    [ \t*_`'"\])]*
    (?:(?:(?:\bis[ \t]*)?[:=|]|\b(?:is|at|of|to[ \t]+be|(?:would|will|should)[ \t]+be|be|remains|stands[ \t]+at
          |sits[ \t]+at|comes[ \t]+to|equals)\b)[\s*_`'"]*)?
    # a label repeated inside the answer: "Final answer: Probability: 0.6"
    (?:(?:probability|estimate|p[ \t]?\([ \t]?yes[ \t]?\))[ \t*_`'"]*[:=][\s*_`'"]*)?
    (?:(?:\b(?:about|around|approximately|approx\.|roughly|circa|close[ \t]+to|near|an?|just|now|still|indeed
          |simply|actually|exactly|really|definitely
          |somewhere[ \t]+around)\b|[~≈≃])[ \t*_`'"]*)*
)"""
_LABELLED = re.compile(
    rf"""
(?<![^\W\d_])(?=[^\W\d_]|\\)  # only try at word starts (speed)
(?P<label>
    (?P<boxed>\\boxed\{{)
  | (?:\b(?P<my>my|our)[ \t]+)?
    (?:\b(?:(?P<promote>{_PROMOTE})|(?P<demote>{_DEMOTE}))(?:['’]s)?[ \t-]+)?
    (?:\b(?P<pctword>percent(?:age)?(?:[ \t_-]+(?:chance|probability|likelihood))?)\b
      |\b(?:{_WORDS})(?:[ \t]+(?:{_WORDS}))?\b
      |\bp[ \t]?\([ \t]?yes[ \t]?\)
      |\b(?P<yes>yes)\b)
    (?:{_QUAL})?
    (?P<pctqual>{_PCT_QUAL})?
  | (?P<iwould>\bI(?:['’]d|[ \t]+would)[ \t]+(?:put|place|peg|set|say|estimate|assign|give|go[ \t]+with)\b
      (?:[ \t]+(?:it|this|that|(?:the|my|a|an)[ \t]+(?:probability|chance|likelihood|odds|estimate|credence
         |belief|forecast|answer)))?)
  | (?P<iest>\bI[ \t]+(?:estimate|put|place|peg|assign)\b
      (?:[ \t]+(?:it|this|that|(?:the|my)[ \t]+(?:probability|chance|likelihood|estimate|credence)))?)
)
{_SEP}
{_VALUE}
""",
    re.I | re.X,
)
_POSTFIX = re.compile(rf"{_VALUE}[ \t]*(?:chance|probability|likelihood|likely)\b", re.I | re.X)
# Whose number a prose value is, when the sentence says it is not the model's own.
_OTHERS = re.compile(
    rf"\b(?:(?:{_DEMOTE})\b|markets|forecasters|analysts|polls?|pollsters|bookmakers|odds[ \t]+makers"
    r"|reviewers?|according[ \t]+to|historically|in[ \t]+the[ \t]+past"
    # a number framed as given to the reader, not held by the model: "You are given a probability of 0.6"
    r"|(?:you|we)(?:['’]re|[ \t]+are|[ \t]+were|[ \t]+have[ \t]+been)[ \t]+(?:given|told|shown|provided)"
    r"|(?:is|was)[ \t]+given[ \t]+(?:as|to[ \t]+(?:you|us))"
    r"|the[ \t]+(?:question|prompt|problem|scenario|information)[ \t]+(?:says|states|gives|mentions))",
    re.I,
)
# A belief stated as the one held before reasoning (the opening step of a chain of thought).
_EARLIER = re.compile(
    r"\b(?:current(?:ly)?|initial(?:ly)?|at[ \t]+first|to[ \t]+(?:start|begin)(?:[ \t]+with)?|starting|going[ \t]+in"
    r"|before[ \t]+(?:I|we|weighing|looking|considering|seeing|reading|thinking|reasoning|any))\b",
    re.I,
)
# "Final answer: {...}": a JSON answer under a final label.
_FINAL_BEFORE_JSON = re.compile(rf"\b(?:{_PROMOTE})\b[ \t]*(?:{_WORDS})?[ \t*_`]*[:=]?[ \t*_`]*$", re.I)
# An arithmetic expression after a value, ending in "=": "1 - 0.5 = 0.5", "0.3 * 0.5 = 0.15".
_ARITHMETIC = re.compile(r"(?:[ \t]*[-−+*×/][ \t]*(?:\d+(?:\.\d+)?|\.\d+)(?:\.\.\.|…)?)+[ \t]*=[ \t]*")
_CLAUSE = re.compile(r"\b(?:but|while|whereas|however|although|though|yet)\b", re.I)
# A probability qualified by the event it is about: "the probability of a recession", "a 30% chance of rain".
_EVENT = re.compile(
    r"\b(?:probability|chance|likelihood|odds|risk)[ \t]+(?:of|that|for)[ \t]+"
    r"(?P<event>(?:(?!\b(?:is|are|was|were|will|would|at|stands|sits|remains|comes)\b)[^\n.!?;:,=()\d%])+)",
    re.I,
)
_WORD = re.compile(r"[^\W\d_]{4,}")
# "1 - 0.47 = 0.53": the value before "=" is an operand, not a form of the result
_OPERATOR_BEFORE = re.compile(r"[-−+*×/][ \t]*$")
_GENERIC = frozenset(
    "this that these those what which will would yes question answer event outcome happening happens occurring "
    "occurs resolution resolving resolves correct true being have there their they them then than about exactly "
    "around approximately roughly nearly almost only just least most some".split())
# The same value again in another form, joined to the one before it.
_ATTACHED = re.compile(
    rf"""[ \t*_`]*(?:\([ \t]*|,?[ \t]*(?:which[ \t]+is|i\.e\.,?|that[ \t]+is|or|=|≈)[ \t]*)
    (?:(?:about|around|approximately|approx\.|roughly|nearly|almost|~)[ \t]*)?{_VALUE}""",
    re.I | re.X,
)
# The line the protocol asks for: "Probability: X" (markdown emphasis and a "final" label allowed).
_ANSWER_LINE = re.compile(
    r"[ \t>*_#`\-]*(?:(?:final|updated|revised|posterior|overall)[ \t]+)?(?:probability|p[ \t]?\([ \t]?yes[ \t]?\))"
    r"[ \t*_`]*[:=]",
    re.I,
)

# --- JSON ---------------------------------------------------------------------------------------
_JSON_OBJECT = re.compile(r"\{[^{}]*\}")
_KEY_TOKEN = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])")
_KEY_LABELS = ("prob", "belief", "estimat", "forecast", "credence", "likelihood", "chance", "percent",
               "pct", "answer", "predict")
_KEY_PERCENT = {"percent", "percentage", "pct"}
_KEY_PROMOTE = set(_PROMOTE.split("|"))
_KEY_DEMOTE = {"previous", "earlier", "initial", "original", "old", "starting", "base", "baseline", "market",
               "implied", "historical", "crowd", "consensus", "community", "average", "median"}

# --- refusals -----------------------------------------------------------------------------------
_REFUSAL = re.compile(
    r"""
      \bas[ \t]+an?[ \t]+(?:AI|artificial[ \t]+intelligence|(?:large[ \t]+)?language[ \t]+model|LLM)\b
    | (?:\bI(?:[ \t]+(?:cannot|can[ \t]?not|can['’]?t|won['’]?t|will[ \t]+not|do[ \t]+not|don['’]?t
                     |refuse[ \t]+to|decline[ \t]+to|am[ \t]+(?:unable|not[ \t]+able|not[ \t]+going)[ \t]+to)
              |['’]m[ \t]+(?:unable|not[ \t]+able|not[ \t]+going)[ \t]+to)
       |\b(?:it[ \t]+is|it['’]s)[ \t]+(?:impossible|not[ \t]+possible)[ \t]+(?:for[ \t]+me[ \t]+)?to)
      [ \t]+(?:(?:really|reliably|accurately|meaningfully|responsibly|honestly|confidently|realistically
                |actually|truly|simply|possibly|be[ \t]+able[ \t]+to|feel[ \t]+comfortable)[ \t]+){0,2}
      (?:assign|give|provide|offer|estimate|predict|forecast|speculate|guess|quantify|state|put|help[ \t]+with
         |make[ \t]+(?:a[ \t]+)?(?:predictions?|forecasts?))\b
    | \bI[ \t]+(?:must|have[ \t]+to|need[ \t]+to)[ \t]+(?:respectfully[ \t]+)?(?:decline|refrain)\b
    """,
    re.I | re.X,
)
# "I can't predict this with certainty, but ..." / "While I can't predict ..." disclaim certainty and
# go on to answer: hedges, not refusals.
_HEDGE_AFTER = re.compile(
    r"\b(?:with[ \t]+(?:any[ \t]+)?(?:certainty|confidence|precision)|for[ \t]+(?:certain|sure)"
    r"|precisely|exactly|definitively|definitely|perfectly|but|however)\b",
    re.I,
)
_HEDGE_BEFORE = re.compile(r"\b(?:although|though|while|even[ \t]+if)\b", re.I)
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)|\n")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")
_DIGIT = re.compile(r"\d")


@dataclass(frozen=True)
class _Number:
    value: float
    shaped: bool  # looks like a probability on its own (%, fraction, decimal in [0, 1])
    bare: bool  # no % anywhere: a value above 1 is not silently read as a percentage


@dataclass(frozen=True)
class _Candidate:
    value: float
    bare: bool
    start: int
    end: int
    own: bool = False  # stated in the first person ("my estimate", "I'd put it at") or as JSON
    restates: bool = False  # the same value again in another form, right after a candidate


_SPACES = str.maketrans({c: " " for c in "\u00a0\u2007\u202f\u2009\u200a"})
# A template placeholder echoed back ("0.XX", "0.??") states no number at all.
_PLACEHOLDER = re.compile(r"\d*\.[xX?#_]+(?!\w)")


def _cut_short(scan: str, last: _Candidate) -> bool:
    """Whether the token limit cut ``last`` off before its value was fixed: "Probability: 0." may have
    become 0.35; with three decimals or more, later digits move it by under 0.001 and it is read."""
    if scan[last.end:] not in ("", "."):
        return False
    decimals = re.search(r"\.(\d*)\D*$", scan[last.start:last.end])
    return decimals is None or len(decimals.group(1)) < 3


def read_probability(text: str, *, truncated: bool = False, given: str = "") -> BeliefReading:
    """Read the probability stated in a model's answer, or fail with a short reason and a kind.

    ``truncated``: the answer was cut off by the token limit, so only an explicit final statement
    counts. ``given``: the text the model was shown (question, prompt, evidence); probabilities it
    contains that the answer merely restates in prose are not the answer's belief. See the module
    docstring for what is read, in what order, and what fails.
    """
    if not text or not text.strip():
        return BeliefReading.failed("empty answer", "no_number")
    # LaTeX-escaped percent and non-breaking spaces are how models really write "35 %"
    text = text.translate(_SPACES).replace("\\%", "%")
    text = _PLACEHOLDER.sub(_blank, text)
    visible = strip_reasoning(text)
    if not visible.strip():
        return BeliefReading.failed("no answer outside <think> reasoning", "no_number")
    refused = _is_refusal(visible)
    if not refused and not _DIGIT.search(visible):
        return BeliefReading.failed("no number in answer", "truncated" if truncated else "no_number")

    scan = _NOT_PROBABILITY.sub(_blank, visible)
    tiers: dict[int, list[_Candidate]] = {_FINAL: [], _EXPLICIT: [], _PROSE: []}
    scan = _read_json(scan, tiers)
    _read_labels(scan, tiers)
    tiers[_PROSE] = [c for c in tiers[_PROSE] if not _reported(scan, c)]
    # a probability of something other than the asked question is no belief (and in no conflict)
    other_events = [c for c in tiers[_PROSE] if _other_event(scan, c.start, c.end, given)]
    tiers[_PROSE] = [c for c in tiers[_PROSE] if c not in other_events]
    breaks = [m.start() for m in _PARAGRAPH_BREAK.finditer(scan)]
    _drop_earlier_beliefs(scan, tiers, breaks)
    # a value the model was shown is its belief only when adopted: its own Probability line, or "my ..."
    adoptable = [c for t in (_EXPLICIT, _PROSE) for c in tiers[t] if not (c.own or _is_answer_line(scan, c))]
    # scanning a long prompt costs tens of milliseconds: only when some value could be a restated one
    shown = _given_values(given) if adoptable else set()
    restated = [c for c in adoptable if _is_given(c.value, shown)]
    for t in (_EXPLICIT, _PROSE):
        tiers[t] = [c for c in tiers[t] if c not in restated]
    for tier in tiers.values():
        tier.extend(_restatements(scan, tier))

    answer_lines = [c for c in tiers[_EXPLICIT] if _is_answer_line(scan, c)]
    everything = sorted(itertools.chain.from_iterable(tiers.values()), key=lambda c: c.start)
    if truncated and not (tiers[_FINAL] or answer_lines):
        return BeliefReading.failed("cut off by the token limit before an explicit final statement", "truncated")
    if truncated and everything and _cut_short(scan, everything[-1]):
        return BeliefReading.failed("cut off by the token limit in the middle of its last number", "truncated")
    if tiers[_FINAL]:
        return _decide(tiers[_FINAL], visible, final=True)
    if answer_lines and not any(c.start > answer_lines[-1].end for c in everything):
        # The protocol's "Probability: X" line ends the answer: it outranks what the reasoning said in
        # passing, but another answer the model labelled as its own still contradicts it.
        return _decide(tiers[_EXPLICIT], visible, final=False)
    if tiers[_EXPLICIT] or (tiers[_PROSE] and not refused):
        return _decide(everything, visible, final=False)
    if refused:
        return BeliefReading.failed("model declined to give a probability", "refusal")
    if restated:
        last = restated[-1]
        return BeliefReading.failed(f"only restates values it was shown: {_quote(visible[last.start : last.end])}",
                                    "restated")
    reading = _read_last_number(scan, visible, breaks, given)
    if other_events and reading.kind == "no_number":
        first = other_events[0]
        return BeliefReading.failed(f"its only probabilities are about other events: "
                                    f"{_quote(visible[first.start : first.end])}", "other_event")
    return reading


def strip_reasoning(text: str) -> str:
    """The visible answer: without ``<think>`` blocks, the text before a stray ``</think>`` and the text
    after an unclosed ``<think>``."""
    out = _THINK_BLOCK.sub("\n\n", text)
    closes = list(_THINK_CLOSE.finditer(out))
    if closes:  # opening tag sat in the chat template: all before the close is reasoning
        out = out[closes[-1].end() :]
    opened = _THINK_OPEN.search(out)
    if opened:  # never closed: the rest is unfinished reasoning
        out = out[: opened.start()]
    return out


def _blank(m: re.Match[str]) -> str:
    # Keep newlines so paragraph boundaries survive blanking.
    return "".join("\n" if ch == "\n" else _MASK for ch in m.group())


def _is_refusal(text: str) -> bool:
    ends: list[int] | None = None
    for m in _REFUSAL.finditer(text):
        if ends is None:
            ends = [e.end() for e in _SENTENCE_END.finditer(text)]
        i = bisect.bisect_right(ends, m.start())
        start = ends[i - 1] if i else 0
        end = ends[bisect.bisect_left(ends, m.end())] if ends and ends[-1] >= m.end() else len(text)
        if not (_HEDGE_BEFORE.search(text, start, m.start()) or _HEDGE_AFTER.search(text, m.end(), end)):
            return True
    return False


def _number(m: re.Match[str], percent_label: bool = False) -> _Number | None:
    """The value of a :data:`_VALUE` match; ``None`` for a fraction with no value ("7/0")."""
    if (span := m.group("range")) is not None:
        tokens = _NUM_RE.findall(span)
        a, b = float(tokens[0]), float(tokens[1])
        has_pct = _PCT_RE.search(span) is not None
        scale = 0.01 if has_pct or percent_label else 1.0
        if (a * scale, b * scale) == (0.0, 1.0):
            return None  # "Probability: 0 to 1", "0-100%": the scale echoed from the prompt, no estimate
        decimals = all("." in t for t in tokens) and 0 <= a <= 1 and 0 <= b <= 1
        return _Number(round((a + b) / 2 * scale, 12), has_pct or decimals, not (has_pct or percent_label))
    if (span := m.group("frac")) is not None:
        try:
            num, den = (int(t.replace(",", "")) for t in _INT_RE.findall(span))
            value = num / den
        except (ValueError, OverflowError, ZeroDivisionError):  # "7/0", absurdly long digit runs
            return None
        if "/" in span and num > 0 and den not in (0, 100) and num + den == 100:
            # "50/50", "60/40": the split idiom for odds, not a ratio (50/50 is even odds, not 1)
            return _Number(round(num / 100, 12), True, False)
        return _Number(round(value, 12), num <= den, False)
    digits = m.group("x")
    has_pct = m.group("pct") is not None
    value = float(digits) * (-1 if m.group("sign") else 1)
    if has_pct or percent_label:
        value /= 100
    value = round(value, 12)
    return _Number(value, has_pct or ("." in digits and 0 <= value <= 1), not (has_pct or percent_label))


def _is_count(m: re.Match[str], number: _Number, text: str) -> bool:
    return number.bare and abs(number.value) > 1 and _WORD_AFTER.match(text, m.end("value")) is not None


def _read_labels(scan: str, tiers: dict[int, list[_Candidate]]) -> None:
    seen: set[int] = set()
    for m in _LABELLED.finditer(scan):
        if m.group("demote"):
            continue
        number = _number(m, percent_label=bool(m.group("pctword") or m.group("pctqual")))
        if number is None or _is_count(m, number, scan):
            continue
        end = m.end("value") + (1 if m.group("boxed") and scan.startswith("}", m.end("value")) else 0)
        if (arith := _ARITHMETIC.match(scan, m.end("value"))) is not None:
            # "is 1 - 0.5 = 0.5": the stated value is the result, not the first operand
            result = _VALUE_RE.match(scan, arith.end())
            number = _number(result) if result is not None else None
            if number is None:
                continue
            end = result.end("value")  # type: ignore[union-attr]
        sep = m.group("sep")
        key_value = any(ch in sep for ch in ":=|")
        if m.group("yes") and not key_value:
            continue  # "Yes: 0.3" is an answer, "yes 3 times" is not
        if m.group("boxed") or m.group("promote"):
            tier = _FINAL
        elif key_value or m.group("my") or m.group("iwould") or m.group("iest"):
            tier = _EXPLICIT
        else:
            tier = _PROSE
        own = bool(m.group("my") or m.group("iwould") or m.group("iest"))
        tiers[tier].append(_Candidate(number.value, number.bare, m.start("label"), end, own))
        seen.add(m.start("value"))
    for m in _POSTFIX.finditer(scan):
        number = _number(m)
        if number is not None and number.shaped and m.start("value") not in seen:
            tiers[_PROSE].append(_Candidate(number.value, number.bare, m.start("value"), m.end()))


def _read_json(scan: str, tiers: dict[int, list[_Candidate]]) -> str:
    """Collect answers from JSON objects and blank every parsed object out of ``scan``."""
    for m in _JSON_OBJECT.finditer(scan):
        try:
            obj = json.loads(m.group())
        except ValueError:
            continue  # not JSON (e.g. Python repr): the label patterns still see "key": value
        if not isinstance(obj, dict):
            continue
        for key, raw in obj.items():
            words = {w.lower() for w in _KEY_TOKEN.findall(str(key))}
            is_label = any(w.startswith(_KEY_LABELS) for w in words) or words in ({"p"}, {"p", "yes"})
            if not is_label or words & _KEY_DEMOTE:
                continue
            percent_key = bool(words & _KEY_PERCENT)
            number = _json_number(raw, percent_key)
            if number is None:
                continue
            promoted = _FINAL_BEFORE_JSON.search(scan, max(0, m.start() - 40), m.start()) is not None
            tier = _FINAL if words & _KEY_PROMOTE or promoted else _EXPLICIT
            tiers[tier].append(_Candidate(number.value, number.bare, m.start(), m.end(), True))
        scan = scan[: m.start()] + _blank(m) + scan[m.end() :]
    return scan


def _json_number(raw: object, percent_key: bool) -> _Number | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int | float):
        try:
            value = round(raw / 100 if percent_key else float(raw), 12)
        except OverflowError:  # a JSON integer too long for a float is no probability either
            value = float("inf")
        return _Number(value, 0 <= value <= 1, not percent_key)
    if isinstance(raw, str):
        m = _VALUE_RE.fullmatch(raw.strip())
        return _number(m, percent_label=percent_key) if m else None
    return None


def _read_last_number(scan: str, visible: str, breaks: list[int], given: str) -> BeliefReading:
    numbers = [(m, n) for m in _VALUE_RE.finditer(scan) if (n := _number(m)) is not None and n.shaped]
    if not numbers:
        return BeliefReading.failed("no probability-like number in answer", "no_number")
    # The last paragraph is the last one with any content, blanked spans included.
    last_start = next((start for start in reversed([0, *breaks]) if scan[start:].strip()), 0)
    in_last = [(m, n) for m, n in numbers if m.start() >= last_start]
    if not in_last:
        return BeliefReading.failed("no probability in final paragraph", "no_number")
    m, number = in_last[-1]
    span = _quote(visible[m.start() : m.end()])
    # whose number it is comes before what it is: the same exclusions as for labelled values
    if _is_given(number.value, _given_values(given)):
        return BeliefReading.failed(f"only restates a value it was shown: {span}", "restated")
    if _reported(scan, _Candidate(number.value, number.bare, m.start(), m.end())):
        return BeliefReading.failed(f"only reports a number it gives to someone else: {span}", "restated")
    if _other_event(scan, m.start(), m.end(), given):
        return BeliefReading.failed(f"its last probability is about another event: {span}", "other_event")
    primary = next((p for p, _ in numbers if (a := _ATTACHED.match(scan, p.end())) is not None
                    and a.end("value") == m.end("value") and not _OPERATOR_BEFORE.search(scan, 0, p.start())), None)
    if primary is not None and (first := _number(primary)) is not None:
        # "0.0375, which is approximately 0.0375%": one statement in two forms, read as one value
        if abs(first.value - number.value) > _TOLERANCE:
            return BeliefReading.failed(f"its restatement disagrees: {_quote(visible[primary.start() : m.end()])}",
                                        "conflict")
        m, number = primary, first
    if not 0 <= number.value <= 1:
        return BeliefReading.failed(f"value outside [0, 1]: {_quote(visible[m.start() : m.end()])}", "out_of_range")
    return BeliefReading.ok(number.value, visible[m.start() : m.end()])


def _other_event(scan: str, start: int, end: int, given: str) -> bool:
    """Whether the value at ``scan[start:end]`` is a probability of another event than the asked question:
    in its clause, the nearest "probability / chance of <event>" names an event none of whose words
    (4 letters or more, compared by their first 5) occurs in the question or the prompt. An event in
    generic words ("of this", "that it happens") is the asked one; so is any event without ``given``."""
    if not given:
        return False
    left = max(scan.rfind(ch, 0, start) for ch in ".!?\n;") + 1
    right = min((i for i in (scan.find(ch, end) for ch in ".!?\n;") if i >= 0), default=len(scan))
    # "the probability of X is 0.3" ends just before the value; "a 30% chance of X" starts inside its span
    near = [e for e in _EVENT.finditer(scan, left, right)
            if start - 60 <= e.end() <= start or start <= e.start() <= end + 20]
    if not near:
        return False
    event = min(near, key=lambda e: start - e.end() if e.end() <= start else max(0, e.start() - end))
    words = {w.lower()[:5] for w in _WORD.findall(event.group("event"))} - {w[:5] for w in _GENERIC}
    if not words:
        return False
    return not words & _given_words(given)


@functools.lru_cache(maxsize=16)
def _given_words(given: str) -> frozenset[str]:
    """The words of the shown text by their first 5 letters (a long prompt is read once per turn, not per value)."""
    return frozenset(w.lower()[:5] for w in _WORD.findall(given))


def _given_values(given: str) -> set[float]:
    """The probabilities strictly inside (0, 1) that the text the model was shown states."""
    if not given:
        return set()
    scan = _NOT_PROBABILITY.sub(_blank, given.translate(_SPACES).replace("\\%", "%"))
    values = set()
    for m in _VALUE_RE.finditer(scan):
        number = _number(m)
        if number is not None and number.shaped and 0 < number.value < 1:
            values.add(round(number.value, 6))
    return values


def _reported(scan: str, c: _Candidate) -> bool:
    """Whether a prose value is someone else's, reported in passing ("Markets give a 45% chance"):
    a word naming someone else earlier in the same clause."""
    start = max(scan.rfind(ch, 0, c.start) for ch in ".!?\n;,") + 1
    for m in _CLAUSE.finditer(scan, start, c.start):
        start = m.end()
    # a word inside the event a probability is of names no one ("the probability that the average
    # temperature ..."): only words outside such qualifiers attribute the number
    events = [e.span("event") for e in _EVENT.finditer(scan, start, c.start)]
    return any(not any(a <= m.start() < b for a, b in events) for m in _OTHERS.finditer(scan, start, c.start))


def _drop_earlier_beliefs(scan: str, tiers: dict[int, list[_Candidate]], breaks: list[int]) -> None:
    """Remove values stated as the belief before the reasoning ("My current estimate is 45% before I
    work through this", the opening step the chain-of-thought prompt asks for) when a later paragraph
    states another: the later one is the turn's answer, and the two are no conflict."""
    later = [c.start for tier in tiers.values() for c in tier]
    for tier in (_EXPLICIT, _PROSE):
        kept = []
        for c in tiers[tier]:
            paragraph = bisect.bisect(breaks, c.start)
            start = max(scan.rfind(ch, 0, c.start) for ch in ".!?\n") + 1
            end = _SENTENCE_END.search(scan, c.end)
            sentence = scan[start : end.end() if end else len(scan)]
            earlier = _EARLIER.search(sentence) is not None and any(
                bisect.bisect(breaks, other) > paragraph for other in later)
            if not earlier:
                kept.append(c)
        tiers[tier] = kept


def _is_given(value: float, shown: set[float]) -> bool:
    return round(value, 6) in shown


def _restatements(scan: str, tier: list[_Candidate]) -> list[_Candidate]:
    """Values that restate a candidate in another form right after it: "0.3 (30%)", "1/2 or 50%",
    "0.3, which is approximately 3%". They are part of the same statement and must agree with it."""
    found = []
    for c in tier:
        end = c.end
        # a chain of forms ("1 in 10,000, which is 1 in 1,000, which is 99.99") is one statement: all must agree
        while (m := _ATTACHED.match(scan, end)) is not None:
            end = m.end("value")
            number = _number(m)
            if number is not None and (number.shaped or not 0 <= number.value <= 1):
                found.append(_Candidate(number.value, number.bare, c.start, end, restates=True))
    return found


def _is_answer_line(scan: str, c: _Candidate) -> bool:
    """Whether ``c`` is on a line of the protocol's form "Probability: X" (markdown allowed)."""
    line_start = scan.rfind("\n", 0, c.start) + 1
    return _ANSWER_LINE.match(scan, line_start, c.end) is not None


def _decide(candidates: list[_Candidate], visible: str, *, final: bool) -> BeliefReading:
    def span(c: _Candidate) -> str:
        return _quote(visible[c.start : c.end].strip())

    for c in candidates:
        if not 0 <= c.value <= 1:
            hint = " (no % sign)" if c.bare and 1 < c.value <= 100 else ""
            return BeliefReading.failed(f"value outside [0, 1]{hint}: {span(c)}", "out_of_range")
    values = [c.value for c in candidates]
    if max(values) - min(values) > _TOLERANCE:
        shown = ", ".join(span(c) for c in candidates)
        what = "final answers" if final else "answers, none of them explicitly final"
        return BeliefReading.failed(f"conflicting {what}: {shown}", "conflict")
    # values that agree are one belief: the last one stated in its own form (a restatement is rounded)
    chosen = [c for c in candidates if not c.restates][-1:] or candidates[-1:]
    return BeliefReading.ok(chosen[0].value, visible[chosen[0].start : chosen[0].end].strip())


def _quote(span: str, limit: int = 60) -> str:
    """A span for a reason string: quoted, and short enough to read in a table."""
    return repr(span if len(span) <= limit else span[: limit - 3] + "...")
