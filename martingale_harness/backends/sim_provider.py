"""inspect model provider ``sim/<agent>``: the simulated reference reasoners as a ModelAPI.

``--model sim/bayesian``, ``sim/entrenched -M kappa=0.2``, ``sim/noisy -M noise=0.1``,
``sim/inert``; every agent also takes ``-M seed=N`` and ``-M strength=S``; ``sim/entrenched`` takes
``-M horizon=H`` (how many consecutive updates keep the exact drift, default 2). Every ``sim`` model takes
``-M name=ALIAS``, the run's short name in reports (``display``).

Two arguments change only how beliefs are written, for teaching small students (``martingale
distill``): ``-M grid=G`` states every belief rounded to the nearest multiple of G (0 < G <= 0.5;
``grid=0.1`` gives "0.3", "0.7"), so the drift holds only up to that rounding; ``-M phrasing=K``
always uses the K-th answer phrasing (0 = ``Probability: X``) instead of a seeded choice among them;
``-M terse=true`` answers with the belief line alone (no reasoning sentence, chain of thought ignored).
``-M answer_chars=N`` pads every answer (beliefs and debate arguments) to N characters with a neutral
filler paragraph before the belief line, stating no number: a stand-in of a real model's length, so
conversations grow as they would (``martingale grid --dry-run`` counts prompts with it).

``sim/scripted -M answers=FILE`` answers from a JSONL script by sample id and belief turn
(``backends/scripted.py``), for plugin and protocol tests on exactly the text they are about.

``sim/judge`` (``-M noise=S``, ``-M seed=N``) is a simulated grader for judge extractors: it reads
the JSON list of steps on the last line of its prompt and returns, as a JSON list, 0.5 for "before
any step" and then, per step, the last probability the step states (carrying the previous belief
over a step that states none), each with optional Gaussian noise (clipped to [0, 1]). Given a
single answer instead (``single_judge``), it replies with the last probability that answer states.

Asked the protocol's Yes/No probe (``logprob`` extractor), an agent answers "Yes" or "No" and, when
logprobs are requested, gives the two tokens probabilities b_k and 1 - b_k for the belief b_k it has
just stated (clipped to [1e-9, 1 - 1e-9]: a token probability is never exactly 0). Without
``logprobs`` in the request it returns none, as real backends do.

The agents constrain their output to a request's ``response_schema`` (``constrains_response_schema``,
read by the protocol's structured probe): a request carrying one, after a belief, is answered with the
schema-valid ``{"probability": b}``, b the belief the conversation's last answer stated (to 4 decimals,
on the ``grid`` when there is one; after a repeat of the prior, that repeat's restatement).
``sim/scripted`` and ``sim/judge`` do not constrain: they answer such a request as any other.

The agent answers the k-th belief request of a conversation (a user message carrying the
protocol's answer format; k = 0 for the prior) with its belief b_k: each belief request after the
first counts as one piece of evidence, whatever came between (a debate counts as one step). A
request for anything else (a debate argument, the debate clone's turns) gets a short argument that
states no probability. Asked for chain of thought, it restates its previous belief in its first
paragraph before giving the new one, as the instruction asks. The prior question asked again in the
same sample and epoch (the protocol's k-th independent re-elicitation, ``prior_samples``; counted per
sample and epoch) is stated with fresh elicitation noise (``SimAgent.restate``). Epoch e of a sample is
the agent's draw e − 1 (``SimAgent.path``): the same prior, fresh evidence signals and noise; a run with
``--seed N`` takes its draws from a block of its own (:func:`draw_index`), so runs with different seeds
answer as a sampled model does (same latent priors, new draws) and a seed repeats its run. System
prompts do not change the agents. The sample is identified by its first user message, so the same
question always gets the same latent path, in every paradigm. On ``martingale/bayes`` problems the
agents instead act on the problem's exact posteriors, as oracles for its stated model
(``backends/sim_bayes.py``). Answers are short natural-language reasoning followed by the belief in one
of several phrasings real models use,
so the extractors are exercised, not bypassed.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from inspect_ai.model import (
    ChatMessage,
    ChatMessageUser,
    GenerateConfig,
    Logprob,
    Logprobs,
    ModelAPI,
    ModelOutput,
    ModelUsage,
    TopLogprob,
    modelapi,
)
from inspect_ai.tool import ToolChoice, ToolInfo

from martingale_harness._inspect_compat import PrerequisiteError  # shown without a traceback
from martingale_harness.backends.scripted import ScriptedAnswers
from martingale_harness.backends.sim_bayes import BayesOracle, bayes_oracle
from martingale_harness.backends.simulated import AGENT_KINDS, DEFAULT_HORIZON, SimAgent
from martingale_harness.protocol.seeding import run_seed
from martingale_harness.protocol.solver import COT_INSTRUCTION, YES_NO_PROBE, is_belief_prompt
from martingale_harness.reporting.display import NAME_ARG

_PHRASINGS = (
    "Probability: {p:.4f}",
    "My estimate is {pct:.2f}%.",
    "I'd put the probability at {p:.4f}.",
    'Final answer: {{"probability": {p:.4f}}}',
    "**Probability:** {pct:.2f}%",
)
_FILLER = "This sentence stands in for the length of a real model's answer and states no estimate. "
_ARGUMENT = (
    "The strongest considerations favour my side: the information presented is consistent with it, and the "
    "opposing case rests on assumptions that may not hold."
)
_PHRASING_STREAM = 1  # separate random stream, so wording never changes a belief
_STATED = re.compile(r"(\d+(?:\.\d+)?)\s*(%?)")


@dataclass(frozen=True)
class AnswerStyle:
    """How an agent writes its beliefs (``-M grid=G``, ``-M phrasing=K``); never what it believes."""

    ARGS: ClassVar[tuple[str, ...]] = ("grid", "phrasing", "terse", "answer_chars")
    grid: float | None = None
    phrasing: int | None = None
    terse: bool = False
    answer_chars: int | None = None

    @classmethod
    def from_args(cls, model_args: dict[str, Any]) -> AnswerStyle:
        grid = model_args.get("grid")
        phrasing = model_args.get("phrasing")
        terse = model_args.get("terse", False)
        if str(terse).lower() not in {"true", "false", "1", "0"}:
            raise ValueError(f"-M terse must be true or false, got {terse!r}")
        chars = model_args.get("answer_chars")
        style = cls(None if grid is None else _float_arg("grid", grid),
                    None if phrasing is None else _int_arg(phrasing, "phrasing"),
                    str(terse).lower() in {"true", "1"},
                    None if chars is None else _int_arg(chars, "answer_chars"))
        if style.answer_chars is not None and (style.answer_chars < 1 or style.terse):
            raise ValueError(f"-M answer_chars must be a positive integer without terse, got {chars!r}")
        if style.grid is not None and not 0.0 < style.grid <= 0.5:
            raise ValueError(f"grid must lie in (0, 0.5], got {style.grid}")
        if style.phrasing is not None and not 0 <= style.phrasing < len(_PHRASINGS):
            raise ValueError(f"phrasing must be one of 0..{len(_PHRASINGS) - 1} ({' | '.join(_PHRASINGS)}), "
                             f"got {style.phrasing}")
        return style

    def pad(self, text: str) -> str:
        """``text`` with filler before its last paragraph, to ``answer_chars`` characters (never cut)."""
        missing = (self.answer_chars or 0) - len(text) - 2
        if missing <= 0:
            return text
        filler = (_FILLER * (missing // len(_FILLER) + 1))[:missing]
        head, sep, last = text.rpartition("\n\n")
        return f"{head}{sep}{filler}\n\n{last}" if sep else f"{filler}\n\n{text}"

    def round(self, belief: float) -> float:
        """The belief as stated: the nearest multiple of ``grid`` (unchanged without a grid)."""
        if self.grid is None:
            return belief
        return min(1.0, max(0.0, round(round(belief / self.grid) * self.grid, 10)))

    def format(self, template: str, belief: float) -> str:
        """``template`` filled with ``p`` and ``pct``, with no more decimals than the grid needs."""
        if self.grid is None:
            return template.format(p=belief, pct=100 * belief)
        decimals = max(0, -math.floor(math.log10(self.grid) + 1e-9)) if self.grid < 1 else 0
        if not math.isclose(round(self.grid, decimals), self.grid):  # e.g. 0.05 needs 2 decimals, not 1
            decimals += 1
        pct_decimals = max(0, decimals - 2)
        fixed = template.replace("{p:.4f}", f"{{p:.{decimals}f}}").replace("{pct:.2f}", f"{{pct:.{pct_decimals}f}}")
        return fixed.format(p=belief, pct=100 * belief)


class SimJudge:
    """Reads the beliefs the simulated agents state; see the module docstring."""

    def __init__(self, noise: float, seed: int) -> None:
        if not 0.0 <= noise <= 0.5:
            raise ValueError(f"noise must lie in [0, 0.5], got {noise}")
        self.noise = noise
        self.seed = seed

    def answer(self, prompt: str) -> str:
        try:
            steps = json.loads(prompt.strip().rsplit("\n", 1)[-1])
        except json.JSONDecodeError:
            steps = None
        if not isinstance(steps, list):  # a single-answer prompt: read the answer after its last "Answer:"
            answer = prompt.rsplit("Answer:", 1)[-1]
            belief = self._stated(answer)
            if belief is None:
                return "The answer states no probability."
            return f"{self._noisy(prompt, [belief])[0]:.4f}"
        beliefs = [0.5]
        for step in steps:
            stated = self._stated(str(step))
            beliefs.append(beliefs[-1] if stated is None else stated)
        return json.dumps(self._noisy(prompt, beliefs))

    @staticmethod
    def _stated(text: str) -> float | None:
        found = [float(v) / (100 if pct else 1) for v, pct in _STATED.findall(text)]
        found = [v for v in found if 0.0 <= v <= 1.0]
        return found[-1] if found else None

    def _noisy(self, prompt: str, beliefs: list[float]) -> list[float]:
        if self.noise:
            rng = SimAgent("bayesian", seed=self.seed).rng(prompt, stream=2)
            beliefs = list(np.clip(np.array(beliefs) + self.noise * rng.standard_normal(len(beliefs)), 0.0, 1.0))
        return [round(float(b), 4) for b in beliefs]


SEEDED_DRAWS = 1_000_000
"""Draws reserved for each run seed: a run seeded with N draws epoch e as draw SEEDED_DRAWS·(N + 1) + e − 1."""


def draw_index(epoch: int, seed: int | None) -> int:
    """The agent's draw for epoch ``epoch`` of a run with ``--seed`` ``seed`` (module docstring)."""
    base = 0 if seed is None else SEEDED_DRAWS * (int(seed) + 1)
    return base + max(epoch - 1, 0)


