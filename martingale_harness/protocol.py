"""What the model is asked: prior -> evidence -> posterior, as an inspect solver.

A domain supplies the question (the sample's input) and its evidence items
(``sample.metadata["evidence"]``, a list of texts). The protocol asks for the prior, shows the
evidence, asks for the posterior, and records each belief turn in the sample's store (key
:data:`~martingale_harness.transcript.TURNS_KEY`) so extractors can find them again, also when
re-scoring an old log.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from inspect_ai.model import ChatMessageSystem, ChatMessageUser, GenerateConfig, ModelOutput, get_model
from inspect_ai.solver import Generate, Solver, TaskState, solver

from martingale_harness.errors import ConfigError
from martingale_harness.transcript import TURNS_KEY, Stage

Paradigm = Literal["direct"]
SystemPrompt = Literal["none"]
PARADIGMS: tuple[str, ...] = get_args(Paradigm)
SYSTEM_PROMPTS: tuple[str, ...] = get_args(SystemPrompt)

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


YES_NO_PROBE = "Answer with a single word, Yes or No: will the answer to the question be Yes?"
"""The side question behind the ``logprob`` extractor, asked after a belief turn."""
PROBE_TOP_LOGPROBS = 20  # the most OpenAI-compatible servers accept
PROBE_MAX_TOKENS = 4  # room for a leading space or newline token before the word


def check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    """Raise a :class:`ConfigError` naming the setting and its allowed values."""
    if value not in allowed:
        raise ConfigError(f"{name}={value!r} is not supported; allowed: {', '.join(allowed)}")


def prior_prompt(question: str) -> str:
    return f"{question}\n\n{PRIOR_INSTRUCTION} {ANSWER_FORMAT}"


def posterior_prompt(evidence: list[str]) -> str:
    shown = "\n\n".join(evidence) if evidence else "(No further information is available.)"
    return f"Here is further information.\n\n{shown}\n\n{POSTERIOR_INSTRUCTION} {ANSWER_FORMAT}"


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


@solver
def belief_protocol(paradigm: str = "direct", system_prompt: str = "none", yes_no_probe: bool = False) -> Solver:
    """Elicit prior and posterior beliefs; ``paradigm`` and ``system_prompt`` as in DESIGN §3.

    With ``yes_no_probe`` every belief turn is followed by :data:`YES_NO_PROBE`, sent to the same
    model with logprobs requested, on a copy of the conversation: later turns and the other
    extractors never see it. It costs one short call per belief turn.
    """
    check_choice("paradigm", paradigm, PARADIGMS)
    check_choice("system_prompt", system_prompt, SYSTEM_PROMPTS)

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        evidence = list((state.metadata or {}).get("evidence", []))
        turns: list[dict[str, object]] = []

        async def ask(stage: Stage, prompt: str) -> TaskState:
            state.messages.append(ChatMessageUser(content=prompt))
            new_state = await generate(state)
            turn: dict[str, object] = {"stage": stage, "prompt": prompt, "message": len(new_state.messages) - 1}
            if yes_no_probe and not new_state.completed:
                probe = await get_model().generate(
                    [*new_state.messages, ChatMessageUser(content=YES_NO_PROBE)],
                    config=GenerateConfig(logprobs=True, top_logprobs=PROBE_TOP_LOGPROBS, max_tokens=PROBE_MAX_TOKENS),
                )
                turn["probe"] = probe_record(probe)
            turns.append(turn)
            new_state.store.set(TURNS_KEY, list(turns))
            return new_state

        # the sample's input is the bare question; the protocol owns every message
        state.messages = [ChatMessageSystem(content=text) for text in _system_messages(system_prompt)]
        state = await ask("prior", prior_prompt(state.input_text))
        if state.completed:  # a limit or error ended the sample: the scorer records the missing turn
            return state
        return await ask("posterior", posterior_prompt(evidence))

    return solve


def _system_messages(system_prompt: str) -> list[str]:
    return [] if system_prompt == "none" else [system_prompt]
