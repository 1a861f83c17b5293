"""How far could the RM-driven members go? RS and MDLOO on the open-ended prompts with the hidden gold as ranker
and reward (a ceiling no pipeline may use), beside the round's RM and a random pick (dev split; `--split test`
reads a configuration chosen on dev, for reporting).

The rounds' `rs` and `mdloo` members do not raise the open-ended gold over their start
(`benchmarks/rm_driven_members.py`). Two explanations part ways here: the RM ranks too poorly (then a perfect
ranker would lift the members), or these recipes at this budget cannot move the policy's greedy answers however
good the ranking (then it would not). For each finished iterate run `DIR/seed<s>` (`benchmarks/iterate_round3.py
--keep DIR`), from round 1's start member (r0-sft), on round 1's open-ended train prompts, with round 1's RM:
- rejection sampling: `--k` samples a prompt (4; round 1's own RS picks from the 3 its committee gave) at the
  round's temperature; one kept a prompt by the RM (as the round ranks them), by the gold rubric (the ceiling), or
  at random (the floor, seeded); each set of picks replaces the
  open-ended rows of round 1's `rs-data` (its verifiable rows stay), and an SFT member is trained with r1-rs's own
  saved settings and seed;
- MDLOO: r1-mdloo's saved settings on the open-ended prompts alone (no verifier, no KL-budget stop), `--steps`
  outer steps, the reward the RM alone or the gold rescaled to the RM's spread (times the ratio of their standard
  deviations over the RS samples, and the run's `rm_weight`: both rewards on about one scale; that spread includes
  the spread between prompts, which MDLOO's leave-one-out advantages do not see, so the scales match roughly).
`--rm` swaps round 1's RM for another (e.g. one `benchmarks/rm_onpolicy.py --keep-rms` trained on more on-policy
pairs) and `--arms` runs a subset. Every member's greedy answers to the DEV open-ended prompts (`--split`; test only
to report a configuration already chosen on dev) are scored by the gold (round_0/gold.json) and paired with the
start member's on the same prompts; over seeds: mean and 95%
t-interval (committee.eval_stats). The gold of the RS targets (train prompts) and each MDLOO run's last logged KL
are reported beside them. Each MDLOO run's rollouts, along its steps, are kept in the result file as a curve of
their mean RM score and gold against the logged KL (a gold-rewarded run scores its rollouts with the RM too, at
weight 0), and drawn side by side over seeds beside the JSON (same name, `.png`): does the gold follow the RM's
score up, and does the RM's score follow the gold up? The summary gives each curve's change from its first
point to its last, over seeds.

What it simplifies: round 1 only (one start, one RM; later rounds accumulate earlier rounds' picks); one sampling
of the RS candidates per seed, shared by the three picks; the members are trained in a scratch folder and
dropped (nothing is written into the runs).

Run: `python benchmarks/rm_driven_ceiling.py --runs DIR [--seeds 0,1,2] [--k 4] [--steps 48] [--rm PATH]
[--arms rs:rm,...] [--split dev] [--json benchmarks/results/rm_driven_ceiling.json] [key=value ...]` (key=value: MDLOO
overrides, e.g. `learning_rate=2.0e-4`); about 2 minutes a seed on 2 cores, 6 with `--steps 192`.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("AFM_ALIGN_QUIET", "1")

RS_PICKS = ("rm", "gold", "random")  # who ranks the RS samples
MDLOO_REWARDS = ("rm", "gold")  # the MDLOO reward
ARMS = tuple([f"rs:{p}" for p in RS_PICKS] + [f"mdloo:{r}" for r in MDLOO_REWARDS])
CURVE_POINTS = 48  # points kept of each MDLOO run's rollout curve (RM score and gold against KL)


def pick(scores: list[float], k: int, rule: str, rng: random.Random) -> list[int]:
    """For each run of `k` consecutive samples (one prompt's), the index of the kept one: the highest score (ties:
    the first), or a seeded random one with rule 'random'."""
    if len(scores) % k:
        raise ValueError(f"{len(scores)} scores are not whole groups of k={k}")
    if rule == "random":
        return [i + rng.randrange(k) for i in range(0, len(scores), k)]
    return [max(range(i, i + k), key=lambda j: scores[j]) for i in range(0, len(scores), k)]


def spread_ratio(rm_scores: list[float], gold_scores: list[float]) -> float:
    """The gold's weight that gives it the RM's spread: sd(RM) / sd(gold) over the same answers."""
    sd_gold = statistics.pstdev(gold_scores)
    if sd_gold == 0:
        raise SystemExit("every RS sample has the same gold score: nothing to rescale (is the gold store right?)")
    return statistics.pstdev(rm_scores) / sd_gold


def paired(member: list[float], start: list[float]) -> float:
    """Mean per-prompt gold difference, member minus start, on the same prompts."""
    return statistics.fmean(a - b for a, b in zip(member, start, strict=True))


def round1(run: Path, rm: Path | None = None) -> dict:
    """Round 1's start, RM (or `rm`), open-ended train prompts and their gold, r1-rs's and r1-mdloo's saved
    settings."""
    from afm_align.store import read_rows
    from committee.gold_store import read_gold
    from saved_runs import member_dir
    from synth.families import OPEN_ENDED

    r1 = run / "round_1"
    needed = [r1 / "manifest.json", r1 / "rm", r1 / "rs-data", r1 / "prompts", r1 / "gold.json",
              *(r1 / "members" / m / "recipe_config.yaml" for m in ("r1-rs", "r1-mdloo"))]
    missing = [str(p) for p in needed if not p.exists()]
    if missing:
        raise SystemExit(f"{run}: round 1 is not finished with its rs and mdloo members ({missing[0]} is missing)")
    if rm is not None and not (rm / "config.json").is_file():
        raise SystemExit(f"--rm: {rm} is not a saved RM (no config.json)")
    start = json.loads((r1 / "manifest.json").read_text(encoding="utf-8")).get("start") or ""
    start_dir = member_dir(run, start)
    if not start or not (start_dir / "config.json").is_file():
        raise SystemExit(f"{run}: round 1's start member {start or '(none named)'} is not there")
    prompts = [r for r in read_rows(r1 / "prompts", "prompt")
               if r["domain"] in OPEN_ENDED and r.get("split") == "train"]
    kept = [r for r in read_rows(r1 / "rs-data", "sft") if r["domain"] not in OPEN_ENDED]
    return {"start": start_dir, "rm": rm or r1 / "rm",
            "prompts": prompts, "gold": read_gold(r1 / "gold.json"), "rs_rows": kept,
            "rs_config": r1 / "members" / "r1-rs" / "recipe_config.yaml",
            "mdloo_config": r1 / "members" / "r1-mdloo" / "recipe_config.yaml"}


def rs_member(r1: dict, picks: list[tuple[dict, str, float]], out: Path) -> Path:
    """SFT from the start with r1-rs's settings on its verifiable rows plus the picked open-ended answers."""
    from afm_align.store import write_dataset
    from alignment import recipes
    from alignment.rejection_sampling import sft_row
    from alignment.sft import train_member

    rows = [*r1["rs_rows"], *(sft_row({"row": p, "completion": text, "member": r1["start"].name, "score": score}, 1)
                              for p, text, score in picks)]
    write_dataset(rows, "sft", out / "data", producer="benchmarks/rm_driven_ceiling.py", config={})
    rs = recipes.load("rs", config_file=str(r1["rs_config"]))
    train_member(replace(rs.sft, from_checkpoint=str(r1["start"]), data=str(out / "data"), out=str(out / "member"),
                         member="ceiling-rs", round=1, seed=rs.seed), recipe="rs")
    return out / "member"


