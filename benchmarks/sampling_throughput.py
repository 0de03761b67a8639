"""Sampling throughput of training's K completions per prompt: one shared prefill against K prefills.

An expert-iteration round samples K posterior turns per episode (``training.models.sample``). Today's path,
``generate(num_return_sequences=K)``, computes each prompt's prefill K times; the shared prefill computes
it once and repeats its keys and values. This script times, on the same posterior prompts (ForecastBench
questions with their evidence, as ``examples/recipe_fb_cpu.yaml`` builds them), batch and K:

* ``plain``: a plain transformers ``model.generate(num_return_sequences=K)`` (the reference);
* ``separate``: the harness's sampling with ``shared_prefill=False`` (the path before the shared prefill);
* ``shared``: the harness's sampling with its default shared prefill.

Each runs in its own process (so each one's peak memory is its own), with the same torch seed; the
completions of the three are compared token for token. Printed: generated tokens per second, peak
resident memory above the loaded model, and the ratios to ``plain`` measured in this one run.

    GGUF=$(python -c 'from martingale_harness.testing.tiny_model import smollm2_gguf_path; print(smollm2_gguf_path())')
    python benchmarks/sampling_throughput.py --model $GGUF [--prompts 8] [--k 4] [--max-new-tokens 24]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
VARIANTS = ("plain", "separate", "shared")
PRIOR_ANSWER = "I think it is fairly unlikely. Probability: 0.3"
"""The prior turn every prompt carries (the sampled turn is the posterior, as in a training round)."""


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def _prompts(args: argparse.Namespace) -> list[list[dict[str, str]]]:
    from martingale_harness.training.config import load_train_config
    from martingale_harness.training.episodes import EpisodePrompts, load_episodes

    # the recipe's data and prompts; no adapter: sampling speed does not depend on one
    config = load_train_config(REPO / "examples" / "recipe_fb_cpu.yaml",
                               [f"base_model={args.model}", "init_adapter=null"])
    episodes = load_episodes(config)[: args.prompts]
    prompts = EpisodePrompts(config.system_prompt, config.paradigm)
    return [prompts.posterior_messages(e, PRIOR_ANSWER) for e in episodes]


def worker(args: argparse.Namespace) -> dict[str, Any]:
    """One variant in this process: load, sample once, report tokens, seconds and memory."""
    import torch

    from martingale_harness.training.models import _chat_texts, length_batches, load_model, load_tokenizer, sample

    torch.set_num_threads(args.threads)
    tokenizer, model = load_tokenizer(args.model), load_model(args.model, "float32")
    conversations = _prompts(args)
    # longest first, the order the harness batches in: row i of every variant is then the same prompt and
    # gets the same random draws, so their completions can be compared token for token
    texts = _chat_texts(tokenizer, conversations)
    lengths = [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
    (order,) = length_batches(lengths, len(conversations))
    conversations = [conversations[i] for i in order]
    model.eval()
    loaded = _peak_rss_mib()
    torch.manual_seed(args.seed)
    start = time.perf_counter()
    if args.worker == "plain":
        enc = tokenizer(_chat_texts(tokenizer, conversations), return_tensors="pt", padding=True,
                        add_special_tokens=False)
        with torch.inference_mode():
            out = model.generate(**enc, max_new_tokens=args.max_new_tokens, num_return_sequences=args.k,
                                 do_sample=True, temperature=1.0, top_p=1.0, top_k=None,
                                 pad_token_id=tokenizer.pad_token_id)
        stop = {tokenizer.eos_token_id, tokenizer.pad_token_id}
        completions = []
        for ids in out[:, enc["input_ids"].shape[1]:].tolist():
            end = next((i + 1 for i, t in enumerate(ids) if t in stop), len(ids))
            completions.append(ids[:end])
    else:
        groups = sample(model, tokenizer, conversations, n=args.k, max_new_tokens=args.max_new_tokens,
                        temperature=1.0, batch_size=len(conversations), shared_prefill=args.worker == "shared")
        completions = [list(s.completion_ids) for g in groups for s in g]
    seconds = time.perf_counter() - start
    lengths = [len(ids) for ids in tokenizer(_chat_texts(tokenizer, conversations), add_special_tokens=False)
               ["input_ids"]]
    return {"variant": args.worker, "seconds": seconds, "tokens": sum(len(c) for c in completions),
            "peak_rss_mib": _peak_rss_mib(), "model_rss_mib": loaded, "completions": completions,
            "prompt_tokens": lengths}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="the base model (a .gguf file, a directory or a hub id)")
    parser.add_argument("--prompts", type=int, default=8, help="posterior prompts, sampled as one batch")
    parser.add_argument("--k", type=int, default=4, help="completions per prompt")
    parser.add_argument("--max-new-tokens", type=int, default=24, help="the recipe's expert_iteration setting")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--worker", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return

    results = {}
    for variant in VARIANTS:
        command = [sys.executable, __file__, "--worker", variant, "--model", args.model, "--prompts", str(args.prompts),
                   "--k", str(args.k), "--max-new-tokens", str(args.max_new_tokens), "--seed", str(args.seed),
                   "--threads", str(args.threads)]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"{variant} failed:\n{done.stderr[-3000:]}")
        results[variant] = json.loads(done.stdout.strip().splitlines()[-1])
    lengths = results["plain"]["prompt_tokens"]
    mean = sum(lengths) / len(lengths)
    print(f"{args.prompts} posterior prompts ({min(lengths)}-{max(lengths)} tokens, mean {mean:.0f}),"
          f" K = {args.k}, {args.max_new_tokens} new tokens at most, temperature 1, seed {args.seed}, "
          f"{args.threads} threads; each variant in its own process")
    base = results["plain"]
    print(f"{'variant':<9} {'tokens':>6} {'seconds':>8} {'tokens/s':>9} {'x plain':>8} {'peak MiB':>9} "
          f"{'above model':>12} {'same tokens as plain':>21}")
    for variant in VARIANTS:
        r = results[variant]
        rate = r["tokens"] / r["seconds"]
        same = sum(a == b for a, b in zip(r["completions"], base["completions"], strict=True))
        print(f"{variant:<9} {r['tokens']:>6} {r['seconds']:>8.2f} {rate:>9.1f} "
              f"{rate / (base['tokens'] / base['seconds']):>8.2f} {r['peak_rss_mib']:>9.0f} "
              f"{r['peak_rss_mib'] - r['model_rss_mib']:>12.0f} {same:>10}/{len(r['completions'])}")
    shared, separate = results["shared"], results["separate"]
    speedup = (shared["tokens"] / shared["seconds"]) / (separate["tokens"] / separate["seconds"])
    print(f"shared prefill vs the previous sampling (separate): {speedup:.2f}x the tokens per second")


if __name__ == "__main__":
    main()
