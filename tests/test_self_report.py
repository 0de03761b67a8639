"""The self_report parser: every accepted phrasing, every refusal, realistic long answers."""

from __future__ import annotations

import asyncio

import pytest
from martingale_plugins.self_report import SelfReportExtractor, read_probability

ACCEPTED = [
    # plain labels and numbers
    ("Probability: 0.72", 0.72),
    ("probability = .72", 0.72),
    ("72%", 0.72),
    ("72 %", 0.72),
    ("72.5%", 0.725),
    ("0.72.", 0.72),
    ("**0.7**", 0.7),
    ("**Probability:** 0.7", 0.7),
    ("Probability: **0.7**", 0.7),
    ("Probability:\n0.7", 0.7),
    ("Probability: 0", 0.0),
    ("Probability: 1", 1.0),
    ("Probability: 0.0000", 0.0),
    ("100%", 1.0),
    ("0%", 0.0),
    # fractions
    ("7/10", 0.7),
    ("3 in 10", 0.3),
    ("3 out of 10", 0.3),
    ("There is a 1 in 4 chance.", 0.25),
    ("1 in 1,000 chance", 0.001),
    # ranges read as their midpoint
    ("around 65-70%", 0.675),
    ("65–70%", 0.675),
    ("65 – 70%", 0.675),
    ("between 0.6 and 0.7", 0.65),
    ("between 60% and 70%", 0.65),
    ("Probability: 0.6 to 0.7", 0.65),
    ("0.3-0.4", 0.35),
    # JSON anywhere in the text
    ('{"probability": 0.7}', 0.7),
    ('Here is my answer: {"probability": 0.7} as requested.', 0.7),
    ('{"belief": 0.7}', 0.7),
    ('{"belief_percent": 70}', 0.7),
    ('{"probabilityPercent": 70}', 0.7),
    ('{"probability": "70%"}', 0.7),
    ('{"p": 0.4}', 0.4),
    ('{"reasoning": "polls show 45%", "probability": 0.35}', 0.35),
    ('{"final_probability": 0.3, "market_probability": 0.5}', 0.3),
    ('Final answer: {"probability": 0.4532}', 0.4532),
    ("{'probability': 0.7}", 0.7),  # Python repr, not JSON: read through the label
    # labels, final and first-person
    ("Final answer: 0.35", 0.35),
    ("My final estimate is 35%", 0.35),
    ("Final Probability Estimate: 0.62", 0.62),
    ("Final answer: Probability: 0.62", 0.62),
    ("**Final Answer:** **0.62**", 0.62),
    ("\\boxed{0.42}", 0.42),
    ("My answer: 40%", 0.4),
    ("My estimate is 45.32%.", 0.4532),
    ("My forecast: 12%", 0.12),
    ("I'd put it at 40%", 0.4),
    ("I'd put the probability at 0.4532.", 0.4532),
    ("I'd give it a 40% chance", 0.4),
    ("I estimate 0.3", 0.3),
    ("credence = 0.15", 0.15),
    ("likelihood: 0.2", 0.2),
    ("Chance: 30%", 0.3),
    ("P(yes) = 0.3", 0.3),
    ("Yes: 30%\nNo: 70%", 0.3),
    ("Probability of Yes: 0.3; Probability of No: 0.7", 0.3),
    ("probability that this resolves yes: 0.25", 0.25),
    ("Probability (0-1): 0.7", 0.7),
    ("| Probability | 0.7 |", 0.7),
    ("Probability: ~0.7", 0.7),
    ("Probability: 0.3 - 2 factors matter most", 0.3),
    # percentages only where the label says percent
    ("Probability (%): 70", 0.7),
    ("Percent chance: 70", 0.7),
    ("Probability in percent: 70", 0.7),
    # prose
    ("The answer is 0.35", 0.35),
    ("0.3 probability", 0.3),
    ("70% likely", 0.7),
    ("Markets give a 45% chance.\n\nOverall the probability is about 0.35.", 0.35),
    # an earlier or someone else's number is not the answer
    ("Previous estimate: 0.3\nUpdated estimate: 0.6", 0.6),
    ("Prior probability: 0.3\nPosterior probability: 0.6", 0.6),
    ("The market probability is 45%, but my estimate is 30%.", 0.3),
    ("Probability: 0.3\n\nFinal answer (probability): 0.62", 0.62),
    # identical repeats are not a conflict
    ("Probability: 0.3\n\nSo, once more: Probability: 0.3", 0.3),
    ("Probability: 30%. Final answer: 0.3", 0.3),
    # hedges are not refusals
    ("I can't predict the future with certainty, but there's roughly a 60% chance.", 0.6),
    ("While I can't predict the future, there is a 60% chance.", 0.6),
    ("I cannot assign a precise number, but if forced, Probability: 0.5", 0.5),
    # numbers that are not probabilities are skipped, not read
    ("In 2025 there are 3 candidates; Step 3 of the plan costs $30,000.\n\n0.2", 0.2),
    ("Resolves on 2025-11-02.\n\nI put it at 0.15", 0.15),
    ("1. Polls\n2. Base rates\n\nOverall: 0.45", 0.45),
    ("The chance of 3 candidates tying is small.\n\n0.2", 0.2),
    ("Step 3: probability 0.2", 0.2),
    ("At this point 0.3 seems right", 0.3),
    ("I'd update from 40% to 60%", 0.6),
]


