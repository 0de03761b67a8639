"""Helpers for the tests of plugins and of the harness: `plugins` (check an extractor against the contract,
transcripts from answers) and `tiny_model` (a tiny random model for training tests; the SmolLM2 GGUF's path).

The stand-in servers the harness's own tests use live in the source tree's `tests/fakes/`, not in the wheel.
"""
