"""Model FLOP utilisation of SFT and RM training steps, on the tiny preset's shape and a 4x larger one.

The peak is the FLOP/s of a large fp32 matmul (2048 x 2048) measured in the same run on this machine. A
training step's FLOPs are counted as 6 x (non-embedding parameters + LM-head/embedding parameters) x tokens
plus the attention score/value products (12 x layers x hidden x seq^2 per sequence, forward + backward), the
usual transformer accounting. The steps are what the recipes run: causal-LM loss + AdamW for SFT, and the
multi-head RM's forward on chosen+rejected concatenated with the AFM loss + AdamW for the RM.

Run: `python benchmarks/training_mfu.py [--batch 16] [--seq 128] [--steps 5] [--json FILE]`.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from throughput_models import LARGER, TINY, tokenizer_and_model

import reward_model  # noqa: F401
from reward_model.losses import rm_loss
from reward_model.model import MultiHeadRewardModel


def matmul_peak(n: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * n ** 3 / min(times)


def step_flops(config, batch: int, seq: int) -> float:
    params = config.num_hidden_layers * (
        4 * config.hidden_size * config.hidden_size * 3 // 4  # q, o full; k, v at half width (GQA 4:2)
        + 3 * config.hidden_size * config.intermediate_size) + config.vocab_size * config.hidden_size
    attention = 12 * config.num_hidden_layers * config.hidden_size * seq * seq
    return batch * (6 * params * seq + attention)


def time_steps(step, steps: int) -> float:
    step()  # warm-up
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def sft_step(model, batch: int, seq: int):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    ids = torch.randint(10, model.config.vocab_size, (batch, seq))

    def step():
        model(input_ids=ids, labels=ids).loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return step


def rm_step(lm, batch: int, seq: int):
    rm = MultiHeadRewardModel.from_backbone(lm).train()
    opt = torch.optim.AdamW(rm.parameters(), lr=1e-4)
    ids = torch.randint(10, lm.config.vocab_size, (2 * batch, seq))
    grades = torch.randint(0, 3, (batch, 4))

    def step():
        out = rm(input_ids=ids, attention_mask=torch.ones_like(ids))
        rc, rr = out.rewards.chunk(2)
        gc, gr = out.grade_logits.chunk(2)
        rm_loss(rc, rr, torch.full_like(rc, 0.85), gc, gr, grades, grades, 0.1)["loss"].backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return step


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    peak = matmul_peak()
    result = {"benchmark": "training_mfu", "peak_matmul_gflops": round(peak / 1e9, 1), "threads": torch.get_num_threads()}
    for name, shape in (("tiny", TINY), ("tiny_x4", LARGER)):
        tok, lm = tokenizer_and_model(shape)
        lm.train()
        sft_s = time_steps(sft_step(lm, args.batch, args.seq), args.steps)
        rm_s = time_steps(rm_step(lm, args.batch, args.seq), args.steps)
        sft_flops = step_flops(lm.config, args.batch, args.seq)
        rm_flops = step_flops(lm.config, 2 * args.batch, args.seq)
        result[name] = {"parameters": sum(p.numel() for p in lm.parameters()),
                        "sft_step_s": round(sft_s, 4), "sft_mfu": round(sft_flops / sft_s / peak, 4),
                        "rm_step_s": round(rm_s, 4), "rm_mfu": round(rm_flops / rm_s / peak, 4)}
        print(f"{name:<8} {result[name]['parameters']:>10,} params  SFT step {sft_s * 1000:7.1f} ms "
              f"MFU {100 * result[name]['sft_mfu']:5.1f}%   RM step {rm_s * 1000:7.1f} ms "
              f"MFU {100 * result[name]['rm_mfu']:5.1f}%   (peak {result['peak_matmul_gflops']} GFLOP/s)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
    return result


if __name__ == "__main__":
    main()