@pytest.mark.parametrize("text,expected", ACCEPTED)
def test_accepted_forms(text: str, expected: float) -> None:
    reading = read_probability(text)
    assert reading.status == "ok", reading.reason
    assert reading.value == expected
    assert isinstance(reading.value, float)
    assert reading.matched and reading.matched in text


@pytest.mark.parametrize(
    "text,matched",
    [
        ("Probability: 0.72", "Probability: 0.72"),
        ("around 65-70%", "65-70%"),
        ("0.72.", "0.72"),
        ('x {"probability": 0.7} y', '{"probability": 0.7}'),
        ("My final estimate is 35%", "My final estimate is 35%"),
        ("\\boxed{0.42}", "\\boxed{0.42}"),
    ],
)
def test_matched_is_the_span_read(text: str, matched: str) -> None:
    assert read_probability(text).matched == matched


REFUSED = [
    # (text, a fragment the reason must contain)
    ("", "empty"),
    ("   \n\t ", "empty"),
    ("no numbers here", "no number"),
    ("The outcome is genuinely uncertain.", "no number"),
    ("Probability: 1.3", "outside [0, 1]"),
    ("150%", "outside [0, 1]"),
    ("Probability: -0.1", "outside [0, 1]"),
    ("Probability: 70", "outside [0, 1] (no % sign)"),
    ("My estimate is 70", "outside [0, 1] (no % sign)"),
    ("Probability: 60-70", "outside [0, 1] (no % sign)"),
    ('{"probability": 70}', "outside [0, 1] (no % sign)"),
    ('{"belief": 70}', "outside [0, 1] (no % sign)"),
    ("Probability: 0.3 ... on reflection ... Probability: 0.8", "conflicting"),
    ("Probability: 0.3\n\nProbability: 0.8", "conflicting"),
    ("Final answer: 0.3\nFinal answer: 0.31", "conflicting"),
    ('{"probability": 0.3}\nProbability: 0.8', "conflicting"),
    ("I think there's a 30% chance it passes the Senate and a 50% chance it is signed.", "conflicting"),
    ("I cannot assign a probability to this.", "declined"),
    ("I won't speculate.", "declined"),
    ("As an AI I can't predict the future.", "declined"),
    ("As an AI language model, I cannot predict elections in 2024.", "declined"),
    ("I'm sorry, but I can't help with that.", "declined"),
    ("I cannot assign a probability. Polls show a 45% chance.", "declined"),
    ("<think>The answer is 0.9", "<think>"),
    ("<think>Let me think. 0.9</think>", "<think>"),
    ("2024", "no probability-like number"),
    ("2025-11-02", "no probability-like number"),
    ("$30,000", "no probability-like number"),
    ("1. first\n2. second", "no probability-like number"),
    ("Step 3", "no probability-like number"),
    ("In 2024 there were 3 candidates.", "no probability-like number"),
    ("Probability: 0.72.5", "no probability-like number"),
    ("0.7\n\nLet me know if you need anything else.", "final paragraph"),
]


@pytest.mark.parametrize("text,why", REFUSED)
def test_refused(text: str, why: str) -> None:
    reading = read_probability(text)
    assert reading.status == "failed"
    assert reading.value is None
    assert reading.reason and why in reading.reason


