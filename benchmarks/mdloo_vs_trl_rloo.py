"""Benchmark: training throughput (samples/s) of our MDLOO trainer vs TRL's RLOOTrainer and GRPOTrainer.

What it does: builds one tiny AFM-architecture model (Qwen3) and tokenizer in-process, saves it (TRL loads the
reference model from the policy's directory), makes a prompt set of arithmetic questions, then trains with
  - `alignment.mdloo.MDLOOTrainer` (loss "mdloo"; pi_old's log-probs for the reward's KL recorded while sampling;
    reference and training passes with the LM head on completion positions only and each distinct prompt run once),
  - `trl.RLOOTrainer` (PPO-clip loss; a separate pi_old forward pass after sampling), and
  - `trl.GRPOTrainer` with `loss_type="dr_grpo"`, `scale_rewards="none"` (Dr. GRPO: no std scaling),
with the same model, prompts per step n, K, response length, `num_iterations`, beta and seed (GRPO puts the
same beta's KL to the reference in its loss, so all three run a reference pass; GRPO also runs its pi_old pass,
as num_iterations > 1). Every run trains `--steps` outer iterations (sample n*K responses, score, then
`num_iterations` optimizer steps); samples/s = steps * n * K / the wall time of `train()` (building the trainer
is not timed). Responses are forced to the full length (`min_new_tokens = max_new_tokens`) so all trainers do
the same work whatever they sample.

Each ratio (MDLOO / RLOO, MDLOO / GRPO) is `benchmarks.paired_ratio.paired_ratio`: one warm-up run of each, then
`--pairs` interleaved pairs; the median ratio with a bootstrap 95% interval. Every run also times the policy's
`generate` calls (a wrapper around the model's `generate`, outermost, so MDLOO's log-prob recording counts as
generation); `phases` holds per trainer the median seconds of generation and of training (train() wall time
minus generation: scoring, reference and pi_old passes, policy steps, logging).

What it simplifies: a random (untrained) model and a toy reward (1 if the response holds a digit); CPU runs use
one torch thread (shared machines), so absolute numbers are small; the ratios are the point.

JSON (`--json FILE`): `median_paired_ratio` (MDLOO / RLOO, what run_all.py and the README read), `vs_rloo` and
`vs_grpo` (the paired_ratio dicts: ratio, ci95, verdict, raw values), `phases`, `settings`, `target`.

Run: `python benchmarks/mdloo_vs_trl_rloo.py --json benchmarks/results/mdloo_vs_trl_rloo.json` (10 pairs, 6 steps);
quick check: `--pairs 3 --steps 2`; a larger setting: `--hidden 256 --layers 4 --max-new-tokens 64`.
"""
from __future__ import annotations

import argparse
import gc
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
from trl import GRPOConfig, GRPOTrainer, RLOOTrainer  # noqa: E402

from afm_align.base_model import ModelShape, build_model, train_tokenizer  # noqa: E402
from afm_align.member_io import trainer_args  # noqa: E402
from alignment.mdloo import MDLOOConfig, MDLOOTrainer, rloo_args  # noqa: E402
from benchmarks.paired_ratio import paired_ratio  # noqa: E402


def digit_reward(prompts, completions, **columns):
    return [1.0 if re.search(r"\d", c[-1]["content"]) else 0.0 for c in completions]


def build(args, where: Path):
    """Save a tiny model + tokenizer under `where`; return the prompt dataset and the tokenizer."""
    texts = [f"{a} + {b} = {a + b}" for a in range(60) for b in range(60)]
    tokenizer = train_tokenizer(texts, vocab_size=args.vocab)
    shape = ModelShape(hidden_size=args.hidden, num_layers=args.layers, num_heads=4, num_kv_heads=2,
                       intermediate_size=3 * args.hidden, max_positions=512)
    build_model(tokenizer, shape, seed=0).save_pretrained(where)
    tokenizer.save_pretrained(where)
    prompts = [[{"role": "user", "content": f"What is {a} + {b}?"}] for a in range(40) for b in range(5)]
    return Dataset.from_list([{"prompt": p} for p in prompts]), tokenizer


def grpo_args(cfg: MDLOOConfig, out: Path) -> GRPOConfig:
    """TRL GRPO arguments with `alignment.mdloo.rloo_args`'s settings for `cfg`, as Dr. GRPO (no std scaling)."""
    batch = cfg.prompts_per_step * cfg.k
    return trainer_args(
        GRPOConfig, out, stage="mdloo-training", seed=cfg.seed, max_steps=cfg.steps * cfg.num_iterations,
        per_device_train_batch_size=batch // cfg.micro_batches, gradient_accumulation_steps=cfg.micro_batches,
        steps_per_generation=cfg.micro_batches, num_generations=cfg.k, num_iterations=cfg.num_iterations,
        learning_rate=cfg.learning_rate, lr_scheduler_type="constant", max_grad_norm=cfg.max_grad_norm,
        beta=cfg.beta, epsilon=cfg.epsilon, reward_weights=[1.0], max_completion_length=cfg.max_new_tokens,
        temperature=cfg.temperature, top_p=cfg.top_p, logging_steps=1, logging_first_step=False,
        disable_dropout=True, log_completions=False, loss_type="dr_grpo", scale_rewards="none")


