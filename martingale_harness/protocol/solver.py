"""What the model is asked: prior -> evidence / reasoning -> posterior, as an inspect solver.

A domain supplies the question (the sample's input) and its evidence items
(``sample.metadata["evidence"]``, a list of texts). The protocol asks for the prior, lets the model
see the evidence and reason in the chosen paradigm, asks for the posterior, and records each belief
turn in the sample's store (key :data:`~martingale_harness.extraction.transcript.TURNS_KEY`) so extractors can
find them again, also when re-scoring an old log.

Paradigms (docs/architecture.md, section 1), each a sequence of belief turns b_0 (prior) .. b_T (posterior):

* ``direct``: prior; all evidence at once; posterior. T = 1.
* ``cot`` (the paper's chain-of-thought prompt): prior; all evidence at once with the instruction to
  think step by step, steps separated by an empty line, stating the current probability at the
  start and the final one at the end. T = 1; the step judge sees every paragraph as a step.
* ``debate`` (after the paper's debate prompt): prior; the evidence, then ``rounds`` rounds in which
  the model argues for Yes against a clone of itself (same model, its own conversation) arguing for
  No, one paragraph per turn, the model speaking first; then the posterior. T = 1;
  the model's arguments and the clone's replies are recorded as the posterior turn's context
  (``Turn.context``) and shown to the step judge as steps.
* ``evidence``: prior; then one evidence item per turn with a belief after each: T = number of
  evidence items (a sample without evidence gets one turn saying none is available).

Every belief prompt ends with :data:`ANSWER_FORMAT`, so a belief is always stated the same way.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any, Literal, get_args

from inspect_ai.model import (
    ChatMessage,
    ChatMessageSystem,
    ChatMessageUser,
    GenerateConfig,
    Model,
    ModelOutput,
    ResponseSchema,
    get_model,
)
from inspect_ai.solver import Generate, Solver, TaskState, solver
from inspect_ai.util import JSONSchema

from martingale_harness.errors import ConfigError
from martingale_harness.extraction.transcript import Stage
from martingale_harness.extraction.transcript_state import readable_reasoning
from martingale_harness.protocol.refusals import eval_id, sample_failed
from martingale_harness.protocol.seeding import Call, call_seed, run_seed
from martingale_harness.protocol.turns import RepeatRecord, TurnRecord, write_turns

Paradigm = Literal["direct", "cot", "debate", "evidence"]
SystemPrompt = Literal["none", "critical", "prior_conforming"]
PARADIGMS: tuple[str, ...] = get_args(Paradigm)
SYSTEM_PROMPTS: tuple[str, ...] = get_args(SystemPrompt)

SYSTEM_PROMPT_TEXTS: dict[str, str | None] = {
    "none": None,
    "critical": (
        "Always consider the possibility that you may be wrong. Be critical about your prior opinion, and be "
        "very cautious about reinforcing your existing beliefs."
    ),
    "prior_conforming": (
        "Exclusively emphasize arguments in favor of your existing belief. Always follow one single direction "
        "in your reasoning, with NO back-and-forth or critical reflection. Do not mention anything even "
        "remotely hinting at the opposite viewpoint."
    ),
}
"""The system prompts of the paper's appendix C.1, as given there (``none`` sends no system message)."""

