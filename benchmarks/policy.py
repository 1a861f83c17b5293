"""Benchmark: what the policy recipes buy on the tiny preset, over several seeds (the policy-recipes issue).

What it measures, starting from an SFT member trained on the synth families' reference answers:
- `rs_gain`: held-out math exact-match (greedy) of the rejection-sampling SFT member minus the SFT member's
  (the SFT member samples K answers per train math prompt, the math verifier keeps the best correct one,
  SFT continues on those);
- `mdloo_gain`: the same for MDLOO with the math verifier as the reward (`kl_budget` stops it if the KL to
  the reference leaves the budget; the final KL and the budget are reported);
- `dpo_winrate`, `ipo_winrate`: share of held-out prompts (every family) where an RM trained on synthetic
  pairs scores the DPO / IPO member's greedy answer above the SFT member's (ties count one half);
- `mdloo_vs_rloo_throughput`: samples/s of our MDLOO trainer over TRL's RLOOTrainer, side by side
  (`benchmarks/mdloo_vs_trl_rloo.py`, quick setting).
Each gain has a mean, a per-seed list and the spread (sample standard deviation). A seed changes the SFT
member's training order, every sampling seed and every trainer seed; the data and the base model are the
same for all seeds.

What it simplifies: every prompt is of difficulty 0 by default (`--difficulty`; at 1 the tiny SFT member
solves ~17-21% of math and neither RS nor MDLOO moved it in a first trial), evaluation is greedy exact match,
and the RM and the base model are trained once.

Run: `python benchmarks/policy.py [--seeds 3] [--json benchmarks/results/policy.json] [--base DIR]`
(`--base` reuses a base model, e.g. `runs/default/base`; otherwise `afm-align init --preset tiny` runs first).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere in the repo
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("AFM_ALIGN_QUIET", "1")

from afm_align.config import load_config  # noqa: E402
from afm_align.store import write_dataset  # noqa: E402

FAMILIES = ("math", "tool", "code", "if", "safety")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, default=3, help="training seeds (default 3)")
    p.add_argument("--json", help="write the figures to this JSON file")
    p.add_argument("--base", help="an existing base model directory (default: pre-train one with init)")
    p.add_argument("--work", help="keep the members and datasets here (default: a temporary folder)")
    p.add_argument("--sft-items", type=int, default=300, help="reference answers per family for the SFT member")
    p.add_argument("--math-train", type=int, default=300, help="train math prompts for RS and MDLOO")
    p.add_argument("--math-eval", type=int, default=200, help="held-out math prompts")
    p.add_argument("--eval-per-family", type=int, default=40, help="held-out prompts per family for win rates")
    p.add_argument("--pairs", type=int, default=1500, help="synthetic preference pairs (RM and DPO/IPO)")
    p.add_argument("--difficulty", type=int, default=0, help="synth difficulty of every prompt (default 0)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
    return p.parse_args(argv)


# ---------------------------------------------------------------- data
def build_data(work: Path, args) -> dict[str, Path]:
    """SFT references (every family), math prompts, held-out prompts of every family, synthetic pairs."""
    from synth.builders import preference_rows, prompt_rows

    out = {name: work / "data" / name for name in ("sft", "math", "math_eval", "eval", "prefs")}
    sft = [r for f in FAMILIES for r in prompt_rows(f, args.sft_items, 11, args.difficulty, with_reference=True)
           if r["split"] == "train"]
    math = prompt_rows("math", args.math_train * 2, 12, args.difficulty)
    math_train = [r for r in math if r["split"] == "train"][: args.math_train]
    math_eval = [r for r in prompt_rows("math", args.math_eval * 12, 13, args.difficulty) if r["split"] == "heldout"]
    held = [r for f in FAMILIES for r in [x for x in prompt_rows(f, args.eval_per_family * 12, 14, args.difficulty)
                                          if x["split"] == "heldout"][: args.eval_per_family]]
    pairs, _ = preference_rows(args.pairs, 15, args.difficulty)
    write_dataset(sft, "sft", out["sft"], producer="benchmarks/policy")
    write_dataset(math_train, "prompt", out["math"], producer="benchmarks/policy")
    write_dataset(math_eval[: args.math_eval], "prompt", out["math_eval"], producer="benchmarks/policy")
    write_dataset(held, "prompt", out["eval"], producer="benchmarks/policy")
    write_dataset(pairs, "preference", out["prefs"], producer="benchmarks/policy")
    return out


def base_model(work: Path, args) -> Path:
    """`--base`, or a freshly pre-trained tiny base (the `init` recipe, seed 0)."""
    if args.base:
        return Path(args.base)
    from afm_align import init_base

    cfg = init_base.load("tiny", None, [f"threads={args.threads}"])
    cfg.run = str(work / "run")
    init_base.main(cfg, init_base.corpus_conversations(cfg))
    return work / "run" / "base"


def train_rm(base: Path, prefs: Path, out: Path) -> Path:
    """The judge: the multi-head RM (tiny preset) on the synthetic pairs."""
    from reward_model.recipe import main
    from reward_model.trainer import RMTrainConfig

    cfg = load_config(RMTrainConfig, preset="tiny", recipe="rm", overrides=[
        f"data={prefs}", f"base={base}", f"output_dir={out}"])
    main(cfg)
    return out


# ---------------------------------------------------------------- members
def recipe_cfg(cls, recipe: str, **fields):
    """A recipe's tiny-preset config with the given fields set."""
    return replace(load_config(cls, preset="tiny", recipe=recipe), **fields)