def _active_sample() -> tuple[object, int, str | None]:
    """The id and epoch of the sample being generated for, and the id of this run of it (unique per
    sample-epoch of an eval: a memoized model serves several evals); ``(None, 1, None)`` outside an eval."""
    from martingale_harness._inspect_compat import sample_active  # no public accessor for the running sample

    active = sample_active()
    return (None, 1, None) if active is None else (active.sample.id, active.epoch, active.id)


def _active_sample_id() -> object:
    """The id of the sample being generated for (None outside an eval)."""
    return _active_sample()[0]


def _int_arg(value: Any, name: str = "seed") -> int:
    if isinstance(value, bool) or not str(value).lstrip("-").isdigit():
        raise ValueError(f"-M {name} must be an integer, got {value!r}")
    return int(value)


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
        self.agent: SimAgent | None = None
        self.judge: SimJudge | None = None
        self.script: ScriptedAnswers | None = None
        self.style = AnswerStyle()
        self.constrains_response_schema = False  # set below: only the agents answer a response_schema's JSON
        # how often each run of a sample-epoch was asked a question's prior: the second time on is a repeat
        self._prior_asks: dict[tuple[str, str], int] = {}
        model_args = {k: v for k, v in model_args.items() if k != NAME_ARG}  # a display name only (display.py)
        try:
            if model_name == "judge":
                self.judge = self._judge(model_args)
            elif model_name == "scripted":
                self.script = self._script(model_args)
            else:
                self.style = AnswerStyle.from_args(model_args)
                self.agent = self._agent(model_name, {k: v for k, v in model_args.items()
                                                      if k not in AnswerStyle.ARGS})
        except ValueError as e:  # a user's mistake in --model or -M: one line, no traceback
            raise PrerequisiteError(f"martingale: {e}") from e
        self.constrains_response_schema = self.agent is not None

    @staticmethod
    def _judge(model_args: dict[str, Any]) -> SimJudge:
        unknown = sorted(set(model_args) - {"noise", "seed"})
        if unknown:
            raise ValueError(f"sim/judge: unknown model args {unknown}; allowed: ['noise', 'seed']")
        return SimJudge(_float_arg("noise", model_args.get("noise", 0.0)), _int_arg(model_args.get("seed", 0)))

    @staticmethod
    def _script(model_args: dict[str, Any]) -> ScriptedAnswers:
        unknown = sorted(set(model_args) - {"answers"})
        if unknown:
            raise ValueError(f"sim/scripted: unknown model args {unknown}; allowed: ['answers']")
        if "answers" not in model_args:
            raise ValueError("sim/scripted needs -M answers=FILE (a JSONL of scripted answers)")
        return ScriptedAnswers.load(str(model_args["answers"]))

    @staticmethod
    def _agent(model_name: str, model_args: dict[str, Any]) -> SimAgent:
        known = {"horizon", "kappa", "noise", "seed", "strength"}
        unknown = sorted(set(model_args) - known)
        known |= set(AnswerStyle.ARGS)
        if unknown:
            raise ValueError(f"sim/{model_name}: unknown model args {unknown}; allowed: {sorted(known)}")
        if model_name not in AGENT_KINDS:
            raise ValueError(f"unknown simulated agent 'sim/{model_name}'; choose one of "
                             + ", ".join(f"sim/{k}" for k in (*AGENT_KINDS, "judge", "scripted")))
        return SimAgent(
            kind=model_name,  # type: ignore[arg-type]
            kappa=_float_arg("kappa", model_args.get("kappa", 0.0)),
            noise=_float_arg("noise", model_args.get("noise", 0.0)),
            strength=_float_arg("strength", model_args.get("strength", 1.0)),
            seed=_int_arg(model_args.get("seed", 0)),
            horizon=_int_arg(model_args.get("horizon", DEFAULT_HORIZON), "horizon"),
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
            raise ValueError("sim models need at least one user message (the question)")
        key = users[0].text
        logprobs = None
        stop_reason = "stop"
        if self.script is not None:
            scripted = self.script.answer(_active_sample_id(), self._belief_turn(users))
            text, stop_reason = scripted.text, scripted.stop_reason
        elif self.judge is not None:
            text = self.judge.answer(key)
        else:
            assert self.agent is not None
            # a martingale/bayes problem: the agent acts on its exact posteriors (backends/sim_bayes.py)
            agent = bayes_oracle(self.agent, [u.text for u in users]) or self.agent
            turn = sum(is_belief_prompt(u.text) for u in users[:-1])
            last = users[-1].text
            _, epoch, sample_run = _active_sample()
            draw = draw_index(epoch, run_seed())
            if last == YES_NO_PROBE and turn > 0:
                belief = self.style.round(agent.path(key, turn - 1, draw).stated[turn - 1])
                text, logprobs = self._probe_answer(belief, config)
            elif config.response_schema is not None and turn > 0:
                belief = self._last_stated(agent, key, turn, sample_run, draw)
                text = json.dumps({"probability": round(self.style.round(belief), 4)})
            elif is_belief_prompt(last):
                belief = agent.path(key, turn, draw).stated[turn]
                if turn == 0 and sample_run is not None:
                    asked = self._prior_asks.get((sample_run, key), 0)
                    self._prior_asks[(sample_run, key)] = asked + 1
                    if asked:
                        belief = agent.restate(key, 0, elicitation=asked, draw=draw)
                text = self._render(agent, key, turn, self.style.round(belief), cot=COT_INSTRUCTION in last,
                                    draw=draw)
            else:
                text = self.style.pad(_ARGUMENT)
        usage = ModelUsage(
            input_tokens=sum(len(m.text.split()) for m in input),
            output_tokens=len(text.split()),
            total_tokens=sum(len(m.text.split()) for m in input) + len(text.split()),
        )
        output = ModelOutput.from_content(model=f"sim/{self.model_name}", content=text,
                                          stop_reason=stop_reason)  # type: ignore[arg-type]
        output.usage = usage
        if logprobs is not None:
            output.choices[0].logprobs = logprobs
        return output

    def _last_stated(self, agent: SimAgent | BayesOracle, key: str, turn: int, sample_run: str | None,
                     draw: int) -> float:
        """The belief the last answer of a conversation with ``turn`` belief requests stated.

        After the prior that is its latest elicitation: the protocol asks its side requests right after
        each answer, so after the k-th repeat the prior has been asked k + 1 times.
        """
        asked = self._prior_asks.get((sample_run, key), 0) if sample_run is not None else 0
        if turn == 1 and asked > 1:
            return agent.restate(key, 0, elicitation=asked - 1, draw=draw)
        return agent.path(key, turn - 1, draw).stated[turn - 1]

    @staticmethod
    def _belief_turn(users: list[ChatMessageUser]) -> int | None:
        """k for the k-th belief request of the conversation; None for anything else (probe, debate)."""
        if users[-1].text == YES_NO_PROBE or not is_belief_prompt(users[-1].text):
            return None
        return sum(is_belief_prompt(u.text) for u in users[:-1])

    @staticmethod
    def _probe_answer(belief: float, config: GenerateConfig) -> tuple[str, Logprobs | None]:
        text = "Yes" if belief >= 0.5 else "No"
        if not config.logprobs:
            return text, None
        p = min(max(belief, 1e-9), 1.0 - 1e-9)
        top = [TopLogprob(token="Yes", logprob=math.log(p)), TopLogprob(token="No", logprob=math.log1p(-p))]
        top.sort(key=lambda t: -t.logprob)
        chosen = top[0]
        return text, Logprobs(content=[Logprob(token=chosen.token, logprob=chosen.logprob, top_logprobs=top)])

    def _render(self, agent: SimAgent | BayesOracle, key: str, turn: int, belief: float, cot: bool = False,
                draw: int = 0) -> str:
        rng = agent.rng(key, stream=_PHRASING_STREAM + turn)
        drawn = int(rng.integers(len(_PHRASINGS)))  # drawn even when fixed, so the stream is the same
        phrasing = _PHRASINGS[drawn if self.style.phrasing is None else self.style.phrasing]
        previous = self.style.round(agent.path(key, turn, draw).stated[turn - 1]) if turn > 0 else belief
        if turn == 0:
            lead = "Before weighing any specific evidence, I consider the base rate for questions like this."
        else:
            direction = "toward Yes" if belief > previous else "toward No" if belief < previous else "neither way"
            lead = f"Weighing the new information, it moves me {direction}."
        answer = self.style.format(phrasing, belief)
        if self.style.terse:
            return answer
        if cot and turn > 0:
            start = f"My current estimate is {self.style.format('{pct:.2f}%', previous)} before I work through this."
            return self.style.pad(
                f"{start}\n\n{lead}\n\nPutting the steps together, I settle on a final answer.\n\n{answer}")
        return self.style.pad(f"{lead}\n\n{answer}")