ANSWER_FORMAT = (
    "Give a short justification, then end your answer with a final line of the form "
    "'Probability: X', where X is a number between 0 and 1."
)
PRIOR_INSTRUCTION = (
    "Before seeing any further information, what is your probability that the answer to this "
    "question is Yes?"
)
POSTERIOR_INSTRUCTION = (
    "Taking this information into account, what is your probability now that the answer to the "
    "question is Yes?"
)
COT_INSTRUCTION = (
    "Let's think step by step. Strictly follow this formatting rule: always separate steps with an empty line "
    "(two consecutive line breaks). Begin with a step stating, in your own words, your current probability "
    "that the answer is Yes, and end with a final line of the form 'Probability: X', where X is a number "
    "between 0 and 1."
)
"""The paper's chain-of-thought instruction (appendix C.2), with the prior and posterior asked in the
model's own words at the start and the end so self-report and judges read the same transcript."""
DEBATE_RULES = (
    "You are in a debate about this question. You argue that the answer is {side}; the other side argues "
    "that it is {other}. Answer the other side's arguments and establish your own position with strong, "
    "informative reasoning. Be thoughtful but brief: one paragraph per turn, substantive arguments rather "
    "than rhetoric, and no probability."
)
DEBATE_OPENING = "{evidence}\n\n" + DEBATE_RULES + " The debate lasts {rounds} round(s). Make your opening argument."
DEBATE_REPLY = "The other side argues:\n\n{argument}\n\nYour turn: answer them and argue that the answer is {side}."
DEBATE_CLONE_SETUP = "{question}\n\n{evidence}\n\n" + DEBATE_RULES
DEBATE_CLOSING = (
    "The debate is over. Having heard both sides, what is your probability now that the answer to the "
    "question is Yes?"
)
DEBATE_REASONER_LABEL = "Reasoner (arguing Yes): "
DEBATE_OPPONENT_LABEL = "Opponent (arguing No): "
"""How the debate's arguments are labelled in the closing turn's ``context`` (steps for the judge)."""
NO_EVIDENCE = "(No further information is available.)"
YES_NO_PROBE = "Answer with a single word, Yes or No: will the answer to the question be Yes?"
"""The side question behind the ``logprob`` extractor, asked after a belief turn."""
PROBE_TOP_LOGPROBS = 20  # the most OpenAI-compatible servers accept
PROBE_MAX_TOKENS = 4  # room for a leading space or newline token before the word

STRUCTURED_PROBE = (
    'Reply with only a JSON object of the form {"probability": X}, where X is your current probability '
    "(a number between 0 and 1) that the answer to the question is Yes."
)
"""The side request behind the ``structured`` extractor, asked after a belief turn. It names JSON and the
object's shape itself, because some APIs honour a schema only as "JSON mode" (DeepSeek)."""
class NumberSchema(JSONSchema):
    """inspect's :class:`JSONSchema` with ``multipleOf``, which it has no field for. Backends that build
    the request themselves dump schemas with ``serialize_as_any=True`` so the keyword reaches the decoder."""

    multipleOf: float | None = None


STRUCTURED_RESOLUTION = 0.0001
"""The probe's number is a multiple of this (at most 4 decimals). A schema cannot otherwise bound a
number's digits: with [0, 1] alone, 5 of 34 constrained SmolLM2-135M replies ran on as
``0.99999…`` until the token limit cut them."""
STRUCTURED_SCHEMA = JSONSchema(
    type="object",
    properties={"probability": NumberSchema(
        type="number", minimum=0, maximum=1, multipleOf=STRUCTURED_RESOLUTION,
        description="your current probability that the answer to the question is Yes")},
    required=["probability"],
    additionalProperties=False,
)
"""What the structured probe's reply must be: ``{"probability": X}``, X in [0, 1] with at most 4 decimals,
nothing else."""
STRUCTURED_RESPONSE_SCHEMA = ResponseSchema(name="belief", json_schema=STRUCTURED_SCHEMA, strict=True)
STRUCTURED_SCHEMA_PROMPT = "Your reply must be valid JSON that conforms to this JSON schema:\n{schema}"
"""Added to :data:`STRUCTURED_PROBE` in the ``prompt`` mode, where nothing else enforces the schema."""
STRUCTURED_MAX_TOKENS = 64
"""``{"probability": 0.1234}`` is about 10 tokens; room for whitespace and for unconstrained backends."""
StructuredMode = Literal["constrained", "inspect", "prompt"]
STRUCTURED_MODES: tuple[str, ...] = get_args(StructuredMode)
_INSPECT_PROVIDERS = "inspect_ai.model._providers."

logger = logging.getLogger(__name__)
_warned_prompted: set[tuple[str | None, str]] = set()


def check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    """Raise a :class:`ConfigError` naming the setting and its allowed values."""
    if value not in allowed:
        raise ConfigError(f"{name}={value!r} is not supported; allowed: {', '.join(allowed)}")


def prior_prompt(question: str) -> str:
    return f"{question}\n\n{PRIOR_INSTRUCTION} {ANSWER_FORMAT}"


def show_evidence(evidence: list[str]) -> str:
    shown = "\n\n".join(evidence) if evidence else NO_EVIDENCE
    return f"Here is further information.\n\n{shown}"