LONG_REASONING = """Let me think about whether the bill passes by the end of 2025.

1. Base rates: historically, the base-rate probability is about 20% for bills at this stage.
2. There are 3 candidates for the committee chair, and Step 3 of the process is a floor vote.
3. Polls show 45% public support; in 2024 a similar bill got 52% support and still failed.
4. Lobbying spend reached $30,000 by 2025-11-02, which is small by historical standards.
5. Markets price a 35% chance, but markets on this topic have been 10 points too pessimistic.

Weighing these, the evidence points somewhat toward passage: 7 of the 10 key votes are
committed, and the committee chair has scheduled the hearing for March 3.

Final probability: 0.62"""

R1_STYLE = """<think>
The user asks about the merger closing. Early on I thought 0.9, maybe 90%, but the regulator
objected on 2025-10-01. Probability: 0.9 seems too high now. Perhaps 0.35? Let me settle.
</think>

The regulator's objection weighs heavily, though a remedy is still possible.

My answer: 40%"""


@pytest.mark.parametrize(
    "text,expected,matched",
    [
        (LONG_REASONING, 0.62, "Final probability: 0.62"),
        (R1_STYLE, 0.4, "My answer: 40%"),
        # the opening <think> tag sat in the chat template (DeepSeek-R1)
        ("Reasoning, 0.9 maybe.\n</think>\n\nProbability: 0.25", 0.25, "Probability: 0.25"),
        # <thinking> blocks and tags in any case
        ("<THINKING>x 0.9</THINKING>\nEstimate: 0.1", 0.1, "Estimate: 0.1"),
        # unlabelled answer after reasoning: the last probability in the last paragraph
        ("Polls show 45%, and in 2024 it was 50%.\n\nOn balance I land near 35%, not 45%.\n\nSo: 0.33",
         0.33, "0.33"),
        ("Weighing the new information, it moves me toward Yes.\n\n**Probability:** 45.32%", 0.4532,
         "Probability:** 45.32%"),
        ("Before weighing any specific evidence, I consider the base rate for questions like this.\n\n"
         'Final answer: {"probability": 0.0713}', 0.0713, '{"probability": 0.0713}'),
    ],
)
def test_realistic_answers(text: str, expected: float, matched: str) -> None:
    reading = read_probability(text)
    assert reading.status == "ok", reading.reason
    assert reading.value == expected
    assert reading.matched == matched


def test_numbers_inside_think_are_never_the_answer() -> None:
    assert read_probability("<think>Probability: 0.9</think>\n\nProbability: 0.2").value == 0.2
    assert read_probability("<think>Probability: 0.9</think>\n\nNo idea.").status == "failed"


def test_percent_keys_read_every_number_as_percent() -> None:
    # documented choice: under a percent label, 0.5 means 0.5%
    assert read_probability('{"pct": 0.5}').value == 0.005


def test_long_answer_is_fast() -> None:
    import time

    text = LONG_REASONING.replace("Final probability: 0.62", "") * 50 + "Final probability: 0.62"
    start = time.perf_counter()
    assert read_probability(text).value == 0.62
    assert time.perf_counter() - start < 1.0


def test_extractor_reads_each_turns_visible_answer() -> None:
    from martingale_harness.extraction.transcript import Transcript, Turn

    transcript = Transcript(
        "Will it happen?",
        (
            Turn("prior", "p", "Probability: 0.3", reasoning="I first thought 0.9"),
            Turn("posterior", "p", "I cannot assign a probability."),
        ),
    )
    readings = asyncio.run(SelfReportExtractor().extract(transcript))
    assert [r.value for r in readings] == [0.3, None]
    assert readings[1].status == "failed"


# --- the rules measured on real answers (benchmarks/extraction_corpus/README.md) ---------------------

