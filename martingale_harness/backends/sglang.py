"""``--model sglang/<served-model>+<adapter>`` (or ``:<adapter>``): evaluate a LoRA adapter on an SGLang server.

Routing. inspect resolves ``sglang/...`` by scanning its model-API registry in insertion order and
taking the first entry whose unqualified name is ``sglang``: its own built-in provider, registered
when ``inspect_ai.model`` is imported, before any extension. A provider of ours named ``sglang`` would
never be picked, and a new name (``sglang-lora/...``) would change the command users type. So
:func:`install_routing` (run when inspect loads this package's entry point, which ``inspect eval``
and ``eval()`` do before they build models) re-registers the *same registry key* with a thin router:
a model name with an adapter (:func:`~martingale_harness.backends.lora.split_adapter`) builds
:class:`SGLangLoRAAPI`; any other name is handed, arguments untouched, to inspect's own factory, so
plain ``sglang/<model>`` keeps inspect's behaviour exactly (including starting a server). This
relies only on inspect's registry functions (``registry_find``, ``registry_info``, ``registry_add``),
not on the key's spelling or on patching inspect's classes, and it fails loudly if inspect ever stops
registering an ``sglang`` provider. Python users who call ``get_model`` outside ``eval()`` import
``martingale`` (or this module) first.

Server. The URL comes from where inspect's SGLang provider takes it: ``--model-base-url``, else
``-M port=N`` (``http://localhost:N/v1``), else ``SGLANG_BASE_URL``, else ``INSPECT_EVAL_MODEL_BASE_URL``
(``-M base_url=`` cannot work: inspect passes the base URL separately and rejects a second one). The
key is ``-M api_key=`` or ``SGLANG_API_KEY`` (sent as a bearer token; none when unset). No server is
ever started for an adapter eval. Before the first sample the constructor checks, with one clear error
each: the server answers (``/v1/models``), it accepts the key, it serves the base model named (by served
name or ``/model_info`` ``model_path``), and the adapter exists. A registered name must appear in the
server's adapter listing (``/v1/models`` entries with ``parent`` = the base; the error lists them); a
local folder (``adapter_config.json`` + weights) is checked against the base model its config names
and loaded with ``POST /load_lora_adapter`` under ``<folder>-<fingerprint prefix>``, so reruns reuse
it and a changed adapter never shadows an old one (the path must be readable by the server too; it is
left loaded, since another eval may be using it).

Requests. SGLang selects an adapter per request three ways (docs/architecture.md, section 4): native ``/generate`` takes
``lora_path`` (the registered name) but no chat messages; ``/v1/chat/completions`` takes
``model="base:adapter"``, which servers older than that syntax silently ignore (serving the base), or
the older explicit ``lora_path`` body field. ``-M transport=chat`` (default) sends every call to
``/v1/chat/completions`` with ``model=<base>`` and ``lora_path=<adapter>``: the server applies the
model's own chat template and reasoning parser (so R1/Qwen3 reasoning lands in the transcript), and
logprobs and usage come back in OpenAI form. ``-M transport=generate`` sends every call to
``/generate`` with ``lora_path``, the chat rendered here with the model's tokenizer template
(``transformers``; ``-M tokenizer=`` or the server's ``tokenizer_path``), ``<think>`` blocks split
into reasoning, and ``meta_info`` mapped to usage and logprobs: the route for servers whose chat
endpoint ignores ``lora_path`` (there ``--seed`` is sent as ``sampling_params.sampling_seed``, which
servers older than that parameter reject with an error, and an unset ``--max-tokens`` becomes
:data:`DEFAULT_GENERATE_MAX_TOKENS`, not SGLang's 128).

Response schema. inspect's ``response_schema`` is sent the way SGLang documents structured outputs: on
the chat transport as OpenAI's ``response_format={"type": "json_schema", "json_schema": {"name", "schema",
"description", "strict"}}``, on ``/generate`` as ``sampling_params.json_schema`` (the schema as a JSON
string). The server's grammar backend (xgrammar by default) constrains the decoding, so
:attr:`SGLangLoRAAPI.constrains_response_schema` is true.

Canary (``-M lora_canary=false`` skips it, with a warning). A fixed prompt goes greedily through base and
adapter on ``/generate`` (text and prompt + output logprobs), then, with the chat transport, on the
exact chat request shape used for the eval. Identical answers on either route raise
:class:`~martingale_harness.backends.lora.AdapterNotAppliedError` naming the likely causes. A third
chat call with ``model="base:adapter"`` tells whether the server honours that syntax; an old server
that ignores it is reported (``openai_model_syntax: ignored``, and a warning) since other clients would
silently get the base model, while this backend does not depend on it.

Record. ``adapter_record()`` gives the adapter's name, path, fingerprint (sha256 of the weight files
for a local folder, else of the server's listing entry), the server, transport and canary outcome;
the protocol solver stores it in every sample's metadata under ``"adapter"`` (inspect's log header
holds only the user's ``-M`` values, which a provider cannot extend), and each model call inspect keeps
in the log (all of them with ``--log-model-api``) shows the ``lora_path`` it sent.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import time
import weakref
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import httpx2
from inspect_ai.model import (
    ChatCompletionChoice,
    ChatMessage,
    ChatMessageAssistant,
    ChatMessageSystem,
    ChatMessageUser,
    ContentReasoning,
    ContentText,
    GenerateConfig,
    Logprob,
    Logprobs,
    ModelAPI,
    ModelCall,
    ModelOutput,
    ModelUsage,
    ResponseSchema,
    StopReason,
    TopLogprob,
)
from inspect_ai.tool import ToolChoice, ToolInfo

from martingale_harness._inspect_compat import (
    MODEL_INFO_LOOKUP_API_KEY,
    PrerequisiteError,
    RegistryInfo,
    chat_choices_from_openai,
    messages_to_openai,
    model_output_from_openai,
    parse_content_with_reasoning,
    registry_add,
    registry_find,
    registry_info,
    registry_tag,
    registry_unqualified_name,
    validate_openai_client,
)
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

logger = logging.getLogger(__name__)

PROVIDER = "sglang"
API_KEY_VAR = "SGLANG_API_KEY"
BASE_URL_VARS = ("SGLANG_BASE_URL", "INSPECT_EVAL_MODEL_BASE_URL")
Transport = Literal["chat", "generate"]
TRANSPORTS: tuple[str, ...] = ("chat", "generate")
MODEL_ARGS = ("check_base", "lora_canary", "name", "tokenizer", "transport")
"""``name`` only labels the run in reports (``martingale_harness.reporting.display``)."""
DEFAULT_GENERATE_MAX_TOKENS = 4096
"""``max_new_tokens`` for ``/generate`` when ``--max-tokens`` is unset (SGLang's own default, 128, cuts answers)."""
SETUP_TIMEOUT_S = 120.0
REQUEST_TIMEOUT_S = 600.0

GENERATE_CAUSES = (
    "the server was started without LoRA support (--enable-lora / --lora-paths) and ignores lora_path; the "
    "adapter's weights are all zero (an untrained or wrongly saved adapter: LoRA's B matrices start at zero); or "
    "the adapter name is registered for a different, no-op adapter."
)
CHAT_CAUSES = (
    "the native /generate endpoint applied the adapter, but /v1/chat/completions ignored the explicit lora_path "
    "field (an SGLang version older than LoRA on its OpenAI endpoints, which also ignores model='base:adapter'). "
    "Use -M transport=generate to send every request to /generate, or upgrade the server."
)


class SGLangSetupError(PrerequisiteError):
    """A problem the user fixes before the eval can start (server, key, base model, adapter)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.args = (message,)


class LoraCanaryError(AdapterNotAppliedError, PrerequisiteError):
    """The canary found base and adapter identical; shown by inspect as one message."""

    def __init__(self, message: str) -> None:
        AdapterNotAppliedError.__init__(self, message)
        self.message = message


class SGLangRequestError(RuntimeError):
    """The server answered a generation request with an HTTP error."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"SGLang server error (HTTP {status}): {message}")
        self.status = status


class SGLangResponseError(RuntimeError):
    """The server answered a generation request with a complete body that is not JSON.

    Not retried, as inspect's own OpenAI-compatible provider does not retry one: a body cut off in
    transit is a transport error (retried); a well-framed response that does not parse is the server's.
    """


# ---------------------------------------------------------------------------------------------------------
# routing


def install_routing() -> None:
    """Make inspect's ``sglang`` provider hand adapter model names to :class:`SGLangLoRAAPI`; idempotent."""

    def is_sglang(info: RegistryInfo) -> bool:
        return info.type == "modelapi" and registry_unqualified_name(info) == PROVIDER

    found = registry_find(is_sglang)
    if not found:
        raise RuntimeError("inspect registers no 'sglang' model provider; martingale cannot route sglang/<m>+<a>")
    original = found[0]
    if getattr(original, "_martingale_adapter_router", False):
        return
    info = registry_info(original)

    def route(*args: Any, **kwargs: Any) -> ModelAPI:
        model_name = kwargs["model_name"] if "model_name" in kwargs else args[0]
        try:
            spec = split_adapter(str(model_name))
        except ValueError as e:
            raise SGLangSetupError(f"martingale: {e}") from None
        if spec is None:
            return original(*args, **kwargs)  # type: ignore[operator, no-any-return]
        api = SGLangLoRAAPI(*args, **kwargs)
        # tag like inspect's own factory does, so the log names the model sglang/<base>+<adapter>
        registry_tag(SGLangLoRAAPI, api, RegistryInfo(type="modelapi", name=info.name), model_name=model_name)
        return api

    route._martingale_adapter_router = True  # type: ignore[attr-defined]
    registry_add(route, RegistryInfo(type="modelapi", name=info.name))


# ---------------------------------------------------------------------------------------------------------
# helpers


def same_model(name: str, other: str) -> bool:
    """Whether two model names/paths name the same model: equal, or equal last path part (case-insensitive)."""
    a, b = name.strip().rstrip("/").lower(), other.strip().rstrip("/").lower()
    return bool(a) and (a == b or a.rsplit("/", 1)[-1] == b.rsplit("/", 1)[-1])


def _bool_arg(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise SGLangSetupError(f"martingale: -M {name} must be true or false, got {value!r}")


def _server_url(base_url: str | None, port: int | None) -> str:
    if base_url and port:
        raise SGLangSetupError("martingale: give the SGLang server as --model-base-url or -M port, not both")
    url = base_url or (f"http://localhost:{port}/v1" if port else None)
    url = url or next((os.environ[v] for v in BASE_URL_VARS if os.environ.get(v)), None)
    if not url:
        raise SGLangSetupError(
            "martingale: no SGLang server for the adapter eval: set SGLANG_BASE_URL=http://<host>:<port>/v1 or "
            "pass --model-base-url (adapter evals never start a server)"
        )
    return url


def _root(url: str) -> str:
    """The server root for native endpoints: the URL without a trailing ``/v1``."""
    url = url.rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


def _public_url(url: str) -> str:
    """The URL without any user:password part, for logs and records."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _error_text(response: httpx2.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500] or response.reason_phrase
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        for value in (error, body.get("error_message"), body.get("message"), body.get("detail")):
            if value:
                return str(value)
    return json.dumps(body)[:500]


def _reply_from_generate(body: dict[str, Any]) -> CanaryReply:
    meta = body.get("meta_info") or {}
    logprobs = [e[0] for e in (meta.get("input_token_logprobs") or []) + (meta.get("output_token_logprobs") or [])
                if e and e[0] is not None]
    return CanaryReply(text=str(body.get("text", "")), logprobs=tuple(float(v) for v in logprobs) or None)


def _reply_from_chat(body: dict[str, Any]) -> CanaryReply:
    choice = (body.get("choices") or [{}])[0]
    content = (choice.get("message") or {}).get("content") or ""
    entries = ((choice.get("logprobs") or {}).get("content")) or []
    logprobs = tuple(float(e["logprob"]) for e in entries if e.get("logprob") is not None)
    return CanaryReply(text=str(content), logprobs=logprobs or None)


_STOP_REASONS: dict[str, StopReason] = {"stop": "stop", "length": "max_tokens", "abort": "unknown"}


# ---------------------------------------------------------------------------------------------------------
# the model API


class SGLangLoRAAPI(ModelAPI):
    """An SGLang server with a LoRA adapter applied to every request; see the module docstring."""

    constrains_response_schema = True
    """``response_schema`` goes to the server's grammar backend (the protocol reads this with getattr)."""

    def __init__(
        self,
        model_name: str,
        base_url: str | None = None,
        port: int | None = None,
        api_key: str | None = None,
        config: GenerateConfig | None = None,
        **model_args: Any,
    ) -> None:
        config = config or GenerateConfig()
        try:
            spec = split_adapter(model_name)
        except ValueError as e:
            raise SGLangSetupError(f"martingale: {e}") from None
        if spec is None:
            raise SGLangSetupError(f"martingale: sglang/{model_name} names no adapter (use <model>+<adapter>)")
        unknown = sorted(set(model_args) - set(MODEL_ARGS))
        if unknown:
            raise SGLangSetupError(
                f"martingale: sglang/{model_name}: unknown model args {unknown}; allowed: {sorted(MODEL_ARGS)}"
            )
        transport = str(model_args.get("transport", "chat"))
        if transport not in TRANSPORTS:
            raise SGLangSetupError(f"martingale: -M transport={transport!r} is not one of {TRANSPORTS}")
        url = _server_url(base_url, port)
        super().__init__(model_name, url, api_key or os.environ.get(API_KEY_VAR) or None, [API_KEY_VAR], config)
        self.spec: AdapterSpec = spec
        self.transport: Transport = transport  # type: ignore[assignment]
        self.check_base = _bool_arg("check_base", model_args.get("check_base", True))
        self.canary_enabled = _bool_arg("lora_canary", model_args.get("lora_canary", True))
        self.root = _root(url)
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx2.AsyncClient] = (
            weakref.WeakKeyDictionary()
        )
        self._tokenizer: Any = None
        self._pending_warning: str | None = None
        self.served_model = spec.base
        self.adapter_name = spec.adapter
        self._record: dict[str, Any] = {}
        if api_key == MODEL_INFO_LOOKUP_API_KEY:
            # inspect builds a throwaway instance only to read canonical_name(): no server calls, no canary
            self._lookup_only = True
            return
        self._lookup_only = False
        if transport == "chat":
            validate_openai_client(f"sglang/{model_name} with -M transport=chat")  # openai installed, recent
        with httpx2.Client(base_url=self.root, headers=self._headers(), timeout=SETUP_TIMEOUT_S) as client:
            self._setup(client, model_args.get("tokenizer"))

    # -- setup (synchronous, before any sample) ---------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def _call(self, client: httpx2.Client, method: str, path: str, body: Any = None) -> httpx2.Response:
        where = _public_url(self.root)
        try:
            response = client.request(method, path, json=body)
        except httpx2.HTTPError as e:
            raise SGLangSetupError(
                f"martingale: cannot reach the SGLang server at {where} ({type(e).__name__}: {e}); is it running, "
                "and is SGLANG_BASE_URL / --model-base-url right?"
            ) from None
        if response.status_code in (401, 403):
            hint = ("the server rejected the API key given" if self.api_key else
                    f"the server requires an API key: set {API_KEY_VAR} or pass -M api_key=...")
            raise SGLangSetupError(f"martingale: SGLang server at {where} answered HTTP {response.status_code}: {hint}")
        return response

    def _json(
        self, client: httpx2.Client, method: str, path: str, body: Any = None, what: str = ""
    ) -> dict[str, Any]:
        return self._parse(self._call(client, method, path, body), what or path)

    def _parse(self, response: httpx2.Response, what: str) -> dict[str, Any]:
        problem = f"(HTTP {response.status_code}): {_error_text(response)}" if response.status_code >= 400 else ""
        if not problem:
            try:
                body = response.json()
            except ValueError:
                body = None
            if isinstance(body, dict):
                return body
            problem = f"with something other than a JSON object: {response.text[:200]!r}"
        raise SGLangSetupError(f"martingale: SGLang server at {_public_url(self.root)}: {what} failed {problem}")

    def _setup(self, client: httpx2.Client, tokenizer: Any) -> None:
        listing = self._json(client, "GET", "/v1/models", what="listing models (/v1/models)").get("data") or []
        served = [m for m in listing if not m.get("parent")]
        adapters = {m["id"]: m for m in listing if m.get("parent")}
        info_response = self._call(client, "GET", "/model_info")
        if info_response.status_code == 404:  # the endpoint's older name
            info_response = self._call(client, "GET", "/get_model_info")
        # model info only refines the base-model check and finds the tokenizer: a server without it still works
        info = self._parse(info_response, "/model_info") if info_response.status_code < 400 else {}
        model_path = info.get("model_path")
        names = [str(m["id"]) for m in served] + ([str(model_path)] if model_path else [])
        served_desc = ", ".join(repr(n) for n in names) or "nothing"
        matched = next((str(m["id"]) for m in served if same_model(self.spec.base, str(m["id"]))), None)
        if matched is None and model_path and same_model(self.spec.base, str(model_path)) and served:
            matched = str(served[0]["id"])
        if matched is None and self.check_base:
            raise SGLangSetupError(
                f"martingale: the SGLang server at {_public_url(self.root)} serves {served_desc}, not "
                f"{self.spec.base!r}: point SGLANG_BASE_URL at the server for that model, or fix the model name "
                "(-M check_base=false skips this check)"
            )
        self.served_model = matched or self.spec.base
        self._record = {
            "backend": PROVIDER,
            "model": self.served_model,
            "model_path": model_path,
            "server": _public_url(self.root),
            "transport": self.transport,
        }
        if self.spec.is_local_path:
            self._load_local_adapter(client, adapters, names)
        else:
            self._use_registered_adapter(adapters)
        if self.transport == "generate":
            self._tokenizer = self._load_tokenizer(tokenizer or info.get("tokenizer_path") or model_path)
        if self.canary_enabled:
            self._record["canary"] = self._canary(client)
        else:
            warning = lora_canary_disabled_warning(f"sglang/{self.model_name}")
            logger.warning(warning)
            self._pending_warning = warning  # repeated inside the eval, so it lands in the eval log too
            self._record["canary"] = {"canary": "disabled", "warning": warning}

    def _use_registered_adapter(self, adapters: dict[str, dict[str, Any]]) -> None:
        name = self.spec.adapter
        if adapters and name not in adapters:
            raise SGLangSetupError(
                f"martingale: the SGLang server at {_public_url(self.root)} has no adapter {name!r}; its adapters: "
                f"{', '.join(sorted(adapters))}. Load it with --lora-paths {name}=<path>, or give a local path."
            )
        entry = adapters.get(name)
        if entry is not None and self.check_base and not same_model(str(entry["parent"]), self.served_model):
            raise SGLangSetupError(
                f"martingale: adapter {name!r} on the server belongs to base model {entry['parent']!r}, not "
                f"{self.served_model!r}"
            )
        if entry is None:
            # servers before adapter listing: nothing to check here; the canary still proves the adapter applies
            logger.warning(f"SGLang server at {_public_url(self.root)} lists no LoRA adapters; adapter {name!r} "
                           "is checked by the canary only")
            fingerprint, source = None, "unavailable: the server lists no adapters"
        else:
            # id, root and parent identify the adapter; other fields (e.g. `created`) change per request
            listed = json.dumps({k: entry.get(k) for k in ("id", "root", "parent")}, sort_keys=True).encode()
            fingerprint, source = "sha256:" + hashlib.sha256(listed).hexdigest(), "server adapter listing"
        self.adapter_name = name
        self._record.update({
            "adapter": name, "path": entry.get("root") if entry else None, "fingerprint": fingerprint,
            "fingerprint_source": source, "server_listing": entry, "loaded_by_harness": False,
        })

    def _load_local_adapter(self, client: httpx2.Client, adapters: dict[str, dict[str, Any]], names: list[str]) -> None:
        path = Path(self.spec.adapter).expanduser().resolve()
        config_file = path / "adapter_config.json"
        if not path.is_dir() or not config_file.is_file():
            raise SGLangSetupError(f"martingale: {path} is not a LoRA adapter folder (no adapter_config.json)")
        try:
            adapter_base = json.loads(config_file.read_text()).get("base_model_name_or_path")
        except (OSError, ValueError) as e:
            raise SGLangSetupError(f"martingale: cannot read {config_file}: {e}") from None
        if self.check_base and adapter_base and not any(same_model(str(adapter_base), n) for n in names):
            raise SGLangSetupError(
                f"martingale: adapter {path} was trained for base model {adapter_base!r}, but the SGLang server "
                f"serves {', '.join(repr(n) for n in names)} (-M check_base=false skips this check)"
            )
        try:
            fingerprint = adapter_fingerprint(path)
        except FileNotFoundError as e:
            raise SGLangSetupError(f"martingale: {e}") from None
        name = f"{path.name}-{fingerprint.removeprefix('sha256:')[:12]}"
        loaded = name not in adapters
        if loaded:
            self._json(client, "POST", "/load_lora_adapter", {"lora_name": name, "lora_path": str(path)},
                       what=f"loading adapter {path} (/load_lora_adapter)")
        self.adapter_name = name
        self._record.update({
            "adapter": name, "path": str(path), "fingerprint": fingerprint,
            "fingerprint_source": "sha256 of the local weight files", "adapter_base_model": adapter_base,
            "loaded_by_harness": loaded,
        })

    def _load_tokenizer(self, source: Any) -> Any:
        if not source:
            raise SGLangSetupError("martingale: -M transport=generate needs the model's tokenizer: pass -M tokenizer=")
        try:
            from transformers import AutoTokenizer
        except ImportError:
            raise SGLangSetupError(
                "martingale: -M transport=generate renders chat templates with transformers: "
                "pip install 'martingale-harness[hf]'"
            ) from None
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(source))
        except (OSError, ValueError) as e:
            raise SGLangSetupError(f"martingale: cannot load the tokenizer {source!r} (-M tokenizer=): {e}") from None
        if not getattr(tokenizer, "chat_template", None):
            raise SGLangSetupError(f"martingale: the tokenizer {source!r} has no chat template")
        return tokenizer

    # -- canary -------------------------------------------------------------------------------------------

    def _canary(self, client: httpx2.Client) -> dict[str, Any]:
        model, adapter = f"sglang/{self.served_model}", self.adapter_name

        def generate(lora: str | None) -> CanaryReply:
            body = {"text": CANARY_PROMPT, "lora_path": lora, "return_logprob": True, "logprob_start_len": 0,
                    "sampling_params": {"temperature": 0.0, "max_new_tokens": CANARY_MAX_TOKENS}}
            return _reply_from_generate(self._json(client, "POST", "/generate", body, what="the LoRA canary"))

        def chat(model_field: str, lora: str | None) -> CanaryReply:
            body: dict[str, Any] = {
                "model": model_field, "messages": [{"role": "user", "content": CANARY_PROMPT}],
                "temperature": 0.0, "max_tokens": CANARY_MAX_TOKENS, "logprobs": True, "top_logprobs": 1,
            }
            if lora is not None:
                body["lora_path"] = lora
            return _reply_from_chat(self._json(client, "POST", "/v1/chat/completions", body,
                                               what="the LoRA canary (chat)"))

        def check(base: CanaryReply, adapted: CanaryReply, causes: str) -> dict[str, Any]:
            try:
                return check_canary(base, adapted, model=model, adapter=adapter, causes=causes)
            except AdapterNotAppliedError as e:
                raise LoraCanaryError(f"martingale: {e}") from None

        prompt_hash = hashlib.sha256(CANARY_PROMPT.encode()).hexdigest()
        record: dict[str, Any] = {"canary": "passed", "prompt_sha256": prompt_hash}
        record["generate"] = check(generate(None), generate(adapter), GENERATE_CAUSES)
        chat_base = chat(self.served_model, None)
        if self.transport == "chat":
            record["chat"] = check(chat_base, chat(self.served_model, adapter), CHAT_CAUSES)
        try:
            syntax_reply = chat(f"{self.served_model}:{adapter}", None)
        except SGLangSetupError as e:
            record["openai_model_syntax"] = f"rejected: {e}"
        else:
            try:
                check_canary(chat_base, syntax_reply, model=model, adapter=adapter, causes="")
                record["openai_model_syntax"] = "honoured"
            except AdapterNotAppliedError:
                record["openai_model_syntax"] = "ignored"
                logger.warning(
                    f"SGLang server at {_public_url(self.root)} ignores model='{self.served_model}:{adapter}' on "
                    "/v1/chat/completions (an older SGLang): clients using that syntax silently get the base model. "
                    "This eval is not affected: it selects the adapter with lora_path, which the canary verified."
                )
        return record

    # -- inspect's ModelAPI -------------------------------------------------------------------------------

    def adapter_record(self) -> dict[str, Any] | None:
        """Adapter name, path, fingerprint, server and canary outcome (JSON-able; never the API key)."""
        return dict(self._record)

    def connection_key(self) -> str:
        # one SGLang server is one concurrency pool, whoever's key is used (as inspect's sglang provider)
        return self.root

    def should_retry(self, ex: Exception) -> bool:
        if isinstance(ex, SGLangRequestError):
            return ex.status == 429 or ex.status >= 500
        return isinstance(ex, httpx2.TimeoutException | httpx2.TransportError)

    def is_auth_failure(self, ex: Exception) -> bool:
        return isinstance(ex, SGLangRequestError) and ex.status in (401, 403)

    def _client(self) -> httpx2.AsyncClient:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            # no pool cap here: inspect's max_connections semaphore is the one limit. httpx2, not httpx:
            # httpx 0.28's pool costs ~5-11 ms of event-loop CPU per request at 50 concurrent connections
            # against ~1.5-2 ms for httpx2, enough to make the client the bottleneck of a fast server
            # (benchmarks/overhead.py shows it end to end)
            client = httpx2.AsyncClient(
                base_url=self.root, headers=self._headers(), timeout=REQUEST_TIMEOUT_S,
                limits=httpx2.Limits(max_connections=None, max_keepalive_connections=64),
            )
            self._clients[loop] = client
        return client

    async def aclose(self) -> None:
        clients = list(self._clients.values())
        self._clients.clear()
        for client in clients:
            try:
                await client.aclose()
            except RuntimeError:  # its event loop is gone: nothing left to close
                pass

    async def generate(
        self,
        input: list[ChatMessage],
        tools: list[ToolInfo],
        tool_choice: ToolChoice,
        config: GenerateConfig,
    ) -> tuple[ModelOutput | Exception, ModelCall]:
        if self._lookup_only:
            raise RuntimeError("this SGLang model instance was built for a model-info lookup and cannot generate")
        if tools:
            raise ValueError("sglang/<model>+<adapter> does not support tool calls")
        if self._pending_warning is not None:
            logger.warning(self._pending_warning)
            self._pending_warning = None
        path, body = await (self._chat_request(input, config) if self.transport == "chat"
                            else self._generate_request(input, config))
        timeout = config.attempt_timeout or config.timeout or REQUEST_TIMEOUT_S
        start = time.monotonic()
        response = await self._client().post(path, json=body, timeout=timeout)
        elapsed = time.monotonic() - start
        if response.status_code >= 400:
            raise SGLangRequestError(response.status_code, _error_text(response))
        try:
            payload = response.json()
        except ValueError:
            raise SGLangResponseError(
                f"SGLang server answered {path} (HTTP {response.status_code}) with a body that is not JSON "
                f"({len(response.content)} bytes: {response.text[:120]!r})"
            ) from None
        call = ModelCall.create(request={"endpoint": path, **body}, response=payload, time=elapsed)
        if self.transport == "chat":
            from openai.types.chat import ChatCompletion

            completion = ChatCompletion.model_validate(payload)
            output = model_output_from_openai(completion, chat_choices_from_openai(completion, tools=[]))
        else:
            output = self._output_from_generate(payload)
        return output, call

    # -- chat transport -------------------------------------------------------------------------------------

    async def _chat_request(self, input: list[ChatMessage], config: GenerateConfig) -> tuple[str, dict[str, Any]]:
        # inspect's converters, not its public messages_to_openai / model_output_from_openai wrappers: those
        # re-check the installed openai version through importlib.metadata on every call (about 4.6 ms of
        # CPU each, two per request, more than the HTTP request costs), so the constructor checks it once.
        # (_inspect_compat imports them on first use: openai is an optional dependency.)
        body: dict[str, Any] = {
            "model": self.served_model,
            "messages": await messages_to_openai(input),
            "lora_path": self.adapter_name,
        }
        options = {
            "max_tokens": config.max_tokens, "temperature": config.temperature, "top_p": config.top_p,
            "top_k": config.top_k, "seed": config.seed, "stop": config.stop_seqs,
            "frequency_penalty": config.frequency_penalty, "presence_penalty": config.presence_penalty,
        }
        body.update({k: v for k, v in options.items() if v is not None})
        if config.logprobs:
            body["logprobs"] = True
            if config.top_logprobs:
                body["top_logprobs"] = config.top_logprobs
        if config.response_schema is not None:
            # OpenAI's structured-output field, which SGLang's chat endpoint compiles with its grammar backend
            schema = config.response_schema
            json_schema = {"name": schema.name, "schema": _schema_dict(schema), "description": schema.description,
                           "strict": schema.strict}
            body["response_format"] = {"type": "json_schema",
                                       "json_schema": {k: v for k, v in json_schema.items() if v is not None}}
        return "/v1/chat/completions", body

    # -- generate transport ---------------------------------------------------------------------------------

    def _render(self, input: list[ChatMessage]) -> str:
        messages = []
        for message in input:
            if not isinstance(message, ChatMessageSystem | ChatMessageUser | ChatMessageAssistant):
                raise ValueError(f"-M transport=generate cannot send {message.role} messages")
            # earlier reasoning is left out of the history, as reasoning models' templates expect
            messages.append({"role": message.role, "content": message.text})
        return str(self._tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))

    async def _generate_request(self, input: list[ChatMessage], config: GenerateConfig) -> tuple[str, dict[str, Any]]:
        params = {
            "max_new_tokens": config.max_tokens or DEFAULT_GENERATE_MAX_TOKENS, "temperature": config.temperature,
            "top_p": config.top_p, "top_k": config.top_k, "stop": config.stop_seqs, "sampling_seed": config.seed,
            "frequency_penalty": config.frequency_penalty, "presence_penalty": config.presence_penalty,
        }
        body: dict[str, Any] = {
            "text": self._render(input),
            "sampling_params": {k: v for k, v in params.items() if v is not None},
            "lora_path": self.adapter_name,
        }
        if config.response_schema is not None:
            # native /generate takes the schema as a JSON string among the sampling params
            body["sampling_params"]["json_schema"] = json.dumps(_schema_dict(config.response_schema))
        if config.logprobs:
            body.update({"return_logprob": True, "top_logprobs_num": config.top_logprobs or 0,
                         "return_text_in_logprobs": True})
        return "/generate", body

    def _output_from_generate(self, payload: dict[str, Any]) -> ModelOutput:

        meta = payload.get("meta_info") or {}
        text, capsule = parse_content_with_reasoning(str(payload.get("text", "")))
        content: str | list[ContentReasoning | ContentText] = text
        if capsule is not None:
            content = [ContentReasoning(reasoning=capsule.reasoning), ContentText(text=text)]
        finish = meta.get("finish_reason")
        finish_type = finish.get("type") if isinstance(finish, dict) else finish
        choice = ChatCompletionChoice(
            message=ChatMessageAssistant(content=content, model=self.served_model, source="generate"),
            stop_reason=_STOP_REASONS.get(str(finish_type), "unknown"),
            logprobs=_logprobs(meta),
        )
        prompt, completion = int(meta.get("prompt_tokens", 0)), int(meta.get("completion_tokens", 0))
        cached = int(meta.get("cached_tokens") or 0)
        usage = ModelUsage(input_tokens=prompt - cached, output_tokens=completion, total_tokens=prompt + completion,
                           input_tokens_cache_read=cached or None)
        return ModelOutput(model=self.served_model, choices=[choice], usage=usage)


def _schema_dict(schema: ResponseSchema) -> dict[str, Any]:
    """The response schema's JSON schema as a dict, unset fields left out (as inspect's OpenAI provider sends it)."""
    return schema.json_schema.model_dump(exclude_none=True, serialize_as_any=True)  # keeps subclasses' keywords


def _logprobs(meta: dict[str, Any]) -> Logprobs | None:
    """inspect Logprobs from ``meta_info`` entries ``[logprob, token_id, token_text]``."""
    chosen = meta.get("output_token_logprobs")
    if not chosen:
        return None
    tops = meta.get("output_top_logprobs") or [None] * len(chosen)

    def text(entry: list[Any]) -> str:
        if entry[2] is None:
            raise ValueError("SGLang returned logprobs without token text (return_text_in_logprobs ignored)")
        return str(entry[2])

    content = [
        Logprob(token=text(entry), logprob=float(entry[0]),
                top_logprobs=[TopLogprob(token=text(t), logprob=float(t[0])) for t in top] if top else None)
        for entry, top in zip(chosen, tops, strict=False)
    ]
    return Logprobs(content=content)


install_routing()