def gold_reward(gold: dict):
    """A TRL reward function scoring each completion with the hidden gold rubric (for the ceiling only)."""
    from committee.gold_store import gold_scores
    from synth.reward_signature import completion_text

    def gold_score(prompts, completions, **columns):
        return gold_scores([{"prompt_id": i, "domain": d, "completion": completion_text(c)}
                            for i, d, c in zip(columns["prompt_id"], columns["domain"], completions)], gold)

    gold_score.__name__ = "gold"  # TRL logs the column under it
    return gold_score


def mdloo_config(r1: dict, steps: int, overrides: list[str], **fields):
    """r1-mdloo's saved settings on the open-ended prompts alone: no verifier, no KL-budget stop, `steps` outer
    steps, then `overrides`; a bad override is a one-line error."""
    from afm_align.errors import UserError
    from alignment import recipes

    try:
        return recipes.load("mdloo", config_file=str(r1["mdloo_config"]),
                            overrides=[f"steps={steps}", "verifier_weight=0.0", "kl_budget=0.0", *overrides], **fields)
    except UserError as err:
        raise SystemExit(f"MDLOO overrides: {err}") from None


def mdloo_member(r1: dict, reward: str, spread: float, args, out: Path) -> tuple[Path, float | None]:
    """MDLOO from the start on the open-ended prompts, the RM or the gold (times `spread` and the run's
    `rm_weight`) its reward; (member, last logged KL). A gold-rewarded run also scores its rollouts with the RM at
    weight 0 (logged, not rewarded), so both runs' rollouts carry the RM score and the gold for `run_curve`."""
    from afm_align.store import write_dataset
    from alignment.mdloo import main as mdloo_main
    from alignment.rewards import RewardTerm, load_rm

    write_dataset(r1["prompts"], "prompt", out / "prompts", producer="benchmarks/rm_driven_ceiling.py", config={})
    cfg = mdloo_config(r1, args.steps, args.overrides, from_checkpoint=str(r1["start"]), data=str(out / "prompts"),
                       out=str(out / "member"), reward_model=str(r1["rm"]), member=f"ceiling-mdloo-{reward}",
                       round=1)
    cfg = replace(cfg, prompts_per_step=min(cfg.prompts_per_step, len(r1["prompts"])))
    terms = [RewardTerm("gold", gold_reward(r1["gold"]), spread * cfg.rm_weight),
             RewardTerm("reward_model", load_rm(r1["rm"]), 0.0)] if reward == "gold" else None
    metrics = mdloo_main(cfg, rewards=terms)
    return out / "member", metrics.get("kl")


