"""A local OpenAI-compatible chat-completions server, for tests and benchmarks only.

It lets inspect's real `openai-api` provider run offline: point `openai-api/local/<model>` at it with
`LOCAL_BASE_URL=http://127.0.0.1:<port>/v1` and `LOCAL_API_KEY=<anything>`. It is not a model and
not a production server.

- `POST /v1/chat/completions`: a valid `chat.completion` (with `usage`, and `logprobs` when asked)
  whose text ends in a line `Probability: 0.xx`, both derived from a hash of the request's messages,
  so the same conversation always gets the same answer and a prior and its posterior differ.
- `GET /v1/models`: the configured model ids.
- a fixed latency per request (each connection has its own thread, so a sleep blocks nobody else).
- deterministic fault injection (`FaultPlan`): HTTP 500, HTTP 429 with `Retry-After`, a timeout
  (the request is held for `timeout_hold_s`, longer than the client waits), a truncated JSON body,
  a connection reset (socket closed with RST, no response), an empty completion (content "").
- thread-safe counters and a request log keyed by message hash, so a test can tell which
  conversations were requested again.
- reasoning (`reasoning=`, `--reasoning`): `reasoning_content` returns DeepSeek-R1-style reasoning
  (`reasoning_for`, a few paragraphs) in the assistant message's `reasoning_content` field, `think`
  returns it inline at the start of the content as `<think>...</think>`; `none` (default) returns none.
- a grader's reply: a request whose last user message asks for "a JSON list of N numbers" (the step
  judge's prompt and its retry) gets a JSON list of N numbers in [0, 1] (`judge_list_for`).
- an optional API key (`api_key=`, `--api-key-env VAR`): requests without `Authorization: Bearer <key>` get
  HTTP 401, as a real API answers; they are counted (`unauthorized`), not logged.

Python: ``with LocalOpenAIServer(latency=0.1, plan=FaultPlan(...)) as server: server.base_url``.
Shell: ``PYTHONPATH=tests python -m fakes.openai_server --port 8000 --latency 0.2``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .http_base import QuietHandler, TolerantServer, serve_in_foreground

REASONING_MODES = ("none", "reasoning_content", "think")
REASONING_PARAGRAPHS = 3
_JUDGE_LIST_REQUEST = re.compile(r"JSON list of (?:exactly )?(\d+) numbers")

FAULT_KINDS = ("http_500", "http_429", "timeout", "truncated_json", "connection_reset", "empty_completion")

Turn = Literal["any", "first", "followup"]


@dataclass(frozen=True)
class FaultRule:
    """Inject `kind` into the first `attempts` attempts of every `every`-th distinct request.

    Distinct requests (by message hash) are numbered 1, 2, ... in order of first arrival, separately
    for each `turn` class: `first` = no assistant message yet, `followup` = continues a conversation.
    The rule matches numbers d with d % every == offset % every. `attempts=None` fails every attempt,
    so that conversation never gets an answer. Which conversation is hit depends on arrival order,
    but how many are hit depends only on how many distinct requests arrive.
    """

    kind: str
    every: int
    offset: int = 0
    attempts: int | None = 1
    turn: Turn = "any"

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {FAULT_KINDS}")
        if self.every < 1:
            raise ValueError("every must be >= 1")


@dataclass(frozen=True)
class FaultPlan:
    """Which requests fail, and how; the first matching source wins, in the order below.

    - `by_request`: the N-th request overall (1-based, retries included) gets the given kind.
    - `rules`: `FaultRule`s, checked in order.
    - `rates`: per distinct request, a kind drawn from `sha256(seed, message hash)` with these
      probabilities, on its first attempt only (reproducible for a fixed dataset and seed).
    """

    rules: Sequence[FaultRule] = ()
    by_request: Mapping[int, str] = field(default_factory=dict)
    rates: Mapping[str, float] = field(default_factory=dict)
    seed: int = 0
    retry_after_s: float = 1.0
    timeout_hold_s: float = 5.0

    def __post_init__(self) -> None:
        for kind in [*self.by_request.values(), *self.rates]:
            if kind not in FAULT_KINDS:
                raise ValueError(f"unknown fault kind {kind!r}; expected one of {FAULT_KINDS}")
        if sum(self.rates.values()) > 1:
            raise ValueError("fault rates sum to more than 1")


@dataclass(frozen=True)
class RequestRecord:
    """One chat-completions request as the server saw it."""

    n: int  # 1-based arrival number, retries included
    key: str  # sha256 of the request's messages
    attempt: int  # 0 for the first request with this key
    followup: bool
    outcome: str  # "ok" or a fault kind
    time: float  # time.monotonic() at arrival
    messages: Any = field(default=None, repr=False, compare=False)


def messages_key(messages: Any) -> str:
    """A stable hash of a request's messages (the conversation, not the sampling parameters)."""
    return hashlib.sha256(json.dumps(messages, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def answer_for(key: str) -> tuple[str, str]:
    """The deterministic answer text for a message hash, and the probability it states."""
    prob = f"0.{1 + int(key[:8], 16) % 98:02d}"
    text = f"Weighing the question and the information given, I settle on an estimate.\nProbability: {prob}"
    return text, prob


def reasoning_for(key: str) -> str:
    """The deterministic reasoning for a message hash: ``REASONING_PARAGRAPHS`` paragraphs, each tagged
    with the hash's first 8 characters (so a test can find them again), blank-line separated."""
    tag = key[:8]
    prob = answer_for(key)[1]
    return "\n\n".join([
        f"Reasoning {tag}, part 1: I first ask how often events of this kind happen at all; that base rate "
        "anchors the estimate.",
        f"Reasoning {tag}, part 2: the information given so far moves me only a little, since none of it "
        "settles the question on its own.",
        f"Reasoning {tag}, part 3: weighing the base rate against that information, {prob} is the estimate "
        "I can defend.",
    ])


def judge_list_for(key: str, count: int) -> list[float]:
    """``count`` deterministic numbers in [0.01, 0.99] for a message hash: a grader's JSON list."""
    return [
        round(0.01 + 0.98 * int(hashlib.sha256(f"{key}:{i}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF, 4)
        for i in range(count)
    ]


def _judge_list_count(messages: Any) -> int | None:
    """N when the last user message asks for "a JSON list of N numbers", else None."""
    if not isinstance(messages, list):
        return None
    users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    match = _JUDGE_LIST_REQUEST.search(text_of(users[-1:])) if users else None
    return int(match.group(1)) if match else None


def text_of(messages: Any) -> str:
    """All the text content of a request's messages, joined by spaces."""
    parts: list[str] = []
    for message in messages if isinstance(messages, list) else []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(p.get("text", "") for p in content if isinstance(p, dict))
    return " ".join(parts)


def _logprobs(text: str, top: int) -> dict[str, Any]:
    # whitespace-attached word tokens: cheap, deterministic, enough for logprob-reading code paths
    content = []
    for i, token in enumerate(re.findall(r"\s*\S+", text)):
        logprob = -0.01 * (1 + i % 7)
        alternatives = [{"token": token, "logprob": logprob, "bytes": list(token.encode())}]
        alternatives += [
            {"token": f"<alt{j}>", "logprob": logprob - 2.0 * j, "bytes": list(f"<alt{j}>".encode())}
            for j in range(1, top)
        ]
        content.append({**alternatives[0], "top_logprobs": alternatives[:top]})
    return {"content": content}


class _State:
    """Counters, the request log and the fault decisions, behind one lock."""

    def __init__(self, plan: FaultPlan) -> None:
        self.plan = plan
        self.lock = threading.Lock()
        self.log: list[RequestRecord] = []
        self.attempts: Counter[str] = Counter()
        self.index: dict[tuple[str, Turn], int] = {}  # (key, turn class) -> distinct number in that class
        self.distinct: Counter[Turn] = Counter()
        self.faults: Counter[str] = Counter()
        self.completions = 0
        self.unauthorized = 0

    def decide(self, key: str, followup: bool, messages: Any) -> tuple[int, int, str | None]:
        """Register a request; return (its number, its attempt, the fault to inject or None)."""
        with self.lock:
            n = len(self.log) + 1
            attempt = self.attempts[key]
            self.attempts[key] += 1
            if attempt == 0:
                for turn in ("any", "followup" if followup else "first"):
                    self.distinct[turn] += 1
                    self.index[(key, turn)] = self.distinct[turn]
            fault = self.plan.by_request.get(n)
            if fault is None:
                fault = self._rule_fault(key, attempt)
            if fault is None and attempt == 0 and self.plan.rates:
                fault = self._rate_fault(key)
            outcome = fault or "ok"
            self.log.append(RequestRecord(n, key, attempt, followup, outcome, time.monotonic(), messages))
            if fault is not None:
                self.faults[fault] += 1
            else:
                self.completions += 1
            return n, attempt, fault

    def _rule_fault(self, key: str, attempt: int) -> str | None:
        for rule in self.plan.rules:
            d = self.index.get((key, rule.turn))
            if d is None or d % rule.every != rule.offset % rule.every:
                continue
            if rule.attempts is None or attempt < rule.attempts:
                return rule.kind
        return None

    def _rate_fault(self, key: str) -> str | None:
        u = int(hashlib.sha256(f"{self.plan.seed}:{key}".encode()).hexdigest()[:12], 16) / 16**12
        for kind, rate in self.plan.rates.items():
            if u < rate:
                return kind
            u -= rate
        return None


class _Handler(QuietHandler):
    server: _Server

    def _send_json(self, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> None:
        body = json.dumps(payload).encode()
        self._send_raw(status, body, headers)

    def _send_raw(self, status: int, body: bytes, headers: Mapping[str, str] | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            self.close_connection = True  # the client gave up (e.g. after its own timeout)

    def _error(self, status: int, message: str, code: str, headers: Mapping[str, str] | None = None) -> None:
        self._send_json(status, {"error": {"message": message, "type": code, "code": code}}, headers)

    def do_GET(self) -> None:
        if self.path.rstrip("/") in ("/v1/models", "/models"):
            data = [{"id": m, "object": "model", "created": 0, "owned_by": "local"} for m in self.server.models]
            self._send_json(200, {"object": "list", "data": data})
        else:
            self._error(404, f"no route GET {self.path}", "not_found")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
            self._error(404, f"no route POST {self.path}", "not_found")
            return
        try:
            body = json.loads(raw or b"{}")
            messages = body["messages"]
        except (ValueError, KeyError, TypeError):
            self._error(400, "request body must be JSON with 'messages'", "invalid_request_error")
            return
        if body.get("stream"):
            self._error(400, "streaming is not supported by this test server", "invalid_request_error")
            return
        expected = self.server.api_key
        if expected is not None and self.headers.get("Authorization") != f"Bearer {expected}":
            with self.server.state.lock:
                self.server.state.unauthorized += 1
            # like real APIs, the message never repeats the key that was sent
            self._error(401, "Incorrect API key provided.", "invalid_api_key")
            return
        self._complete(body, messages)

    def _complete(self, body: dict[str, Any], messages: Any) -> None:
        server = self.server
        key = messages_key(messages)
        followup = any(isinstance(m, dict) and m.get("role") == "assistant" for m in messages)
        n, _, fault = server.state.decide(key, followup, messages)
        if server.latency > 0:
            time.sleep(server.latency)
        plan = server.state.plan
        if fault == "http_500":
            self._error(500, "injected fault: http_500 (internal server error)", "server_error")
        elif fault == "http_429":
            retry_after = f"{plan.retry_after_s:g}"
            headers = {"Retry-After": retry_after}
            self._error(429, "injected fault: http_429 (rate limited)", "rate_limit_exceeded", headers)
        elif fault == "timeout":
            time.sleep(plan.timeout_hold_s)  # longer than the client waits: it has given up by now
            self._send_json(200, self._completion(body, key, n, "timeout"))
        elif fault == "connection_reset":
            self.reset_connection()
        elif fault == "truncated_json":
            full = json.dumps(self._completion(body, key, n, None)).encode()
            self._send_raw(200, full[: len(full) // 2])  # a well-framed HTTP response with half a JSON body
        else:
            self._send_json(200, self._completion(body, key, n, fault))

    def _completion(self, body: dict[str, Any], key: str, n: int, fault: str | None) -> dict[str, Any]:
        mode = self.server.reasoning
        messages = body.get("messages")
        reasoning = None if fault == "empty_completion" or mode == "none" else reasoning_for(key)
        count = _judge_list_count(messages)
        if fault == "empty_completion":
            text = ""
        elif count is not None:
            text = json.dumps(judge_list_for(key, count))
        else:
            text = answer_for(key)[0]
        message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
        if reasoning is not None and mode == "reasoning_content":
            message["reasoning_content"] = reasoning
        elif reasoning is not None:
            message["content"] = f"<think>\n{reasoning}\n</think>\n\n{text}"
        choice: dict[str, Any] = {"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}
        if body.get("logprobs"):
            choice["logprobs"] = _logprobs(message["content"], max(1, int(body.get("top_logprobs") or 1)))
        prompt_tokens = len(text_of(messages).split())
        reasoning_tokens = len(reasoning.split()) if reasoning else 0
        completion_tokens = len(text.split()) + reasoning_tokens
        usage: dict[str, Any] = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        if mode == "reasoning_content":
            usage["completion_tokens_details"] = {"reasoning_tokens": reasoning_tokens}  # as DeepSeek reports it
        return {
            "id": f"chatcmpl-local-{n}-{key[:12]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model") or self.server.models[0],
            "choices": [choice],
            "usage": usage,
        }


class _Server(TolerantServer):

    def __init__(
        self,
        address: tuple[str, int],
        state: _State,
        latency: float,
        models: Sequence[str],
        reasoning: str = "none",
        api_key: str | None = None,
    ) -> None:
        super().__init__(address, _Handler)
        self.state = state
        self.latency = latency
        self.models = list(models)
        self.reasoning = reasoning
        self.api_key = api_key


class LocalOpenAIServer:
    """The server on 127.0.0.1 (ephemeral port by default), run in a background thread.

    Use as a context manager, or call `start()` / `stop()`. All counters are thread-safe snapshots.
    """

    def __init__(
        self,
        latency: float = 0.0,
        plan: FaultPlan | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        models: Sequence[str] = ("test-model",),
        reasoning: str = "none",
        api_key: str | None = None,
    ) -> None:
        if reasoning not in REASONING_MODES:
            raise ValueError(f"unknown reasoning mode {reasoning!r}; expected one of {REASONING_MODES}")
        if api_key is not None and not api_key:
            raise ValueError("api_key must be a non-empty string, or None to accept any request")
        self.state = _State(plan or FaultPlan())
        self._server = _Server((host, port), self.state, latency, models, reasoning, api_key)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        """What `<SERVICE>_BASE_URL` should be set to."""
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> LocalOpenAIServer:
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> LocalOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def requests(self) -> int:
        """Chat-completions requests seen (retries included)."""
        with self.state.lock:
            return len(self.state.log)

    @property
    def completions(self) -> int:
        """Requests answered with a normal completion (no fault)."""
        with self.state.lock:
            return self.state.completions

    @property
    def faults(self) -> dict[str, int]:
        """Faults injected, by kind (every kind present, 0 when none)."""
        with self.state.lock:
            return {kind: self.state.faults[kind] for kind in FAULT_KINDS}

    @property
    def unauthorized(self) -> int:
        """Requests refused with HTTP 401 (wrong or missing key, when the server has an `api_key`)."""
        with self.state.lock:
            return self.state.unauthorized

    def request_log(self) -> list[RequestRecord]:
        with self.state.lock:
            return list(self.state.log)

    def distinct_requests(self, turn: Turn = "any") -> int:
        """Distinct conversations (message hashes) seen, overall or per turn class."""
        with self.state.lock:
            return self.state.distinct[turn]

    def completed_keys(self) -> set[str]:
        """Message hashes that got a normal completion."""
        return {r.key for r in self.request_log() if r.outcome == "ok"}

    def recovered_keys(self) -> set[str]:
        """Message hashes that got a fault first and a normal completion later (a successful retry)."""
        log = self.request_log()
        faulted = {r.key for r in log if r.outcome != "ok"}
        return faulted & {r.key for r in log if r.outcome == "ok"}

    def stats(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "completions": self.completions,
            "distinct": self.distinct_requests(),
            "faults": self.faults,
            "recovered": len(self.recovered_keys()),
            "unauthorized": self.unauthorized,
        }

    def wait_for(self, predicate: Any, timeout: float = 30.0, interval: float = 0.02) -> bool:
        """Poll `predicate(self)` until it is true or `timeout` seconds pass; return the last result."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self):
                return True
            time.sleep(interval)
        return bool(predicate(self))


def _parse_rule(spec: str) -> FaultRule:
    # KIND:EVERY[:ATTEMPTS[:OFFSET]], ATTEMPTS "all" = never succeed
    parts = spec.split(":")
    if len(parts) < 2:
        raise argparse.ArgumentTypeError(f"fault spec {spec!r} is not KIND:EVERY[:ATTEMPTS[:OFFSET]]")
    attempts = None if len(parts) > 2 and parts[2] == "all" else int(parts[2]) if len(parts) > 2 else 1
    return FaultRule(parts[0], int(parts[1]), int(parts[3]) if len(parts) > 3 else 0, attempts)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 = an ephemeral port (printed)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds to wait before each answer")
    parser.add_argument("--model", action="append", help="model id for /v1/models (repeatable)")
    parser.add_argument(
        "--fault",
        action="append",
        type=_parse_rule,
        default=[],
        metavar="KIND:EVERY[:ATTEMPTS[:OFFSET]]",
        help=f"a FaultRule; KIND one of {', '.join(FAULT_KINDS)}; ATTEMPTS 'all' never succeeds (repeatable)",
    )
    parser.add_argument(
        "--fault-rate", action="append", default=[], metavar="KIND=RATE", help="a seeded rate (repeatable)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--retry-after", type=float, default=1.0, help="Retry-After seconds on HTTP 429")
    parser.add_argument("--timeout-hold", type=float, default=5.0, help="seconds a 'timeout' fault holds a request")
    parser.add_argument(
        "--reasoning",
        choices=REASONING_MODES,
        default="none",
        help="reasoning in every answer: DeepSeek-style 'reasoning_content' field, inline '<think>' content, or none",
    )
    parser.add_argument(
        "--api-key-env",
        metavar="VAR",
        help="require 'Authorization: Bearer <key>' with the key read from this environment variable (not a "
        "flag value, so it stays out of process listings)",
    )
    args = parser.parse_args(argv)
    api_key = None
    if args.api_key_env:
        api_key = os.environ.get(args.api_key_env) or parser.error(f"--api-key-env: ${args.api_key_env} is not set")
    rates = {k: float(v) for k, v in (item.split("=", 1) for item in args.fault_rate)}
    plan = FaultPlan(
        rules=tuple(args.fault),
        rates=rates,
        seed=args.seed,
        retry_after_s=args.retry_after,
        timeout_hold_s=args.timeout_hold,
    )
    server = LocalOpenAIServer(args.latency, plan, args.host, args.port, args.model or ("test-model",),
                               args.reasoning, api_key)
    serve_in_foreground(server._server, f"serving OpenAI-compatible API on http://{args.host}:{server.port}/v1 "
                        "(Ctrl-C stops)", on_exit=lambda: print(json.dumps(server.stats()), flush=True))


if __name__ == "__main__":
    main()
