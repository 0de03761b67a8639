"""The engine behind the ``local`` provider: one loaded transformers model, its LoRA adapters, and a batching worker.

An :class:`Engine` holds one base model and tokenizer per (source, device, dtype) in this process. Every
``local/...`` provider instance naming the same base shares it, whatever adapter it applies: the base is
loaded once, and adapters are attached to it with peft under names derived from their fingerprints. A
single background thread owns the model and runs every generation, so the active adapter can be switched
per batch without races: a request for the base runs under ``disable_adapter()``, a request for an
adapter after ``set_adapter(name)``.

Batching: the worker takes the first waiting request, then collects whatever else arrives within
``batch_wait`` seconds, up to ``batch_size`` requests. Requests that can run together (same adapter and
the same generation settings) form one left-padded batch; the others form their own. While a batch runs,
new requests queue up and make the next batch, so a busy eval keeps the batches full.

Sampling is per row: each row of a sampled batch draws its tokens from a random stream of its own,
seeded with the request's seed (or, for a request without one, with a seed drawn from torch's global
generator), by the Gumbel-max trick on the row's temperature/top-k/top-p-processed logits, after which
generation picks the arg-max. A row's t-th token therefore uses the t-th draw of its own stream, whatever
the batch's size or other rows: a seeded request gives the same text alone or batched (up to the
floating-point differences of a padded batch), and seeded requests keep running in batches.

Several choices (``num_choices``): a request for K completions makes K rows that share one prefill of its
prompt (:mod:`~martingale_harness.backends.shared_prefill`); row i samples from :func:`choice_seed` (the
request's seed for the first), and requests batch only with others of the same K.

Constrained decoding: a request with a JSON schema (``GenerationSettings.json_schema``) batches only with
requests of the same schema; its batch runs ``local_grammar.SchemaConstraint`` (one grammar matcher per
row) as the first logits processor, before ``RowSampler``, so the per-row streams draw among allowed tokens
only and stay independent of the batch.

A row ends at the first of the engine's ``eos_ids``: the model's end-of-sequence ids, then the token that
closes an assistant turn in the chat template when that is another one (:func:`turn_end_ids`; an engine
adds its tokenizer's own, a ``-M chat_template`` override adds its own with :meth:`Engine.add_stop_ids`).

This module imports torch and transformers at import time; ``local.py`` imports it only when a ``local``
model is created, so evaluation without torch keeps working.
"""

from __future__ import annotations

import contextlib
import copy
import gc
import math
import queue
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from martingale_harness.backends.local_grammar import SchemaGrammars
from martingale_harness.backends.shared_prefill import generate_shared_prefill

DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
"""Values of ``-M dtype`` besides ``auto``."""


@dataclass(frozen=True)
class ModelSource:
    """Where the base model and its tokenizer come from (resolved by ``local.resolve_source``)."""

    name_or_path: str  # a model directory, a hub id, or the folder holding the GGUF file
    gguf_file: str | None = None  # the GGUF file's name inside name_or_path
    tokenizer: str | None = None  # a separate tokenizer directory or hub id
    trust_remote_code: bool = False

    def describe(self) -> str:
        """The source as a user would name it."""
        if self.gguf_file is None:
            return self.name_or_path
        return str(Path(self.name_or_path) / self.gguf_file)


@dataclass(frozen=True)
class GenerationSettings:
    """Everything about a request that decides which other requests it may share a batch with."""

    max_new_tokens: int
    do_sample: bool
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    logprobs: bool = False
    top_logprobs: int = 0
    stop_seqs: tuple[str, ...] = ()
    # a response schema as local_grammar.canonical_schema text: rows decode under its grammar (module docstring)
    json_schema: str | None = None


@dataclass(frozen=True)
class TokenLogprob:
    """One generated token with its logprob and the most likely alternatives at its position."""

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class Completion:
    """The result of one request."""

    text: str
    input_tokens: int
    output_tokens: int
    stop_reason: Literal["stop", "max_tokens"]
    logprobs: tuple[TokenLogprob, ...] | None
    batch_size: int  # rows in the batch this request ran in
    time: float  # seconds the batch took