CROSS_TIER = [
    # (text, expected value or None, failure kind when None)
    # a restatement joined to the answer must agree with it
    ("Probability: 0.3, which is approximately 3%", None, "conflict"),
    ("Probability: 0.3 (30%)", 0.3, None),
    ("The chance is 1/2 or 50%.", 0.5, None),
    ("My estimate is 0.4, i.e. 40%.", 0.4, None),
    # a labelled answer and a prose statement that disagree, none marked final
    ("My estimate is 0.3.\n\nThere is a 60% chance that it happens.", None, "conflict"),
    # ... unless one is explicitly final
    ("There is a 60% chance it happens.\n\nFinal answer: 0.3", 0.3, None),
    # the protocol's line ending the answer outranks prose in passing, not another own answer
    ("There is a 60% chance of rain on the day.\n\nProbability: 0.3", 0.3, None),
    ("So my answer is 0.37.\n\nProbability: 0.41", None, "conflict"),
    # someone else's number, reported in passing
    ("Forecasters give it a 70% chance. I think there's a 40% chance.", 0.4, None),
]


ONE_VALUE = [
    # values within the reading tolerance (0.005) are one belief, the unrounded form read
    ("Final answer: 0.3\nFinal answer: 0.30001", 0.30001),
    ("Probability: 0.01174, which is approximately 1.17%", 0.01174),
    ("So it comes to 0.01174, which is approximately 1.17%", 0.01174),
]


@pytest.mark.parametrize("text,expected", ONE_VALUE)
def test_values_within_the_reading_tolerance_are_one_belief(text: str, expected: float) -> None:
    assert read_probability(text).value == pytest.approx(expected)


def test_a_restatement_off_by_a_factor_of_100_is_a_conflict_wherever_it_is_read() -> None:
    # the protocol's line, and the last number of an answer without labels: the same rule
    for text in ("Probability: 0.0375, which is approximately 0.0375%",
                 "So it is 0.0375, which is approximately 0.0375%"):
        reading = read_probability(text)
        assert reading.kind == "conflict", (text, reading)


QUESTION = "Will the HCA market close price on 2035-12-05 be higher than on 2025-12-07?"


@pytest.mark.parametrize("text,kind", [
    ("The probability of a recession in Europe is 0.3.", "other_event"),
    ("There is a 30% chance of rain tomorrow.", "other_event"),
    ("You are given a probability of 0.6.", "restated"),
    ("We are told the chance is 0.6 here.", "restated"),
])
def test_whose_number_it_is_comes_before_what_it_is(text: str, kind: str) -> None:
    reading = read_probability(text, given=QUESTION)
    assert reading.status == "failed" and reading.kind == kind, reading


@pytest.mark.parametrize("text,expected", [
    ("There is a 30% chance that the HCA price will be higher.", 0.3),  # the asked event, in its own words
    ("There is a 30% chance of this.", 0.3),
    ("There is a 60% chance of rain on the day.\n\nProbability: 0.3", 0.3),
    ("The probability of a recession in Europe is 0.3.", 0.3),  # without the question, nothing to tell it by
])
def test_the_asked_event_is_read(text: str, expected: float) -> None:
    given = "" if "recession" in text else QUESTION
    assert read_probability(text, given=given).value == pytest.approx(expected)


@pytest.mark.parametrize("text,expected,kind", CROSS_TIER)
def test_conflicts_across_tiers(text: str, expected: float | None, kind: str | None) -> None:
    reading = read_probability(text)
    if expected is None:
        assert reading.status == "failed" and reading.kind == kind, reading
    else:
        assert reading.status == "ok" and reading.value == pytest.approx(expected), reading


def test_a_value_the_prompt_gave_is_not_the_belief_unless_adopted() -> None:
    given = "The crowd forecast on 2025-10-26 was 0.43 (43%)."
    restated = read_probability("The crowd forecast is 43% chance of Yes, so it is quite uncertain.", given=given)
    assert restated.status == "failed" and restated.kind == "restated"
    assert read_probability("Given all this, 0.43", given=given).kind == "restated"
    # without the prompt the same text is read: the rule needs to know what the model was shown
    assert read_probability("There is a 43% chance of Yes.").value == pytest.approx(0.43)
    # adopted: stated as the model's own answer
    assert read_probability("I agree with the crowd.\n\nProbability: 0.43", given=given).value == pytest.approx(0.43)
    assert read_probability("My estimate is 43%.", given=given).value == pytest.approx(0.43)
    # restated, then its own belief: no conflict between them
    assert read_probability("There's a 43% chance per the crowd, but I see a 30% chance.",
                            given=given).value == pytest.approx(0.3)


