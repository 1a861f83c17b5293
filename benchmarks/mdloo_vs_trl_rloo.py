"""Benchmark: training throughput (samples/s) of our MDLOO trainer vs TRL's stock RLOOTrainer.

What it does: builds one tiny AFM-architecture model (Qwen3) and tokenizer in-process, saves it (TRL loads
the reference model from the policy's directory), makes a prompt set of arithmetic questions, then runs
  - `alignment.mdloo.MDLOOTrainer` (loss "mdloo": LOO advantage + mirror-descent KL penalty), and
  - `trl.RLOOTrainer` (PPO-clip loss)
with the same model, prompts per step, K, response length, `num_iterations`, beta and seed, alternating the
two, `--repeats` times each. Every run trains `--steps` outer iterations (sample n*K responses, score, then
`num_iterations` optimizer steps); samples/s = steps * n * K / train_runtime. Responses are forced to the
full length (`min_new_tokens = max_new_tokens`) so both trainers do the same work whatever they sample.
It prints the median samples/s of each and the ratio ours / TRL (target >= 0.95) and writes `--json FILE`.

What it simplifies: a random (untrained) model and a toy reward (1 if the response holds a digit); CPU runs
use one torch thread (shared machines), so absolute numbers are small; the ratio is the point.

Run: `python benchmarks/mdloo_vs_trl_rloo.py --json benchmarks/results/mdloo_vs_trl_rloo.json`
     (`--hidden 256 --layers 4 --max-new-tokens 64` for a larger setting; a GPU is used when present).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere in the repo
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("AFM_ALIGN_QUIET", "1")

import torch  # noqa: E402
from datasets import Dataset  # noqa: E402
from transformers import AutoModelForCausalLM, PrinterCallback, logging as hf_logging  # noqa: E402
from trl import RLOOTrainer  # noqa: E402

from afm_align.base_model import ModelShape, build_model, train_tokenizer  # noqa: E402
from alignment.mdloo import MDLOOConfig, MDLOOTrainer, rloo_args  # noqa: E402


def digit_reward(prompts, completions, **columns):
    return [1.0 if re.search(r"\d", c[-1]["content"]) else 0.0 for c in completions]


def build(args, where: Path):
    """Save a tiny model + tokenizer under `where`; return the prompt dataset."""
    texts = [f"{a} + {b} = {a + b}" for a in range(60) for b in range(60)]
    tokenizer = train_tokenizer(texts, vocab_size=args.vocab)
    shape = ModelShape(hidden_size=args.hidden, num_layers=args.layers, num_heads=4, num_kv_heads=2,
                       intermediate_size=3 * args.hidden, max_positions=512)
    build_model(tokenizer, shape, seed=0).save_pretrained(where)
    tokenizer.save_pretrained(where)
    prompts = [[{"role": "user", "content": f"What is {a} + {b}?"}] for a in range(40) for b in range(5)]
    return Dataset.from_list([{"prompt": p} for p in prompts]), tokenizer


def run_once(kind: str, args, model_dir: Path, dataset, tokenizer, out: Path) -> float:
    """Train one run and return its samples/s."""
    cfg = MDLOOConfig(k=args.k, prompts_per_step=args.prompts, steps=args.steps, num_iterations=args.num_iterations,
                      beta=args.beta, max_new_tokens=args.max_new_tokens, lr=1e-5, seed=0)
    targs = rloo_args(cfg, out, [1.0])
    targs.generation_kwargs = {"min_new_tokens": args.max_new_tokens}  # equal work for both trainers
    targs.disable_tqdm = True
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    common = dict(model=model, reward_funcs=[digit_reward], args=targs, train_dataset=dataset,
                  processing_class=tokenizer)
    trainer = MDLOOTrainer(**common, loss="mdloo") if kind == "mdloo" else RLOOTrainer(**common)
    trainer.remove_callback(PrinterCallback)  # no per-step log lines in the timed loop
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    return args.steps * args.prompts * args.k / seconds


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--vocab", type=int, default=1024)
    parser.add_argument("--prompts", type=int, default=8, help="prompts per outer iteration (n)")
    parser.add_argument("--k", type=int, default=4, help="samples per prompt (K)")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--num-iterations", type=int, default=2, help="inner steps per sampled batch")
    parser.add_argument("--steps", type=int, default=6, help="outer iterations per timed run")
    parser.add_argument("--beta", type=float, default=0.05)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=str, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    hf_logging.set_verbosity_error()

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp) / "policy"
        dataset, tokenizer = build(args, model_dir)
        run_once("mdloo", args, model_dir, dataset, tokenizer, Path(tmp) / "warmup")  # warm caches, not timed
        results: dict[str, list[float]] = {"mdloo": [], "trl_rloo": []}
        for repeat in range(args.repeats):
            order = ["mdloo", "trl_rloo"] if repeat % 2 == 0 else ["trl_rloo", "mdloo"]
            for kind in order:
                rate = run_once(kind, args, model_dir, dataset, tokenizer, Path(tmp) / f"{kind}-{repeat}")
                results[kind].append(rate)
                print(f"repeat {repeat} {kind:9s} {rate:8.1f} samples/s", flush=True)

    ours, theirs = statistics.median(results["mdloo"]), statistics.median(results["trl_rloo"])
    # the two runs of a repeat ran back to back, under the same machine load: their ratio is the robust figure
    paired = [a / b for a, b in zip(results["mdloo"], results["trl_rloo"])]
    report = {
        "benchmark": "mdloo_vs_trl_rloo",
        "device": "cuda" if torch.cuda.is_available() else f"cpu ({args.threads} thread)",
        "settings": {k: v for k, v in vars(args).items() if k != "json"},
        "samples_per_second": results,
        "median_mdloo": round(ours, 2),
        "median_trl_rloo": round(theirs, 2),
        "ratio_mdloo_over_trl": round(ours / theirs, 3),
        "paired_ratios": [round(r, 3) for r in paired],
        "median_paired_ratio": round(statistics.median(paired), 3),
        "target": ">= 0.95",
    }
    print(f"MDLOO {ours:.1f} samples/s, TRL RLOO {theirs:.1f} samples/s (medians), ratio {ours / theirs:.3f}; "
          f"median of paired ratios {statistics.median(paired):.3f} (target >= 0.95)")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
