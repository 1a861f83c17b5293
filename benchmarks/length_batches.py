"""Length-grouped training batches (`group_by_length`, afm_align.length_batches) against random ones, on a round's data.

On a finished round of `afm-align iterate` (default: round 1 of `--run`), it trains the round's two largest
padded workloads twice each, the same rows, seed and settings, once with random batches (TRL's default) and once
with length-grouped ones:
- the reward model on the round's `rm-data` (the round's `rm` recipe settings: from the base, one epoch);
- the round's SFT member on its `sft-data`, from the round's start member (the rounds' `recipes.sft` settings).
For each it prints and saves the wall seconds, the share of real (non-padding) tokens in the batches of one epoch
(from the rows' token lengths under each sampler), and what training reached: the RM's accuracy on the run's
test-split synthetic pairs (its `rm_eval_pairs`; reported only, as every round does) and the SFT member's mean
training loss and training seconds. The speed figure is random / grouped seconds, measured in the same run, with
the 2-thread matmul peak beside it. Quality of the whole pipeline with grouping on is measured by
`benchmarks/iterate_round3.py` (dev, then test, over seeds), not here.

Run: `python benchmarks/length_batches.py --run runs/default [--round 1] [--json FILE]`.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def real_fraction(lengths: list[int], batches: list[list[int]]) -> float:
    """Real tokens over padded tokens when each batch is padded to its longest row."""
    real = sum(lengths[i] for b in batches for i in b)
    return round(real / sum(max(lengths[i] for i in b) * len(b) for b in batches), 3)


def random_batches(n: int, batch_size: int, seed: int) -> list[list[int]]:
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return [order[i:i + batch_size] for i in range(0, n, batch_size)]


def token_lengths(tokenizer, conversations: list[list[dict]], cap: int) -> list[int]:
    return [min(cap, len(tokenizer.apply_chat_template(c, tokenize=True, return_dict=False))) for c in conversations]


def padding_report(lengths: list[int], batch_size: int, rows_per_item: int = 1) -> dict:
    """Real-token share of one epoch: random batches vs `LengthBatchSampler` (seed 0)."""
    from afm_align.length_batches import LengthBatchSampler

    items = [max(lengths[rows_per_item * i:rows_per_item * (i + 1)]) for i in range(len(lengths) // rows_per_item)]
    grouped = LengthBatchSampler(items, batch_size, seed=0).batches()
    expand = (lambda batches: [[rows_per_item * i + j for i in b for j in range(rows_per_item)] for b in batches])
    return {"random": real_fraction(lengths, expand(random_batches(len(items), batch_size, 0))),
            "grouped": real_fraction(lengths, expand(grouped))}


def timed(fn) -> tuple[object, float]:
    start = time.perf_counter()
    out = fn()
    return out, round(time.perf_counter() - start, 1)


def padding_parts(cfg, tok, rm_rows: list[dict], sft_rows: list[dict]) -> tuple[dict, dict]:
    """The RM's and the SFT member's real-token shares under the round's settings (`cfg.recipes`): the RM trainer
    drops a pair with a side over max_length, SFT truncates a row to it."""
    from afm_align.config import load_config
    from alignment import recipes
    from reward_model.trainer import RMTrainConfig

    rm_cfg = load_config(RMTrainConfig, preset="tiny", recipe="rm", overrides=list(cfg.recipes.get("rm", [])))
    sft_cfg = recipes.load("sft", preset="tiny", overrides=list(cfg.recipes.get("sft", [])))
    train_side = [r for r in rm_rows if r["split"] == "train"]
    sides = token_lengths(tok, [r["prompt"] + s for r in train_side for s in (r["chosen"], r["rejected"])], 10 ** 9)
    kept = [i for i in range(len(train_side)) if max(sides[2 * i], sides[2 * i + 1]) <= rm_cfg.max_length]
    rm_lengths = [sides[2 * i + j] for i in kept for j in (0, 1)]
    sft_lengths = token_lengths(tok, [r["prompt"] + ([{"role": "assistant", "content": r["completion"]}]
                                                     if isinstance(r["completion"], str) else r["completion"])
                                      for r in sft_rows], sft_cfg.max_length)
    return ({"pairs": len(kept), "pairs_over_max_length": len(train_side) - len(kept), "batch_size": rm_cfg.batch_size,
             "real_tokens": padding_report(rm_lengths, rm_cfg.batch_size, rows_per_item=2)},
            {"rows": len(sft_rows), "batch_size": sft_cfg.batch_size,
             "real_tokens": padding_report(sft_lengths, sft_cfg.batch_size)})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="a run directory with a finished round")
    parser.add_argument("--round", type=int, default=1)
    parser.add_argument("--json", default=str(HERE / "results" / "length_batches.json"))
    args = parser.parse_args()

    import torch
    from transformers import AutoTokenizer

    from afm_align.rundir import RunDir
    from afm_align.store import read_rows
    from benchmarks.iterate_round3 import matmul_gflops
    from committee import manifest as mf
    from committee.candidates import train_rm, train_sft
    from committee.round_config import load
    from committee.rounds import member_path

    run = RunDir(Path(args.run))
    m = mf.read(run.round(args.round) / mf.MANIFEST_FILE)
    if m is None or not (run.round(args.round) / "rm-data").is_dir():
        print(f"{args.run}: round {args.round} has no manifest or rm-data; run `afm-align iterate` first")
        return 2
    torch.set_num_threads(int(m["config"]["threads"]))
    peak = matmul_gflops()
    print(f"machine: 2-thread fp32 matmul peak {peak} GFLOP/s (budgets assume ~200); torch threads "
          f"{torch.get_num_threads()}", flush=True)
    cfg0 = load("tiny", None, [f"seed={m['config']['seed']}"])
    tok = AutoTokenizer.from_pretrained(run.base_model_path())
    rm_rows = read_rows(run.round(args.round) / "rm-data", "preference")
    sft_rows = read_rows(run.round(args.round) / "sft-data", "sft")
    start = member_path(run, m["start"])

    rm_part, sft_part = padding_parts(cfg0, tok, rm_rows, sft_rows)
    result = {"benchmark": "length_batches", "date": datetime.now().isoformat(timespec="seconds"),
              "run": str(run.root), "round": args.round, "machine": {"cpus": os.cpu_count(),
              "torch_threads": torch.get_num_threads(), "platform": platform.platform()}, "matmul_gflops": peak,
              "rm": rm_part, "sft": sft_part}
    print(f"real tokens, random -> grouped: RM {result['rm']['real_tokens']}, SFT {result['sft']['real_tokens']}",
          flush=True)
    seed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for grouped in (False, True):
            flag = f"group_by_length={str(grouped).lower()}"
            cfg = load("tiny", None, [f"seed={m['config']['seed']}"])
            cfg.recipes = {**cfg.recipes, "rm": [*cfg.recipes.get("rm", []), flag],
                           "sft": [*cfg.recipes.get("sft", []), flag]}
            key = "grouped" if grouped else "random"
            headline, secs = timed(lambda: train_rm(cfg, run.base_model_path(), run.round(args.round) / "rm-data",
                                                    Path(tmp) / f"rm-{key}", seed))
            result["rm"][key] = {"seconds": secs, "test_pairs_accuracy": round(headline["pairwise_accuracy"], 4)}
            _, secs = timed(lambda: train_sft(cfg, start, run.round(args.round) / "sft-data", Path(tmp) / f"sft-{key}",
                                              f"sft-{key}", args.round, seed))
            log = [json.loads(line) for line in (Path(tmp) / f"sft-{key}" / "metrics.jsonl").read_text().splitlines()]
            end = next(r for r in reversed(log) if "train_loss" in r)
            result["sft"][key] = {"seconds": secs, "train_seconds": round(end["train_runtime"], 1),
                                  "mean_train_loss": round(end["train_loss"], 4)}
            print(f"{key}: RM {result['rm'][key]}, SFT {result['sft'][key]}", flush=True)
    for part in ("rm", "sft"):
        result[part]["speedup"] = round(result[part]["random"]["seconds"] / result[part]["grouped"]["seconds"], 2)
    result["matmul_gflops_after"] = matmul_gflops()
    print(f"speed-up (random / grouped seconds): RM {result['rm']['speedup']}x, SFT {result['sft']['speedup']}x; "
          f"peak after {result['matmul_gflops_after']} GFLOP/s")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2))
    print(f"saved {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
