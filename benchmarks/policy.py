"""Benchmark: what the policy recipes buy on the tiny preset, over several seeds, on the test split.

Protocol (synth.splits): every training set comes from the `train` split; every figure is measured on `test`
problems that no training data contains in any wording; nothing in this script is chosen by looking at them
(the recipes run at their presets). Starting from an SFT member trained on the synth families' reference
answers, it measures:
- `rs_gain`: test math exact match (greedy) of the rejection-sampling SFT member minus the SFT member's (the
  SFT member samples K answers per train math prompt, the math verifier keeps the best correct one, SFT
  continues on those);
- `mdloo_gain`: the same for MDLOO with the math verifier as the reward (`kl_budget` stops it if the KL to
  the reference leaves the budget; the final and largest KL are reported);
- `dpo_gain`, `ipo_gain`: test accuracy over every family (mean over domains) of the DPO / IPO member minus
  the SFT member's, trained on synthetic train-split pairs. Judge: the families' verifiers, which no member
  trains against (the old RM win rate used an RM trained on the very pairs DPO trains on).
Each gain is in points, paired on the same test prompts, with a mean over seeds, the per-seed values, a
95% t-interval over seeds and each seed's own paired cluster-bootstrap interval. A seed changes the SFT
member's training order, every sampling seed and every trainer seed; the data and the base model are the
same for all seeds (the full pipeline over seeds is `benchmarks/iterate_round3.py --seeds N`).

What it simplifies: every prompt is of difficulty 0 by default (`--difficulty`), evaluation is greedy.

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
from synth.families import FAMILIES  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, default=3, help="training seeds (default 3)")
    p.add_argument("--json", help="write the figures to this JSON file")
    p.add_argument("--base", help="an existing base model directory (default: pre-train one with init)")
    p.add_argument("--work", help="keep the members and datasets here (default: a temporary folder)")
    p.add_argument("--sft-items", type=int, default=300, help="reference answers per family for the SFT member")
    p.add_argument("--math-train", type=int, default=300, help="train math prompts for RS and MDLOO")
    p.add_argument("--math-eval", type=int, default=200, help="test math problems (distinct)")
    p.add_argument("--eval-per-family", type=int, default=100, help="test problems per family for DPO/IPO")
    p.add_argument("--pairs", type=int, default=1500, help="synthetic preference pairs (RM and DPO/IPO)")
    p.add_argument("--difficulty", type=int, default=0, help="synth difficulty of every prompt (default 0)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
    return p.parse_args(argv)


# ---------------------------------------------------------------- data
def distinct_test(family: str, n: int, seed: int, difficulty: int) -> list[dict]:
    """`n` test-split prompt rows of one family, one per problem identity."""
    from synth.builders import prompt_rows

    rows, seen = [], set()
    for r in prompt_rows(family, n * 10, seed, difficulty):
        if r["split"] == "test" and r["identity"] not in seen:
            seen.add(r["identity"])
            rows.append(r)
    return rows[:n]


def build_data(work: Path, args) -> dict[str, Path]:
    """SFT references (every family), train math prompts, test prompts, synthetic train pairs."""
    from synth.builders import preference_rows, prompt_rows

    out = {name: work / "data" / name for name in ("sft", "math", "math_eval", "eval", "prefs")}
    sft = [r for f in FAMILIES for r in prompt_rows(f, args.sft_items, 11, args.difficulty, with_reference=True)
           if r["split"] == "train"]
    math = prompt_rows("math", args.math_train * 2, 12, args.difficulty)
    math_train = [r for r in math if r["split"] == "train"][: args.math_train]
    math_eval = distinct_test("math", args.math_eval, 13, args.difficulty)
    held = [r for f in FAMILIES for r in distinct_test(f, args.eval_per_family, 14, args.difficulty)]
    pairs = [r for r in preference_rows(args.pairs * 2, 15, args.difficulty)[0] if r["split"] == "train"][:args.pairs]
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
    from synth.corpus import pretraining_corpus

    cfg = init_base.load("tiny", None, [f"threads={args.threads}"])
    cfg.run = str(work / "run")
    init_base.main(cfg, *pretraining_corpus(cfg))
    return work / "run" / "base"


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

    The SFT step uses a small constant rate (1e-4, no dropout), the committee's later-round SFT rate.
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
    from alignment import recipes
    from alignment.mdloo import main
    from alignment.members import read_metrics

    cfg = recipes.load("mdloo", preset="tiny", from_checkpoint=str(start), data=str(data), out=str(out), seed=seed,
                       families=["math"], reward_model="")
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


def gain(samples: list[dict], member: str, start: str = "sft") -> dict:
    """Test accuracy of `member` and `start`, and their paired difference (points) with its interval."""
    from committee.eval_stats import accuracy_report, paired_report

    paired = paired_report(samples, member, start, n_boot=2000, seed=0)
    return {"accuracy": accuracy_report(samples, member, n_boot=200)["mean"],
            "start_accuracy": accuracy_report(samples, start, n_boot=200)["mean"],
            "gain": round(100 * paired["delta"], 2), "gain_ci95": [round(100 * x, 2) for x in paired["ci95"]]}


def summary(values: list[float]) -> dict:
    from committee.eval_stats import seed_interval

    return {"mean": round(statistics.fmean(values), 4), "per_seed": [round(v, 4) for v in values],
            "std": round(statistics.stdev(values), 4) if len(values) > 1 else 0.0, "ci95_over_seeds": seed_interval(values)}


def one_seed(seed: int, base: Path, data: dict[str, Path], work: Path) -> dict:
    """Every member of one seed and its test figures."""
    d = work / f"seed{seed}"
    sft = sft_member(base, data["sft"], d / "sft", seed)
    rs, rs_stats = rs_member(sft, data["math"], d / "rs", seed)
    mdloo_metrics = mdloo_member(sft, data["math"], d / "mdloo", seed)
    math, _ = greedy_samples({"sft": sft, "rs": rs, "mdloo": d / "mdloo"}, data["math_eval"])
    dpo = preference_member(sft, data["prefs"], d / "dpo", seed, "dpo")
    ipo = preference_member(sft, data["prefs"], d / "ipo", seed, "ipo")
    every, _ = greedy_samples({"sft": sft, "dpo": dpo, "ipo": ipo}, data["eval"])
    return {"seed": seed, "rs": gain(math, "rs"), "mdloo": gain(math, "mdloo"), "dpo": gain(every, "dpo"),
            "ipo": gain(every, "ipo"), "rs_kept": rs_stats.get("kept"),
            "mdloo_kl": mdloo_metrics.get("kl"), "mdloo_max_kl": mdloo_metrics["max_kl"],
            "mdloo_kl_budget": mdloo_metrics.get("kl_budget"),
            "mdloo_kl_budget_stop_step": mdloo_metrics.get("kl_budget_stop_step")}


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
        seeds = []
        for seed in range(args.seeds):
            seeds.append(one_seed(seed, base, data, work))
            print(f"policy: seed {seed}: {json.dumps(seeds[-1])}", flush=True)
    result = {
        "protocol": "trained on the train split; measured on distinct test problems; judge: the families' verifiers",
        "sft_math_test": summary([s["rs"]["start_accuracy"] for s in seeds]),
        "sft_all_families_test": summary([s["dpo"]["start_accuracy"] for s in seeds]),
        **{f"{r}_gain": summary([s[r]["gain"] for s in seeds]) for r in ("rs", "mdloo", "dpo", "ipo")},
        "mdloo_kl": summary([s["mdloo_kl"] for s in seeds]),
        "mdloo_max_kl": summary([s["mdloo_max_kl"] for s in seeds]),
        "mdloo_kl_budget": seeds[0]["mdloo_kl_budget"],
        "seeds": seeds,
    }
    result["seconds"] = round(time.time() - start, 1)
    print(f"\npolicy benchmark (tiny preset, difficulty {args.difficulty}; test split; gains in points, paired)")
    for key in ("rs_gain", "mdloo_gain", "dpo_gain", "ipo_gain", "mdloo_kl", "mdloo_max_kl"):
        r = result[key]
        print(f"  {key:<14} mean {r['mean']:8.3f}  95% over seeds {r['ci95_over_seeds']}  per seed {r['per_seed']}")
    print(f"  SFT member's test math {result['sft_math_test']['mean']:.3f}, all families "
          f"{result['sft_all_families_test']['mean']:.3f}; KL budget {result['mdloo_kl_budget']}  "
          f"({result['seconds']:.0f} s)")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