def posterior_prompt(evidence: list[str]) -> str:
    return f"{show_evidence(evidence)}\n\n{POSTERIOR_INSTRUCTION} {ANSWER_FORMAT}"


def cot_prompt(evidence: list[str]) -> str:
    return f"{show_evidence(evidence)}\n\n{COT_INSTRUCTION}"


def evidence_prompt(item: str, index: int, total: int) -> str:
    return (f"Here is further information ({index} of {total}).\n\n{item}\n\n"
            f"{POSTERIOR_INSTRUCTION} {ANSWER_FORMAT}")


def debate_closing_prompt(last_reply: str) -> str:
    """The debate's posterior turn: the opponent's last argument, then the belief question."""
    return f"The other side argues:\n\n{last_reply}\n\n{DEBATE_CLOSING} {ANSWER_FORMAT}"


def is_belief_prompt(text: str) -> bool:
    """Whether a user message asks for a belief (every belief prompt carries the answer format)."""
    return ANSWER_FORMAT in text or COT_INSTRUCTION in text


def probe_record(output: ModelOutput) -> dict[str, Any]:
    """The part of a probe's output that extractors need, small enough for the sample store."""
    logprobs = output.choices[0].logprobs if output.choices else None
    positions = None
    if logprobs is not None:
        positions = [
            {"token": lp.token, "logprob": lp.logprob,
             "top": [[top.token, top.logprob] for top in (lp.top_logprobs or [])]}
            for lp in logprobs.content
        ]
    return {"completion": output.completion, "model": output.model, "positions": positions}


def structured_mode(api: object) -> StructuredMode:
    """How a model's backend meets the structured probe's JSON schema.

    ``constrained``: the backend says it constrains decoding to a request's ``response_schema``
    (``constrains_response_schema = True`` on its ModelAPI: the ``sim`` agents, and the project's
    backends that implement it). ``inspect``: one of inspect's own providers, which passes the schema
    to its API (enforced where the API supports structured output; some take it as JSON mode only, a
    few ignore it). ``prompt``: anything else, including a backend declaring
    ``constrains_response_schema = False``: the schema is written into the request instead.
    """
    declared = getattr(api, "constrains_response_schema", None)
    if declared is not None:
        return "constrained" if declared else "prompt"
    return "inspect" if type(api).__module__.startswith(_INSPECT_PROVIDERS) else "prompt"


def structured_request(mode: str) -> tuple[str, GenerateConfig]:
    """The structured probe's user turn and generate config (without a seed) in ``mode``.

    In the ``prompt`` mode the schema goes into the text and no ``response_schema`` is sent, so a
    request never claims a constraint its backend does not apply.
    """
    check_choice("structured mode", mode, STRUCTURED_MODES)
    if mode == "prompt":
        schema = json.dumps(STRUCTURED_SCHEMA.model_dump(exclude_none=True, serialize_as_any=True))
        return (f"{STRUCTURED_PROBE}\n\n{STRUCTURED_SCHEMA_PROMPT.format(schema=schema)}",
                GenerateConfig(max_tokens=STRUCTURED_MAX_TOKENS))
    return STRUCTURED_PROBE, GenerateConfig(max_tokens=STRUCTURED_MAX_TOKENS,
                                            response_schema=STRUCTURED_RESPONSE_SCHEMA)


def _warn_prompted(model: Model) -> None:
    """Say once per run and model that its structured beliefs are prompted, not constrained."""
    key = (eval_id(), str(model))
    if key in _warned_prompted:
        return
    _warned_prompted.add(key)
    logger.warning(
        "structured probe: %s cannot constrain its output to a JSON schema (its backend neither sets "
        "constrains_response_schema = True nor is one of inspect's providers), so its structured beliefs are "
        "prompted, not constrained: the schema is written into the request (recorded per turn as mode 'prompt')",
        model)


