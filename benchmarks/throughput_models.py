"""Shared set-up of the throughput benchmarks: a tokenizer and AFM-architecture models built in-process.

The benchmarks measure speed, not quality, so the weights are random; what matters is that the shapes are the
tiny preset's (and a 4x larger one for the FLOP-utilisation figure) and that both sides of a comparison use
the same model, batch and lengths. Prompts are synthetic math/tool/if prompts of varied length.

Run: imported by `benchmarks/generation_throughput.py`, `rm_scoring_throughput.py`, `training_mfu.py`.
"""
from __future__ import annotations

import sys
from pathlib import Path

if str(Path(__file__).resolve().parents[1]) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from afm_align.base_model import ModelShape, build_model, train_tokenizer  # noqa: E402

TINY = ModelShape(hidden_size=96, num_layers=3, num_heads=4, num_kv_heads=2, intermediate_size=288)
# about 4x the tiny preset's parameters in the transformer blocks
LARGER = ModelShape(hidden_size=192, num_layers=4, num_heads=4, num_kv_heads=2, intermediate_size=576)


def prompts(n: int, seed: int = 0) -> list[list[dict]]:
    """n chat prompts of varied length from the synth families (math, if, tool)."""
    from synth import if_tasks, math_tasks, tool_tasks

    items = math_tasks.generate(n, seed, 1) + if_tasks.generate(n, seed, 1) + tool_tasks.generate(n, seed, 0)
    return [item["prompt"] for item in items[: 3 * n : 3]] if n else []


def tokenizer_and_model(shape: ModelShape = TINY, seed: int = 0):
    """A tokenizer trained on synth text and a randomly initialised model of `shape`."""
    from synth.corpus import chat_corpus

    texts = [m["content"] for conv in chat_corpus(60, seed) for m in conv]
    tok = train_tokenizer(texts + [f"{a} + {b} = {a + b}" for a in range(40) for b in range(40)], 1024)
    return tok, build_model(tok, shape, seed=seed).eval()
