"""Constrained decoding for the ``local`` provider: a request's JSON schema as a per-row logits mask.

A request with inspect's ``GenerateConfig.response_schema`` decodes under a grammar compiled from the
schema's ``json_schema``: at every step each row's logits are masked to the tokens its own matcher allows,
so the text is JSON that validates against the schema. :class:`SchemaConstraint` is a transformers logits
processor that ``local_batching`` puts *before* the per-row sampler (``RowSampler``): temperature, top-k,
top-p and the Gumbel draw then see only allowed tokens, so a seeded row draws the same text alone or
batched, and greedy decoding takes the arg-max of the allowed tokens. Each row has a matcher of its own
(rows never influence each other); a row that has ended (an end-of-sequence token, a stop string, or
transformers' padding after either) is left alone. An end-of-sequence token is allowed only where the
JSON is complete, and is the only token allowed once nothing more can follow, so a row ends with its
JSON; a row cut by ``max_tokens`` keeps its ``max_tokens`` stop reason (and its half-written JSON).
Token ids past the tokenizer's vocabulary (models whose output layer is padded to a round width) are
always masked.

Whitespace between JSON tokens is limited to at most :data:`WHITESPACE_LIMIT` characters at each place
JSON allows it: unbounded whitespace lets a small model pad a reply with newlines until ``max_tokens``.
Object properties come in the schema's order (llguidance's rule). ``strict`` is ignored: the schema is
always enforced.

Library: llguidance (guidance-ai; a backend of vLLM and SGLang), chosen over xgrammar (SGLang's and
vLLM's default) on measurements made for this module (CPU, Python 3.11, SmolLM2's 49 152-token
tokenizer, a shared 2-core box):

* install: llguidance 1.9.1 is one 3.1 MB abi3 wheel (7.6 MB installed) with no dependencies; xgrammar
  0.2.9 is a 1.3 MB wheel, but on Linux x86-64 it requires ``triton`` (a 286 MB wheel, of no use to a
  CPU torch) and ``apache-tvm-ffi`` (13 MB installed), besides torch, transformers and pydantic;
* import: ``import llguidance`` 0.07 s; ``import xgrammar`` 0.3 s with torch already loaded (3 s without);
* API fit: llguidance builds its tokenizer from a fast Hugging Face tokenizer with the engine's own
  end-of-sequence ids (``llguidance.hf.from_tokenizer(eos_token=[...])``), has one matcher per row with a
  bitmask per step, validates a grammar with a readable error (``LLMatcher.validate_grammar``) and lets a
  schema cap whitespace; xgrammar's matchers fit as well;
* speed: mask plus token commit per step was 0.06 ms (a ``{"probability": number}`` schema) to 0.2 ms
  (with a bounded string) for llguidance and about 0.02 ms for xgrammar; a forward pass of even a 135M
  model on CPU takes tens of milliseconds, so the difference does not show.

This module imports torch and numpy at import time and llguidance when a :class:`SchemaGrammars` is
built; ``local.py`` checks that llguidance is installed before it builds one.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

WHITESPACE_LIMIT = 12
"""Most whitespace characters at one place between JSON tokens (room for a newline and indentation)."""
_COMPILE_OPTIONS: dict[str, Any] = {"whitespace_pattern": rf"[\x20\x0A\x0D\x09]{{1,{WHITESPACE_LIMIT}}}"}


class SchemaCompileError(ValueError):
    """A JSON schema the grammar library cannot turn into a grammar."""


def canonical_schema(json_schema: dict[str, Any]) -> str:
    """The schema as compact JSON: equal schemas give equal strings (the batching key).

    Keys are not sorted: the order of ``properties`` is the order the grammar writes them in.
    """
    return json.dumps(json_schema, separators=(",", ":"), ensure_ascii=False)


class SchemaGrammars:
    """Grammars for one tokenizer, compiled once per schema and cached (thread-safe)."""

    def __init__(self, tokenizer: Any, eos_ids: Sequence[int]) -> None:
        import llguidance
        import llguidance.hf

        self._llguidance = llguidance
        self.eos_ids = tuple(int(i) for i in eos_ids)
        try:
            # the end-of-sequence ids are the engine's own (generation config and tokenizer), so the grammar
            # allows exactly the tokens that end a row in generate
            self.tokenizer = llguidance.hf.from_tokenizer(tokenizer, eos_token=list(self.eos_ids))
        except ValueError as e:
            raise SchemaCompileError(
                f"constrained decoding needs a fast (tokenizers-backed) tokenizer; this one is "
                f"{type(tokenizer).__name__}: {e}"
            ) from e
        self.vocab_size = int(self.tokenizer.vocab_size)
        self._grammars: dict[str, str] = {}
        self._lock = threading.Lock()

    def grammar(self, schema: str) -> str:
        """The compiled grammar of ``schema`` (:func:`canonical_schema` text); raises SchemaCompileError."""
        with self._lock:
            cached = self._grammars.get(schema)
        if cached is not None:
            return cached
        matcher = self._llguidance.LLMatcher
        try:
            grammar = matcher.grammar_from_json_schema(schema, defaults=_COMPILE_OPTIONS)
        except ValueError as e:
            raise SchemaCompileError(str(e)) from e
        error = matcher.validate_grammar(grammar, self.tokenizer)
        if error:
            raise SchemaCompileError(" ".join(error.split()))  # one line: some messages draw a caret diagram
        with self._lock:
            self._grammars[schema] = grammar
        return grammar

    def constraint(self, schema: str, rows: int) -> SchemaConstraint:
        """A fresh logits processor for one batch of ``rows`` rows under ``schema``."""
        return SchemaConstraint(self, self.grammar(schema), rows)


class SchemaConstraint:
    """A logits processor masking each row to its own matcher's allowed tokens (module docstring).

    Called once per generation step with the whole sequences so far: from the second call on, the last
    column holds the tokens chosen at the previous step, which each unfinished row's matcher consumes.
    """

    def __init__(self, grammars: SchemaGrammars, grammar: str, rows: int) -> None:
        llguidance = grammars._llguidance
        # log_level 0: a matcher error is raised here with its message, not also printed to stderr
        self.matchers = [llguidance.LLMatcher(grammars.tokenizer, grammar, log_level=0) for _ in range(rows)]
        self.vocab_size = grammars.vocab_size
        self.eos_ids = frozenset(grammars.eos_ids)
        self.finished = [False] * rows
        self._started = False

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if scores.shape[0] != len(self.matchers):
            raise RuntimeError(f"SchemaConstraint made for {len(self.matchers)} rows got {scores.shape[0]}")
        if self._started:
            self._consume(input_ids[:, -1].tolist())
        self._started = True
        if all(self.finished):
            return scores
        blocked = torch.from_numpy(self._blocked(scores.shape[1])).to(scores.device)
        return scores.masked_fill(blocked, -torch.inf)

    def _consume(self, tokens: list[int]) -> None:
        for row, token in enumerate(tokens):
            if self.finished[row]:
                continue
            if token in self.eos_ids:
                # its own end-of-sequence token, or the padding generate appends once a stop string ended it
                self.finished[row] = True
                continue
            matcher = self.matchers[row]
            if not matcher.consume_token(token):
                raise RuntimeError(f"row {row} chose token {token}, which its schema does not allow: "
                                   f"{matcher.get_error()}")

    def _blocked(self, width: int) -> np.ndarray:
        """A (rows, width) bool array, True where a token is not allowed: everything the row's matcher
        refuses and every id past the vocabulary; all False for a finished row (left as it is)."""
        blocked = np.zeros((len(self.matchers), width), dtype=bool)
        n = min(width, self.vocab_size)
        for row, matcher in enumerate(self.matchers):
            if self.finished[row]:
                continue
            # bit b of 32-bit word w allows token 32 * w + b; the words come in the machine's byte order, and
            # as explicit little-endian bytes their bits unpack in token order
            words = np.frombuffer(matcher.compute_bitmask(), dtype=np.uint32)
            bits = np.unpackbits(words.astype("<u4", copy=False).view(np.uint8), bitorder="little")
            if not bits[:n].any():
                raise RuntimeError(f"the schema allows no next token in row {row}: "
                                   f"{matcher.get_error() or 'the matcher is stuck'}")
            blocked[row, :n] = bits[:n] == 0
            blocked[row, n:] = True
        return blocked