def run_curve(member: Path, gold: dict) -> list[dict]:
    """The run's rollouts along its steps (committee.overoptimisation): mean RM score and gold against the logged
    KL, coarsened to at most CURVE_POINTS points."""
    from committee.overoptimisation import coarsen, mdloo_curve

    return [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in p.items()}
            for p in coarsen(mdloo_curve(member, gold), CURVE_POINTS)]


def one_seed(run: Path, r1: dict, seed: int, args) -> dict:
    """Every arm's gold gain over the start on `args.split`'s open-ended prompts for one run (`r1`: its `round1`
    inputs)."""
    from alignment.rewards import load_rm
    from rm_claims import generate, gold_of, open_ended_rows

    held, held_gold = open_ended_rows(run, args.split)

    def greedy(member: Path) -> list[float]:
        return gold_of(held, [s[0] for s in generate(member, held, 1, 0.0, 0)], held_gold)

    start_gold = greedy(r1["start"])
    samples = generate(r1["start"], r1["prompts"], args.k, args.temperature, seed)
    flat = [(p, t) for p, ts in zip(r1["prompts"], samples) for t in ts]
    rm = load_rm(r1["rm"]).score([p["prompt"] for p, _ in flat], [t for _, t in flat]).rewards
    gold = gold_of([p for p, _ in flat], [t for _, t in flat], r1["gold"])
    weight = spread_ratio(rm, gold)
    out = {"seed": seed, "start": r1["start"].name, "rm": str(r1["rm"]),
           f"{args.split}_gold_start": round(statistics.fmean(start_gold), 4),
           "rs_sample_gold": round(statistics.fmean(gold), 4),
           "gold_weight": round(weight, 2), "rs": {}, "mdloo": {}}
    with tempfile.TemporaryDirectory(prefix="rm-ceiling-") as scratch:
        for rule in (p for p in RS_PICKS if f"rs:{p}" in args.arms):
            scores = rm if rule == "rm" else gold
            idx = pick(scores, args.k, rule, random.Random(seed))
            began = time.perf_counter()
            member = rs_member(r1, [(*flat[i], scores[i]) for i in idx], Path(scratch) / f"rs-{rule}")
            out["rs"][rule] = {"target_gold": round(statistics.fmean(gold[i] for i in idx), 4),
                               "train_minutes": round((time.perf_counter() - began) / 60, 2),
                               "gain": round(paired(greedy(member), start_gold), 4)}
            print(json.dumps({"seed": seed, "rs": rule, **out["rs"][rule]}), flush=True)
        for reward in (r for r in MDLOO_REWARDS if f"mdloo:{r}" in args.arms):
            began = time.perf_counter()
            member, kl = mdloo_member(r1, reward, weight, args, Path(scratch) / f"mdloo-{reward}")
            out["mdloo"][reward] = {"kl": None if kl is None else round(kl, 4),
                                    "train_minutes": round((time.perf_counter() - began) / 60, 2),
                                    "gain": round(paired(greedy(member), start_gold), 4)}
            print(json.dumps({"seed": seed, "mdloo": reward, **out["mdloo"][reward]}), flush=True)
            out["mdloo"][reward]["curve"] = run_curve(member, r1["gold"])
    return out


def summary(per_seed: list[dict]) -> dict:
    """{recipe: {arm: mean gain, its 95% interval over seeds, per seed (+ target gold / KL)}}."""
    from committee.eval_stats import seed_interval

    out = {}
    for recipe, arms, extra in (("rs", RS_PICKS, "target_gold"), ("mdloo", MDLOO_REWARDS, "kl")):
        out[recipe] = {}
        for arm in (a for a in arms if all(a in s[recipe] for s in per_seed)):
            gains = [s[recipe][arm]["gain"] for s in per_seed]
            extras = [s[recipe][arm][extra] for s in per_seed if s[recipe][arm][extra] is not None]
            out[recipe][arm] = {"gain": round(statistics.fmean(gains), 4), "gain_ci95": seed_interval(gains),
                                "gain_per_seed": gains,
                                extra: round(statistics.fmean(extras), 4) if extras else None}
            curves = [s[recipe][arm].get("curve") for s in per_seed]
            if recipe == "mdloo" and all(curves):  # along the run: first coarse point to the last
                for key in ("proxy", "gold"):
                    changes = [round(c[-1][key] - c[0][key], 4) for c in curves]
                    out[recipe][arm][f"rollout_{key}_change"] = {
                        "mean": round(statistics.fmean(changes), 4), "ci95": seed_interval(changes),
                        "per_seed": changes}
    return out