TRAINERS = {  # name -> (TRL arguments for cfg, trainer class, extra trainer keywords)
    "mdloo": (lambda cfg, out: rloo_args(cfg, out, [1.0]), MDLOOTrainer, {"loss": "mdloo"}),
    "trl_rloo": (lambda cfg, out: rloo_args(cfg, out, [1.0]), RLOOTrainer, {}),
    "trl_grpo": (grpo_args, GRPOTrainer, {}),
}


def timed_generate(generate, spent: list[float]):
    """`generate`, adding the seconds of each call to `spent[0]` (not functools.wraps: that would copy markers)."""
    def run(*args, **kwargs):
        start = time.perf_counter()
        try:
            return generate(*args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - start
    return run


def run_once(kind: str, args, setup: dict, log: list[dict]) -> float:
    """Train one run of `kind`, append its phases to `log` and return its samples/s."""
    cfg = MDLOOConfig(k=args.k, prompts_per_step=args.prompts, steps=args.steps, num_iterations=args.num_iterations,
                      beta=args.beta, max_new_tokens=args.max_new_tokens, learning_rate=1e-5, seed=0)
    make_args, trainer_cls, extra = TRAINERS[kind]
    setup["runs"] += 1
    targs = make_args(cfg, Path(setup["tmp"]) / f"{kind}-{setup['runs']}")
    targs.generation_kwargs = {"min_new_tokens": args.max_new_tokens}  # equal work for every trainer
    targs.disable_tqdm = True
    model = AutoModelForCausalLM.from_pretrained(setup["model_dir"])
    trainer = trainer_cls(model=model, reward_funcs=[digit_reward], args=targs, train_dataset=setup["dataset"],
                          processing_class=setup["tokenizer"], **extra)
    trainer.remove_callback(PrinterCallback)  # no per-step log lines in the timed loop
    spent = [0.0]
    trainer.model.generate = timed_generate(trainer.model.generate, spent)
    start = time.perf_counter()
    trainer.train()
    wall = time.perf_counter() - start
    rate = args.steps * args.prompts * args.k / wall
    log.append({"samples_per_s": rate, "wall_s": wall, "generate_s": spent[0], "train_s": wall - spent[0]})
    del trainer, model
    gc.collect()
    return rate


def phases(records: list[dict]) -> dict:
    """Median wall, generation and training seconds and samples/s of a trainer's timed runs."""
    return {key: round(statistics.median(r[key] for r in records), 4) for key in records[0]}


def compare(ours: str, baseline: str, args, setup: dict) -> dict:
    """paired_ratio of `ours` over `baseline` (samples/s), with each side's phase medians (warm-up dropped)."""
    log: dict[str, list[dict]] = {ours: [], baseline: []}
    result = paired_ratio(lambda: run_once(ours, args, setup, log[ours]),
                          lambda: run_once(baseline, args, setup, log[baseline]), pairs=args.pairs, warmup=1,
                          progress=lambda line: print(f"{ours} vs {baseline} {line}", flush=True))
    result["phases"] = {kind: phases(records[1:]) for kind, records in log.items()}
    return result


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
    parser.add_argument("--pairs", "--repeats", dest="pairs", type=int, default=10,
                        help="interleaved pairs per ratio (after one warm-up run of each)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=str, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()  # no "Loading weights" bar per run

    with tempfile.TemporaryDirectory() as tmp:
        dataset, tokenizer = build(args, Path(tmp) / "policy")
        setup = {"tmp": tmp, "model_dir": Path(tmp) / "policy", "dataset": dataset, "tokenizer": tokenizer, "runs": 0}
        vs_rloo = compare("mdloo", "trl_rloo", args, setup)
        vs_grpo = compare("mdloo", "trl_grpo", args, setup)

    report = {
        "benchmark": "mdloo_vs_trl_rloo",
        "device": "cuda" if torch.cuda.is_available() else f"cpu ({args.threads} thread)",
        "settings": {k: v for k, v in vars(args).items() if k != "json"},
        "median_paired_ratio": round(vs_rloo["ratio"], 3),
        "vs_rloo": vs_rloo,
        "vs_grpo": vs_grpo,
        "phases": {"mdloo": vs_rloo["phases"]["mdloo"], "trl_rloo": vs_rloo["phases"]["trl_rloo"],
                   "trl_grpo": vs_grpo["phases"]["trl_grpo"]},
        "target": ">= 1.15 vs TRL RLOO with the 95% interval above 1 (issue 21)",
    }
    for name, r in (("TRL RLOO", vs_rloo), ("TRL GRPO (dr_grpo)", vs_grpo)):
        low, high = r["ci95"]
        print(f"MDLOO / {name}: {r['ratio']:.3f} [{low:.3f}, {high:.3f}] over {r['pairs']} pairs ({r['verdict']})")
    for kind, p in report["phases"].items():
        print(f"{kind:9s} {p['samples_per_s']:7.1f} samples/s; per run: generation {p['generate_s']:.2f} s, "
              f"training {p['train_s']:.2f} s")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
