"""Backend-independent LoRA helpers: the ``base+adapter`` model syntax, the adapter canary, fingerprints.

Every backend that takes ``--model <backend>/<base>+<adapter>`` (SGLang, local transformers + peft)
shares these, so the syntax and the refusal rule are the same everywhere (docs/architecture.md, section 4):

* :func:`split_adapter` reads ``base+adapter`` or ``base:adapter`` (``+`` wins; a ``:`` splits only
  where what follows is a plain name or a path, so ``org/model`` names and ``host:port`` never split).
* The canary: before the first sample a backend sends :data:`CANARY_PROMPT` greedily through the base
  model and through the adapter and hands both replies to :func:`check_canary`, which raises
  :class:`AdapterNotAppliedError` when they are identical: an adapter that changes nothing was almost
  certainly never applied (LoRA disabled on the server, an all-zero adapter, a server that ignores the
  adapter selector). Logprobs count as different only beyond ``logprob_atol``, so numerical noise from
  batching cannot make an ignored adapter look applied.
* :func:`adapter_fingerprint` hashes the adapter's weight files so a log says exactly which weights ran.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

WEIGHT_FILES = ("adapter_model.safetensors", "adapter_model.bin")
"""The weight files peft writes (``save_pretrained``); the fingerprint covers those present."""

CANARY_PROMPT = (
    "Complete the following passage in your own words. The lighthouse keeper climbed the narrow stairs at "
    "dusk, as she had every evening for thirty years. Tonight, though, something on the horizon made her stop "
    "and reach for the old brass telescope. What she saw was"
)
"""The fixed canary prompt: open-ended, so any change in the weights tends to show in the first tokens."""

CANARY_MAX_TOKENS = 16
"""New tokens per canary reply (greedy decoding)."""

DEFAULT_LOGPROB_ATOL = 1e-4
"""Largest per-token logprob difference still treated as 'identical' (batching / kernel noise)."""


@dataclass(frozen=True)
class AdapterSpec:
    """A base model and the LoRA adapter to apply to it."""

    base: str  # served model / base model id or path
    adapter: str  # adapter name or local path

    @property
    def is_local_path(self) -> bool:
        """True when the adapter names something on this machine (loaded from disk, fingerprinted)."""
        return Path(self.adapter).expanduser().exists()

    @property
    def name(self) -> str:
        """A short adapter name: the path's last component for a path, else the adapter as given."""
        if self.is_local_path or _looks_like_path(self.adapter):
            return Path(self.adapter).expanduser().resolve().name or self.adapter
        return self.adapter


def _looks_like_path(text: str) -> bool:
    return text.startswith(("/", "~", "./", "../", ".\\", "..\\")) or Path(text).expanduser().exists()


def split_adapter(model_name: str) -> AdapterSpec | None:
    """'base+adapter' or 'base:adapter' -> AdapterSpec; plain name -> None. '+' wins over ':'; a ':'
    only splits when what follows is non-empty and contains no '/' unless it is a path ('base:/abs/path').

    Raises ValueError for a ``+`` with nothing on one side (``base+``, ``+adapter``): that is a typo,
    not a plain model name.
    """
    if "+" in model_name:
        base, _, adapter = model_name.partition("+")
        if not base or not adapter:
            raise ValueError(f"model {model_name!r}: expected <base>+<adapter> with both parts non-empty")
        return AdapterSpec(base=base, adapter=adapter)
    if ":" in model_name:
        base, _, adapter = model_name.partition(":")
        if base and adapter and ("/" not in adapter or _looks_like_path(adapter)):
            return AdapterSpec(base=base, adapter=adapter)
    return None


@dataclass(frozen=True)
class CanaryReply:
    """One canary reply: the greedy text and, where the backend gives them, token logprobs."""

    text: str
    logprobs: tuple[float, ...] | None = None  # prompt or output token logprobs where available


class AdapterNotAppliedError(RuntimeError):
    """The adapter made no difference to the canary: it was very likely not applied."""


def _max_abs_diff(a: Sequence[float], b: Sequence[float]) -> float:
    if len(a) != len(b):
        return math.inf
    return max((abs(x - y) for x, y in zip(a, b, strict=True)), default=0.0)


def check_canary(
    base: CanaryReply,
    adapted: CanaryReply,
    *,
    model: str,
    adapter: str,
    causes: str,
    logprob_atol: float = DEFAULT_LOGPROB_ATOL,
) -> dict[str, Any]:
    """Raise AdapterNotAppliedError (message names model, adapter and `causes`) when text AND logprobs
    (where both have them) are identical; else return a JSON-able record {"canary": "passed", ...}.

    Logprobs differing by at most ``logprob_atol`` per token count as identical.
    """
    compared_logprobs = base.logprobs is not None and adapted.logprobs is not None
    max_diff: float | None = None
    if compared_logprobs:
        assert base.logprobs is not None and adapted.logprobs is not None
        max_diff = _max_abs_diff(base.logprobs, adapted.logprobs)
    same_text = base.text == adapted.text
    same_logprobs = max_diff is None or max_diff <= logprob_atol
    if same_text and same_logprobs:
        evidence = "greedy text" + (f" and logprobs (max difference {max_diff:.2g})" if compared_logprobs else "")
        raise AdapterNotAppliedError(
            f"LoRA canary failed for model {model!r} with adapter {adapter!r}: the base model and the adapter "
            f"gave identical {evidence} on the canary prompt, so the adapter was very likely not applied. "
            f"Likely causes: {causes} Pass -M lora_canary=false to run anyway (not recommended)."
        )
    return {
        "canary": "passed",
        "text_differs": not same_text,
        "logprobs_compared": compared_logprobs,
        "max_logprob_diff": None if max_diff is None or math.isinf(max_diff) else max_diff,
        "base_text": base.text,
        "adapter_text": adapted.text,
    }


def adapter_fingerprint(path: str | Path) -> str:
    """sha256 over the adapter's weight files (adapter_model.safetensors / .bin), in sorted name order.

    Each file's name and bytes enter the hash. Raises FileNotFoundError when the folder has no weight file.
    """
    folder = Path(path).expanduser()
    files = sorted(folder / name for name in WEIGHT_FILES if (folder / name).is_file())
    if not files:
        raise FileNotFoundError(f"{folder}: no adapter weight file ({' or '.join(WEIGHT_FILES)})")
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.name.encode() + b"\0")
        with file.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def lora_canary_disabled_warning(model: str) -> str:
    """The warning logged when a user turns the canary off with ``-M lora_canary=false``."""
    return (
        f"LoRA canary disabled for {model!r} (-M lora_canary=false): nothing checks that the adapter is "
        "actually applied; an ignored adapter would silently evaluate the base model."
    )
