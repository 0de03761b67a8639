"""A local server that speaks SGLang's documented HTTP protocol, for tests only: no model runs here.

It lets the harness's ``sglang/<served-model>+<adapter>`` backend run offline. Endpoints (as SGLang
documents them; see ``martingale_harness/backends/sglang.py`` for the facts used):

- ``POST /generate``: native generation. ``text`` (one prompt), ``sampling_params``
  (``max_new_tokens``, ``temperature``, ...), ``lora_path`` (a registered adapter name, ``None`` = base),
  ``return_logprob`` with ``logprob_start_len`` / ``top_logprobs_num`` / ``return_text_in_logprobs``.
  Answers ``{"text", "meta_info": {"prompt_tokens", "completion_tokens", "finish_reason", ...}}`` with
  ``input_token_logprobs`` / ``output_token_logprobs`` / ``output_top_logprobs`` entries
  ``[logprob, token_id, token_text]`` when asked.
- ``POST /v1/chat/completions``: OpenAI-compatible; the adapter is chosen by ``model="base:adapter"``,
  which wins over an explicit ``lora_path`` body field (SGLang's precedence).
- ``GET /v1/models``: the served model, and every loaded adapter with ``parent`` = the served model and
  ``root`` = its path. ``GET /model_info`` (alias ``/get_model_info``): ``model_path``, ``tokenizer_path``.
- ``POST /load_lora_adapter {lora_name, lora_path}``: ``lora_path`` must be a folder holding
  ``adapter_config.json`` whose ``base_model_name_or_path`` names the served model (else HTTP 400);
  ``POST /unload_lora_adapter {lora_name}``. ``GET /health``.

Answers are deterministic: a hash of the request's conversation (chat) or prompt text (``/generate``)
*and the adapter actually applied* picks the words and the probability stated (a final line
``Probability: 0.xx``), so the base model and every adapter answer differently, and a request the
server ran with the wrong adapter is visible in its answer. A last user turn asking for "Yes or No"
gets a one-word answer whose top logprobs hold both words. Token counts are whitespace words.

A response schema (chat: ``response_format={"type": "json_schema", "json_schema": {"schema": ...}}``;
``/generate``: ``sampling_params.json_schema``, a JSON string, as SGLang documents them) is recorded with
the request and answered with a deterministic instance of it (:func:`schema_instance`: a number field
holds the probability the plain answer would state), standing in for the server's constrained decoding.

Modes (``mode=``) simulate broken servers:

- ``normal``: every adapter selector is honoured.
- ``ignore_lora``: adapters are listed and loadable but never applied (LoRA not enabled, or an adapter
  of zero weights): every endpoint serves the base model.
- ``old_openai``: ``/v1/chat/completions`` ignores ``model="base:adapter"`` (serves the base model for
  it, as SGLang versions before that syntax do) but honours the older explicit ``lora_path`` field.
- ``no_openai_lora``: ``/v1/chat/completions`` ignores every adapter selector; ``/generate`` works.

Faults (``faults=``, ``{n: kind}``): the n-th generation request to arrive (1-based, on either endpoint,
retries and the canary's calls included) gets ``kind`` instead of its answer: ``http_500``, ``http_429``
(with ``Retry-After: 1``), ``connection_reset`` (the socket closed with RST, no response),
``truncated_body`` (headers announce the full body, half of it arrives, the connection closes) or
``truncated_json`` (a well-framed HTTP 200 whose body is half a JSON document). ``injected()`` counts them.

``requests()`` is the request log (endpoint, adapter asked for, adapter applied, prompt), so a test can
check that the adapter reached the server on every request; ``max_in_flight`` is the most generation
requests seen at once. Each connection has its own thread, so ``latency`` blocks nobody else.

Python: ``with LocalSGLangServer(adapters={"lora": "/srv/lora"}) as server: server.base_url``.
Shell (for benchmarks, so the server has its own process and GIL):
``PYTHONPATH=tests python -m fakes.sglang_server --adapter lora=/srv/lora --latency 0.5``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .http_base import QuietHandler, TolerantServer, serve_in_foreground

Mode = Literal["normal", "ignore_lora", "old_openai", "no_openai_lora"]
MODES: tuple[str, ...] = ("normal", "ignore_lora", "old_openai", "no_openai_lora")
FAULT_KINDS: tuple[str, ...] = ("http_500", "http_429", "connection_reset", "truncated_body", "truncated_json")
PROBE_PHRASE = "Yes or No"
_WORDS = (
    "a ship", "lantern light", "the storm", "gulls circling", "a red flare", "fog rolling", "the tide",
    "a rowing boat", "two figures", "the reef", "smoke rising", "a whale", "the moon", "bright sails",
)


@dataclass(frozen=True)
class SGLangRequest:
    """One generation request as the server saw it."""

    endpoint: str  # "/generate" or "/v1/chat/completions"
    asked: str | None  # the adapter the request selected (lora_path or model="base:adapter"), None = base
    applied: str | None  # the adapter the server actually used (differs from `asked` in the broken modes)
    model: str | None  # the chat request's model field
    prompt: str = field(repr=False)  # the text, or the chat messages' text joined
    prompt_tokens: int = 0  # the usage the server reported
    completion_tokens: int = 0
    start: float = field(default=0.0, repr=False)
    end: float = field(default=0.0, repr=False)
    schema: dict[str, Any] | None = None  # the response schema the request carried, parsed


def same_model(name: str, other: str) -> bool:
    """Whether two model names/paths name the same model (case-insensitive; last path part compared too)."""
    a, b = name.strip().rstrip("/").lower(), other.strip().rstrip("/").lower()
    return a == b or a.rsplit("/", 1)[-1] == b.rsplit("/", 1)[-1]


def _digest(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()


def _token_id(token: str) -> int:
    return int(_digest("token", token)[:6], 16) % 50_000


def _tokens(text: str) -> list[str]:
    return re.findall(r"\s*\S+", text)


def _probability(key: str, adapter: str | None) -> float:
    return (1 + int(_digest(key, adapter)[:8], 16) % 98) / 100


def answer_text(key: str, adapter: str | None, probe: bool) -> str:
    """The deterministic answer for a conversation/prompt hash and the adapter applied to it."""
    p = _probability(key, adapter)
    if probe:
        return "Yes" if p >= 0.5 else "No"
    h = _digest("words", key, adapter)
    words = [_WORDS[int(h[i : i + 2], 16) % len(_WORDS)] for i in range(0, 8, 2)]
    return (f"I picture {words[0]} and {words[1]}, then {words[2]} near {words[3]}; weighing the question "
            f"and the information given, I settle on an estimate.\nProbability: {p:.2f}")


def schema_instance(schema: dict[str, Any], key: str, adapter: str | None) -> Any:
    """A deterministic value valid under ``schema`` (the subset inspect's JSONSchema can express): enums and
    ``anyOf`` take their first option, objects every property, arrays one item, numbers the probability of
    the plain answer within their bounds; a ``pattern`` is refused (HTTP 400), having no general instance."""
    p = _probability(key, adapter)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for union in ("anyOf", "oneOf"):
        if schema.get(union):
            return schema_instance(schema[union][0], key, adapter)
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    low, high = schema.get("minimum"), schema.get("maximum")
    if kind == "object":
        return {name: schema_instance(sub, key, adapter) for name, sub in (schema.get("properties") or {}).items()}
    if kind == "array":
        return [schema_instance(schema.get("items") or {"type": "string"}, key, adapter)]
    if kind == "number":
        low, high = (0.0 if low is None else low), (max(low or 0.0, 1.0) if high is None else high)
        return round(low + p * (high - low), 4)
    if kind == "integer":
        low, high = (0 if low is None else int(low)), (max(int(low or 0), 100) if high is None else int(high))
        return low + int(p * (high - low))
    if kind == "string":
        if schema.get("pattern"):
            raise _RequestError(400, "this test server cannot produce a string matching a pattern")
        text = _WORDS[int(_digest("schema", key, adapter)[:2], 16) % len(_WORDS)]
        text = text.ljust(int(schema.get("minLength") or 0), "x")
        return text[: schema["maxLength"]] if schema.get("maxLength") is not None else text
    if kind == "boolean":
        return p >= 0.5
    return None


def _schema_from(raw: Any, where: str) -> dict[str, Any]:
    """The schema a request sent (a dict, or JSON text for /generate); anything else is HTTP 400."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError as e:
            raise _RequestError(400, f"{where}: not valid JSON ({e})") from None
    if not isinstance(raw, dict):
        raise _RequestError(400, f"{where}: expected a JSON schema object")
    return raw


def _top(key: str, adapter: str | None, i: int, token: str, probe: bool, n: int) -> list[tuple[float, str]]:
    """The top-``n`` alternatives at output position ``i``, the chosen token first."""
    if probe and i == 0:
        p = min(max(_probability(key, adapter), 1e-6), 1 - 1e-6)
        pair = sorted([(math.log(p), "Yes"), (math.log1p(-p), "No")], reverse=True)
        rest = [(min(pair[1][0], -8.0) - j, f"<alt{j}>") for j in range(1, max(n - 1, 1))]
        return [*pair, *rest][: max(n, 1)]
    lp = -0.01 - int(_digest("lp", key, adapter, i)[:4], 16) / 0xFFFF
    return [(lp, token), *[(lp - 2.0 * j, f"<alt{j}>") for j in range(1, n)]][: max(n, 1)]


class _State:
    def __init__(self, adapters: Mapping[str, str], served: str, model_path: str,
                 faults: Mapping[int, str] | None = None) -> None:
        self.lock = threading.Lock()
        self.faults = dict(faults or {})
        self.injected: Counter[str] = Counter()
        self.arrivals = 0
        self.adapters: dict[str, str] = dict(adapters)  # name -> path (root)
        self.served = served
        self.model_path = model_path
        self.log: list[SGLangRequest] = []
        self.loads: list[dict[str, Any]] = []
        self.in_flight = 0
        self.max_in_flight = 0

    def enter(self) -> str | None:
        """Count a generation request in; the fault planned for it, if any."""
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self.arrivals += 1
            fault = self.faults.get(self.arrivals)
            if fault is not None:
                self.injected[fault] += 1
            return fault

    def leave(self, record: SGLangRequest | None) -> None:
        with self.lock:
            self.in_flight -= 1
            if record is not None:
                self.log.append(record)


class _RequestError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _Handler(QuietHandler):
    server: _Server

    def _send(self, status: int, payload: Any) -> None:
        body = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            self.close_connection = True

    def _authorized(self) -> bool:
        key = self.server.api_key
        if key is None or self.path.rstrip("/") == "/health":
            return True
        if self.headers.get("Authorization") == f"Bearer {key}":
            return True
        self._send(401, {"error": "Unauthorized"})  # SGLang's answer to a missing or wrong --api-key
        return False

    def do_GET(self) -> None:
        if not self._authorized():
            return
        path = self.path.rstrip("/")
        state = self.server.state
        if path == "/health":
            self._send(200, {})
        elif path == "/v1/models":
            with state.lock:
                adapters = dict(state.adapters)
            data = [{"id": state.served, "object": "model", "created": 0, "owned_by": "sglang",
                     "root": state.model_path, "parent": None, "max_model_len": 32768}]
            data += [{"id": name, "object": "model", "created": 0, "owned_by": "sglang", "root": root,
                      "parent": state.served, "max_model_len": None} for name, root in adapters.items()]
            self._send(200, {"object": "list", "data": data})
        elif path in ("/model_info", "/get_model_info"):
            self._send(200, {"model_path": state.model_path, "tokenizer_path": self.server.tokenizer_path,
                             "is_generation": True})
        else:
            self._send(404, {"error": {"message": f"no route GET {self.path}"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not self._authorized():
            return
        try:
            body = json.loads(raw or b"{}")
            if not isinstance(body, dict):
                raise _RequestError(400, "request body must be a JSON object")
            path = self.path.rstrip("/")
            if path == "/generate":
                self._generation(self._generate, body)
            elif path == "/v1/chat/completions":
                self._generation(self._chat, body)
            elif path == "/load_lora_adapter":
                self._send(200, self._load(body))
            elif path == "/unload_lora_adapter":
                self._send(200, self._unload(body))
            else:
                raise _RequestError(404, f"no route POST {self.path}")
        except _RequestError as e:
            self._send(e.status, {"error": {"message": str(e), "code": e.status}})
        except (ValueError, TypeError, KeyError) as e:
            self._send(400, {"error": {"message": f"bad request: {e}", "code": 400}})

    def _generation(self, handler: Any, body: dict[str, Any]) -> None:
        state = self.server.state
        fault = state.enter()
        record = None
        try:
            if self.server.latency > 0:
                time.sleep(self.server.latency)
            if fault is None:
                payload, record = handler(body)
            elif fault in ("truncated_body", "truncated_json"):
                payload, _ = handler(body)  # answered, but not logged: the client never reads it whole
        finally:
            state.leave(record)
        if fault is None:
            self._send(200, payload)
        else:
            self._fault(fault, json.dumps(payload).encode() if fault.startswith("truncated") else b"")

    def _fault(self, kind: str, body: bytes) -> None:
        if kind == "http_500":
            self._send(500, {"error": {"message": "injected fault: internal server error", "code": 500}})
        elif kind == "http_429":
            self.send_response(429)
            self.send_header("Retry-After", "1")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif kind == "connection_reset":
            self.reset_connection()
        else:
            half = body[: len(body) // 2]
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            # truncated_body announces the whole body and stops halfway; truncated_json frames the half
            self.send_header("Content-Length", str(len(body) if kind == "truncated_body" else len(half)))
            self.end_headers()
            self.wfile.write(half)
            self.close_connection = kind == "truncated_body"

    def _resolve(self, name: str | None) -> str | None:
        """The adapter a request asked for, checked against the registry (unknown -> HTTP 400)."""
        if name is None:
            return None
        with self.server.state.lock:
            known = sorted(self.server.state.adapters)
        if name not in known:
            raise _RequestError(400, f"LoRA adapter '{name}' is not loaded; loaded adapters: {known}")
        return name

    def _applied(self, asked: str | None) -> str | None:
        return None if self.server.mode == "ignore_lora" else asked

    def _generate(self, body: dict[str, Any]) -> tuple[dict[str, Any], SGLangRequest]:
        start = time.monotonic()
        text = body.get("text")
        if not isinstance(text, str):
            raise _RequestError(400, "this test server takes one prompt in 'text' (no batches, no input_ids)")
        lora = body.get("lora_path")
        if lora is not None and not isinstance(lora, str):
            raise _RequestError(400, "this test server takes one adapter name (or null) in 'lora_path'")
        asked = self._resolve(lora)
        applied = self._applied(asked)
        params = body.get("sampling_params") or {}
        max_new = int(params.get("max_new_tokens", 128))
        key = _digest("text", text)
        probe = PROBE_PHRASE in text[-300:]
        schema = None
        if params.get("json_schema") is not None:
            schema = _schema_from(params["json_schema"], "sampling_params.json_schema")
        answer = answer_text(key, applied, probe) if schema is None else json.dumps(schema_instance(schema, key,
                                                                                                    applied))
        out_tokens = _tokens(answer)
        finish = {"type": "length", "length": max_new} if len(out_tokens) > max_new else {"type": "stop",
                                                                                        "matched": None}
        out_tokens = out_tokens[:max_new]
        prompt_tokens = _tokens(text)
        meta: dict[str, Any] = {
            "id": _digest("id", key, time.monotonic_ns())[:16],
            "finish_reason": finish,
            "prompt_tokens": len(prompt_tokens),
            "completion_tokens": len(out_tokens),
            "cached_tokens": 0,
        }
        if body.get("return_logprob"):
            with_text = bool(body.get("return_text_in_logprobs"))
            n_top = int(body.get("top_logprobs_num") or 0)
            start_len = int(body.get("logprob_start_len", -1))

            def entry(lp: float | None, token: str) -> list[Any]:
                return [lp, _token_id(token), token if with_text else None]

            tops = [_top(key, applied, i, t, probe, max(n_top, 1)) for i, t in enumerate(out_tokens)]
            meta["output_token_logprobs"] = [entry(top[0][0], top[0][1]) for top in tops]
            meta["output_top_logprobs"] = [[entry(lp, t) for lp, t in top] if n_top else None for top in tops]
            if start_len >= 0:
                # SGLang gives no logprob for the first prompt token (nothing precedes it)
                meta["input_token_logprobs"] = [
                    entry(None if i == 0 else -0.05 - int(_digest("in", applied, i, t)[:4], 16) / 0xFFFF, t)
                    for i, t in enumerate(prompt_tokens)
                ][start_len:]
        record = SGLangRequest("/generate", asked, applied, None, text, len(prompt_tokens), len(out_tokens), start,
                               time.monotonic(), schema)
        return {"text": "".join(out_tokens), "meta_info": meta}, record

    def _chat(self, body: dict[str, Any]) -> tuple[dict[str, Any], SGLangRequest]:
        start = time.monotonic()
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise _RequestError(400, "'messages' must be a non-empty list")
        if body.get("stream"):
            raise _RequestError(400, "streaming is not supported by this test server")
        model = str(body.get("model") or "")
        base, _, from_model = model.partition(":")
        lora = body.get("lora_path")
        mode = self.server.mode
        if mode == "old_openai":
            from_model = ""  # predates the base:adapter syntax: the suffix is dropped
        if mode == "no_openai_lora":
            from_model, lora = "", None
        asked = self._resolve(from_model or lora)  # SGLang: model="base:adapter" wins over lora_path
        applied = self._applied(asked)
        key = _digest("chat", json.dumps(messages, sort_keys=True))
        users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
        last_user = _content_text(users[-1].get("content")) if users else ""
        probe = PROBE_PHRASE in last_user
        max_new = body.get("max_tokens") or body.get("max_completion_tokens")
        schema = None
        response_format = body.get("response_format")
        if isinstance(response_format, dict) and response_format.get("type") == "json_schema":
            schema = _schema_from((response_format.get("json_schema") or {}).get("schema"),
                                  "response_format.json_schema.schema")
        elif response_format is not None and response_format != {"type": "text"}:
            raise _RequestError(400, f"this test server takes response_format of type json_schema or text, got "
                                     f"{response_format!r}")
        answer = answer_text(key, applied, probe) if schema is None else json.dumps(schema_instance(schema, key,
                                                                                                    applied))
        out_tokens = _tokens(answer)
        finish = "stop"
        if max_new is not None and len(out_tokens) > int(max_new):
            out_tokens, finish = out_tokens[: int(max_new)], "length"
        text = "".join(out_tokens)
        choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": text},
                                  "finish_reason": finish, "logprobs": None}
        if body.get("logprobs"):
            n_top = int(body.get("top_logprobs") or 0)
            content = []
            for i, token in enumerate(out_tokens):
                top = _top(key, applied, i, token, probe, max(n_top, 1))
                alternatives = [{"token": t, "logprob": lp, "bytes": list(t.encode())} for lp, t in top]
                content.append({**alternatives[0], "top_logprobs": alternatives[:n_top]})
            choice["logprobs"] = {"content": content}
        prompt = " ".join(_content_text(m.get("content")) for m in messages if isinstance(m, dict))
        prompt_tokens, completion_tokens = len(_tokens(prompt)), len(out_tokens)
        payload = {
            "id": "chatcmpl-" + key[:16], "object": "chat.completion", "created": int(time.time()),
            "model": base or self.server.state.served, "choices": [choice],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        }
        record = SGLangRequest("/v1/chat/completions", asked, applied, model, prompt, prompt_tokens, completion_tokens,
                               start, time.monotonic(), schema)
        return payload, record

    def _load(self, body: dict[str, Any]) -> dict[str, Any]:
        state = self.server.state
        name, path = body.get("lora_name"), body.get("lora_path")
        if not isinstance(name, str) or not name or not isinstance(path, str) or not path:
            raise _RequestError(400, "load_lora_adapter needs 'lora_name' and 'lora_path'")
        config = Path(path) / "adapter_config.json"
        if not Path(path).is_dir() or not config.is_file():
            raise _RequestError(400, f"'{path}' is not a LoRA adapter folder (no adapter_config.json)")
        base = json.loads(config.read_text()).get("base_model_name_or_path")
        if not isinstance(base, str) or not (same_model(base, state.model_path) or same_model(base, state.served)):
            raise _RequestError(
                400, f"adapter '{path}' was trained for base model {base!r}; this server serves {state.model_path!r}"
            )
        with state.lock:
            if name in state.adapters:
                raise _RequestError(400, f"LoRA adapter '{name}' is already loaded")
            state.adapters[name] = path
            state.loads.append({"lora_name": name, "lora_path": path})
            loaded = dict(state.adapters)
        return {"success": True, "error_message": "", "loaded_adapters": loaded}

    def _unload(self, body: dict[str, Any]) -> dict[str, Any]:
        state = self.server.state
        name = body.get("lora_name")
        with state.lock:
            if name not in state.adapters:
                raise _RequestError(400, f"LoRA adapter '{name}' is not loaded")
            del state.adapters[name]
            loaded = dict(state.adapters)
        return {"success": True, "error_message": "", "loaded_adapters": loaded}


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


class _Server(TolerantServer):

    def __init__(self, address: tuple[str, int], state: _State, mode: str, latency: float, api_key: str | None,
                 tokenizer_path: str | None) -> None:
        super().__init__(address, _Handler)
        self.state = state
        self.mode = mode
        self.latency = latency
        self.api_key = api_key
        self.tokenizer_path = tokenizer_path


class LocalSGLangServer:
    """The test server on 127.0.0.1 (ephemeral port), run in a background thread; a context manager."""

    def __init__(
        self,
        *,
        served_model: str = "test-base",
        model_path: str = "/models/Test-Base-7B",
        adapters: Mapping[str, str] | None = None,
        mode: Mode = "normal",
        latency: float = 0.0,
        api_key: str | None = None,
        tokenizer_path: str | None = None,
        port: int = 0,
        faults: Mapping[int, str] | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; expected one of {MODES}")
        unknown = sorted(set((faults or {}).values()) - set(FAULT_KINDS))
        if unknown:
            raise ValueError(f"unknown fault kinds {unknown}; expected some of {FAULT_KINDS}")
        self.state = _State(adapters or {}, served_model, model_path, faults)
        self._server = _Server(("127.0.0.1", port), self.state, mode, latency, api_key,
                               tokenizer_path or model_path)
        self._thread: threading.Thread | None = None

    @property
    def root_url(self) -> str:
        """The server root (native endpoints live here)."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def base_url(self) -> str:
        """What ``SGLANG_BASE_URL`` is set to (the OpenAI-compatible root, as inspect expects)."""
        return f"{self.root_url}/v1"

    def start(self) -> LocalSGLangServer:
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> LocalSGLangServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def requests(self) -> list[SGLangRequest]:
        """Generation requests answered so far, in completion order."""
        with self.state.lock:
            return list(self.state.log)

    def injected(self) -> dict[str, int]:
        """Faults injected so far, by kind."""
        with self.state.lock:
            return dict(self.state.injected)

    def loads(self) -> list[dict[str, Any]]:
        """Successful ``/load_lora_adapter`` calls."""
        with self.state.lock:
            return list(self.state.loads)

    def adapters(self) -> dict[str, str]:
        """Loaded adapters: name -> path."""
        with self.state.lock:
            return dict(self.state.adapters)

    @property
    def max_in_flight(self) -> int:
        with self.state.lock:
            return self.state.max_in_flight


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="0 = an ephemeral port (printed)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds to wait before each generation")
    parser.add_argument("--served-model", default="test-base")
    parser.add_argument("--model-path", default="/models/Test-Base-7B")
    parser.add_argument("--adapter", action="append", default=[], metavar="NAME=PATH",
                        help="a registered adapter (repeatable)")
    parser.add_argument("--mode", choices=MODES, default="normal")
    args = parser.parse_args(argv)
    adapters = dict(item.split("=", 1) for item in args.adapter if "=" in item)
    if len(adapters) != len(args.adapter):
        parser.error("--adapter takes NAME=PATH")
    server = LocalSGLangServer(served_model=args.served_model, model_path=args.model_path, adapters=adapters,
                               mode=args.mode, latency=args.latency, port=args.port)
    serve_in_foreground(server._server, f"serving the SGLang protocol on {server.root_url} (Ctrl-C stops)")


if __name__ == "__main__":
    main()