def test_a_truncated_answer_is_read_only_from_an_explicit_final_statement() -> None:
    cut = "Considering the base rate, there is maybe a 30% chance that the bill passes, but the"
    assert read_probability(cut).value == pytest.approx(0.3)
    reading = read_probability(cut, truncated=True)
    assert reading.status == "failed" and reading.kind == "truncated"
    assert read_probability("Probability: 0.3\n\nThe reason is that the", truncated=True).value == 0.3
    assert read_probability("Final estimate: 25%. Also", truncated=True).value == 0.25
    assert read_probability("The", truncated=True).kind == "truncated"


@pytest.mark.parametrize("cut", ["Probability: 0.", "Probability: 0.3", "Final answer: 0.4", "Probability: 0.35."])
def test_a_number_the_token_limit_cuts_is_not_read(cut: str) -> None:
    # found with sim/scripted: "Probability: 0." cut off there read as 0, though it may have become 0.35
    assert read_probability(cut).status == "ok"
    reading = read_probability(cut, truncated=True)
    assert reading.kind == "truncated"
    assert reading.reason == "cut off by the token limit in the middle of its last number"
    assert read_probability(cut + "\n\nBecause the", truncated=True).status == "ok"  # the number was complete


def test_a_cut_number_with_three_decimals_is_read() -> None:
    # the corpus's rule 8: later digits move it by under 0.001
    assert read_probability("Probability: 0.924198762989999", truncated=True).value == pytest.approx(0.924198762989999)
    assert read_probability("Probability: 0.925", truncated=True).value == pytest.approx(0.925)


@pytest.mark.parametrize("text,kind", [
    ("", "no_number"), ("words only", "no_number"), ("Probability: 0.XX", "no_number"),
    ("Probability: 70", "out_of_range"), ("Probability: 0.3\n\nProbability: 0.8", "conflict"),
    ("I cannot assign a probability to this.", "refusal"), ("<think>0.9", "no_number"),
])
def test_every_failure_has_a_kind(text: str, kind: str) -> None:
    reading = read_probability(text)
    assert reading.status == "failed" and reading.kind == kind and reading.reason


def test_extractor_passes_stop_reason_and_prompt() -> None:
    from martingale_harness.extraction.transcript import Transcript, Turn

    transcript = Transcript("Will it happen? The market says 55%.", (
        Turn("prior", "Will it happen? The market says 55%.", "The market says a 55% chance."),
        Turn("posterior", "More.", "It seems likely, a 70% chance, but the", stop_reason="max_tokens"),
    ))
    readings = asyncio.run(SelfReportExtractor().extract(transcript))
    assert [r.kind for r in readings] == ["restated", "truncated"]


@pytest.mark.parametrize("text,expected", [
    # the protocol's question wording echoed as the label
    ("The probability that the answer to this question is Yes is 1.", 1.0),
    ("The probability that the view is correct is 0.2.", 0.2),
    ("The answer to this question is: 0.4", 0.4),
    ("The answer is: 0.6", 0.6),
    # arithmetic: the value is the result after "=", not the first operand
    ("The probability of the answer being Yes is 1 - 0.5 = 0.5, which is the probability of Yes.", 0.5),
    ("The probability is 0.6 * 0.5 = 0.3.", 0.3),
])
def test_echoed_wording_and_arithmetic(text: str, expected: float) -> None:
    reading = read_probability(text)
    assert reading.status == "ok" and reading.value == pytest.approx(expected), reading


@pytest.mark.parametrize("text", ["Probability: 0 to 1", "Probability: between 0 and 1", "0-100%"])
def test_the_scale_echoed_is_no_estimate(text: str) -> None:
    assert read_probability(text).status == "failed"


@pytest.mark.parametrize("text,expected", [
    ("This view is correct. The answer is indeed 1.", 1.0),
    ("The probability of acceptance is 0.7.", 0.7),
    ("The probability of the view being correct is 0.2.", 0.2),
])
def test_domain_wording_and_fillers(text: str, expected: float) -> None:
    assert read_probability(text).value == pytest.approx(expected)


def test_a_labelled_value_the_prompt_gave_needs_adopting() -> None:
    given = "e.g. ... we'd have: 1+(1+2)/12=0.25."
    assert read_probability("The answer to this question is: 0.25", given=given).kind == "restated"
    assert read_probability("Probability: 0.25", given=given).value == 0.25  # its own answer line
    assert read_probability("My estimate: 0.25", given=given).value == 0.25  # first person
