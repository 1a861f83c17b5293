"""AFM's reward-model claims on the open-ended families, measured on finished iterate runs over pipeline seeds.

For each seed run `DIR/seed<s>` (from `benchmarks/iterate_round3.py --keep DIR`; open-ended families on, so
round 0 holds the hidden gold of the dev and test prompts), on the **test** split's open-ended prompts
(synth.families.OPEN_ENDED; gold from `round_0/gold.json`, read here as evaluation does, never by training):

1. **Soft-label ranking loss + grading regulariser vs plain Bradley-Terry.** Two RMs from the run's base on the
   same data (round 1's RM data: synthetic pairs of every family + round 1's oracle-labelled committee pairs),
   same seed and settings (the round's `recipes.rm`), one with the preset's soft labels and grading weight,
   one with `hard_labels=true grading_weight=0`. Reported: accuracy on the run's test-split synthetic pairs;
   accuracy on **gold-oracle-labelled test pairs** (distinct answers of r0-sft to the same test prompt, the
   better gold score chosen, level from the gold gap: noiseless), by level, and each grading head against its
   majority baseline; and the gold score reached by rejection sampling with each RM (best of `--n` samples of
   r0-sft by the RM, against one sample).
2. **MDLOO vs RLOO with PPO clipping at matched KL.** Both from r0-sft on round 1's open-ended train prompts,
   the reward the claim-1 AFM RM alone (`verifier_weight=0`), the same steps and seed, each stopped by the same
   KL budget (`--kl`, nats per token: `kl_budget`); gold score of each greedy policy on test, and the KL it
   reached.
3. **The rounds' RM-driven members:** greedy test gold of round 1's `rs` (RM-only ranking on open-ended
   prompts) and `mdloo` (RM-only reward there) members against r0-sft, the start of both.
Over seeds: means and 95% t-intervals (`committee.eval_stats.seed_interval`); per seed, paired differences
on the same test prompts. Nothing here chooses anything (test is for reporting).

Run: `python benchmarks/rm_claims.py --runs DIR [--seeds 0,1,2] [--n 8] [--steps 40] [--kl 0.1]
[--json benchmarks/results/rm_claims.json]` (about 6 minutes a seed on 2 cores).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("AFM_ALIGN_QUIET", "1")

LEVELS = ("negligibly_better", "slightly_better", "better", "significantly_better")


def open_ended_rows(run: Path, split: str) -> tuple[list[dict], dict]:
    """(the run's `split` prompt rows of open-ended domains, their gold)."""
    from afm_align.store import read_rows
    from committee.gold_store import read_gold
    from synth.families import OPEN_ENDED

    m0 = json.loads((run / "round_0" / "manifest.json").read_text())
    rows = [r for r in read_rows(run / m0["stages"]["data"]["outputs"][split], "prompt") if r["domain"] in OPEN_ENDED]
    return rows, read_gold(run / m0["stages"]["data"]["outputs"]["gold"])


def gold_of(rows: list[dict], texts: list[str], gold: dict) -> list[float]:
    """The hidden gold score of each answer `texts[i]` to the prompt `rows[i]` (committee.gold_store)."""
    from committee.gold_store import gold_scores

    return gold_scores([{"prompt_id": r["id"], "domain": r["domain"], "completion": t} for r, t in zip(rows, texts)],
                       gold)


def generate(member: Path, rows: list[dict], k: int, temperature: float, seed: int) -> list[list[str]]:
    from afm_align.member_io import generate_from

    return generate_from(member, [r["prompt"] for r in rows], stage="benchmark", k=k, max_new_tokens=64,
                         temperature=temperature, batch_size=128, seed=seed)


def gold_pairs(rows: list[dict], samples: list[list[str]], gold: dict, per_prompt: int = 3) -> list[dict]:
    """Noiseless gold-oracle preference rows of distinct answers to each prompt whose gold scores differ."""
    from committee.gold_oracle import GoldNoise, gold_label

    out = []
    for row, answers in zip(rows, samples):
        distinct = list(dict.fromkeys(a for a in answers if a.strip()))
        scores = gold_of([row] * len(distinct), distinct, gold)
        pairs = [(i, j) for i in range(len(distinct)) for j in range(i + 1, len(distinct)) if scores[i] != scores[j]]
        for n, (i, j) in enumerate(pairs[:per_prompt]):
            pair = {"pair_id": f"{row['id']}-{n}", "prompt_id": row["id"], "kind": "within",
                    "a": {"completion": distinct[i], "member": "r0-sft"}, "b": {"completion": distinct[j], "member": "r0-sft"}}
            out.append({**gold_label(pair, row, gold[row["id"]], GoldNoise(0.0, 0.0, 0)), "split": "test"})
    return out


def train_rm(run: Path, out: Path, seed: int, hard: bool) -> dict:
    """An RM from the run's base on round 1's RM data, with the round's RM settings; AFM's loss or plain BT."""
    from reward_model import recipe

    settings = json.loads((run / "round_1" / "manifest.json").read_text())["config"]["recipes"].get("rm", [])
    ablation = ["hard_labels=true", "grading_weight=0"] if hard else []
    cfg = replace(recipe.load("tiny", overrides=[*settings, *ablation]), data=str(run / "round_1" / "rm-data"),
                  from_checkpoint=str(run / "base"), out=str(out), seed=seed)
    return recipe.main(cfg)


def rm_report(rm_dir: Path, pairs: list[dict], prompts: list[dict], samples: list[list[str]], gold: dict) -> dict:
    """Accuracy on gold-labelled test pairs (by level, grading heads vs majority) and the gold of RS with this RM."""
    from alignment.rewards import load_rm
    from reward_model.evaluate import evaluate_preferences
    from reward_model.recipe import to_dataset

    scorer = load_rm(rm_dir)
    metrics = evaluate_preferences(scorer, to_dataset(pairs)) if pairs else {"n_pairs": 0}
    flat_p = [r["prompt"] for r, answers in zip(prompts, samples) for _ in answers]
    flat = scorer(flat_p, [a for answers in samples for a in answers])
    picks, at = [], 0
    for answers in samples:
        scores = flat[at:at + len(answers)]
        picks.append(answers[max(range(len(answers)), key=lambda i: scores[i])])
        at += len(answers)
    return {"gold_pairs": {k: v for k, v in metrics.items() if not k.endswith("_confusion")},
            "rs_gold": gold_of(prompts, picks, gold)}


def rl_run(run: Path, loss: str, rm: Path, out: Path, seed: int, steps: int, kl: float) -> dict:
    """MDLOO (`mdloo`) or RLOO with PPO clipping (`rloo`) from r0-sft on round 1's open-ended prompts, RM-only."""
    from afm_align.store import read_rows, write_dataset
    from alignment import recipes
    from synth.families import OPEN_ENDED

    rows = [r for r in read_rows(run / "round_1" / "prompts", "prompt") if r["domain"] in OPEN_ENDED]
    data = out.parent / "open-ended-prompts"
    write_dataset(rows, "prompt", data, producer="benchmarks.rm_claims", config={"run": str(run)})
    cfg = recipes.load(loss, preset="tiny", overrides=[f"steps={steps}", "verifier_weight=0", f"kl_budget={kl}"],
                       from_checkpoint=str(run / "round_0" / "members" / "r0-sft"), data=str(data), out=str(out),
                       reward_model=str(rm), seed=seed)
    return recipes.main_of(loss)(cfg)


def paired(a: list[float], b: list[float]) -> float:
    return round(statistics.fmean(x - y for x, y in zip(a, b)), 4)


def one_seed(run: Path, seed: int, args, work: Path) -> dict:
    start = time.perf_counter()
    sft = run / "round_0" / "members" / "r0-sft"
    test, gold = open_ended_rows(run, "test")
    samples = generate(sft, test, args.n, 1.0, 1000 + seed)
    pairs = gold_pairs(test, samples, gold)
    out: dict = {"seed": seed, "test_prompts": len(test), "gold_pairs": len(pairs),
                 "one_sample_gold": statistics.fmean(gold_of(test, [s[0] for s in samples], gold))}
    rms = {}
    for name, hard in (("afm", False), ("bradley_terry", True)):
        rms[name] = work / f"rm-{name}"
        headline = train_rm(run, rms[name], seed, hard)
        report = rm_report(rms[name], pairs, test, samples, gold)
        out[name] = {"synthetic_test_accuracy": headline["pairwise_accuracy"], **report["gold_pairs"],
                     "rs_gold": statistics.fmean(report["rs_gold"]), "_rs": report["rs_gold"]}
    out["rs_gold_afm_minus_bt"] = paired(out["afm"].pop("_rs"), out["bradley_terry"].pop("_rs"))
    greedy = {"r0-sft": sft}
    for loss in ("mdloo", "rloo"):
        metrics = rl_run(run, loss, rms["afm"], work / loss, seed, args.steps, args.kl)
        out[loss] = {"kl": metrics.get("kl"), "stop_step": metrics.get("kl_budget_stop_step"),
                     "reward": metrics.get("reward")}
        greedy[loss] = work / loss
    for name in ("r1-rs", "r1-mdloo"):
        path = run / "round_1" / "members" / name
        if (path / "config.json").is_file():
            greedy[name] = path
    scores = {name: gold_of(test, [s[0] for s in generate(path, test, 1, 0.0, 0)], gold) for name, path in greedy.items()}
    out["greedy_test_gold"] = {name: round(statistics.fmean(v), 4) for name, v in scores.items()}
    out["gain_over_r0_sft"] = {name: paired(v, scores["r0-sft"]) for name, v in scores.items() if name != "r0-sft"}
    out["mdloo_minus_rloo"] = paired(scores["mdloo"], scores["rloo"])
    out["minutes"] = round((time.perf_counter() - start) / 60, 2)
    return out


def summary(per_seed: list[dict]) -> dict:
    from committee.eval_stats import seed_interval

    def over(values):
        values = [v for v in values if v is not None]
        return {"mean": round(statistics.fmean(values), 4), "ci95": seed_interval(values), "per_seed": values} if values else None

    out = {}
    for rm in ("afm", "bradley_terry"):
        keys = ["synthetic_test_accuracy", "accuracy", "rs_gold", *[f"accuracy_{lv}" for lv in LEVELS],
                *[k for k in per_seed[0][rm] if k.startswith("grading_")]]
        out[rm] = {k: over([s[rm].get(k) for s in per_seed]) for k in keys}
    out["one_sample_gold"] = over([s["one_sample_gold"] for s in per_seed])
    out["rs_gold_afm_minus_bt"] = over([s["rs_gold_afm_minus_bt"] for s in per_seed])
    out["mdloo_minus_rloo"] = over([s["mdloo_minus_rloo"] for s in per_seed])
    out["kl"] = {loss: over([s[loss]["kl"] for s in per_seed]) for loss in ("mdloo", "rloo")}
    names = sorted({n for s in per_seed for n in s["gain_over_r0_sft"]})
    out["gain_over_r0_sft"] = {n: over([s["gain_over_r0_sft"].get(n) for s in per_seed]) for n in names}
    out["greedy_test_gold"] = {n: over([s["greedy_test_gold"].get(n) for s in per_seed])
                               for n in ["r0-sft", *names]}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", required=True, help="folder of finished iterate runs seed0, seed1, ...")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--n", type=int, default=8, help="samples per test prompt (pairs and rejection sampling)")
    parser.add_argument("--steps", type=int, default=40, help="RL steps (outer iterations) of each RL run")
    parser.add_argument("--kl", type=float, default=0.1, help="the KL budget both RL runs stop at (nats/token)")
    parser.add_argument("--json", default=str(HERE / "results" / "rm_claims.json"))
    args = parser.parse_args()
    from iterate_round3 import matmul_gflops, pin_threads_and_read_peak

    peak_before = pin_threads_and_read_peak()
    per_seed = []
    for seed in (int(s) for s in args.seeds.split(",")):
        with tempfile.TemporaryDirectory(prefix=f"rm_claims_{seed}_") as tmp:
            result = one_seed(Path(args.runs) / f"seed{seed}", seed, args, Path(tmp))
        per_seed.append(result)
        print(json.dumps({k: v for k, v in result.items() if k in ("seed", "rs_gold_afm_minus_bt", "mdloo_minus_rloo",
                                                                    "gain_over_r0_sft", "minutes")}), flush=True)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=HERE.parent, capture_output=True, text=True).stdout.strip()
    out = {"benchmark": "rm_claims", "date": datetime.now().isoformat(timespec="seconds"), "commit": commit,
           "command": "python benchmarks/rm_claims.py " + " ".join(sys.argv[1:]),
           "matmul_gflops": {"before": peak_before, "after": matmul_gflops()},
           "settings": {"n": args.n, "steps": args.steps, "kl_budget": args.kl, "split": "test",
                        "pairs": "noiseless gold oracle on distinct r0-sft samples"},
           "summary": summary(per_seed), "per_seed": per_seed}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out["summary"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
