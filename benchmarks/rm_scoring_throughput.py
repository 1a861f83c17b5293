"""RM scoring: responses/s of the length-sorted `RewardScorer` against naive unsorted batches.

Both sides score the same (prompt, response) pairs with the same multi-head RM and the same batch size; the
responses have mixed lengths (short answers, long padded ones, tool calls), as a committee's samples do.
- naive: batches in the input order, so each batch is padded to its longest member;
- ours: `reward_model.scorer.RewardScorer.score` (sorted by length, so batches carry little padding).
The figure is the median of ours/naive over `--repeats` interleaved, warmed-up pairs with a bootstrap 95%
interval (`benchmarks/paired_ratio.py`), measured in the same run (ours also pays for
tokenising inside `score`; the naive side is handed pre-tokenised ids, so the ratio is conservative).

Run: `python benchmarks/rm_scoring_throughput.py [--pairs 256] [--batch-size 32] [--repeats 3] [--json FILE]`.
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import time

import torch
from throughput_models import tokenizer_and_model

import reward_model  # noqa: F401  (registers the Auto classes)
from reward_model.model import MultiHeadRewardModel
from reward_model.scorer import RewardScorer

from benchmarks.paired_ratio import paired_ratio


def pairs(n: int, seed: int = 0) -> tuple[list, list]:
    """Prompts and responses of mixed length from the synthetic preference pairs (chosen and rejected)."""
    from synth.builders import preference_rows

    rows, _ = preference_rows(n, seed)
    prompts = [r["prompt"] for r in rows] * 2
    responses = [r["chosen"] for r in rows] + [r["rejected"] for r in rows]
    order = list(range(len(prompts)))
    random.Random(seed).shuffle(order)
    return [prompts[i] for i in order][:n], [responses[i] for i in order][:n]


def naive(scorer: RewardScorer, prompts, responses) -> float:
    encoded = [scorer.encode(p, r) for p, r in zip(prompts, responses)]
    start = time.perf_counter()
    with torch.no_grad():
        for i in range(0, len(encoded), scorer.batch_size):
            scorer._forward(encoded[i : i + scorer.batch_size])
    return len(encoded) / (time.perf_counter() - start)


def ours(scorer: RewardScorer, prompts, responses) -> float:
    start = time.perf_counter()
    scorer.score(prompts, responses)
    return len(prompts) / (time.perf_counter() - start)


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=10, help="interleaved pairs (at least 10)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    tok, lm = tokenizer_and_model()
    scorer = RewardScorer(MultiHeadRewardModel.from_backbone(lm).eval(), tok, batch_size=args.batch_size)
    prompts, responses = pairs(args.pairs)
    paired = paired_ratio(lambda: ours(scorer, prompts, responses), lambda: naive(scorer, prompts, responses),
                          pairs=args.repeats, warmup=1)
    result = {"benchmark": "rm_scoring_vs_naive", "ratio": paired["ratio"], "ci95": paired["ci95"],
              "verdict": paired["verdict"], "naive_per_s": round(statistics.median(paired["baseline"]), 1),
              "ours_per_s": round(statistics.median(paired["ours"]), 1), "pairs": args.pairs,
              "batch_size": args.batch_size, "paired": paired}
    print(f"rm scoring: naive {result['naive_per_s']}/s, sorted {result['ours_per_s']}/s, ratio "
          f"{result['ratio']:.2f}x [{paired['ci95'][0]:.2f}, {paired['ci95'][1]:.2f}] over {paired['pairs']} "
          f"interleaved pairs (bar: >= 1.5)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
    return result


if __name__ == "__main__":
    main()