def sft_member(start: Path, data: Path, out: Path, seed: int) -> Path:
    """The starting member: SFT on the reference answers (the committee's round-0 settings)."""
    from alignment.sft import SFTRecipeConfig, main

    return main(recipe_cfg(SFTRecipeConfig, "sft", from_checkpoint=str(start), data=str(data), out=str(out),
                           seed=seed, dropout=0.0, learning_rate=5e-4, epochs=2.0, heldout=""))


def rs_member(start: Path, data: Path, out: Path, seed: int) -> tuple[Path, dict]:
    """Rejection sampling with the math verifier (K=8, only correct answers kept), then SFT on them.

    The SFT step uses a small constant rate (1e-4, no dropout): measured on two seeds' SFT members, 5e-4
    (the committee's SFT rate) lost 2.5-4 points of held-out math while 1e-4 gained 5-15.
    """
    from alignment.rejection_sampling import RSConfig, main
    from alignment.members import read_meta

    cfg = load_config(RSConfig, preset="tiny", recipe="rs")
    cfg = replace(cfg, from_checkpoint=str(start), data=str(data), out=str(out), k=8, seed=seed, min_score=1.0,
                  sft=replace(cfg.sft, seed=seed, dropout=0.0, learning_rate=1e-4, epochs=2.0, heldout=""))
    main(cfg)
    return out, read_meta(out).get("rejection_sampling", {})


def mdloo_member(start: Path, data: Path, out: Path, seed: int) -> dict:
    """MDLOO from `start` with the math verifier as the only reward; returns its final metrics."""
    from alignment.mdloo import load, main

    from alignment.members import read_metrics

    cfg = replace(load("tiny", "mdloo"), from_checkpoint=str(start), data=str(data), out=str(out), seed=seed,
                  families=["math"], rm=None)
    metrics = main(cfg)
    return {**metrics, "max_kl": max(r["kl"] for r in read_metrics(out) if "kl" in r)}


def preference_member(start: Path, data: Path, out: Path, seed: int, recipe: str) -> Path:
    """DPO or IPO (tiny preset) from `start` on the synthetic pairs."""
    from alignment.preference import PreferenceConfig, main

    return main(recipe_cfg(PreferenceConfig, recipe, from_checkpoint=str(start), data=str(data), out=str(out),
                           seed=seed))


# ---------------------------------------------------------------- measurements
def greedy_samples(members: dict[str, Path], data: Path) -> tuple[list[dict], list[dict]]:
    """Greedy answers of each member on the prompt rows of `data`, with verifier scores."""
    from afm_align.store import read_rows
    from committee.evaluation import sample_members, verify_samples

    rows = read_rows(data, "prompt")
    return verify_samples(sample_members(members, rows, max_new_tokens=64), rows), rows


def exact_match(samples: list[dict], member: str) -> float:
    """Share of the member's held-out answers that the verifier accepts."""
    scores = [s["verifier_score"] for s in samples if s["member"] == member and s["verifier_score"] is not None]
    return sum(x >= 1.0 for x in scores) / max(1, len(scores))


def rm_winrates(rm: Path, members: dict[str, Path], start: Path, data: Path) -> dict[str, float]:
    """Per member, the share of held-out prompts where the RM prefers its greedy answer to `start`'s (ties: half).

    Every member (and `start`) answers once; each member is scored in one RM call together with `start`'s
    answers, as a pair, since the RM's batch composition moves scores by float noise and can split exact ties.
    """
    from committee.evaluation import score_samples, win_rates

    samples, _ = greedy_samples({**members, "start": start}, data)
    start_samples = [x for x in samples if x["member"] == "start"]
    rates = {}
    for name in members:
        scored = score_samples([x for x in samples if x["member"] == name] + start_samples, rm)
        rates[name] = win_rates(scored, [name, "start"])[(name, "start")]
    return rates


