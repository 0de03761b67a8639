"""``--model sglang/<served-model>+<adapter>``: the adapter is applied, proven by a canary, and recorded.

The server side is a local test server that speaks SGLang's documented HTTP protocol
(``tests/fakes/sglang_server.py``: ``/generate``, ``/v1/chat/completions``, ``/v1/models``,
``/model_info``, ``/load_lora_adapter``); no SGLang or model runs here. The real path is the same client
code against a real SGLang server. The test server answers every (prompt, adapter applied) pair
differently, and logs both the adapter each request asked for and the one it applied, so the tests
can see whether the adapter really reached the server.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import socket
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes.sglang_server import LocalSGLangServer, SGLangRequest
from inspect_ai import eval as inspect_eval
from inspect_ai.event import ModelEvent
from inspect_ai.log import EvalLog
from inspect_ai.model import GenerateConfig, get_model
from inspect_ai.model._providers.sglang import SGLangAPI

from martingale.tasks import forecast
from martingale_harness.backends.lora import (
    CANARY_PROMPT,
    AdapterNotAppliedError,
    AdapterSpec,
    CanaryReply,
    adapter_fingerprint,
    check_canary,
    split_adapter,
)
from martingale_harness.backends.sglang import GENERATE_CAUSES, SGLangLoRAAPI, SGLangRequestError, SGLangSetupError
from martingale_harness.protocol.solver import PRIOR_INSTRUCTION

MODEL = "sglang/test-base+lora"
ADAPTERS = {"lora": "/srv/adapters/lora", "other": "/srv/adapters/other"}


@pytest.fixture
def server() -> Iterator[LocalSGLangServer]:
    with LocalSGLangServer(adapters=ADAPTERS) as s:
        yield s


def _eval_requests(server: LocalSGLangServer) -> list[SGLangRequest]:
    """The requests the eval made (not the canary's)."""
    return [r for r in server.requests() if CANARY_PROMPT not in r.prompt]


def _metric(log: EvalLog, extractor: str, name: str) -> float:
    block = next(s for s in log.results.scores if s.name == extractor)  # type: ignore[union-attr]
    return float(block.metrics[name].value)


def _make_adapter(folder: Path, base: str = "/models/Test-Base-7B", weights: bytes = b"\x01\x02weights") -> Path:
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": base, "r": 8}))
    (folder / "adapter_model.safetensors").write_bytes(weights)
    return folder


# --- shared LoRA helpers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("qwen3-32b+lora", AdapterSpec("qwen3-32b", "lora")),
        ("qwen3-32b:lora", AdapterSpec("qwen3-32b", "lora")),
        ("Qwen/Qwen3-32B+org/adapter", AdapterSpec("Qwen/Qwen3-32B", "org/adapter")),  # '+' splits anything
        ("base+a:b", AdapterSpec("base", "a:b")),  # '+' wins over ':'
        ("base:/abs/adapter", AdapterSpec("base", "/abs/adapter")),  # a path after ':'
        ("Qwen/Qwen3-32B:org/x", None),  # a ':' followed by a non-path with '/' does not split
        ("qwen3-32b", None),
        ("qwen3-32b:", None),
    ],
)
def test_split_adapter(name: str, expected: AdapterSpec | None) -> None:
    assert split_adapter(name) == expected


def test_split_adapter_rejects_an_empty_side() -> None:
    for name in ("base+", "+adapter"):
        with pytest.raises(ValueError, match="both parts"):
            split_adapter(name)


def test_check_canary_refuses_identical_replies_and_names_the_causes() -> None:
    same = CanaryReply("a ship on the horizon", (-0.5, -1.25))
    with pytest.raises(AdapterNotAppliedError) as e:
        check_canary(same, CanaryReply("a ship on the horizon", (-0.5, -1.25 + 5e-5)), model="m", adapter="a",
                     causes="CAUSES-HERE")
    assert "'m'" in str(e.value) and "'a'" in str(e.value) and "CAUSES-HERE" in str(e.value)
    # a difference in text, or in logprobs beyond numerical noise, is an applied adapter
    assert check_canary(same, CanaryReply("a whale", (-0.5, -1.25)), model="m", adapter="a", causes="")["canary"] \
        == "passed"
    record = check_canary(same, CanaryReply("a ship on the horizon", (-0.5, -1.0)), model="m", adapter="a",
                          causes="")
    assert record["max_logprob_diff"] == pytest.approx(0.25) and not record["text_differs"]
    # without logprobs on one side only the text is compared
    with pytest.raises(AdapterNotAppliedError):
        check_canary(same, CanaryReply("a ship on the horizon"), model="m", adapter="a", causes="")


