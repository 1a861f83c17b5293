"""Do the rounds' RM-driven members raise the open-ended gold over the member they start from? (test split)

In every iTeC round two candidates are steered by the RM alone on the open-ended prompts (general, summarize):
rejection sampling (`rs`: the RM ranks the committee's samples, no verifier gate) and MDLOO (`mdloo`: the RM is
the reward there, plus the KL term). Each starts from the round's start member (`round_<N>/manifest.json`'s
`start`: r0-sft in round 1, the best promoted member after). This script reads finished iterate runs
(`benchmarks/iterate_round3.py --keep DIR`) and, for each seed and each round asked for, writes every one of these
members' greedy answers to the **test** split's open-ended prompts, scores them with the hidden gold rubric
(`round_0/gold.json`, read as evaluation reads it; nothing here trains or chooses), and reports each member's
gold minus its start member's, paired on the same prompts, then the mean over seeds with a 95% t-interval
(`committee.eval_stats.seed_interval`). `benchmarks/rm_claims.py` measures round 1's two members the same way;
this one follows them into the later rounds, where the RM ranks more samples a prompt.

Run: `python benchmarks/rm_driven_members.py --runs DIR [--seeds 0,1,2] [--rounds 1,2,3]
[--json benchmarks/results/rm_driven_members.json]` (about 3 minutes a seed on 2 cores for three rounds).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("AFM_ALIGN_QUIET", "1")

from saved_runs import member_dir  # noqa: E402 - a member's folder in a kept run (re-exported for tests)

RECIPES = ("rs", "mdloo")  # the candidates the RM alone steers on open-ended prompts


def round_members(run: Path, n: int) -> tuple[str, dict[str, str]]:
    """(round `n`'s start member, {recipe: its RM-driven member there}); a round that is not finished, or has no
    start, is a one-line SystemExit; a recipe that sat the round out is left out."""
    manifest = run / f"round_{n}" / "manifest.json"
    if not manifest.is_file():
        raise SystemExit(f"{run}: round {n} has no manifest (run `afm-align iterate --round {n}` first)")
    start = json.loads(manifest.read_text(encoding="utf-8")).get("start")
    if not start:
        raise SystemExit(f"{manifest}: names no start member")
    found = {r: f"r{n}-{r}" for r in RECIPES if (member_dir(run, f"r{n}-{r}") / "config.json").is_file()}
    return start, found


def greedy_gold(run: Path, name: str, rows: list[dict], gold: dict) -> list[float]:
    """The gold score of member `name`'s greedy answer to each of `rows`."""
    from rm_claims import generate, gold_of

    return gold_of(rows, [s[0] for s in generate(member_dir(run, name), rows, 1, 0.0, 0)], gold)


def one_seed(run: Path, rounds: list[int], scorer=greedy_gold) -> dict:
    """{round: {recipe: {member, start, gold, start_gold, gain}}} of one run; each member scored once."""
    from rm_claims import open_ended_rows

    rows, gold = open_ended_rows(run, "test")
    if not rows:
        raise SystemExit(f"{run}: its test split has no open-ended prompts (families general, summarize)")
    cache: dict[str, list[float]] = {}

    def scores(name: str) -> list[float]:
        if name not in cache:
            cache[name] = scorer(run, name, rows, gold)
        return cache[name]

    out = {}
    for n in rounds:
        start, members = round_members(run, n)
        out[n] = {recipe: {"member": name, "start": start, "gold": round(statistics.fmean(scores(name)), 4),
                           "start_gold": round(statistics.fmean(scores(start)), 4),
                           "gain": round(statistics.fmean(a - b for a, b in zip(scores(name), scores(start))), 4)}
                  for recipe, name in members.items()}
    return out


def summary(per_seed: list[dict], rounds: list[int]) -> dict:
    """{round: {recipe: mean gold, start gold, gain with its interval over seeds}} (seeds that ran it)."""
    from committee.eval_stats import seed_interval

    out = {}
    for n in rounds:
        out[n] = {}
        for recipe in RECIPES:
            rows = [s[n][recipe] for s in per_seed if recipe in s.get(n, {})]
            if rows:
                gains = [r["gain"] for r in rows]
                out[n][recipe] = {"seeds": len(rows), "gold": round(statistics.fmean(r["gold"] for r in rows), 4),
                                  "start_gold": round(statistics.fmean(r["start_gold"] for r in rows), 4),
                                  "gain": round(statistics.fmean(gains), 4), "gain_ci95": seed_interval(gains),
                                  "gain_per_seed": gains}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", required=True, help="folder of finished iterate runs seed0, seed1, ...")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--rounds", default="1,2,3")
    parser.add_argument("--json", default=str(HERE / "results" / "rm_driven_members.json"))
    args = parser.parse_args()
    from iterate_round3 import matmul_gflops, pin_threads_and_read_peak
    from saved_runs import write_json

    rounds = [int(r) for r in args.rounds.split(",")]
    peak_before = pin_threads_and_read_peak()
    start, per_seed = time.perf_counter(), []
    for seed in (int(s) for s in args.seeds.split(",")):
        per_seed.append(one_seed(Path(args.runs) / f"seed{seed}", rounds))
        print(json.dumps({"seed": seed, **per_seed[-1]}), flush=True)
    result = summary(per_seed, rounds)
    for n, by_recipe in result.items():
        for recipe, r in by_recipe.items():
            print(f"round {n} {recipe}: test gold {r['gold']:.4f} against its start's {r['start_gold']:.4f}: "
                  f"{r['gain']:+.4f} {r['gain_ci95']} over {r['seeds']} seeds")
    write_json("rm_driven_members", args.json,
               {"split": "test", "matmul_gflops": {"before": peak_before, "after": matmul_gflops()},
                "minutes": round((time.perf_counter() - start) / 60, 2), "summary": result,
                "per_seed": [{str(k): v for k, v in s.items()} for s in per_seed]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
