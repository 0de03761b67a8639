"""Generation and scoring helpers of training/models.py: batches of similar length, answers in input order."""

from __future__ import annotations

from pathlib import Path

import pytest

from martingale_harness.training.models import length_batches

pytest.importorskip("torch")


def test_length_batches_cover_every_index_once_longest_first() -> None:
    lengths = [5, 900, 40, 40, 1800, 7, 300]
    batches = length_batches(lengths, 3)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert [len(b) for b in batches] == [3, 3, 1]
    flat = [lengths[i] for b in batches for i in b]
    assert flat == sorted(lengths, reverse=True)
    assert batches[0] == [4, 1, 6] and batches[1] == [2, 3, 5]  # ties keep input order
    assert length_batches([], 4) == []


def test_answers_and_logprobs_come_back_in_input_order(tiny_model: Path) -> None:
    import torch

    from martingale_harness.training.models import completion_logprobs, load_model, load_tokenizer, sample

    tokenizer, model = load_tokenizer(str(tiny_model)), load_model(str(tiny_model), "float32")
    words = ["yes", "a much longer question about the weather in the north " * 6, "no", "middle sized one " * 3]
    conversations = [[{"role": "user", "content": w}] for w in words]
    alone = [sample(model, tokenizer, [c], n=1, max_new_tokens=5, temperature=0.0)[0][0] for c in conversations]
    batched = sample(model, tokenizer, conversations, n=1, max_new_tokens=5, temperature=0.0, batch_size=2)
    assert [g[0].prompt_ids for g in batched] == [s.prompt_ids for s in alone]  # each prompt is its own
    assert [g[0].completion_ids for g in batched] == [s.completion_ids for s in alone]
    torch.manual_seed(0)
    drawn = sample(model, tokenizer, conversations, n=3, max_new_tokens=5, temperature=1.0, batch_size=3)
    assert [len(g) for g in drawn] == [3, 3, 3, 3]
    assert all(s.prompt_ids == alone[i].prompt_ids for i, g in enumerate(drawn) for s in g)
    together = completion_logprobs(model, alone, batch_size=3)
    assert [len(x) for x in together] == [len(s.completion_ids) for s in alone]
    for s, got in zip(alone, together, strict=True):
        # reference: the whole unpadded sequence's logits, read at the positions before each completion token
        seq = torch.tensor([list(s.prompt_ids + s.completion_ids)])
        with torch.inference_mode():
            logp = torch.log_softmax(model(input_ids=seq).logits.float()[0], dim=-1)
        want = [float(logp[len(s.prompt_ids) - 1 + k, t]) for k, t in enumerate(s.completion_ids)]
        assert got == pytest.approx(want, abs=1e-4)


def test_a_shared_prefill_samples_the_same_completions_as_separate_prefills(tiny_model: Path) -> None:
    """K completions of a prompt from one prefill are, for one torch seed, those of K separate prefills."""
    import torch

    from martingale_harness.training.models import load_model, load_tokenizer, sample

    tokenizer, model = load_tokenizer(str(tiny_model)), load_model(str(tiny_model), "float32")
    words = ["a much longer question about the weather in the north " * 6, "yes", "middle sized one " * 3]
    conversations = [[{"role": "user", "content": w}] for w in words]  # lengths differ: left padding in a batch
    drawn = {}
    for shared in (False, True):
        torch.manual_seed(7)
        drawn[shared] = sample(model, tokenizer, conversations, n=4, max_new_tokens=12, temperature=1.0,
                               batch_size=3, shared_prefill=shared)
    assert [[s.completion_ids for s in g] for g in drawn[True]] == [[s.completion_ids for s in g] for g in drawn[False]]
    assert [[s.prompt_ids for s in g] for g in drawn[True]] == [[s.prompt_ids for s in g] for g in drawn[False]]
    # the K completions of a prompt do differ (the test would pass vacuously on one repeated sequence)
    assert all(len({s.completion_ids for s in g}) > 1 for g in drawn[True])