def test_adapter_fingerprint_covers_exactly_the_weight_files(tmp_path: Path) -> None:
    folder = _make_adapter(tmp_path / "a", weights=b"W1")
    (folder / "adapter_model.bin").write_bytes(b"W2")
    # the documented construction: each weight file's name and bytes, in sorted name order
    digest = hashlib.sha256()
    for name, data in (("adapter_model.bin", b"W2"), ("adapter_model.safetensors", b"W1")):
        digest.update(name.encode() + b"\0" + data)
    assert adapter_fingerprint(folder) == "sha256:" + digest.hexdigest()
    before = adapter_fingerprint(folder)
    (folder / "README.md").write_text("notes")  # not a weight file
    (folder / "adapter_config.json").write_text("{}")
    assert adapter_fingerprint(folder) == before
    (folder / "adapter_model.safetensors").write_bytes(b"W1x")
    assert adapter_fingerprint(folder) != before
    with pytest.raises(FileNotFoundError, match="no adapter weight file"):
        adapter_fingerprint(tmp_path)


# --- routing --------------------------------------------------------------------------------------------


def test_adapter_names_route_to_the_lora_backend_and_plain_names_stay_with_inspect(
    server: LocalSGLangServer,
) -> None:
    plain = get_model("sglang/test-base", base_url=server.base_url, memoize=False)
    assert type(plain.api) is SGLangAPI  # inspect's own provider, untouched
    assert server.requests() == []  # and it made no LoRA checks
    for name in (MODEL, "sglang/test-base:lora"):
        model = get_model(name, base_url=server.base_url, memoize=False)
        assert isinstance(model.api, SGLangLoRAAPI)
        assert str(model) == name


# --- evaluation -----------------------------------------------------------------------------------------


def test_adapter_reaches_the_server_on_every_request_in_every_paradigm(
    server: LocalSGLangServer, tmp_path: Path
) -> None:
    paradigms = ("direct", "cot", "debate", "evidence")
    tasks = [forecast(paradigm=p, extractors="self_report,logprob") for p in paradigms]
    logs = inspect_eval(tasks, model=MODEL, model_base_url=server.base_url, limit=2, display="none",
                        log_dir=str(tmp_path), max_connections=8, log_model_api=True)
    assert [log.status for log in logs] == ["success"] * 4, [log.error for log in logs]

    requests = server.requests()
    eval_requests = _eval_requests(server)
    # every eval request asked for the adapter and got it; only the canary's two base calls went without
    assert eval_requests and all(r.asked == r.applied == "lora" for r in eval_requests)
    assert all(r.endpoint == "/v1/chat/completions" and r.model == "test-base" for r in eval_requests)
    assert sorted(r.endpoint for r in requests if r.asked is None) == ["/generate", "/v1/chat/completions"]
    assert {r.endpoint for r in requests if CANARY_PROMPT in r.prompt} == {"/generate", "/v1/chat/completions"}

    usage = {"input": 0, "output": 0}
    for paradigm, log in zip(paradigms, logs, strict=True):
        assert log.eval.model == MODEL
        # the beliefs were read: self-reports from the text, P(Yes) from the mapped logprobs
        assert _metric(log, "self_report", "extraction_failure_rate") == 0.0, paradigm
        assert _metric(log, "logprob", "extraction_failure_rate") == 0.0, paradigm
        for sample in log.samples or []:
            record = sample.metadata["adapter"]
            assert record["adapter"] == "lora" and record["path"] == ADAPTERS["lora"]
            assert record["fingerprint"].startswith("sha256:") and record["canary"]["canary"] == "passed"
            calls = [e.call for e in sample.events if isinstance(e, ModelEvent)]
            assert calls and all(c is not None and c.request["lora_path"] == "lora" for c in calls)
        for model_usage in log.stats.model_usage.values():
            usage["input"] += model_usage.input_tokens
            usage["output"] += model_usage.output_tokens
    # usage accounting: what inspect logged is what the server reported, call for call
    assert usage == {"input": sum(r.prompt_tokens for r in eval_requests),
                     "output": sum(r.completion_tokens for r in eval_requests)}
    debate_turns = [r for r in eval_requests if "arguing" in r.prompt or "other side" in r.prompt.lower()]
    assert debate_turns  # the debate clone's calls are among those that carried the adapter