@solver
def belief_protocol(
    paradigm: str = "direct", system_prompt: str = "none", rounds: int = 2, yes_no_probe: bool = False,
    prior_samples: int = 1, structured_probe: bool = False,
) -> Solver:
    """Elicit a belief trajectory; ``paradigm``, ``system_prompt`` and ``rounds`` as in docs/architecture.md, section 1.

    With ``prior_samples`` >= 2 the prior is elicited ``prior_samples - 1`` more times, each in a
    fresh conversation with the same system prompt and prior question (side calls), and
    recorded with the prior turn (``repeats``): independent measurements of the same prior, the
    instrument of the noise-robust ``ms_slope_iv``. Use a temperature above 0, or the repeats are
    copies of the first answer and carry no independent noise.

    In a seeded run (``--seed N``) every call gets a seed of its own, derived from N, the sample, the
    epoch and the call (:mod:`martingale_harness.protocol.seeding`), so no two calls share random draws and a
    call's draws do not depend on the batch it ran in; unseeded runs send no seed.

    With ``yes_no_probe`` every belief turn is followed by :data:`YES_NO_PROBE`, sent to the same
    model with logprobs requested, on a copy of the conversation: later turns and the other
    extractors never see it. It costs one short call per belief turn.

    With ``structured_probe`` every belief turn (and every prior repeat) is likewise followed, on a copy
    of the conversation, by :data:`STRUCTURED_PROBE`: the belief as ``{"probability": X}`` under
    :data:`STRUCTURED_RESPONSE_SCHEMA`, enforced as :func:`structured_mode` says (recorded with the
    reply); one more short call per belief turn.
    """
    check_choice("paradigm", paradigm, PARADIGMS)
    check_choice("system_prompt", system_prompt, SYSTEM_PROMPTS)
    if not 1 <= rounds <= 10:
        raise ConfigError(f"rounds={rounds} is not supported; allowed: 1 to 10")
    if not 1 <= prior_samples <= 10:
        raise ConfigError(f"prior_samples={prior_samples} is not supported; allowed: 1 to 10")

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        try:
            return await elicit(state, generate)
        except Exception as e:
            sample_failed(state.sample_id, e)  # heard under --display none too
            raise

    async def elicit(state: TaskState, generate: Generate) -> TaskState:
        evidence = [str(e) for e in (state.metadata or {}).get("evidence", [])]
        question = state.input_text
        turns: list[TurnRecord] = []
        seed_of = _call_seeds(state)

        async def ask(stage: Stage, prompt: str, context: list[str] | None = None) -> TaskState:
            index = len(turns)
            state.messages.append(ChatMessageUser(content=prompt))
            new_state = await generate(state, **seed_of(Call("belief", index)))
            message = len(new_state.messages) - 1
            live = not new_state.completed
            probe = await _probe(new_state.messages, seed_of(Call("probe", index))) if yes_no_probe and live else None
            structured = (await _structured(new_state.messages, seed_of(Call("structured", index)))
                          if structured_probe and live else None)
            repeats = [await _repeat(new_state.messages[:message], k, seed_of) for k in range(1, prior_samples)
                       ] if stage == "prior" and live else []
            turns.append(TurnRecord(stage=stage, prompt=prompt, message=message,
                                    stop_reason=new_state.output.stop_reason, context=tuple(context or ()),
                                    probe=probe, structured=structured, repeats=tuple(repeats)))
            write_turns(new_state.store, turns)
            return new_state

        adapter = _adapter_record()
        if adapter is not None:
            state.metadata["adapter"] = adapter
        # the sample's input is the bare question; the protocol owns every message
        text = SYSTEM_PROMPT_TEXTS[system_prompt]
        state.messages = [ChatMessageSystem(content=text)] if text else []
        state = await ask("prior", prior_prompt(question))
        if state.completed:  # a limit or error ended the sample: the scorer records the missing turns
            return state
        if paradigm == "direct":
            return await ask("posterior", posterior_prompt(evidence))
        if paradigm == "cot":
            return await ask("posterior", cot_prompt(evidence))
        if paradigm == "evidence":
            for i, item in enumerate(evidence or [NO_EVIDENCE], start=1):
                last = i == max(len(evidence), 1)
                state = await ask("posterior" if last else "evidence", evidence_prompt(item, i, max(len(evidence), 1)))
                if state.completed and not last:
                    return state
            return state
        context, last_reply = await _debate(state, generate, question, evidence, rounds, seed_of)
        if state.completed:
            return state
        return await ask("posterior", debate_closing_prompt(last_reply), context)

    async def _probe(messages: list[ChatMessage], seed: dict[str, int]) -> dict[str, Any]:
        probe = await get_model().generate(
            [*messages, ChatMessageUser(content=YES_NO_PROBE)],
            config=GenerateConfig(logprobs=True, top_logprobs=PROBE_TOP_LOGPROBS, max_tokens=PROBE_MAX_TOKENS,
                                  **seed),
        )
        return probe_record(probe)

    async def _structured(messages: list[ChatMessage], seed: dict[str, int]) -> dict[str, Any]:
        model = get_model()
        mode = structured_mode(model.api)
        if mode == "prompt":
            _warn_prompted(model)
        prompt, config = structured_request(mode)
        output = await model.generate([*messages, ChatMessageUser(content=prompt)],
                                      config=config.merge(GenerateConfig(**seed)))
        return {"completion": output.completion, "model": output.model, "mode": mode,
                "stop_reason": output.stop_reason}

    async def _repeat(messages: list[ChatMessage], k: int, seed_of: SeedOf) -> RepeatRecord:
        output = await get_model().generate(messages, config=GenerateConfig(**seed_of(Call("repeat", 0, k))))
        answered = [*messages, output.message]
        return RepeatRecord(
            answer=output.completion, reasoning=_reasoning(output), stop_reason=output.stop_reason,
            probe=await _probe(answered, seed_of(Call("probe", 0, k))) if yes_no_probe else None,
            structured=await _structured(answered, seed_of(Call("structured", 0, k))) if structured_probe else None,
        )

    return solve


