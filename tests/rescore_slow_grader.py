"""A slow, observable grader for the rescore tests: ``python tests/rescore_slow_grader.py rescore ...`` runs
``martingale`` with the provider ``slowjudge`` registered.

``slowjudge/judge`` answers exactly as ``sim/judge`` (noise 0), after ``SLOW_JUDGE_DELAY`` seconds, at most
4 calls at a time (its own limit: inspect may open more connections than ``max_connections``), and appends
one line per call to ``SLOW_JUDGE_CALLS`` when that is set.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from inspect_ai.model import ChatMessage, ChatMessageUser, GenerateConfig, ModelAPI, ModelOutput, modelapi
from inspect_ai.tool import ToolChoice, ToolInfo

from martingale_harness.backends.sim_provider import SimJudge


@modelapi(name="slowjudge")
class SlowJudgeAPI(ModelAPI):
    def __init__(self, model_name: str, base_url: str | None = None, api_key: str | None = None,
                 config: GenerateConfig | None = None, **model_args: Any) -> None:
        super().__init__(model_name, base_url, api_key, [], config or GenerateConfig())
        self.judge = SimJudge(0.0, 0)
        self.slots: asyncio.Semaphore | None = None

    def max_connections(self) -> int:
        return 4

    async def generate(self, input: list[ChatMessage], tools: list[ToolInfo], tool_choice: ToolChoice,
                       config: GenerateConfig) -> ModelOutput:
        self.slots = self.slots or asyncio.Semaphore(4)
        async with self.slots:
            await asyncio.sleep(float(os.environ.get("SLOW_JUDGE_DELAY", "0")))
        calls = os.environ.get("SLOW_JUDGE_CALLS")
        if calls:
            with open(calls, "a", encoding="utf-8") as f:
                f.write("call\n")
        question = next(m for m in input if isinstance(m, ChatMessageUser)).text
        return ModelOutput.from_content(model=self.model_name, content=self.judge.answer(question))


if __name__ == "__main__":
    from martingale_harness.cli import main

    main()
