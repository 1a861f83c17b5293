"""Rejection-sampling generation: tokens/s of the one sampling path against a naive per-prompt loop.

Both sides produce K samples for each of N prompts with the same model and the same number of new tokens
(EOS is suppressed so every completion has exactly `--new-tokens` tokens, making the work identical):
- naive: for each prompt, for each of its K samples, one `model.generate` call on that single prompt;
- ours: `afm_align.generation.sample` (length-sorted, left-padded batches; each prompt encoded once and shared
  by its K samples through `num_return_sequences`).
The figure is the median over repeats of ours/naive completion tokens per second, measured in the same run.

Run: `python benchmarks/generation_throughput.py [--prompts 16] [--k 4] [--repeats 3] [--json FILE]`.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from throughput_models import prompts, tokenizer_and_model

from afm_align.generation import render, sample


def naive(model, tok, chats, k, new_tokens) -> float:
    """Completion tokens/s of one generate call per prompt per sample."""
    start, produced = time.perf_counter(), 0
    for ids in render(tok, chats):
        x = torch.tensor([ids])
        for _ in range(k):
            out = model.generate(input_ids=x, attention_mask=torch.ones_like(x), do_sample=True,
                                 max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                                 pad_token_id=tok.pad_token_id)
            produced += out.shape[1] - x.shape[1]
    return produced / (time.perf_counter() - start)


def ours(model, tok, chats, k, new_tokens, batch_size) -> float:
    """Completion tokens/s of the shared sampling path."""
    model.generation_config.min_new_tokens = new_tokens
    try:
        result = sample(model, tok, chats, k=k, max_new_tokens=new_tokens, temperature=1.0, batch_size=batch_size)
    finally:
        model.generation_config.min_new_tokens = None
    return result.completion_tokens / result.seconds


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=64, help="sequences per batch (prompts x K)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    tok, model = tokenizer_and_model()
    chats = prompts(args.prompts)
    rows = []
    for _ in range(args.repeats):
        n = naive(model, tok, chats, args.k, args.new_tokens)
        o = ours(model, tok, chats, args.k, args.new_tokens, args.batch_size)
        rows.append({"naive_tok_s": n, "ours_tok_s": o, "ratio": o / n})
    ratio = statistics.median(r["ratio"] for r in rows)
    result = {"benchmark": "rs_generation_vs_naive", "ratio": round(ratio, 2),
              "naive_tok_s": round(statistics.median(r["naive_tok_s"] for r in rows), 1),
              "ours_tok_s": round(statistics.median(r["ours_tok_s"] for r in rows), 1),
              "prompts": args.prompts, "k": args.k, "new_tokens": args.new_tokens, "repeats": rows}
    print(f"generation: naive {result['naive_tok_s']} tok/s, ours {result['ours_tok_s']} tok/s, "
          f"ratio {result['ratio']}x (bar: >= 3)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
    return result


if __name__ == "__main__":
    main()
