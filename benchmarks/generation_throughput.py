"""Rejection-sampling generation: tokens/s of our sampling path against one batched `generate` call per batch.

The workload is several batches of chat prompts of mixed length (math, instruction-following and tool prompts
from the synth families, about 30 to 260 tokens) with K samples each, whose answers stop at EOS at varying
points. Both sides use the same model, the same `--batch-size` sequences per batch (prompts x K), the same
sampling settings (temperature, top-p, no top-k) and the same `--new-tokens` cap:
- baseline: transformers' `generate`, one call per batch of prompts taken in input order (unsorted), left-padded,
  `num_return_sequences=K` -- what a careful user writes, not a per-prompt loop;
- ours: `afm_align.generation.sample` (prompts sorted by length into batches, each prompt encoded once for its K
  samples, finished rows dropped from the batch and its KV cache at every step, one inverse-CDF draw a row where
  `generate` calls torch.multinomial, which on CPU costs about as much as a decoding step of the tiny model).
Throughput is generated tokens per second: completion tokens up to and including EOS (padding after EOS is not
counted), over the whole workload including rendering the prompts. The figure is `paired_ratio`'s median of
interleaved warmed-up pairs with a bootstrap 95% interval (`benchmarks/paired_ratio.py`).

Answer lengths: the benchmark's model is the tiny preset's shape with random weights, which almost never emits
EOS, so a forward hook adds a constant to the EOS logit of its output layer (`--mean-answer`: EOS probability
about 1/mean per token, geometric answer lengths, some reaching the cap). The hook is part of the model, so
both sides sample from the same distribution. `--base DIR` uses a saved checkpoint instead (no hook): its answer
lengths are whatever it learnt.
vLLM against `generate` needs vLLM and a CUDA GPU; `vllm_vs_hf` says "not measured". One torch thread by
default (`--threads`): a tiny model's decoding is overhead-bound, and two threads on a shared 2-core machine
thrash (benchmarks/threads_under_load.py).

Run: `python benchmarks/generation_throughput.py [--prompts 48] [--k 4] [--pairs 10] [--json FILE]`
(quick, two batches, about 30 s: `--prompts 16 --batch-size 32 --new-tokens 96 --pairs 10`).
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import time

import torch
from paired_ratio import paired_ratio
from throughput_models import prompts, tokenizer_and_model

from afm_align.generation import cut_at_eos, render, sample, vllm_available


def add_eos_bias(model, eos_id: int, mean_answer: float) -> None:
    """Make a near-uniform random model stop after about `mean_answer` tokens: EOS logit + log((V-1)/(mean-1))."""
    bias = math.log((model.config.vocab_size - 1) / max(mean_answer - 1, 1e-6))

    def hook(module, inputs, output):
        output[..., eos_id] += bias
        return output

    model.get_output_embeddings().register_forward_hook(hook)


def batched_hf(model, tok, chats, *, k, new_tokens, batch_size, temperature, top_p, seed) -> dict:
    """One left-padded `generate` call per batch of prompts in input order; generated tokens and seconds."""
    from transformers import GenerationConfig

    start = time.perf_counter()
    encoded = render(tok, chats)
    per_batch = max(1, batch_size // k)
    eos = tok.eos_token_id
    # a fresh config, so a checkpoint's saved defaults (repetition penalty, top-k, ...) do not apply
    config = GenerationConfig(do_sample=True, temperature=temperature, top_p=top_p, top_k=0, max_new_tokens=new_tokens,
                              num_return_sequences=k, eos_token_id=eos, pad_token_id=tok.pad_token_id)
    tok.padding_side = "left"
    produced = 0
    torch.manual_seed(seed)
    with torch.no_grad():
        for first in range(0, len(encoded), per_batch):
            padded = tok.pad({"input_ids": encoded[first:first + per_batch]}, return_tensors="pt")
            out = model.generate(**padded, generation_config=config)
            produced += sum(len(cut_at_eos(row, {eos})) for row in out[:, padded["input_ids"].size(1):].tolist())
    return {"tokens": produced, "seconds": time.perf_counter() - start}


def ours(model, tok, chats, *, k, new_tokens, batch_size, temperature, top_p, seed) -> dict:
    """The shared sampling path; generated tokens and seconds."""
    result = sample(model, tok, chats, k=k, max_new_tokens=new_tokens, temperature=temperature, top_p=top_p,
                    batch_size=batch_size, seed=seed)
    return {"tokens": result.completion_tokens, "seconds": result.seconds}


def timed(run, settings: dict, log: list):
    """A zero-argument throughput measurement for `paired_ratio`: each call uses a fresh seed and is logged."""
    def measure() -> float:
        row = run(**settings, seed=len(log))
        log.append(row)
        return row["tokens"] / row["seconds"]
    return measure


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=48)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=64, help="sequences per batch (prompts x K)")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--top-p", type=float, default=1.0)
    parser.add_argument("--mean-answer", type=float, default=32.0, help="mean answer length the EOS hook aims at")
    parser.add_argument("--base", default=None, help="a saved checkpoint directory instead of the hooked model")
    parser.add_argument("--pairs", "--repeats", type=int, default=10, help="interleaved pairs (at least 10)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads, both sides (one: steady on shared 2-core machines, as mdloo_vs_trl_rloo)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.base:
        from afm_align.base_model import load_base

        model, tok = load_base(args.base)
        model.eval()
    else:
        tok, model = tokenizer_and_model()
        add_eos_bias(model, tok.eos_token_id, args.mean_answer)
    chats = prompts(args.prompts)
    settings = dict(k=args.k, new_tokens=args.new_tokens, batch_size=args.batch_size,
                    temperature=args.temperature, top_p=args.top_p)
    ours_log, hf_log = [], []
    paired = paired_ratio(timed(lambda **kw: ours(model, tok, chats, **kw), settings, ours_log),
                          timed(lambda **kw: batched_hf(model, tok, chats, **kw), settings, hf_log),
                          pairs=args.pairs, warmup=1)
    lengths = [len(ids) for ids in render(tok, chats)]
    samples = args.prompts * args.k
    result = {
        "benchmark": "rs_generation_vs_batched_hf", "ratio": round(paired["ratio"], 2), "vs_batched_hf": paired,
        "ours_tok_s": round(statistics.median(paired["ours"]), 1),
        "batched_hf_tok_s": round(statistics.median(paired["baseline"]), 1),
        "mean_answer_tokens": round(statistics.mean(r["tokens"] for r in ours_log + hf_log) / samples, 1),
        "workload": {"prompts": args.prompts, "k": args.k,
                     "batches": math.ceil(args.prompts / max(1, args.batch_size // args.k)),
                     "prompt_tokens_min_max": [min(lengths), max(lengths)], **settings,
                     "model": args.base or f"tiny preset shape, random weights, EOS hook mean {args.mean_answer}",
                     "threads": torch.get_num_threads()},
        "vllm_vs_hf": "not measured: " + ("this benchmark does not run vLLM yet" if vllm_available()
                                          else "needs vLLM and a CUDA GPU"),
    }
    low, high = paired["ci95"]
    print(f"generation: ours {result['ours_tok_s']} tok/s, one batched generate per batch "
          f"{result['batched_hf_tok_s']} tok/s, ratio {result['ratio']}x (95% CI {low:.2f}-{high:.2f}, "
          f"{paired['verdict']}; bar: >= 1.5)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
    return result


if __name__ == "__main__":
    main()
