"""Loading the base model for training, and greedy generation for the prior pass (torch, transformers, peft).

A base is a ``save_pretrained`` directory, a ``.gguf`` file (transformers dequantises it; the
tokenizer comes from the same file) or a hub id. Training runs in the dtype of the config
(``auto``: bfloat16 on a CUDA GPU that supports it, float32 otherwise; a CPU has no fast half precision).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from martingale_harness.training.config import LoraSettings

if TYPE_CHECKING:
    import torch
    from peft import LoraConfig
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

Message = dict[str, str]


def cuda_bf16() -> bool:
    """Whether a CUDA GPU with bfloat16 support is present."""
    import torch

    return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())


def device_defaults(trainer: dict[str, Any]) -> dict[str, Any]:
    """Trainer defaults for this machine: bf16 and activation checkpointing on a CUDA GPU, off on CPU.

    Keys the config's ``trainer`` section sets (also under transformers' deprecated alias
    ``gradient_checkpointing``) are left to it.
    """
    on_gpu = cuda_bf16()
    defaults: dict[str, Any] = {}
    if "bf16" not in trainer:
        defaults["bf16"] = on_gpu
    if not {"activation_checkpointing", "gradient_checkpointing"} & set(trainer):
        defaults["activation_checkpointing"] = on_gpu
    return defaults


def torch_dtype(name: str) -> torch.dtype:
    """The torch dtype for a config's ``dtype`` (``auto`` resolved for this machine)."""
    import torch

    if name == "auto":
        return torch.bfloat16 if cuda_bf16() else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def _source(base_model: str) -> tuple[str, dict[str, Any]]:
    path = Path(base_model)
    if path.suffix == ".gguf":
        return str(path.parent), {"gguf_file": path.name}
    return base_model, {}


def load_tokenizer(base_model: str) -> PreTrainedTokenizerBase:
    """The base's tokenizer, left-padded (generation), with a pad token."""
    from transformers import AutoTokenizer

    name, extra = _source(base_model)
    tokenizer = AutoTokenizer.from_pretrained(name, **extra)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if tokenizer.chat_template is None:
        raise ValueError(f"{base_model}: the tokenizer has no chat template; the protocol is a conversation, "
                         "so train an instruction-tuned (chat) model")
    return tokenizer


def load_model(base_model: str, dtype: str) -> PreTrainedModel:
    """The base causal LM on the available device (CUDA when present).

    A GGUF base is unpacked into plain dense weights: transformers would otherwise keep its weights
    in GGUF blocks where it can, and refuses to train any model marked as GGUF-quantized.
    """
    import torch
    from transformers import AutoModelForCausalLM, GgufConfig

    name, extra = _source(base_model)
    if "gguf_file" in extra:
        extra["quantization_config"] = GgufConfig(dequantize=True)
    model = AutoModelForCausalLM.from_pretrained(name, dtype=torch_dtype(dtype), **extra)
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None and "gguf_file" in extra:
        # every weight is a dense tensor now (dequantize=True); only the marker is left to drop
        quantizer.remove_quantization_config(model)
    if torch.cuda.is_available():
        model = model.to("cuda")
    return model


def lora_config(settings: LoraSettings) -> LoraConfig:
    """The peft config of a new adapter (B = 0 at the start, so the policy starts as the base)."""
    from peft import LoraConfig

    targets = settings.target_modules if isinstance(settings.target_modules, str) else list(settings.target_modules)
    return LoraConfig(r=settings.r, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
                      target_modules=targets, task_type="CAUSAL_LM")


def generate(model: Any, tokenizer: PreTrainedTokenizerBase, conversations: Sequence[Sequence[Message]], *,
             max_new_tokens: int, batch_size: int = 8, progress: str | None = None) -> list[str]:
    """Greedy answers of ``model`` (a peft model generates with its active adapter) to chat ``conversations``."""
    import torch
    from tqdm.auto import tqdm

    was_training = model.training
    model.eval()
    answers: list[str] = []
    batches = range(0, len(conversations), batch_size)
    try:
        for start in tqdm(batches, desc=progress, disable=progress is None):
            texts = [tokenizer.apply_chat_template(list(c), add_generation_prompt=True, tokenize=False)
                     for c in conversations[start:start + batch_size]]
            enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
            with torch.inference_mode():
                out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, temperature=None,
                                     top_p=None, top_k=None, pad_token_id=tokenizer.pad_token_id)
            answers.extend(tokenizer.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True))
    finally:
        model.train(was_training)
    return answers


def save_adapter(model: Any, directory: Path, base_model: str) -> None:
    """Save the trained adapter alone (not TRL's frozen ``ref`` copy), recording ``base_model`` as its base.

    The recorded base is the config's (an absolute path for local models), so ``init_adapter`` and the
    ``local/<base>+<adapter>`` backend can check that an adapter is used with the base it was trained on.
    """
    model.save_pretrained(str(directory), selected_adapters=["default"])
    config_file = directory / "adapter_config.json"
    config = json.loads(config_file.read_text(encoding="utf-8"))
    config["base_model_name_or_path"] = base_model
    config_file.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