def test_concurrency_honours_max_connections_and_usage_adds_up() -> None:
    with LocalSGLangServer(adapters=ADAPTERS, latency=0.15) as server:
        model = get_model(MODEL, base_url=server.base_url, config=GenerateConfig(max_connections=3), memoize=False)

        async def run() -> list[int]:
            outputs = await asyncio.gather(*(model.generate(f"question {i}? {PRIOR_INSTRUCTION}") for i in range(9)))
            return [o.usage.output_tokens for o in outputs if o.usage]

        output_tokens = asyncio.run(run())
        eval_requests = _eval_requests(server)
    assert len(eval_requests) == 9 and all(r.applied == "lora" for r in eval_requests)
    assert server.max_in_flight == 3
    assert sorted(output_tokens) == sorted(r.completion_tokens for r in eval_requests)


@pytest.fixture(scope="module")
def chat_tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny local tokenizer with a chat template (so nothing loads from a hub)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.WordLevel({"<unk>": 0}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>")
    tokenizer.chat_template = (
        "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
    )
    folder = tmp_path_factory.mktemp("tokenizer")
    tokenizer.save_pretrained(folder)
    return folder


def test_generate_transport_sends_templated_prompts_to_native_generate(
    chat_tokenizer: Path, tmp_path: Path
) -> None:
    with LocalSGLangServer(adapters=ADAPTERS, tokenizer_path=str(chat_tokenizer)) as server:
        logs = inspect_eval(forecast(paradigm="direct", extractors="self_report,logprob"), model=MODEL,
                            model_base_url=server.base_url, model_args={"transport": "generate"}, limit=2,
                            display="none", log_dir=str(tmp_path))
        eval_requests = _eval_requests(server)
    log = logs[0]
    assert log.status == "success", log.error
    assert eval_requests and all(r.endpoint == "/generate" and r.applied == "lora" for r in eval_requests)
    assert all(r.prompt.endswith("<|assistant|>\n") and "<|user|>" in r.prompt for r in eval_requests)
    assert _metric(log, "self_report", "extraction_failure_rate") == 0.0
    assert _metric(log, "logprob", "extraction_failure_rate") == 0.0  # meta_info logprobs mapped for the probe
    usage = next(iter(log.stats.model_usage.values()))
    assert usage.input_tokens == sum(r.prompt_tokens for r in eval_requests)
    assert usage.output_tokens == sum(r.completion_tokens for r in eval_requests)


# --- the canary -------------------------------------------------------------------------------------------


def test_canary_refuses_a_server_that_ignores_lora_path(tmp_path: Path) -> None:
    with LocalSGLangServer(adapters=ADAPTERS, mode="ignore_lora") as server:
        with pytest.raises(AdapterNotAppliedError) as e:
            inspect_eval(forecast(), model=MODEL, model_base_url=server.base_url, limit=1, display="none",
                         log_dir=str(tmp_path))
        assert _eval_requests(server) == []  # no sample ran
    message = str(e.value)
    assert "sglang/test-base" in message and "'lora'" in message and GENERATE_CAUSES in message
    assert "lora_canary=false" in message


def test_old_server_ignoring_base_adapter_syntax_is_detected(caplog: pytest.LogCaptureFixture) -> None:
    with LocalSGLangServer(adapters=ADAPTERS, mode="old_openai") as server:
        with caplog.at_level(logging.WARNING):
            model = get_model(MODEL, base_url=server.base_url, memoize=False)
    record = model.api.adapter_record()  # type: ignore[attr-defined]
    assert record["canary"]["openai_model_syntax"] == "ignored"
    assert record["canary"]["chat"]["canary"] == "passed"  # the explicit lora_path this backend sends works
    assert any("model='test-base:lora'" in r.getMessage() for r in caplog.records)
    with LocalSGLangServer(adapters=ADAPTERS) as server:
        new = get_model(MODEL, base_url=server.base_url, memoize=False)
    assert new.api.adapter_record()["canary"]["openai_model_syntax"] == "honoured"  # type: ignore[attr-defined]


def test_chat_endpoint_ignoring_lora_is_refused_and_generate_transport_works(chat_tokenizer: Path) -> None:
    with LocalSGLangServer(adapters=ADAPTERS, mode="no_openai_lora", tokenizer_path=str(chat_tokenizer)) as server:
        with pytest.raises(AdapterNotAppliedError, match="transport=generate"):
            get_model(MODEL, base_url=server.base_url, memoize=False)
        model = get_model(MODEL, base_url=server.base_url, memoize=False, transport="generate")
        assert model.api.adapter_record()["canary"]["generate"]["canary"] == "passed"  # type: ignore[attr-defined]


def test_lora_canary_false_skips_it_with_a_warning_in_the_log(tmp_path: Path) -> None:
    with LocalSGLangServer(adapters=ADAPTERS, mode="ignore_lora") as server:
        logs = inspect_eval(forecast(), model=MODEL, model_base_url=server.base_url,
                            model_args={"lora_canary": False}, limit=1, display="none", log_dir=str(tmp_path))
        assert not any(CANARY_PROMPT in r.prompt for r in server.requests())
    log = logs[0]
    assert log.status == "success"
    sample = (log.samples or [])[0]
    assert sample.metadata["adapter"]["canary"]["canary"] == "disabled"
    logged = [e.message.message for s in log.samples or [] for e in s.events if e.event == "logger"]
    assert any("LoRA canary disabled" in m for m in logged), logged


# --- dynamic loading and errors before any sample ------------------------------------------------------


def test_a_local_adapter_path_is_loaded_dynamically_and_fingerprinted(tmp_path: Path) -> None:
    adapter = _make_adapter(tmp_path / "my-adapter")
    with LocalSGLangServer(adapters=ADAPTERS) as server:
        model = get_model(f"sglang/test-base+{adapter}", base_url=server.base_url, memoize=False)
        record = model.api.adapter_record()  # type: ignore[attr-defined]
        fingerprint = adapter_fingerprint(adapter)
        assert record["path"] == str(adapter) and record["fingerprint"] == fingerprint
        assert record["loaded_by_harness"] is True
        name = record["adapter"]
        assert name.startswith("my-adapter-") and name.removeprefix("my-adapter-") in fingerprint
        assert server.loads() == [{"lora_name": name, "lora_path": str(adapter)}]
        asyncio.run(model.generate(f"Will it? {PRIOR_INSTRUCTION}"))
        assert _eval_requests(server)[-1].applied == name
        again = get_model(f"sglang/test-base:{adapter}", base_url=server.base_url, memoize=False)
        assert len(server.loads()) == 1 and again.api.adapter_record()["loaded_by_harness"] is False  # type: ignore[attr-defined]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_setup_errors_are_clear_and_come_before_any_sample(
    server: LocalSGLangServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def error(name: str, **kwargs: object) -> str:
        with pytest.raises(SGLangSetupError) as e:
            get_model(name, memoize=False, **{"base_url": server.base_url, **kwargs})  # type: ignore[arg-type]
        return str(e.value)

    assert "cannot reach the SGLang server at http://127.0.0.1:" in error(
        MODEL, base_url=f"http://127.0.0.1:{_closed_port()}/v1")
    for var in ("SGLANG_BASE_URL", "INSPECT_EVAL_MODEL_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    assert "SGLANG_BASE_URL" in error(MODEL, base_url=None)
    assert "its adapters: lora, other" in error("sglang/test-base+nope")
    assert "serves 'test-base', '/models/Test-Base-7B', not 'llama-3-8b'" in error("sglang/llama-3-8b+lora")
    assert "unknown model args ['temperatur']" in error(MODEL, temperatur=0.2)
    foreign = _make_adapter(tmp_path / "foreign", base="meta-llama/Llama-3.1-8B")
    assert "trained for base model 'meta-llama/Llama-3.1-8B'" in error(f"sglang/test-base+{foreign}")
    # the server refuses it too when the client-side check is switched off
    assert "this server serves" in error(f"sglang/test-base+{foreign}", check_base=False)
    assert "not a LoRA adapter folder" in error(f"sglang/test-base+{tmp_path}")
    assert server.requests() == []  # nothing reached generation


def test_transient_failures_are_retried_and_client_errors_are_not(server: LocalSGLangServer) -> None:
    """inspect retries what ``should_retry`` accepts: the HTTP client's transport errors and timeouts,
    HTTP 429 and 5xx; a 4xx is the request's fault and a 401/403 an authentication failure."""
    import httpx2

    api = get_model(MODEL, base_url=server.base_url, memoize=False).api
    request = httpx2.Request("POST", server.base_url)
    retried = [httpx2.ConnectError("refused", request=request), httpx2.ReadTimeout("slow", request=request),
               httpx2.RemoteProtocolError("reset", request=request), SGLangRequestError(429, "busy"),
               SGLangRequestError(503, "overloaded")]
    assert [api.should_retry(e) for e in retried] == [True] * len(retried)
    assert [api.should_retry(e) for e in (SGLangRequestError(400, "bad"), ValueError("x"))] == [False, False]
    assert [api.is_auth_failure(SGLangRequestError(s, "")) for s in (401, 403, 500)] == [True, True, False]


def test_transient_faults_are_retried_and_a_malformed_body_ends_only_its_sample(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The SGLang side is the local protocol server injecting one fault of each kind into eval requests
    (the canary's five calls come first); the client is the real provider under inspect's retry loop."""
    from tenacity import wait_fixed

    monkeypatch.setattr(SGLangLoRAAPI, "retry_wait", lambda self: wait_fixed(0.05))  # inspect's starts at 3 s
    faults = {8: "http_500", 10: "http_429", 12: "connection_reset", 14: "truncated_body", 16: "truncated_json"}
    with LocalSGLangServer(adapters=ADAPTERS, faults=faults) as server:
        log = inspect_eval(forecast(), model=MODEL, model_base_url=server.base_url, limit=10, display="none",
                           log_dir=str(tmp_path), max_connections=4, fail_on_error=False)[0]
        injected = server.injected()
        answered = _eval_requests(server)
    assert injected == {kind: 1 for kind in faults.values()}
    samples = log.samples or []
    failed = [s for s in samples if s.error is not None]
    assert len(samples) == 10 and len(failed) == 1, [s.error for s in samples]
    assert "with a body that is not JSON" in failed[0].error.message  # type: ignore[union-attr]
    assert all(s.scores and "self_report" in s.scores for s in samples if s.error is None)
    # the four transient faults were retried until answered: nine samples got prior and posterior, the
    # failed one its prior too if the malformed body was its posterior's
    assert len(answered) in (18, 19)
    assert _metric(log, "self_report", "n_pairs") == 9


def test_chat_transport_checks_for_openai_once_at_setup_not_per_request(
    server: LocalSGLangServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The openai package is checked in the constructor (inspect's own error when it is missing); the
    request path uses inspect's converters directly, since the public wrappers re-read package metadata
    on every call (milliseconds of event-loop CPU per request)."""
    import importlib.metadata

    from inspect_ai._util.error import PrerequisiteError

    monkeypatch.setitem(sys.modules, "openai", None)  # as if not installed
    with pytest.raises(PrerequisiteError, match="openai"):
        get_model(MODEL, base_url=server.base_url, memoize=False)
    monkeypatch.undo()

    model = get_model(MODEL, base_url=server.base_url, memoize=False)
    lookups: list[str] = []
    real_distribution = importlib.metadata.distribution  # what importlib.metadata.version() looks up
    monkeypatch.setattr(importlib.metadata, "distribution",
                        lambda name: lookups.append(name) or real_distribution(name))

    async def run() -> list[str]:
        outputs = await asyncio.gather(*(model.generate(f"question {i}? {PRIOR_INSTRUCTION}") for i in range(4)))
        return [o.completion for o in outputs]

    completions = asyncio.run(run())
    assert len(_eval_requests(server)) == 4 and all("Probability:" in c for c in completions)
    assert lookups == []


def test_missing_api_key_is_a_clear_error_and_the_key_never_reaches_the_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SGLANG_API_KEY", raising=False)
    with LocalSGLangServer(adapters=ADAPTERS, api_key="s3cret-key") as server:
        with pytest.raises(SGLangSetupError, match="requires an API key: set SGLANG_API_KEY"):
            get_model(MODEL, base_url=server.base_url, memoize=False)
        with pytest.raises(SGLangSetupError, match="rejected the API key"):
            get_model(MODEL, base_url=server.base_url, api_key="wrong", memoize=False)
        monkeypatch.setenv("SGLANG_API_KEY", "s3cret-key")
        logs = inspect_eval(forecast(), model=MODEL, model_base_url=server.base_url, limit=1, display="none",
                            log_dir=str(tmp_path))
    assert logs[0].status == "success"
    with zipfile.ZipFile(logs[0].location) as archive:
        assert not any(b"s3cret-key" in archive.read(name) for name in archive.namelist())


# --- the exact command --------------------------------------------------------------------------------------


def test_the_exact_cli_command_evaluates_with_the_adapter(tmp_path: Path) -> None:
    with LocalSGLangServer(served_model="qwen3-32b", model_path="/models/Qwen3-32B",
                           adapters={"lora": "/srv/lora"}) as server:
        env = {**os.environ, "SGLANG_BASE_URL": server.base_url}
        run = subprocess.run(
            [sys.executable, "-m", "inspect_ai", "eval", "martingale/forecast", "--model", "sglang/qwen3-32b+lora",
             "--limit", "1", "--display", "none", "--log-dir", str(tmp_path)],
            env=env, capture_output=True, text=True, timeout=120,
        )
        eval_requests = _eval_requests(server)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert len(eval_requests) == 2 and all(r.applied == "lora" and r.model == "qwen3-32b" for r in eval_requests)
