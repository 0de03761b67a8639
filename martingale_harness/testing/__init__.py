"""Test and benchmark helpers; nothing here is used by the harness itself.

`openai_server` is a local OpenAI-compatible chat-completions server with deterministic answers,
configurable latency and fault injection, so inspect's real `openai-api` provider can be exercised
offline (retries, timeouts, eval-retry) without a model; `sglang_server` speaks SGLang's protocol for
the `sglang/<model>+<adapter>` backend; `http_base` is what both servers share.
"""

from martingale_harness.testing.openai_server import FAULT_KINDS, FaultPlan, FaultRule, LocalOpenAIServer

__all__ = ["FAULT_KINDS", "FaultPlan", "FaultRule", "LocalOpenAIServer"]
