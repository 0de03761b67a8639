"""inspect model provider ``local/<model>[+<adapter>]``: a transformers model in this process, with peft LoRA adapters.

Model names:

* ``local/<dir>``: a transformers model directory (``config.json``, weights, tokenizer);
* ``local/<file>.gguf``: a GGUF file, loaded (and dequantized) by transformers' GGUF support, tokenizer and
  chat template from the same file (``pip install gguf``; part of the ``local`` extra);
* ``local/<org>/<name>``: a Hugging Face hub id (downloaded into the usual hub cache on first use);
  ``-M gguf_file=<name>.gguf`` picks a GGUF file in a hub repo or a folder;
* ``local/<base>+<adapter-dir>`` (also ``local/<base>:<adapter-dir>``, see ``lora.split_adapter``): the
  base with a peft LoRA adapter saved by ``save_pretrained``.

Absolute paths keep their slash: ``local//abs/path/model.gguf``.

Model args (``-M name=value``):

``device`` (``auto``: cuda, else mps, else cpu), ``dtype`` (``auto``: float32 on CPU, bfloat16 on GPUs that
support it, else float16; or ``float32``, ``bfloat16``, ``float16``), ``batch_size`` (16: most requests in one
forward batch), ``batch_wait`` (0.05: seconds the worker waits for more requests after the first),
``chat_template`` (a Jinja file, or template text, replacing the tokenizer's), ``tokenizer`` (a separate
tokenizer directory or hub id), ``gguf_file``, ``trust_remote_code`` (false), ``lora_canary`` (true),
``adapter_base_check`` (true), ``name`` (a short name for reports and figures,
``martingale_harness.reporting.display``).

Behaviour: prompts go through the tokenizer's chat template (or ``-M chat_template``'s). A tokenizer without
one is an error naming ``-M chat_template``, raised before any weights load: the tokenizer is read on its own
first (a GGUF's from the file's metadata) and handed to the engine. Generation stops at the model's eos ids
and at the token that closes an assistant turn in the template (``local_batching.turn_end_ids``: Gemma's
``<end_of_turn>``, ChatML's ``<|im_end|>`` where eos is ``<|endoftext|>``); that token is not part of the text
and the stop reason is ``stop``. Temperature 0 decodes greedily, a positive temperature samples, no
temperature uses the model's own generation config. ``max_tokens``, ``top_p``, ``top_k``, ``stop_seqs`` and
``seed`` are honoured: each sampled request draws from a random stream of its own (seeded by its ``seed``), so
a seeded request gives the same answer alone or batched, and seeded requests stay batched; ``logprobs``
returns per-token logprobs of the model's distribution (before temperature) with ``top_logprobs``
alternatives. Usage counts each request's own prompt and generated tokens (padding excluded; a final
end-of-turn token counts). Concurrent requests are batched (``local_batching``); inspect's default concurrency
for this provider is twice ``batch_size`` so the next batch is queued while one runs.

Response schema: a request with ``response_schema`` (inspect's ``GenerateConfig``) is decoded under the
grammar of its ``json_schema`` (``local_grammar``, llguidance; part of the ``local`` extra, and a missing
llguidance is an error naming it): every row is masked to the tokens its schema allows before sampling,
ends only once its JSON is complete, and its text is JSON valid under the schema unless ``max_tokens`` cuts
it (stop reason ``max_tokens``). Seeded rows still give the same text alone or batched; requests batch only
with requests of the same schema; a schema llguidance cannot compile fails its request with the reason.
``strict`` is ignored (the schema is always enforced) and ``logprobs`` stay the model's own, unmasked.
:attr:`LocalModelAPI.constrains_response_schema` says so to the protocol.

Sharing: every ``local`` model naming the same base, device and dtype in one process shares one loaded
model; adapters attach to it by name, so ``local/B`` and ``local/B+A`` in the same eval (e.g. a base
grader) cost one load.

Adapters: before the first sample the adapter directory must exist and hold ``adapter_config.json`` (a
LoRA) and weights. Its ``base_model_name_or_path`` must name the base: equal strings, or the same
resolved path; for a GGUF file the folder holding it also matches (transformers records that folder as
the model's name when it loads a GGUF), as does the loaded model's own ``name_or_path``. Anything else is
:class:`AdapterBaseMismatchError`; ``-M adapter_base_check=false`` skips the check with a warning. Then the
LoRA canary (``lora.check_canary``) compares the greedy text and output logprobs of base (adapter
disabled) and adapter on ``lora.CANARY_PROMPT``, and raises ``AdapterNotAppliedError`` when nothing
differs (``-M lora_canary=false`` skips it with a warning). :meth:`LocalModelAPI.adapter_record` returns
the adapter's name, path, fingerprint and canary result for the log.

torch, transformers, peft, gguf and accelerate are imported only when a ``local`` model is created; a
missing one is an error naming ``pip install 'martingale-harness[local]'``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import sniffio
from inspect_ai.model import (
    ChatCompletionChoice,
    ChatMessage,
    ChatMessageAssistant,
    ChatMessageTool,
    ContentText,
    GenerateConfig,
    Logprob,
    Logprobs,
    ModelAPI,
    ModelOutput,
    ModelUsage,
    ResponseSchema,
    TopLogprob,
    modelapi,
)
from inspect_ai.tool import ToolChoice, ToolInfo

from martingale_harness._inspect_compat import DEFAULT_MAX_TOKENS, MODEL_INFO_LOOKUP_API_KEY, PrerequisiteError
from martingale_harness.backends.lora import (
    CANARY_MAX_TOKENS,
    CANARY_PROMPT,
    AdapterNotAppliedError,
    AdapterSpec,
    CanaryReply,
    adapter_fingerprint,
    check_canary,
    lora_canary_disabled_warning,
    split_adapter,
)
from martingale_harness.reporting.display import NAME_ARG

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from martingale_harness.backends.local_batching import Completion, Engine, GenerationSettings, ModelSource

__all__ = ["AdapterBaseMismatchError", "AdapterNotAppliedError", "LocalArgs", "LocalModelAPI", "resolve_source"]

logger = logging.getLogger(__name__)

EXTRA_HINT = "pip install 'martingale-harness[local]'"
CANARY_CAUSES = (
    "the adapter's weights are all zero (peft's default LoRA init has B = 0, so an untrained adapter is a no-op), "
    "or it targets modules this base does not run."
)
_DEFAULTS: dict[str, Any] = {
    "device": "auto",
    "dtype": "auto",
    "batch_size": 16,
    "batch_wait": 0.05,
    "chat_template": None,
    "tokenizer": None,
    "gguf_file": None,
    "trust_remote_code": False,
    "lora_canary": True,
    "adapter_base_check": True,
    NAME_ARG: None,
}


class AdapterBaseMismatchError(PrerequisiteError):
    """The adapter was trained on another base model than the one it is applied to."""


def _fail(message: str) -> PrerequisiteError:
    # inspect prints a PrerequisiteError as one line, without a traceback: these are the user's input errors
    return PrerequisiteError(f"local: {message}")


@dataclass(frozen=True)
class LocalArgs:
    """The validated ``-M`` model args (module docstring)."""

    device: str
    dtype: str
    batch_size: int
    batch_wait: float
    chat_template: str | None
    tokenizer: str | None
    gguf_file: str | None
    trust_remote_code: bool
    lora_canary: bool
    adapter_base_check: bool

    @classmethod
    def parse(cls, model_args: dict[str, Any]) -> LocalArgs:
        """Validate ``model_args``; unknown names and bad values raise ValueError naming the arg."""
        unknown = sorted(set(model_args) - set(_DEFAULTS))
        if unknown:
            raise ValueError(f"unknown model args {unknown}; allowed: {sorted(_DEFAULTS)}")
        values = {**_DEFAULTS, **model_args}
        template = values["chat_template"]
        if isinstance(template, list):
            # inspect's -M parser splits unquoted values at commas; a template is one string
            template = ",".join(str(part) for part in template)
        batch_size = _int_arg("batch_size", values["batch_size"])
        batch_wait = _float_arg("batch_wait", values["batch_wait"])
        if batch_size < 1:
            raise ValueError(f"-M batch_size must be at least 1, got {batch_size}")
        if batch_wait < 0:
            raise ValueError(f"-M batch_wait must be >= 0 seconds, got {batch_wait}")
        return cls(
            device=str(values["device"]),
            dtype=str(values["dtype"]),
            batch_size=batch_size,
            batch_wait=batch_wait,
            chat_template=None if template is None else str(template),
            tokenizer=None if values["tokenizer"] is None else str(values["tokenizer"]),
            gguf_file=None if values["gguf_file"] is None else str(values["gguf_file"]),
            trust_remote_code=_bool_arg("trust_remote_code", values["trust_remote_code"]),
            lora_canary=_bool_arg("lora_canary", values["lora_canary"]),
            adapter_base_check=_bool_arg("adapter_base_check", values["adapter_base_check"]),
        )


def _bool_arg(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {"true", "false"}:
        return value.lower() == "true"
    raise ValueError(f"-M {name} must be true or false, got {value!r}")


def _int_arg(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"-M {name} must be an integer, got {value!r}")
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"-M {name} must be an integer, got {value!r}") from None


def _float_arg(name: str, value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"-M {name} must be a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"-M {name} must be a number, got {value!r}") from None


def _looks_like_path(text: str) -> bool:
    return text.startswith(("/", "~", "./", "../", ".\\", "..\\")) or text.endswith(".gguf")


def _require(*modules: str, why: str) -> None:
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        raise _fail(f"{why} needs {', '.join(missing)}, which is not installed: {EXTRA_HINT}")


def resolve_source(
    base: str, *, gguf_file: str | None = None, tokenizer: str | None = None, trust_remote_code: bool = False
) -> ModelSource:
    """Turn the base part of a model name into a :class:`ModelSource`; a missing file or folder is an error."""
    from martingale_harness.backends.local_batching import ModelSource

    path = Path(base).expanduser()
    if tokenizer is not None and _looks_like_path(tokenizer) and not Path(tokenizer).expanduser().exists():
        raise _fail(f"tokenizer not found: {tokenizer}")
    if tokenizer is not None and Path(tokenizer).expanduser().exists():
        tokenizer = str(Path(tokenizer).expanduser().resolve())
    if path.is_file() or base.endswith(".gguf"):
        if gguf_file is not None:
            raise _fail(f"{base} is a file; -M gguf_file only applies to a folder or hub repo")
        if not path.is_file():
            raise _fail(f"GGUF file not found: {base}")
        if path.suffix.lower() != ".gguf":
            raise _fail(f"{base} is a file but not a .gguf file; give a model folder, a hub id or a .gguf file")
        resolved = path.resolve()
        return ModelSource(str(resolved.parent), resolved.name, tokenizer, trust_remote_code)
    if path.is_dir():
        if gguf_file is not None and not (path / gguf_file).is_file():
            raise _fail(f"-M gguf_file={gguf_file}: no such file in {path}")
        if gguf_file is None and not (path / "config.json").is_file():
            ggufs = sorted(p.name for p in path.glob("*.gguf"))
            hint = f"; it holds GGUF files {ggufs}: name one as local/<file> or -M gguf_file=" if ggufs else ""
            raise _fail(f"{base} is not a transformers model folder (no config.json){hint}")
        return ModelSource(str(path.resolve()), gguf_file, tokenizer, trust_remote_code)
    if _looks_like_path(base):
        raise _fail(f"model path not found: {base}")
    return ModelSource(base, gguf_file, tokenizer, trust_remote_code)


def _identity(name: str) -> str:
    path = Path(name).expanduser()
    return str(path.resolve()) if path.exists() else name


def base_identities(base: str, source: ModelSource, loaded_name: str | None) -> set[str]:
    """Every name under which an adapter may record this base (module docstring, "Adapters")."""
    names = {base, _identity(base), source.name_or_path, source.describe()}
    if loaded_name:
        names |= {loaded_name, _identity(loaded_name)}
    return {name for name in names if name}


@dataclass(frozen=True)
class _Adapter:
    spec: AdapterSpec
    path: Path
    fingerprint: str
    engine_name: str
    recorded_base: str | None


def _read_adapter(spec: AdapterSpec) -> _Adapter:
    path = Path(spec.adapter).expanduser()
    if not path.is_dir():
        raise _fail(
            f"adapter directory not found: {spec.adapter} (the local provider loads adapters saved with "
            "peft's save_pretrained from a local folder)"
        )
    config_file = path / "adapter_config.json"
    if not config_file.is_file():
        raise _fail(f"{spec.adapter} is not a peft adapter folder: it has no adapter_config.json")
    try:
        config = json.loads(config_file.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise _fail(f"{config_file}: not readable JSON ({e})") from e
    if not isinstance(config, dict):
        raise _fail(f"{config_file}: expected a JSON object")
    if config.get("peft_type") != "LORA":
        raise _fail(
            f"{spec.adapter}: peft_type is {config.get('peft_type')!r}; the local provider applies LoRA adapters"
        )
    try:
        fingerprint = adapter_fingerprint(path)
    except FileNotFoundError as e:
        raise _fail(str(e)) from e
    recorded = config.get("base_model_name_or_path")
    return _Adapter(
        spec=spec,
        path=path.resolve(),
        fingerprint=fingerprint,
        engine_name="adapter_" + fingerprint.removeprefix("sha256:")[:16],
        recorded_base=str(recorded) if recorded else None,
    )


async def _wait(future: Future[list[Completion]]) -> list[Completion]:
    # asyncio can await a thread's future directly; other event loops (trio) wait in a worker thread
    if sniffio.current_async_library() == "asyncio":
        return await asyncio.wrap_future(future)
    return await anyio.to_thread.run_sync(future.result, abandon_on_cancel=True)


def _message_dicts(messages: list[ChatMessage]) -> list[dict[str, str]]:
    converted = []
    for message in messages:
        if isinstance(message, ChatMessageTool):
            raise ValueError("the local provider does not support tool calls")
        if isinstance(message.content, list):
            other = [
                type(c).__name__ for c in message.content if not isinstance(c, ContentText) and c.type != "reasoning"
            ]
            if other:
                raise ValueError(f"the local provider reads text only; a {message.role} message holds {other}")
        converted.append({"role": message.role, "content": message.text})
    return converted


class LocalModelAPI(ModelAPI):
    """The ``local`` provider; see the module docstring."""

    constrains_response_schema = True
    """``response_schema`` is enforced by constrained decoding (the protocol reads this with getattr)."""

    def __init__(
        self,
        model_name: str,
        base_url: str | None = None,
        api_key: str | None = None,
        config: GenerateConfig | None = None,
        **model_args: Any,
    ) -> None:
        super().__init__(model_name, base_url, api_key, [], config or GenerateConfig())
        self._engine: Engine | None = None
        self._adapter: _Adapter | None = None
        self._canary: dict[str, Any] | None = None
        try:
            self.args = LocalArgs.parse(model_args)
            spec = split_adapter(model_name)
        except ValueError as e:
            raise _fail(f"{model_name}: {e}") from e
        self._lookup_only = api_key == MODEL_INFO_LOOKUP_API_KEY
        if self._lookup_only:
            # inspect builds a second instance (without the -M args) only to ask for canonical_name() when it
            # reports usage; loading weights and running the canary again for that would double the cost
            return
        base = spec.base if spec is not None else model_name
        _require("torch", "transformers", "accelerate", why="the local provider")
        source = resolve_source(
            base, gguf_file=self.args.gguf_file, tokenizer=self.args.tokenizer,
            trust_remote_code=self.args.trust_remote_code,
        )
        if source.gguf_file is not None:
            _require("gguf", why="loading a GGUF file")
        adapter = None
        if spec is not None:
            _require("peft", why="applying a LoRA adapter")
            adapter = _read_adapter(spec)
        self._template = self._read_template(self.args.chat_template)

        from martingale_harness.backends import local_batching

        try:
            device = local_batching.resolve_device(self.args.device)
            dtype = local_batching.resolve_dtype(self.args.dtype, device)
        except ValueError as e:
            raise _fail(str(e)) from e
        # checked before the weights load (a minute or more for a large GGUF), which would be wasted without one
        tokenizer = None if self._template is not None else self._tokenizer_with_template(source)
        self._engine = local_batching.acquire_engine(source, device, dtype, tokenizer)
        try:
            if self._template is not None:
                # the engine already stops at its tokenizer's own turn end; the override's may be another token
                self._engine.add_stop_ids(local_batching.turn_end_ids(self._engine.tokenizer, self._template))
            if adapter is not None:
                self._apply_adapter(base, source, adapter)
        except BaseException:
            self.close()
            raise

    # ---- setup ---------------------------------------------------------------------------------

    @staticmethod
    def _read_template(template: str | None) -> str | None:
        if template is None:
            return None
        path = Path(template).expanduser()
        if path.is_file():
            return path.read_text()
        if "{" not in template:
            raise _fail(f"-M chat_template={template}: no such file (and not a Jinja template)")
        return template

    def _tokenizer_with_template(self, source: ModelSource) -> PreTrainedTokenizerBase | None:
        """Refuse a tokenizer without a chat template, reading it without the weights.

        Returns the tokenizer just read, for the engine to take, or None when a loaded engine's was checked.
        """
        from martingale_harness.backends import local_batching

        shared = local_batching.loaded_tokenizer(source)
        tokenizer = shared if shared is not None else local_batching.load_tokenizer(source)
        if not tokenizer.chat_template:
            raise _fail(
                f"{self.model_name}: the tokenizer has no chat template; pass one with -M chat_template=<file.jinja>"
            )
        # an engine's tokenizer is used by its worker thread: never hand it to a second engine
        return None if shared is not None else tokenizer

    def _apply_adapter(self, base: str, source: ModelSource, adapter: _Adapter) -> None:
        assert self._engine is not None
        if self.args.adapter_base_check:
            loaded_name = getattr(self._engine.model, "name_or_path", None)
            accepted = base_identities(base, source, loaded_name)
            if adapter.recorded_base is None or _identity(adapter.recorded_base) not in accepted:
                recorded = adapter.recorded_base or "nothing (no base_model_name_or_path)"
                raise AdapterBaseMismatchError(
                    f"local: adapter {adapter.spec.adapter} was trained on {recorded}, not on the base "
                    f"{base} (accepted names: {sorted(accepted)}); pass -M adapter_base_check=false if the "
                    "weights are the same model under another name"
                )
        else:
            logger.warning(
                f"adapter base check disabled for {self.model_name!r} (-M adapter_base_check=false): the "
                f"adapter records base {adapter.recorded_base!r}"
            )
        self._engine.attach_adapter(adapter.path, adapter.engine_name)
        self._adapter = adapter
        if not self.args.lora_canary:
            logger.warning(lora_canary_disabled_warning(self.model_name))
            self._canary = {"canary": "disabled"}
            return
        from martingale_harness.backends.local_batching import GenerationSettings

        settings = GenerationSettings(max_new_tokens=CANARY_MAX_TOKENS, do_sample=False, logprobs=True)
        prompt = self._prompt_ids([{"role": "user", "content": CANARY_PROMPT}])
        futures = [
            self._engine.submit(prompt, settings, adapter=name, batch_size=1, batch_wait=0.0)
            for name in (None, adapter.engine_name)
        ]
        base_reply, adapted_reply = (self._canary_reply(f.result()[0]) for f in futures)
        self._canary = check_canary(
            base_reply, adapted_reply, model=self.model_name, adapter=str(adapter.path), causes=CANARY_CAUSES
        )

    @staticmethod
    def _canary_reply(completion: Completion) -> CanaryReply:
        assert completion.logprobs is not None
        return CanaryReply(completion.text, tuple(t.logprob for t in completion.logprobs))

    def adapter_record(self) -> dict[str, Any] | None:
        """The applied adapter for the eval log (name, path, fingerprint, canary), or None without one."""
        if self._adapter is None:
            return None
        return {
            "backend": "local",
            "model": self.model_name,
            "base": self._adapter.spec.base,
            "name": self._adapter.spec.name,
            "path": str(self._adapter.path),
            "fingerprint": self._adapter.fingerprint,
            "recorded_base": self._adapter.recorded_base,
            "canary": self._canary,
        }

    def batch_size_counts(self) -> dict[int, int]:
        """How many batches of each size the shared engine has run (all users of this base)."""
        return self._engine.batch_size_counts() if self._engine is not None else {}

    def close(self) -> None:
        """Detach this model's adapter and release the shared engine (the last user frees the model)."""
        engine, self._engine = self._engine, None
        if engine is None:
            return
        from martingale_harness.backends.local_batching import release_engine

        if self._adapter is not None:
            engine.detach_adapter(self._adapter.engine_name)
        release_engine(engine)

    # ---- inspect's ModelAPI -------------------------------------------------------------------

    def max_tokens(self) -> int | None:
        return DEFAULT_MAX_TOKENS

    def max_connections(self) -> int:
        return 2 * self.args.batch_size

    def collapse_user_messages(self) -> bool:
        # many chat templates insist on alternating roles
        return True

    async def count_text_tokens(self, text: str) -> int:
        return len(self._encode(text))

    async def tokenize(self, text: str) -> list[int]:
        return self._encode(text)

    def _encode(self, text: str) -> list[int]:
        assert self._engine is not None, "the model is closed"
        return list(self._engine.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _prompt_ids(self, messages: list[dict[str, str]]) -> list[int]:
        assert self._engine is not None, "the model is closed"
        text = self._engine.tokenizer.apply_chat_template(
            messages, chat_template=self._template, add_generation_prompt=True, tokenize=False
        )
        # the template already wrote any BOS the model wants; adding special tokens again would double it
        return self._encode(str(text))

    def _settings(self, config: GenerateConfig) -> GenerationSettings:
        from martingale_harness.backends.local_batching import GenerationSettings

        assert self._engine is not None, "the model is closed"
        unsupported = {
            "best_of": config.best_of not in (None, 1),
            "logit_bias": bool(config.logit_bias),
            "frequency_penalty": config.frequency_penalty not in (None, 0, 0.0),
            "presence_penalty": config.presence_penalty not in (None, 0, 0.0),
        }
        if any(unsupported.values()):
            raise ValueError(f"the local provider does not support {[k for k, v in unsupported.items() if v]}")
        max_tokens = config.max_tokens if config.max_tokens is not None else DEFAULT_MAX_TOKENS
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, got {max_tokens}")
        temperature = config.temperature
        if temperature is not None and temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        do_sample = self._engine.default_do_sample() if temperature is None else temperature > 0
        return GenerationSettings(
            max_new_tokens=max_tokens,
            do_sample=do_sample,
            temperature=temperature if do_sample else None,
            top_p=config.top_p if do_sample else None,
            top_k=config.top_k if do_sample else None,
            logprobs=bool(config.logprobs),
            top_logprobs=(config.top_logprobs or 0) if config.logprobs else 0,
            stop_seqs=tuple(config.stop_seqs or ()),
            json_schema=None if config.response_schema is None else self._schema(config.response_schema),
        )

    def _schema(self, response_schema: ResponseSchema) -> str:
        """The schema's batching key (``local_grammar.canonical_schema``), compiled once here so a schema the
        grammar library cannot handle fails this request with its reason, not the batch it would join."""
        _require("llguidance", why="response_schema (constrained decoding)")
        from martingale_harness.backends.local_grammar import SchemaCompileError, canonical_schema

        assert self._engine is not None, "the model is closed"
        # serialize_as_any: keywords inspect's JSONSchema lacks live on subclasses (protocol.NumberSchema)
        schema = canonical_schema(response_schema.json_schema.model_dump(exclude_none=True, serialize_as_any=True))
        try:
            self._engine.schema_grammars().grammar(schema)
        except SchemaCompileError as e:
            raise ValueError(
                f"local: response_schema {response_schema.name!r} cannot be compiled for constrained decoding "
                f"(llguidance): {e}"
            ) from e
        return schema

    async def generate(
        self,
        input: list[ChatMessage],
        tools: list[ToolInfo],
        tool_choice: ToolChoice,
        config: GenerateConfig,
    ) -> ModelOutput:
        if tools:
            raise ValueError("the local provider does not support tools")
        if self._lookup_only:
            raise RuntimeError("this local model instance was made for inspect's model-info lookup and cannot generate")
        assert self._engine is not None, "the model is closed"
        settings = self._settings(config)
        prompt = self._prompt_ids(_message_dicts(input))
        future = self._engine.submit(
            prompt,
            settings,
            adapter=self._adapter.engine_name if self._adapter is not None else None,
            batch_size=self.args.batch_size,
            batch_wait=self.args.batch_wait,
            seed=config.seed if settings.do_sample else None,
            choices=1 if config.num_choices is None else config.num_choices,
        )
        completions = await _wait(future)
        first = completions[0]
        output_tokens = sum(c.output_tokens for c in completions)  # the prompt was read once for all choices
        return ModelOutput(
            model=self.model_name,
            choices=[self._choice(c, settings) for c in completions],
            usage=ModelUsage(
                input_tokens=first.input_tokens,
                output_tokens=output_tokens,
                total_tokens=first.input_tokens + output_tokens,
            ),
            time=first.time,
            metadata={"batch_size": first.batch_size},
        )

    def _choice(self, completion: Completion, settings: GenerationSettings) -> ChatCompletionChoice:
        logprobs = None
        if completion.logprobs is not None:
            logprobs = Logprobs(
                content=[
                    Logprob(
                        token=t.token,
                        logprob=t.logprob,
                        bytes=list(t.token.encode()),
                        top_logprobs=[TopLogprob(token=s, logprob=v, bytes=list(s.encode())) for s, v in t.top]
                        if settings.top_logprobs
                        else None,
                    )
                    for t in completion.logprobs
                ]
            )
        return ChatCompletionChoice(
            message=ChatMessageAssistant(content=completion.text, model=self.model_name, source="generate"),
            stop_reason=completion.stop_reason,
            logprobs=logprobs,
        )


# registered apart from the class definition: inspect's decorator hands back a factory function, and callers
# (the protocol's adapter_record lookup, tests) need the class itself for isinstance checks
local_provider = modelapi(name="local")(LocalModelAPI)
