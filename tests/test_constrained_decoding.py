"""Constrained decoding: inspect's ``response_schema`` gives schema-valid JSON on the backends we own.

* ``local``: ``local_grammar.SchemaConstraint`` (llguidance) masks each row's logits before the per-row
  sampler. A property test drives it with random logits (no model) and checks every output against the
  schema with ``jsonschema`` (an independent validator); the tiny random model checks validity, batch
  independence (batched == alone, greedy and seeded sampling) and that unconstrained requests are untouched.
* ``sglang``: run against the local SGLang stand-in server (``testing.sglang_server``), not a real SGLang:
  the client must send the schema in the fields SGLang documents, on both transports.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from fakes.sglang_server import LocalSGLangServer
from inspect_ai._util.error import PrerequisiteError
from inspect_ai.model import ChatMessageUser, GenerateConfig, Model, ModelOutput, ResponseSchema, get_model
from inspect_ai.util import JSONSchema

from martingale_harness.backends.sglang import SGLangLoRAAPI

PROBABILITY = JSONSchema(
    type="object", properties={"probability": JSONSchema(type="number", minimum=0, maximum=1)},
    required=["probability"], additionalProperties=False,
)
# every field bounded (an enum, an integer range, a boolean), so even a random model's reply ends in few tokens
VERDICT = JSONSchema(
    type="object",
    properties={
        "answer": JSONSchema(type="string", enum=["yes", "no", "unsure"]),
        "confidence": JSONSchema(type="integer", minimum=0, maximum=100),
        "revised": JSONSchema(type="boolean"),
    },
    required=["answer", "confidence", "revised"], additionalProperties=False,
)
FORECAST = JSONSchema(
    type="object",
    properties={
        "answer": JSONSchema(type="string", enum=["yes", "no"]),
        "probability": JSONSchema(type="number", minimum=0, maximum=1),
    },
    required=["answer", "probability"], additionalProperties=False,
)
# a bare integer: complete after "7" but may go on ("72"), so the end of sequence competes with digits
SCORE = JSONSchema(type="integer", minimum=-5, maximum=250)
PROMPTS = ["hi", "Will it rain in Paris tomorrow? Answer as JSON.", "ok", "Is the sky blue today, do you think?"]


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread() -> Iterator[None]:
    """These tensors are small: with xdist's two workers on two cores, torch's intra-op thread pool costs
    ten times the work (an elementwise op over one row of logits measured 10-20 ms with two threads, 0.5 ms
    with one)."""
    try:
        import torch
    except ImportError:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _dump(schema: JSONSchema) -> dict[str, Any]:
    return schema.model_dump(exclude_none=True)


def _is_valid(text: str, schema: JSONSchema) -> bool:
    try:
        jsonschema.validate(json.loads(text), _dump(schema))
    except (ValueError, jsonschema.ValidationError):
        return False
    return True


# ---- the processor alone: random logits, no model ---------------------------------------------------


@pytest.fixture(scope="module")
def tokenizer(tiny_model: Path) -> Any:
    pytest.importorskip("llguidance")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model)


@pytest.fixture(scope="module")
def grammars(tokenizer: Any) -> Any:
    from martingale_harness.backends.local_grammar import SchemaGrammars

    return SchemaGrammars(tokenizer, (tokenizer.eos_token_id,))


PADDING = 77  # extra logit columns past the vocabulary, as in models whose output layer is padded


def _drive(processor: Callable[[Any, Any], Any], tokenizer: Any, rows: int, seed: int, *, greedy: bool,
           steps: int = 300, check: bool = True) -> list[list[int] | None]:
    """Run ``processor`` as generate would, on random logits: each row's token ids, None for a row that never
    ended. With ``check``, asserts on the way that a finished row's scores come back untouched and that the
    end of sequence is allowed only where the text so far is complete JSON."""
    import torch

    eos, vocab = tokenizer.eos_token_id, len(tokenizer)
    gen = torch.Generator().manual_seed(seed)
    ids = torch.zeros(rows, 1, dtype=torch.long)  # a one-token prompt
    tokens: list[list[int]] = [[] for _ in range(rows)]
    done = [False] * rows
    for _ in range(steps):
        scores = torch.randn(rows, vocab + PADDING, generator=gen) * 4
        scores[:, vocab:] += 40  # without the mask a padding id would win every time
        scores[:, eos] += 4  # and the end of sequence often, complete or not
        before = scores.clone()
        masked = processor(ids, scores)
        if greedy:
            chosen = masked.argmax(dim=-1)
        else:
            u = torch.rand(masked.shape, generator=gen).clamp_min(1e-12)
            chosen = (masked - torch.log(-torch.log(u))).argmax(dim=-1)
        for row in range(rows):
            if done[row]:
                assert not check or torch.equal(masked[row], before[row])
                chosen[row] = eos  # generate's padding after a row ended
                continue
            if check and torch.isfinite(masked[row, eos]):
                json.loads(tokenizer.decode(tokens[row]))  # eos allowed: the JSON must be complete
            if int(chosen[row]) == eos:
                done[row] = True
            else:
                tokens[row].append(int(chosen[row]))
        ids = torch.cat([ids, chosen[:, None]], dim=1)
        if all(done):
            break
    return [t if d else None for t, d in zip(tokens, done, strict=True)]


@pytest.mark.parametrize("schema", [PROBABILITY, VERDICT, FORECAST, SCORE], ids=["probability", "verdict",
                                                                                 "forecast", "score"])
def test_masked_random_logits_always_give_schema_valid_json(schema: JSONSchema, tokenizer: Any,
                                                            grammars: Any) -> None:
    from martingale_harness.backends.local_grammar import canonical_schema

    texts = []
    for seed in range(20):
        rows = 3
        constraint = grammars.constraint(canonical_schema(_dump(schema)), rows)
        for ids in _drive(constraint, tokenizer, rows, seed, greedy=seed % 3 == 0):
            assert ids is not None, "a row never ended"
            assert max(ids) < len(tokenizer)  # never an id past the vocabulary
            text = tokenizer.decode(ids)
            assert _is_valid(text, schema), text
            value = json.loads(text)
            if isinstance(value, dict) and "probability" in value:
                assert 0.0 <= value["probability"] <= 1.0
            texts.append(text)
    assert len(set(texts)) > len(texts) // 3  # random logits explore the schema, not one fixed answer


def test_the_property_check_fails_without_the_mask(tokenizer: Any) -> None:
    """The same drive with a processor that masks nothing: the checks above must catch it."""
    invalid = 0
    for seed in range(6):
        for ids in _drive(lambda ids, scores: scores, tokenizer, 3, seed, greedy=False, steps=40, check=False):
            invalid += ids is None or max(ids, default=0) >= len(tokenizer) or not _is_valid(
                tokenizer.decode(ids), PROBABILITY)
    assert invalid == 18


def test_a_schema_the_library_cannot_compile_is_refused(grammars: Any) -> None:
    from martingale_harness.backends.local_grammar import SchemaCompileError, canonical_schema

    with pytest.raises(SchemaCompileError, match="look-around"):
        grammars.grammar(canonical_schema({"type": "string", "pattern": "(?=a)b"}))
    with pytest.raises(SchemaCompileError, match="foo"):
        grammars.grammar(canonical_schema({"type": "foo"}))


# ---- the local provider on the tiny random model ----------------------------------------------------


def _local(model: Path, **model_args: Any) -> Model:
    pytest.importorskip("llguidance")
    return get_model(f"local/{model}", memoize=False, device="cpu", **model_args)


def _close(model: Model) -> None:
    model.api.close()  # type: ignore[attr-defined]


def _together(model: Model, jobs: list[tuple[str, GenerateConfig]]) -> list[ModelOutput]:
    async def run() -> list[ModelOutput]:
        return list(await asyncio.gather(*(model.generate([ChatMessageUser(content=p)], config=c) for p, c in jobs)))

    return asyncio.run(run())


def _alone(model: Model, prompt: str, config: GenerateConfig) -> ModelOutput:
    return asyncio.run(model.generate([ChatMessageUser(content=prompt)], config=config))


@pytest.fixture(scope="module")
def tiny(tiny_model: Path) -> Iterator[Model]:
    model = _local(tiny_model, batch_size=len(PROMPTS), batch_wait=0.5)
    yield model
    _close(model)


@pytest.mark.parametrize("sampled", [False, True], ids=["greedy", "seeded-sampling"])
def test_constrained_rows_are_valid_and_do_not_depend_on_the_batch(tiny: Model, sampled: bool) -> None:
    """Prompts of different lengths (left padding differs per row), batched and alone."""
    schema = ResponseSchema(name="verdict", json_schema=VERDICT)

    def config(seed: int) -> GenerateConfig:
        if not sampled:
            return GenerateConfig(temperature=0, max_tokens=96, response_schema=schema)
        return GenerateConfig(temperature=1.0, max_tokens=96, seed=seed, response_schema=schema)

    jobs = [(prompt, config(100 + i)) for i, prompt in enumerate(PROMPTS)]
    batched = _together(tiny, jobs)
    assert {o.metadata["batch_size"] for o in batched} == {len(PROMPTS)}  # type: ignore[index]
    for output in batched:
        assert output.choices[0].stop_reason == "stop", output.completion
        assert _is_valid(output.completion, VERDICT), output.completion
    alone = [_alone(tiny, p, c) for p, c in jobs]
    assert [o.completion for o in batched] == [o.completion for o in alone]
    assert [o.usage for o in batched] == [o.usage for o in alone]
    assert len({o.completion for o in batched}) > 1


def test_unconstrained_requests_on_the_same_engine_are_unaffected(tiny: Model) -> None:
    plain = GenerateConfig(temperature=1.0, max_tokens=12, seed=5)
    before = [_alone(tiny, p, plain).completion for p in PROMPTS[:2]]
    constrained = GenerateConfig(temperature=1.0, max_tokens=96, seed=5,
                                 response_schema=ResponseSchema(name="verdict", json_schema=VERDICT))
    mixed = _together(tiny, [(PROMPTS[0], plain), (PROMPTS[0], constrained), (PROMPTS[1], plain),
                             (PROMPTS[1], constrained)])
    assert [mixed[0].completion, mixed[2].completion] == before
    assert not any(_is_valid(text, VERDICT) for text in before)  # the random model alone writes no such JSON
    assert all(_is_valid(o.completion, VERDICT) for o in (mixed[1], mixed[3]))
    # a schema is part of the batching key: the two kinds ran as two batches of two
    assert [o.metadata["batch_size"] for o in mixed] == [2, 2, 2, 2]  # type: ignore[index]


def test_a_reply_cut_by_max_tokens_says_so(tiny: Model) -> None:
    output = _alone(tiny, "hi", GenerateConfig(temperature=0, max_tokens=3,
                                               response_schema=ResponseSchema(name="p", json_schema=PROBABILITY)))
    assert output.choices[0].stop_reason == "max_tokens"
    assert output.completion.startswith("{") and not _is_valid(output.completion, PROBABILITY)


def test_uncompilable_schema_and_missing_library_are_clear_errors(tiny: Model,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    bad = ResponseSchema(name="bad", json_schema=JSONSchema(type="string", pattern="(?=a)b"))
    with pytest.raises(ValueError, match=r"response_schema 'bad' cannot be compiled .*look-around"):
        _alone(tiny, "hi", GenerateConfig(max_tokens=4, response_schema=bad))
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "llguidance" else find_spec(name, *a))
    with pytest.raises(PrerequisiteError) as e:
        _alone(tiny, "hi", GenerateConfig(max_tokens=4, response_schema=ResponseSchema(name="p",
                                                                                       json_schema=PROBABILITY)))
    message = str(e.value)
    assert "llguidance" in message and "pip install 'martingale-harness[local]'" in message
    assert "\n" not in message


def test_both_backends_declare_constrained_decoding() -> None:
    from martingale_harness.backends.local import LocalModelAPI

    assert LocalModelAPI.constrains_response_schema is True
    assert SGLangLoRAAPI.constrains_response_schema is True


def test_logits_wider_than_the_vocabulary_never_yield_a_padding_id(tiny_model: Path, tmp_path: Path) -> None:
    """A model whose output layer has rows past the tokenizer's vocabulary, rigged so that a padding id has the
    highest logit at the first step: constrained decoding must still write valid JSON."""
    pytest.importorskip("llguidance")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    vocab = len(tokenizer)
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True,
                                           return_tensors="pt", return_dict=True)["input_ids"]
    with torch.no_grad():
        top = int(model(prompt).logits[0, -1].argmax())
        model.resize_token_embeddings(vocab + 64, mean_resizing=False)
        model.get_output_embeddings().weight[vocab:] = 50 * model.get_output_embeddings().weight[top]
        assert int(model(prompt).logits[0, -1].argmax()) >= vocab  # unmasked, greedy would pick a padding id
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    padded = _local(tmp_path)
    try:
        output = _alone(padded, "hi", GenerateConfig(temperature=0, max_tokens=96,
                                                     response_schema=ResponseSchema(name="v", json_schema=VERDICT)))
    finally:
        _close(padded)
    assert output.choices[0].stop_reason == "stop" and _is_valid(output.completion, VERDICT), output.completion


# ---- sglang: against the local stand-in server ------------------------------------------------------


@pytest.fixture(scope="module")
def word_tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A word-level tokenizer with a chat template, for -M transport=generate (nothing from a hub)."""
    pytest.importorskip("transformers")
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.WordLevel({"<unk>": 0}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>")
    tokenizer.chat_template = "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}[assistant] "
    folder = tmp_path_factory.mktemp("word-tokenizer")
    tokenizer.save_pretrained(folder)
    return folder


@pytest.mark.parametrize("transport", ["chat", "generate"])
def test_sglang_stand_in_receives_the_schema(transport: str, word_tokenizer: Path) -> None:
    """Run against ``LocalSGLangServer`` (a stand-in speaking SGLang's documented HTTP API), not SGLang."""
    schema = ResponseSchema(name="forecast", json_schema=FORECAST, description="a forecast", strict=True)
    with LocalSGLangServer(adapters={"lora": "/srv/lora"}, tokenizer_path=str(word_tokenizer)) as server:
        model = get_model("sglang/test-base+lora", base_url=server.base_url, memoize=False, transport=transport,
                          lora_canary=False)
        output, call = asyncio.run(model.api.generate([ChatMessageUser(content="Will it rain?")], [], "auto",
                                                      GenerateConfig(max_tokens=64, response_schema=schema)))
        received = server.requests()[-1]
    if transport == "chat":
        assert received.endpoint == "/v1/chat/completions"
        assert call.request["response_format"] == {
            "type": "json_schema",
            "json_schema": {"name": "forecast", "schema": _dump(FORECAST), "description": "a forecast",
                            "strict": True},
        }
    else:
        assert received.endpoint == "/generate"
        assert json.loads(call.request["sampling_params"]["json_schema"]) == _dump(FORECAST)
    assert received.schema == _dump(FORECAST) and received.applied == "lora"
    assert _is_valid(output.completion, FORECAST), output.completion


def test_sglang_requests_without_a_schema_send_none(word_tokenizer: Path) -> None:
    with LocalSGLangServer(adapters={"lora": "/srv/lora"}, tokenizer_path=str(word_tokenizer)) as server:
        for transport in ("chat", "generate"):
            model = get_model("sglang/test-base+lora", base_url=server.base_url, memoize=False, transport=transport,
                              lora_canary=False)
            _, call = asyncio.run(model.api.generate([ChatMessageUser(content="Will it rain?")], [], "auto",
                                                     GenerateConfig(max_tokens=64)))
            assert "response_format" not in call.request
            assert "json_schema" not in call.request.get("sampling_params", {})
        assert [r.schema for r in server.requests()] == [None, None]


# ---- slow: the real SmolLM2-135M-Instruct GGUF ------------------------------------------------------


@pytest.mark.slow
def test_smollm2_sampled_forecasts_are_schema_valid() -> None:
    from martingale_harness.testing.tiny_model import smollm2_gguf_path

    try:
        gguf = smollm2_gguf_path()
    except (ModuleNotFoundError, FileNotFoundError) as e:
        pytest.skip(str(e))
    questions = [
        "Will the S&P 500 close higher at the end of next year than today?",
        "Will a human land on Mars before 2040?",
        "Will it snow in London on Christmas Day this year?",
    ]
    instruction = ('Give your forecast as JSON: {"answer": "yes" or "no", "probability": the probability of '
                   '"yes", a number between 0 and 1}.')
    schema = ResponseSchema(name="forecast", json_schema=FORECAST)
    model = _local(gguf, batch_size=6, batch_wait=0.5)
    try:
        # room for a long number: nothing in a JSON schema bounds its digits, and SmolLM2 writes up to ~35
        jobs = [(f"{q}\n{instruction}", GenerateConfig(temperature=1.0, max_tokens=128, seed=seed,
                                                       response_schema=schema))
                for seed, q in enumerate(questions * 2)]
        outputs = _together(model, jobs)
    finally:
        _close(model)
    for output in outputs:
        assert output.choices[0].stop_reason == "stop", output.completion
        assert _is_valid(output.completion, FORECAST), output.completion
        assert 0.0 <= json.loads(output.completion)["probability"] <= 1.0


def test_the_structured_probes_number_has_at_most_four_decimals(tokenizer: Any) -> None:
    """Bounds in [0, 1] alone let a reply run on as 0.99999… until the token limit (5 of 34 SmolLM2-135M
    probes); the probe's ``multipleOf`` (a keyword inspect's JSONSchema lacks) must reach the decoder."""
    import llguidance
    import llguidance.hf

    from martingale_harness.backends.local_grammar import canonical_schema
    from martingale_harness.protocol.solver import STRUCTURED_RESPONSE_SCHEMA

    # what the local backend compiles (LocalModelAPI._schema dumps with serialize_as_any)
    schema = canonical_schema(STRUCTURED_RESPONSE_SCHEMA.json_schema.model_dump(exclude_none=True,
                                                                                 serialize_as_any=True))
    lltok = llguidance.hf.from_tokenizer(tokenizer)

    def accepted(text: str) -> str:
        matcher = llguidance.LLMatcher(lltok, llguidance.LLMatcher.grammar_from_json_schema(schema))
        ids = tokenizer.encode(text)
        return tokenizer.decode(ids[: matcher.try_consume_tokens(ids)])

    assert accepted('{"probability": 0.1234}') == '{"probability": 0.1234}'
    assert accepted('{"probability": 1}') == '{"probability": 1}'
    for runaway in ('{"probability": 0.99999999999', '{"probability": 0.123456'):
        cut = accepted(runaway)
        assert cut.startswith('{"probability": 0.') and len(cut.partition(".")[2]) <= 4, cut