@dataclass
class _Request:
    prompt_ids: list[int]
    adapter: str | None
    settings: GenerationSettings
    batch_size: int
    batch_wait: float
    seed: int | None = None
    choices: int = 1
    future: Future[list[Completion]] = field(default_factory=Future)

    def key(self) -> tuple[Any, ...]:
        return (self.adapter, self.settings, self.choices)

    def row_seeds(self) -> list[int]:
        """The sampling seed of each of the request's rows (its choices; see :func:`choice_seed`)."""
        if self.seed is None:  # unseeded: a stream per row all the same, drawn from torch's global generator
            return [int(torch.randint(0, 2**62, ()).item()) for _ in range(self.choices)]
        return [choice_seed(self.seed, i) for i in range(self.choices)]


def choice_seed(seed: int, choice: int) -> int:
    """The seed of choice ``choice`` of a request seeded with ``seed``: ``seed`` itself for the first (so one
    choice samples as a request without ``num_choices``), a SeedSequence child of (seed, choice) for the others."""
    if choice == 0:
        return seed
    import numpy as np

    return int(np.random.SeedSequence([seed, choice]).generate_state(1, np.uint64)[0] >> np.uint64(2))


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when available, else ``mps``, else ``cpu``; anything else as given."""
    if device != "auto":
        return device
    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def resolve_dtype(dtype: str, device: str) -> torch.dtype:
    """``auto`` -> float32 on CPU (exact and fast enough for small models), bfloat16 on CUDA where
    supported, else float16 on GPUs; named dtypes as given."""
    if dtype != "auto":
        if dtype not in DTYPES:
            raise ValueError(f"-M dtype must be auto or one of {sorted(DTYPES)}, got {dtype!r}")
        return DTYPES[dtype]
    if device.startswith("cpu"):
        return torch.float32
    if device.startswith("cuda") and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16


class Engine:
    """One loaded base model, its tokenizer, its adapters and its batching worker (module docstring)."""

    def __init__(
        self, source: ModelSource, device: str, dtype: torch.dtype, tokenizer: PreTrainedTokenizerBase | None = None
    ) -> None:
        """Load the model (and the tokenizer, unless ``tokenizer`` is the source's, already read and not shared)."""
        self.source = source
        self.device = device
        self.dtype = dtype
        kwargs: dict[str, Any] = {"trust_remote_code": source.trust_remote_code}
        if source.gguf_file is not None:
            kwargs["gguf_file"] = source.gguf_file
        self.tokenizer: PreTrainedTokenizerBase = tokenizer if tokenizer is not None else load_tokenizer(source)
        self.model: PreTrainedModel = AutoModelForCausalLM.from_pretrained(
            source.name_or_path, dtype=dtype, device_map=device, **kwargs
        )
        self.model.eval()
        self.eos_ids = _eos_ids(self.model, self.tokenizer)
        self.add_stop_ids(turn_end_ids(self.tokenizer))
        if self.tokenizer.pad_token_id is None:
            # only the attention mask reads padding, so any id will do; eos is what every tokenizer has
            self.tokenizer.pad_token = self.tokenizer.convert_ids_to_tokens(self.eos_ids[0])
        self.peft: Any = None  # peft.PeftModel once an adapter is attached
        self._adapter_refs: dict[str, int] = {}
        self._model_lock = threading.Lock()
        self._queue: queue.Queue[_Request | None] = queue.Queue()
        self._stats_lock = threading.Lock()
        self._batch_sizes: Counter[int] = Counter()
        self._refs = 0
        self._worker = threading.Thread(target=self._run, name=f"local-model:{source.describe()}", daemon=True)
        self._worker.start()

    def add_stop_ids(self, ids: Sequence[int]) -> None:
        """Also end generation at ``ids`` (e.g. the turn end of a ``-M chat_template`` override; see
        :func:`turn_end_ids`), for every user of this engine: a turn-end token never belongs inside a reply."""
        # appended, so eos_ids[0] (the padding fill) stays; one tuple assignment, so the worker never sees half
        self.eos_ids = self.eos_ids + tuple(int(i) for i in ids if int(i) not in self.eos_ids)

    # ---- adapters -------------------------------------------------------------------------------

    def attach_adapter(self, path: Path, name: str) -> None:
        """Attach the peft adapter at ``path`` under ``name`` (reference-counted: attaching twice is free)."""
        from peft import PeftModel

        with self._model_lock:
            if name in self._adapter_refs:
                self._adapter_refs[name] += 1
                return
            if self.peft is None:
                self.peft = PeftModel.from_pretrained(self.model, str(path), adapter_name=name, is_trainable=False)
            else:
                self.peft.load_adapter(str(path), adapter_name=name, is_trainable=False)
            self.peft.eval()
            self._adapter_refs[name] = 1

    def detach_adapter(self, name: str) -> None:
        """Drop one reference to adapter ``name``; the last one removes it (and peft, with no adapter left)."""
        with self._model_lock:
            if name not in self._adapter_refs:
                return
            self._adapter_refs[name] -= 1
            if self._adapter_refs[name] > 0:
                return
            del self._adapter_refs[name]
            if self._adapter_refs:
                # switch away first: deleting the active adapter makes peft pick another with a warning
                self.peft.set_adapter(next(iter(self._adapter_refs)))
                self.peft.delete_adapter(name)
            else:
                # unload() strips the LoRA layers and hands back the untouched base modules
                self.model = self.peft.unload()
                self.peft = None

    @property
    def adapters(self) -> tuple[str, ...]:
        """Names of the adapters attached now."""
        return tuple(self._adapter_refs)

    @contextlib.contextmanager
    def _select(self, adapter: str | None) -> Iterator[Any]:
        if self.peft is None:
            if adapter is not None:
                raise RuntimeError(f"adapter {adapter!r} is not attached to {self.source.describe()}")
            yield self.model
        elif adapter is None:
            with self.peft.disable_adapter():
                yield self.peft
        else:
            if adapter not in self._adapter_refs:
                raise RuntimeError(f"adapter {adapter!r} is not attached to {self.source.describe()}")
            self.peft.set_adapter(adapter)
            yield self.peft

    # ---- requests -------------------------------------------------------------------------------

    def submit(
        self,
        prompt_ids: Sequence[int],
        settings: GenerationSettings,
        *,
        adapter: str | None = None,
        batch_size: int = 16,
        batch_wait: float = 0.05,
        seed: int | None = None,
        choices: int = 1,
    ) -> Future[list[Completion]]:
        """Queue one tokenized prompt for ``choices`` completions; the future resolves to them when its batch
        has run.

        ``seed`` seeds this request's own sampling stream (module docstring); greedy requests ignore it.
        Several choices share the prompt's prefill (:mod:`~martingale_harness.backends.shared_prefill`) and
        each samples from its own stream (:func:`choice_seed`); greedy choices are all the same text.
        """
        if not prompt_ids:
            raise ValueError("empty prompt: the chat template produced no tokens")
        if choices < 1:
            raise ValueError(f"choices must be at least 1, got {choices}")
        request = _Request(list(prompt_ids), adapter, settings, batch_size, batch_wait, seed, choices)
        self._queue.put(request)
        return request.future

    def batch_size_counts(self) -> dict[int, int]:
        """How many batches of each size have run so far."""
        with self._stats_lock:
            return dict(self._batch_sizes)

    def default_do_sample(self) -> bool:
        """Whether the model's own generation config samples (used when a request sets no temperature)."""
        return bool(getattr(self.model.generation_config, "do_sample", False))

    # built on the first constrained request (about 0.5 s for a 49k-token vocabulary), never for the others
    _schema_grammars: SchemaGrammars | None = None
    _schema_grammars_lock = threading.Lock()

    def schema_grammars(self) -> SchemaGrammars:
        """The compiled-grammar cache of constrained decoding for this tokenizer (``local_grammar``).

        Rebuilt when the end-of-sequence ids have grown (``add_stop_ids``), so the grammar allows every id
        that ends a row.
        """
        with self._schema_grammars_lock:
            grammars = self._schema_grammars
            if grammars is None or grammars.eos_ids != self.eos_ids:
                grammars = SchemaGrammars(self.tokenizer, self.eos_ids)
                self._schema_grammars = grammars
            return grammars

    def shutdown(self) -> None:
        """Stop the worker (after the requests already queued) and free the model."""
        self._queue.put(None)
        self._worker.join()
        self.peft = None
        del self.model
        gc.collect()
        if self.device.startswith("cuda"):
            torch.cuda.empty_cache()

    # ---- the worker -----------------------------------------------------------------------------

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                return
            pending = [first]
            deadline = time.monotonic() + first.batch_wait
            while len(pending) < first.batch_size:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    item = self._queue.get(timeout=remaining)
                except queue.Empty:
                    break
                if item is None:
                    stopping = True  # finish what was collected, then stop
                    break
                pending.append(item)
            groups: dict[tuple[Any, ...], list[_Request]] = {}
            for request in pending:
                groups.setdefault(request.key(), []).append(request)
            for group in groups.values():
                # batch_size counts rows: a request for K choices takes K of them
                size = max(1, group[0].batch_size // group[0].choices)
                for start in range(0, len(group), size):
                    self._generate(group[start : start + size])

    def _generate(self, batch: list[_Request]) -> None:
        try:
            completions = self._generate_batch(batch)
        except BaseException as e:  # noqa: BLE001 - the worker must survive to serve the next batch
            for request in batch:
                if not request.future.done():
                    request.future.set_exception(e)
            return
        with self._stats_lock:
            self._batch_sizes[len(batch)] += 1
        for request in batch:
            request.future.set_result(completions[: request.choices])
            completions = completions[request.choices :]

    def _generation_config(self, settings: GenerationSettings) -> Any:
        config = copy.deepcopy(self.model.generation_config)
        config.max_new_tokens = settings.max_new_tokens
        # sampling happens in RowSampler (per-row streams); generate itself then takes the arg-max
        config.do_sample = False
        config.pad_token_id = self.eos_ids[0]  # finished rows fill with eos, so the first eos ends a row
        config.eos_token_id = list(self.eos_ids)
        # the model's own sampling knobs would only raise "ignored flag" warnings under greedy decoding
        config.temperature = None
        config.top_p = None
        config.top_k = None
        config.return_dict_in_generate = True
        config.output_logits = settings.logprobs
        return config

    def _sampler(self, settings: GenerationSettings, batch: list[_Request]) -> Any:
        """The per-row sampler of a sampled batch (None for greedy): the settings' warpers, then Gumbel-max."""
        if not settings.do_sample:
            return None
        from transformers import LogitsProcessorList, TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

        defaults = self.model.generation_config
        temperature = settings.temperature if settings.temperature is not None else defaults.temperature
        top_k = settings.top_k if settings.top_k is not None else defaults.top_k
        top_p = settings.top_p if settings.top_p is not None else defaults.top_p
        warpers = LogitsProcessorList()
        if temperature is not None and temperature != 1.0:
            warpers.append(TemperatureLogitsWarper(float(temperature)))
        if top_k is not None and top_k != 0:
            warpers.append(TopKLogitsWarper(int(top_k)))
        if top_p is not None and top_p < 1.0:
            warpers.append(TopPLogitsWarper(float(top_p)))
        # a request without a seed still gets a stream of its own, seeded from torch's global generator
        return RowSampler(warpers, [seed for r in batch for seed in r.row_seeds()], self.device)

    def _generate_batch(self, batch: list[_Request]) -> list[Completion]:
        """The completions of a batch, row by row: each request's ``choices`` rows one after the other."""
        settings = batch[0].settings
        choices = batch[0].choices  # the same for the whole batch (part of the request's key)
        started = time.monotonic()
        padded = self.tokenizer.pad(
            {"input_ids": [r.prompt_ids for r in batch]}, padding=True, return_tensors="pt", padding_side="left"
        )
        input_ids = padded["input_ids"].to(self.device)
        attention_mask = padded["attention_mask"].to(self.device)
        kwargs: dict[str, Any] = {}
        if settings.stop_seqs:
            from transformers import StopStringCriteria

            kwargs["stopping_criteria"] = [StopStringCriteria(self.tokenizer, list(settings.stop_seqs))]
        processors: list[Any] = []
        if settings.json_schema is not None:
            # first: the sampler's warpers and Gumbel draw then see only the tokens the schema allows
            processors.append(self.schema_grammars().constraint(settings.json_schema, len(batch) * choices))
        sampler = self._sampler(settings, batch)
        if sampler is not None:
            processors.append(sampler)
        if processors:
            from transformers import LogitsProcessorList

            kwargs["logits_processor"] = LogitsProcessorList(processors)
        with self._model_lock, torch.inference_mode(), self._select(batch[0].adapter) as model:
            if choices > 1:
                output = generate_shared_prefill(model, input_ids, attention_mask, choices,
                                                 generation_config=self._generation_config(settings), **kwargs)
            else:
                output = model.generate(
                    input_ids=input_ids,
                    attention_mask=attention_mask,
                    generation_config=self._generation_config(settings),
                    **kwargs,
                )
        generated = output.sequences[:, input_ids.shape[1] :].cpu()
        log_probs = None
        if settings.logprobs:
            log_probs = torch.log_softmax(torch.stack(output.logits, dim=1).float(), dim=-1).cpu()
        elapsed = time.monotonic() - started
        results = []
        for row, request in enumerate(r for r in batch for _ in range(r.choices)):
            tokens = generated[row].tolist()
            end = next((i for i, t in enumerate(tokens) if t in self.eos_ids), None)
            content = tokens if end is None else tokens[:end]
            text = self.tokenizer.decode(content, skip_special_tokens=True)
            stopped_by_string, text = _cut_at_stop(text, settings.stop_seqs)
            if stopped_by_string or end is None:
                # a row cut by a stop string is followed by fill, not by an eos it generated
                output_tokens = len(content)
            else:
                output_tokens = end + 1
            hit_limit = end is None and not stopped_by_string and output_tokens >= settings.max_new_tokens
            results.append(
                Completion(
                    text=text,
                    input_tokens=len(request.prompt_ids),
                    output_tokens=output_tokens,
                    stop_reason="max_tokens" if hit_limit else "stop",
                    logprobs=None if log_probs is None else self._logprobs(log_probs[row], content, settings),
                    batch_size=len(batch) * choices,
                    time=elapsed,
                )
            )
        return results

    def _logprobs(self, log_probs: torch.Tensor, content: list[int], settings: GenerationSettings) -> tuple[
        TokenLogprob, ...
    ]:
        positions = []
        k = settings.top_logprobs
        for step, token_id in enumerate(content):
            top: tuple[tuple[str, float], ...] = ()
            if k > 0:
                values, ids = log_probs[step].topk(k)
                top = tuple(
                    (self._token_text(int(i)), float(v)) for v, i in zip(values.tolist(), ids.tolist(), strict=True)
                )
            positions.append(TokenLogprob(self._token_text(token_id), float(log_probs[step, token_id]), top))
        return tuple(positions)

    def _token_text(self, token_id: int) -> str:
        # decode, not convert_ids_to_tokens: byte-level BPE spells a leading space as "Ġ", which no
        # reader of "Yes"/"No" expects
        return self.tokenizer.decode([token_id])


class RowSampler:
    """A logits processor that samples each row from its own seeded stream (module docstring).

    It applies ``warpers`` (temperature, top-k, top-p: transformers' own) to the row's scores, adds
    Gumbel(0, 1) noise drawn from the row's generator (arg-max of logits + Gumbel noise is a draw from
    the softmax) and returns scores whose arg-max is the drawn token, for greedy decoding to pick.
    """

    def __init__(self, warpers: Any, seeds: Sequence[int], device: str) -> None:
        self.warpers = warpers
        self.generators = [torch.Generator(device=device).manual_seed(int(seed)) for seed in seeds]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if scores.shape[0] != len(self.generators):
            raise RuntimeError(f"RowSampler seeded for {len(self.generators)} rows got {scores.shape[0]}")
        warped = self.warpers(input_ids, scores.float())
        chosen = torch.empty(scores.shape[0], dtype=torch.long, device=scores.device)
        for row, generator in enumerate(self.generators):
            u = torch.rand(scores.shape[1], generator=generator, device=scores.device, dtype=torch.float64)
            gumbel = -torch.log(-torch.log(u.clamp_min(1e-300)))
            chosen[row] = torch.argmax(warped[row].double() + gumbel)
        out = torch.full_like(scores, -math.inf)
        out[torch.arange(scores.shape[0], device=scores.device), chosen] = 0.0
        return out


def _eos_ids(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> tuple[int, ...]:
    """End-of-turn ids: the generation config's eos (one id or several) plus the tokenizer's."""
    ids: list[int] = []
    configured = getattr(model.generation_config, "eos_token_id", None)
    if configured is None:
        configured = getattr(model.config, "eos_token_id", None)
    for value in configured if isinstance(configured, list | tuple) else [configured]:
        if value is not None and value not in ids:
            ids.append(int(value))
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(int(tokenizer.eos_token_id))
    if not ids:
        raise ValueError("the model defines no end-of-sequence token (neither its config nor its tokenizer)")
    return tuple(ids)


_TURN_PROBE = "Martingale probe reply."  # ordinary text, so the template's own tokens around it stand out


def turn_end_ids(tokenizer: PreTrainedTokenizerBase, chat_template: str | None = None) -> tuple[int, ...]:
    """The token that closes an assistant turn under ``chat_template`` (the tokenizer's own when None): one id or none.

    Rule: a user / assistant / user conversation, the assistant saying a probe text, is rendered through
    the template; the text that follows the probe, leading whitespace skipped, is tokenized, and its first
    token is the turn end when it is an added token of the tokenizer (special or user-defined, which
    ordinary text never produces): Gemma's ``<end_of_turn>``, ChatML's ``<|im_end|>``, Llama 3's
    ``<|eot_id|>``, Llama 2's ``</s>``. A template that separates turns with plain text (a newline, a
    text header) gives none, so generation never stops at ordinary text; so does a template that cannot
    render that conversation. A following user turn is rendered because every multi-turn template must
    close the assistant's turn before it, whereas some leave a final assistant message open.
    """
    if chat_template is None and not tokenizer.chat_template:
        return ()
    messages = [
        {"role": "user", "content": "Hello."},
        {"role": "assistant", "content": _TURN_PROBE},
        {"role": "user", "content": "Thanks."},
    ]
    try:
        text = str(tokenizer.apply_chat_template(messages, chat_template=chat_template, tokenize=False))
    except Exception:  # noqa: BLE001 - a template may refuse this conversation; the eos ids still stop generation
        return ()
    at = text.find(_TURN_PROBE)
    if at < 0:
        return ()
    after = text[at + len(_TURN_PROBE) :].lstrip()
    ids = tokenizer(after, add_special_tokens=False)["input_ids"] if after else []
    if not ids or int(ids[0]) not in tokenizer.added_tokens_decoder:
        return ()
    return (int(ids[0]),)


def load_tokenizer(source: ModelSource) -> PreTrainedTokenizerBase:
    """The source's tokenizer, without the model's weights (a GGUF file's is read from its metadata)."""
    kwargs: dict[str, Any] = {"trust_remote_code": source.trust_remote_code}
    if source.tokenizer is None and source.gguf_file is not None:
        kwargs["gguf_file"] = source.gguf_file
    return AutoTokenizer.from_pretrained(source.tokenizer or source.name_or_path, **kwargs)


def _cut_at_stop(text: str, stop_seqs: tuple[str, ...]) -> tuple[bool, str]:
    """Cut ``text`` before the earliest stop sequence (OpenAI semantics: the stop text is not returned)."""
    cuts = [i for i in (text.find(s) for s in stop_seqs) if i >= 0]
    if not cuts:
        return False, text
    return True, text[: min(cuts)]


# ---- the process-wide engine cache ------------------------------------------------------------------

_ENGINES: dict[tuple[ModelSource, str, torch.dtype], Engine] = {}
_ENGINES_LOCK = threading.Lock()


def acquire_engine(
    source: ModelSource, device: str, dtype: torch.dtype, tokenizer: PreTrainedTokenizerBase | None = None
) -> Engine:
    """The engine for this base (loading it on first use); pair every call with :func:`release_engine`.

    ``tokenizer``: the source's tokenizer, already read by :func:`load_tokenizer` and used by nothing else,
    which a new engine takes instead of reading it again (a GGUF's vocabulary takes seconds to convert).
    """
    key = (source, device, dtype)
    with _ENGINES_LOCK:
        engine = _ENGINES.get(key)
        if engine is None:
            engine = Engine(source, device, dtype, tokenizer)
            _ENGINES[key] = engine
        engine._refs += 1
        return engine


def release_engine(engine: Engine) -> None:
    """Drop one reference; the last one stops the worker and frees the model."""
    with _ENGINES_LOCK:
        engine._refs -= 1
        if engine._refs > 0:
            return
        for key, cached in list(_ENGINES.items()):
            if cached is engine:
                del _ENGINES[key]
    engine.shutdown()


def loaded_tokenizer(source: ModelSource) -> PreTrainedTokenizerBase | None:
    """The tokenizer of an engine already loaded from ``source`` (any device or dtype), for reading only."""
    with _ENGINES_LOCK:
        return next((engine.tokenizer for engine in _ENGINES.values() if engine.source == source), None)


def loaded_engines() -> tuple[Engine, ...]:
    """Engines alive in this process (for tests and diagnostics)."""
    with _ENGINES_LOCK:
        return tuple(_ENGINES.values())
