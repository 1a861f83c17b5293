"""RM scoring: responses/s of the length-sorted `RewardScorer` against naive unsorted batches.

Both sides score the same (prompt, response) pairs with the same multi-head RM and the same batch size; the
responses have mixed lengths (short answers, long padded ones, tool calls), as a committee's samples do.
- naive: batches in the input order, so each batch is padded to its longest member;
- ours: `reward_model.scorer.RewardScorer.score` (sorted by length, so batches carry little padding).
The figure is the median over repeats of ours/naive, measured in the same run (ours also pays for
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
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    tok, lm = tokenizer_and_model()
    scorer = RewardScorer(MultiHeadRewardModel.from_backbone(lm).eval(), tok, batch_size=args.batch_size)
    prompts, responses = pairs(args.pairs)
    rows = []
    for _ in range(args.repeats):
        n, o = naive(scorer, prompts, responses), ours(scorer, prompts, responses)
        rows.append({"naive_per_s": n, "ours_per_s": o, "ratio": o / n})
    result = {"benchmark": "rm_scoring_vs_naive", "ratio": round(statistics.median(r["ratio"] for r in rows), 2),
              "naive_per_s": round(statistics.median(r["naive_per_s"] for r in rows), 1),
              "ours_per_s": round(statistics.median(r["ours_per_s"] for r in rows), 1),
              "pairs": args.pairs, "batch_size": args.batch_size, "repeats": rows}
    print(f"rm scoring: naive {result['naive_per_s']}/s, sorted {result['ours_per_s']}/s, "
          f"ratio {result['ratio']}x (bar: >= 1.5)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
    return result


if __name__ == "__main__":
    main()
