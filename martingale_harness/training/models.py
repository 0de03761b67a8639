"""Loading the base model for training; generation for the prior pass and sampling (torch, transformers, peft).

A base is a ``save_pretrained`` directory, a ``.gguf`` file (transformers dequantises it; the
tokenizer comes from the same file) or a hub id. Training runs in the dtype of the config
(``auto``: bfloat16 on a CUDA GPU that supports it, float32 otherwise; a CPU has no fast half precision).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
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
    """Trainer defaults for this machine: bf16 and activation checkpointing on a CUDA GPU, off on CPU (``use_cpu``).

    Keys the config's ``trainer`` section sets (also under transformers' deprecated alias
    ``gradient_checkpointing``) are left to it.
    """
    import torch

    on_gpu = cuda_bf16()
    defaults: dict[str, Any] = {}
    if "use_cpu" not in trainer and not torch.cuda.is_available() and not torch.backends.mps.is_available():
        # transformers builds its distributed state anew from this: without it, processes started by
        # `accelerate launch` on a machine without a GPU would each train alone instead of over gloo
        defaults["use_cpu"] = True
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
        from transformers.integrations import is_deepspeed_zero3_enabled

        if not is_deepspeed_zero3_enabled():  # under ZeRO-3 the weights were sharded while they loaded
            # each process of `accelerate launch` on its own GPU (LOCAL_RANK), not all on the first
            model = model.to(torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0"))))
    return model


def lora_config(settings: LoraSettings) -> LoraConfig:
    """The peft config of a new adapter (B = 0 at the start, so the policy starts as the base)."""
    from peft import LoraConfig

    targets = settings.target_modules if isinstance(settings.target_modules, str) else list(settings.target_modules)
    return LoraConfig(r=settings.r, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
                      target_modules=targets, task_type="CAUSAL_LM")


def _chat_texts(tokenizer: PreTrainedTokenizerBase, conversations: Sequence[Sequence[Message]]) -> list[str]:
    return [tokenizer.apply_chat_template(list(c), add_generation_prompt=True, tokenize=False) for c in conversations]


def length_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices in batches of similar length (longest first, so a batch too big for memory fails at once).

    A batch is padded to its longest member, so batching prompts as they come wastes most of the compute
    when lengths vary: ForecastBench's posterior prompts run from 150 to 1,800 tokens.
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    return [order[start:start + batch_size] for start in range(0, len(order), batch_size)]


def generate(model: Any, tokenizer: PreTrainedTokenizerBase, conversations: Sequence[Sequence[Message]], *,
             max_new_tokens: int, batch_size: int = 8, temperature: float = 0.0,
             generation_kwargs: dict[str, Any] | None = None, progress: str | None = None) -> list[str]:
    """Answers of ``model`` (a peft model generates with its active adapter) to chat ``conversations``.

    ``temperature`` 0 is greedy; above 0 each answer is sampled at that temperature.
    """
    return [s.text for group in sample(model, tokenizer, conversations, n=1, max_new_tokens=max_new_tokens,
                                       temperature=temperature, batch_size=batch_size,
                                       generation_kwargs=generation_kwargs, progress=progress)
            for s in group]


@dataclass(frozen=True)
class Sampled:
    """One sampled completion: its text and the token ids it was generated as."""

    text: str
    prompt_ids: tuple[int, ...]
    completion_ids: tuple[int, ...]
    """Up to and including the end-of-turn token (padding after it removed)."""


def sample(model: Any, tokenizer: PreTrainedTokenizerBase, conversations: Sequence[Sequence[Message]], *, n: int,
           max_new_tokens: int, temperature: float, top_p: float = 1.0, batch_size: int = 8,
           generation_kwargs: dict[str, Any] | None = None, progress: str | None = None,
           shared_prefill: bool = True) -> list[list[Sampled]]:
    """``n`` completions per conversation (greedy when ``temperature`` is 0, then ``n`` must be 1).

    With ``shared_prefill`` (the default) the ``n`` completions of a prompt share one prefill: the prompt's
    keys and values are computed once and repeated ``n`` times, where ``generate(num_return_sequences=n)``
    computes them ``n`` times. Decoding then runs on the same ``batch x n`` rows in the same order, so for
    one torch seed the completions are the ones separate prefills give (up to floating-point ties).
    ``batch_size`` counts prompts, each with its ``n`` completions.
    """
    import torch
    from tqdm.auto import tqdm

    from martingale_harness.backends.shared_prefill import generate_shared_prefill

    if temperature == 0 and n != 1:
        raise ValueError("greedy decoding gives one completion per prompt; sample with temperature > 0")
    sampling = {"do_sample": True, "temperature": temperature, "top_p": top_p, "top_k": None} if temperature > 0 \
        else {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
    stop = {tokenizer.eos_token_id, tokenizer.pad_token_id}
    texts = _chat_texts(tokenizer, conversations)
    lengths = [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
    was_training = model.training
    model.eval()
    groups: list[list[Sampled]] = [[] for _ in conversations]
    try:
        for batch in tqdm(length_batches(lengths, batch_size), desc=progress, disable=progress is None):
            enc = tokenizer([texts[i] for i in batch], return_tensors="pt", padding=True,
                            add_special_tokens=False).to(model.device)
            with torch.inference_mode():
                if shared_prefill and n > 1:
                    out = generate_shared_prefill(model, enc["input_ids"], enc["attention_mask"], n,
                                                   max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id,
                                                   **sampling, **(generation_kwargs or {}))
                else:
                    out = model.generate(**enc, max_new_tokens=max_new_tokens, num_return_sequences=n,
                                         pad_token_id=tokenizer.pad_token_id, **sampling, **(generation_kwargs or {}))
            width = enc["input_ids"].shape[1]
            for row, ids in enumerate(out.tolist()):
                mask = enc["attention_mask"][row // n].tolist()
                prompt = tuple(t for t, m in zip(enc["input_ids"][row // n].tolist(), mask, strict=True) if m)
                completion = ids[width:]
                end = next((i + 1 for i, t in enumerate(completion) if t in stop), len(completion))
                text = tokenizer.decode(completion[:end], skip_special_tokens=True)
                groups[batch[row // n]].append(Sampled(text=text, prompt_ids=prompt,
                                                       completion_ids=tuple(completion[:end])))
    finally:
        model.train(was_training)
    return groups


def completion_logprobs(model: Any, samples: Sequence[Sampled], batch_size: int = 8) -> list[list[float]]:
    """The log-probability of each completion token under ``model`` (with its active adapter), per sample.

    Sequences are left-padded (positions from the attention mask), so every completion ends at the last
    position and the model computes logits for the last ``longest completion + 1`` positions only: over a
    49k vocabulary the logits of a whole 1,800-token prompt would cost more than the forward pass.
    """
    import torch

    was_training = model.training
    model.eval()
    result: list[list[float]] = [[] for _ in samples]
    try:
        for batch in length_batches([len(s.prompt_ids) + len(s.completion_ids) for s in samples], batch_size):
            chunk = [samples[i] for i in batch]
            seqs = [list(s.prompt_ids + s.completion_ids) for s in chunk]
            width = max(len(x) for x in seqs)
            keep = max(len(s.completion_ids) for s in chunk) + 1
            ids = torch.zeros((len(seqs), width), dtype=torch.long)
            mask = torch.zeros_like(ids)
            for i, seq in enumerate(seqs):
                ids[i, width - len(seq):] = torch.tensor(seq)
                mask[i, width - len(seq):] = 1
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            with torch.inference_mode():
                logits = model(input_ids=ids.to(model.device), attention_mask=mask.to(model.device),
                               position_ids=positions.to(model.device), logits_to_keep=keep).logits.float()
            # logits[:, j] predicts token width - keep + j + 1
            targets = ids[:, width - keep + 1:].to(model.device)
            logp = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, targets[..., None])[..., 0]
            for i, s in enumerate(chunk):
                n = len(s.completion_ids)
                result[batch[i]] = logp[i, logp.shape[1] - n:].tolist() if n else []
    finally:
        model.train(was_training)
    return result


def save_adapter(model: Any, directory: Path, base_model: str, state_dict: dict[str, Any] | None = None) -> None:
    """Save the trained adapter alone (not TRL's frozen ``ref`` copy), recording ``base_model`` as its base.

    The recorded base is the config's (an absolute path for local models), so ``init_adapter`` and the
    ``local/<base>+<adapter>`` backend can check that an adapter is used with the base it was trained on.
    ``state_dict`` is the model's full state where the processes hold shards of it (gathered by accelerate).
    """
    model.save_pretrained(str(directory), selected_adapters=["default"], state_dict=state_dict)
    config_file = directory / "adapter_config.json"
    config = json.loads(config_file.read_text(encoding="utf-8"))
    config["base_model_name_or_path"] = base_model
    config_file.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