def plot_curves(per_seed: list[dict], path: Path, title: str) -> Path | None:
    """The MDLOO arms' rollout curves over seeds side by side (committee.overoptimisation.draw_mdloo_arms);
    None when no MDLOO arm ran."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from committee.overoptimisation import draw_mdloo_arms

    names = {"rm": "the RM alone", "gold": "the hidden gold (ceiling)"}
    arms = {names[r]: [s["mdloo"][r]["curve"] for s in per_seed]
            for r in MDLOO_REWARDS if all(r in s["mdloo"] for s in per_seed)}
    if not arms:
        return None
    fig = draw_mdloo_arms(arms, title, plt)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", required=True, help="folder of finished iterate runs seed0, seed1, ...")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--k", type=int, default=4, help="RS samples a prompt")
    parser.add_argument("--temperature", type=float, default=1.0, help="RS sampling temperature (the round's)")
    parser.add_argument("--steps", type=int, default=48, help="MDLOO outer steps (overoptimisation.py's)")
    parser.add_argument("--rm", help="the RM to use instead of round 1's; {seed} stands for the seed, e.g. "
                        "DIR/seed{seed} (a saved RM per seed, such as the rm-<n> folder that "
                        "`rm_onpolicy.py --keep-rms` writes)")
    parser.add_argument("--arms", default=",".join(ARMS), help=f"which arms to run, of {','.join(ARMS)}")
    parser.add_argument("--split", choices=("dev", "test"), default="dev",
                        help="the open-ended prompts the members are scored on (test: only to report a setting "
                        "chosen on dev)")
    parser.add_argument("--json", default=str(HERE / "results" / "rm_driven_ceiling.json"))
    parser.add_argument("overrides", nargs="*", help="MDLOO key=value overrides")
    args = parser.parse_args()
    if args.k < 2:
        raise SystemExit("--k must be at least 2: a pick needs two samples to choose from")
    args.arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    unknown = [a for a in args.arms if a not in ARMS]
    if unknown or not args.arms:
        raise SystemExit(f"--arms: {unknown[0] if unknown else 'none given'}; the arms are {', '.join(ARMS)}")
    try:
        seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        raise SystemExit(f"--seeds {args.seeds!r}: expected whole numbers separated by commas, e.g. 0,1,2") from None
    # every seed's inputs and the MDLOO overrides are read and checked before any training
    inputs = {seed: round1(Path(args.runs) / f"seed{seed}", Path(args.rm.format(seed=seed)) if args.rm else None)
              for seed in seeds}
    mdloo_config(inputs[seeds[-1]], args.steps, args.overrides)
    from iterate_round3 import matmul_gflops, pin_threads_and_read_peak
    from saved_runs import write_json

    peak_before = pin_threads_and_read_peak()
    began, per_seed = time.perf_counter(), []
    for seed, r1 in inputs.items():
        per_seed.append(one_seed(Path(args.runs) / f"seed{seed}", r1, seed, args))
    result = summary(per_seed)
    for recipe, arms in result.items():
        for arm, r in arms.items():
            print(f"{recipe} by {arm}: {args.split} gold minus the start {r['gain']:+.4f} {r['gain_ci95']} "
                  f"(per seed {r['gain_per_seed']})")
            for key, name in (("proxy", "RM score"), ("gold", "gold")):
                if f"rollout_{key}_change" in r:
                    c = r[f"rollout_{key}_change"]
                    print(f"  its rollouts' {name}, first to last of {CURVE_POINTS} points: {c['mean']:+.4f} "
                          f"{c['ci95']} (per seed {c['per_seed']})")
    figure = plot_curves(per_seed, Path(args.json).with_suffix(".png"),
                         f"MDLOO from r0-sft on round 1's open-ended train prompts, {args.steps} steps, seeds "
                         f"{','.join(map(str, seeds))}: rollouts' RM score (proxy) and hidden gold")
    if figure:
        print(f"saved {figure}")
    write_json("rm_driven_ceiling", args.json,
               {"split": args.split, "matmul_gflops": {"before": peak_before, "after": matmul_gflops()},
                "minutes": round((time.perf_counter() - began) / 60, 2), "summary": result,
                "plot": str(figure) if figure else None, "per_seed": per_seed})
    return 0


if __name__ == "__main__":
    sys.exit(main())