def summary(values: list[float]) -> dict:
    return {"mean": round(statistics.fmean(values), 4), "per_seed": [round(v, 4) for v in values],
            "std": round(statistics.stdev(values), 4) if len(values) > 1 else 0.0}


def throughput_ratio() -> float:
    """MDLOO / TRL RLOO samples per second, side by side (quick setting of that benchmark)."""
    import benchmarks.mdloo_vs_trl_rloo as bench

    return bench.main(["--repeats", "3"])["median_paired_ratio"]


def one_seed(seed: int, base: Path, data: dict[str, Path], rm: Path, work: Path) -> dict:
    """Every member of one seed and its figures."""
    d = work / f"seed{seed}"
    sft = sft_member(base, data["sft"], d / "sft", seed)
    rs, rs_stats = rs_member(sft, data["math"], d / "rs", seed)
    mdloo_metrics = mdloo_member(sft, data["math"], d / "mdloo", seed)
    samples, _ = greedy_samples({"sft": sft, "rs": rs, "mdloo": d / "mdloo"}, data["math_eval"])
    acc = {m: exact_match(samples, m) for m in ("sft", "rs", "mdloo")}
    dpo = preference_member(sft, data["prefs"], d / "dpo", seed, "dpo")
    ipo = preference_member(sft, data["prefs"], d / "ipo", seed, "ipo")
    rates = rm_winrates(rm, {"dpo": dpo, "ipo": ipo}, sft, data["eval"])
    return {"seed": seed, "math_exact_match": acc, "rs_kept": rs_stats.get("kept"),
            "mdloo_kl": mdloo_metrics.get("kl"), "mdloo_max_kl": mdloo_metrics["max_kl"],
            "mdloo_kl_budget": mdloo_metrics.get("kl_budget"),
            "mdloo_kl_budget_stop_step": mdloo_metrics.get("kl_budget_stop_step"),
            "dpo_winrate": rates["dpo"], "ipo_winrate": rates["ipo"]}


def main(argv=None) -> dict:
    import torch

    args = parse_args(argv)
    if args.seeds < 1:
        raise SystemExit("--seeds must be at least 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.time()
    with tempfile.TemporaryDirectory(prefix="policy-bench-") as tmp:
        work = Path(args.work or tmp)
        base = base_model(work, args)
        data = build_data(work, args)
        rm = train_rm(base, data["prefs"], work / "rm")
        seeds = []
        for seed in range(args.seeds):
            seeds.append(one_seed(seed, base, data, rm, work))
            print(f"policy: seed {seed}: {json.dumps(seeds[-1])}", flush=True)
    acc = [s["math_exact_match"] for s in seeds]
    result = {
        "sft_math_exact_match": summary([a["sft"] for a in acc]),
        "rs_gain": summary([100 * (a["rs"] - a["sft"]) for a in acc]),
        "mdloo_gain": summary([100 * (a["mdloo"] - a["sft"]) for a in acc]),
        "dpo_winrate": summary([s["dpo_winrate"] for s in seeds]),
        "ipo_winrate": summary([s["ipo_winrate"] for s in seeds]),
        "mdloo_kl": summary([s["mdloo_kl"] for s in seeds]),
        "mdloo_max_kl": summary([s["mdloo_max_kl"] for s in seeds]),
        "mdloo_kl_budget": seeds[0]["mdloo_kl_budget"],
        "seeds": seeds,
    }
    result["mdloo_vs_rloo_throughput"] = throughput_ratio()
    result["seconds"] = round(time.time() - start, 1)
    print(f"\npolicy benchmark (tiny preset, held-out math difficulty {args.difficulty}, gains in points of exact match)")
    for key in ("rs_gain", "mdloo_gain", "dpo_winrate", "ipo_winrate", "mdloo_kl", "mdloo_max_kl"):
        r = result[key]
        print(f"  {key:<18} mean {r['mean']:8.3f}  std {r['std']:7.3f}  per seed {r['per_seed']}")
    print(f"  SFT member's math exact match: {result['sft_math_exact_match']['mean']:.3f}; "
          f"KL budget {result['mdloo_kl_budget']}")
    print(f"  mdloo_vs_rloo_throughput {result['mdloo_vs_rloo_throughput']:.3f}   ({result['seconds']:.0f} s)")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