SeedOf = Callable[[Call], dict[str, int]]


def _call_seeds(state: TaskState) -> SeedOf:
    """``call -> {"seed": s}`` for the generate config of each call of this sample-epoch; ``{}`` unseeded."""
    seed = run_seed()
    if seed is None:
        return lambda call: {}
    return lambda call: {"seed": call_seed(seed, state.sample_id, state.epoch, call)}


def _adapter_record() -> dict[str, Any] | None:
    """The evaluated model's LoRA adapter (name, path, fingerprint, canary), where its backend reports one.

    Backends that apply an adapter expose ``adapter_record()`` on their ModelAPI; it goes into every
    sample's metadata because inspect's log header has no place a provider can write to.
    """
    report = getattr(get_model().api, "adapter_record", None)
    record = report() if callable(report) else None
    return record if isinstance(record, dict) else None


def _reasoning(output: ModelOutput) -> str | None:
    if not output.choices or not isinstance(output.message.content, list):
        return None
    return readable_reasoning(output.message.content)


async def _debate(
    state: TaskState, generate: Generate, question: str, evidence: list[str], rounds: int, seed_of: SeedOf
) -> tuple[list[str], str]:
    """Run the debate in ``state.messages``: the labelled turns (steps for the judge) and the
    clone's last reply, which the closing prompt shows."""
    clone = get_model()
    clone_messages: list[ChatMessage] = []
    clone_setup = DEBATE_CLONE_SETUP.format(question=question, evidence=show_evidence(evidence), side="No",
                                            other="Yes")
    steps: list[str] = []
    reply = ""
    prompt = DEBATE_OPENING.format(evidence=show_evidence(evidence), rounds=rounds, side="Yes", other="No")
    for round_ in range(rounds):
        state.messages.append(ChatMessageUser(content=prompt))
        state = await generate(state, **seed_of(Call("argument", 1, round_)))
        if state.completed:
            break
        argument = state.output.completion
        steps.append(f"{DEBATE_REASONER_LABEL}{argument}")
        # the clone's own conversation: the reasoner's arguments are its user turns
        lead = f"{clone_setup}\n\nThe other side opens:\n\n" if not clone_messages else "The other side argues:\n\n"
        clone_messages.append(ChatMessageUser(content=f"{lead}{argument}\n\nYour turn."))
        clone_output = await clone.generate(clone_messages, config=GenerateConfig(**seed_of(Call("clone", 1, round_))))
        reply = clone_output.completion
        clone_messages.append(clone_output.message)
        steps.append(f"{DEBATE_OPPONENT_LABEL}{reply}")
        prompt = DEBATE_REPLY.format(argument=reply, side="Yes")
    return steps, reply
