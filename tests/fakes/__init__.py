"""Stand-in servers for the tests and benchmarks; not part of the wheel.

`openai_server` is a local OpenAI-compatible chat-completions server with deterministic answers,
configurable latency and fault injection, so inspect's real `openai-api` provider can be exercised
offline (retries, timeouts, eval-retry) without a model; `sglang_server` speaks SGLang's protocol for
the `sglang/<model>+<adapter>` backend; `http_base` is what both servers share.

pytest puts `tests/` on `sys.path`, so tests import `fakes.openai_server`; a shell or a benchmark runs
`PYTHONPATH=tests python -m fakes.openai_server` from a checkout.
"""
