"""inspect model provider ``sim/<agent>``: the simulated reference reasoners as a ModelAPI.

``--model sim/bayesian``, ``sim/entrenched -M kappa=0.2``, ``sim/noisy -M noise=0.1``,
``sim/inert``; every agent also takes ``-M seed=N`` and ``-M strength=S``.

The agent answers turn k of a conversation (k = number of assistant turns already in it) with
its belief b_k: the first answer is the prior, each later user turn counts as one piece of
evidence. The sample is identified by its first user message, so the same question always gets
the same latent path. Answers are short natural-language reasoning followed by the belief in one
of several phrasings real models use, so the extractors are exercised, not bypassed.
"""

from __future__ import annotations

from typing import Any

from inspect_ai._util.error import PrerequisiteError  # shown without a traceback
from inspect_ai.model import (
    ChatMessage,
    ChatMessageAssistant,
    ChatMessageUser,
    GenerateConfig,
    ModelAPI,
    ModelOutput,
    ModelUsage,
    modelapi,
)
from inspect_ai.tool import ToolChoice, ToolInfo

from martingale_harness.backends.simulated import AGENT_KINDS, SimAgent

_PHRASINGS = (
    "Probability: {p:.4f}",
    "My estimate is {pct:.2f}%.",
    "I'd put the probability at {p:.4f}.",
    'Final answer: {{"probability": {p:.4f}}}',
    "**Probability:** {pct:.2f}%",
)
_PHRASING_STREAM = 1  # separate random stream, so wording never changes a belief


def _float_arg(name: str, value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"-M {name} must be a number, got {value!r}") from None


@modelapi(name="sim")
class SimulatedReasonerAPI(ModelAPI):
    """The ``sim`` provider; see the module docstring."""

    def __init__(
        self,
        model_name: str,
        base_url: str | None = None,
        api_key: str | None = None,
        config: GenerateConfig | None = None,
        **model_args: Any,
    ) -> None:
        super().__init__(model_name, base_url, api_key, [], config or GenerateConfig())
        try:
            self.agent = self._agent(model_name, model_args)
        except ValueError as e:  # a user's mistake in --model or -M: one line, no traceback
            raise PrerequisiteError(f"martingale: {e}") from e

    @staticmethod
    def _agent(model_name: str, model_args: dict[str, Any]) -> SimAgent:
        known = {"kappa", "noise", "seed", "strength"}
        unknown = sorted(set(model_args) - known)
        if unknown:
            raise ValueError(f"sim/{model_name}: unknown model args {unknown}; allowed: {sorted(known)}")
        if model_name not in AGENT_KINDS:
            raise ValueError(f"unknown simulated agent 'sim/{model_name}'; choose one of "
                             + ", ".join(f"sim/{k}" for k in AGENT_KINDS))
        seed = model_args.get("seed", 0)
        if isinstance(seed, bool) or not str(seed).lstrip("-").isdigit():
            raise ValueError(f"-M seed must be an integer, got {seed!r}")
        return SimAgent(
            kind=model_name,  # type: ignore[arg-type]
            kappa=_float_arg("kappa", model_args.get("kappa", 0.0)),
            noise=_float_arg("noise", model_args.get("noise", 0.0)),
            strength=_float_arg("strength", model_args.get("strength", 1.0)),
            seed=int(seed),
        )

    def max_connections(self) -> int:
        # answers are computed in-process; concurrency only costs scheduling
        return 1000

    async def generate(
        self,
        input: list[ChatMessage],
        tools: list[ToolInfo],
        tool_choice: ToolChoice,
        config: GenerateConfig,
    ) -> ModelOutput:
        users = [m for m in input if isinstance(m, ChatMessageUser)]
        if not users:
            raise ValueError("sim reasoner needs at least one user message (the question)")
        key = users[0].text
        turn = sum(isinstance(m, ChatMessageAssistant) for m in input)
        belief = self.agent.path(key, turn).stated[turn]
        text = self._render(key, turn, belief)
        usage = ModelUsage(
            input_tokens=sum(len(m.text.split()) for m in input),
            output_tokens=len(text.split()),
            total_tokens=sum(len(m.text.split()) for m in input) + len(text.split()),
        )
        output = ModelOutput.from_content(model=f"sim/{self.model_name}", content=text)
        output.usage = usage
        return output

    def _render(self, key: str, turn: int, belief: float) -> str:
        rng = self.agent.rng(key, stream=_PHRASING_STREAM + turn)
        phrasing = _PHRASINGS[int(rng.integers(len(_PHRASINGS)))]
        if turn == 0:
            lead = "Before weighing any specific evidence, I consider the base rate for questions like this."
        else:
            previous = self.agent.path(key, turn).stated[turn - 1]
            direction = "toward Yes" if belief > previous else "toward No" if belief < previous else "neither way"
            lead = f"Weighing the new information, it moves me {direction}."
        answer = phrasing.format(p=belief, pct=100 * belief)
        return f"{lead}\n\n{answer}"
