"""AFM's third claim, measured: the committee (every candidate recipe in each round) against each single recipe.

For every recipe of `--recipes` (default: the tiny preset's candidates, sft,rs,dpo,ipo,mdloo) and every pipeline
seed, it runs `afm-align iterate --round 3 --members <recipe>` and reads the round-3 top member's **test** gain
over r0-sft, chosen on **dev** exactly as `benchmarks/iterate_round3.py` reads the committee's
(`iterate_round3.outcome`). The committee's runs are the ones that script kept (`--committee-runs DIR`, its
`--keep DIR`).

Round 0 is shared: each single-recipe run starts from a copy of the committee run's `base`, `data` and
`round_0` for the same seed. Round 0 (the base's pre-training, the splits, r0-sft and its scores) never reads the
candidate list, so the copy is the round 0 the single-recipe run would have built; it saves the 5 minutes of
pre-training per run, and the two arms differ only in rounds 1 to 3. Because both arms score their top member
against the same r0-sft on the same test problems, the committee's advantage in a seed is the difference of the
two gains; over seeds it is reported with a 95% t-interval (`committee.eval_stats.seed_interval`). A recipe whose
interval lies above zero beats the committee; below zero, the committee wins; else no difference was resolved.

Run: `python benchmarks/iterate_round3.py --seeds 3 --keep DIR` first, then
`python benchmarks/committee_vs_single.py --committee-runs DIR [--recipes sft,rs] [--seeds 3] [--keep DIR2]`
(about 6 minutes per recipe and seed on 2 CPU cores; a run finished in `--keep DIR2` is read, not run again).
The JSON goes to `benchmarks/results/committee_vs_single.json`; `--table` prints the README's table from it.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from iterate_round3 import finished, matmul_gflops, outcome  # noqa: E402 - the committee's reading, reused

ROUND0 = ("base", "data", "round_0", "iterate_settings.json")  # what a single-recipe run copies from the committee's


def seed_from(committee: Path, run: Path) -> None:
    """Copy the committee run's round 0 into the fresh folder `run` (refuses to write into an existing one)."""
    missing = [p for p in ROUND0 if not (committee / p).exists()]
    if missing:
        raise SystemExit(f"{committee}: not a finished iterate run (missing {', '.join(missing)})")
    run.mkdir(parents=True)
    for part in ROUND0:
        src = committee / part
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, run / part)


def single_run(recipe: str, seed: int, committee: Path, runs: Path, rounds: int) -> dict:
    """Rounds 1..N of the seed with `recipe` as the only candidate (or the finished run found), and its outcome."""
    run = runs / recipe / f"seed{seed}"
    seconds = None
    if not finished(run, rounds):
        if not run.exists():
            seed_from(committee, run)
        cmd = [sys.executable, "-m", "afm_align.cli", "iterate", "--round", str(rounds), "--run", run.name,
               "--members", recipe]
        env = {**os.environ, "AFM_ALIGN_RUNS": str(run.parent), "AFM_ALIGN_QUIET": "1",
               "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
        print(f"{recipe} seed {seed}: {' '.join(cmd[2:])}  (in {run.parent})", flush=True)
        start = time.perf_counter()
        proc = subprocess.run(cmd, env=env, cwd=HERE.parent, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, check=False)
        seconds = time.perf_counter() - start
        if proc.returncode != 0:
            print("\n".join(proc.stdout.splitlines()[-30:]))
            raise RuntimeError(f"{recipe} seed {seed}: iterate failed with exit code {proc.returncode}")
    result = {"seed": seed, "rounds_1_to_n_minutes": round(seconds / 60, 2) if seconds else None,
              **outcome(run, rounds)}
    print(f"{recipe} seed {seed}: top {result['member']}, test gain {100 * result['test_gain']:+.1f} points",
          flush=True)
    return result


def compare(committee: list[dict], single: list[dict]) -> dict:
    """Per-seed gains of a single recipe and the committee's advantage over it (points), with t-intervals."""
    from committee.eval_stats import seed_interval

    def points(values):
        return [round(100 * v, 2) for v in values]

    gains = [r["test_gain"] for r in single]
    advantage = [c["test_gain"] - s["test_gain"] for c, s in zip(committee, single)]
    interval = seed_interval(advantage) if len(advantage) > 1 else None
    verdict = ("not resolved (one seed)" if interval is None else "committee better" if interval[0] > 0
               else "single recipe better" if interval[1] < 0 else "no difference resolved")
    return {"gain": {"mean": round(100 * statistics.mean(gains), 2), "per_seed": points(gains),
                     "ci95": points(seed_interval(gains)) if len(gains) > 1 else None},
            "committee_advantage": {"mean": round(100 * statistics.mean(advantage), 2), "per_seed": points(advantage),
                                    "ci95": points(interval) if interval else None, "verdict": verdict},
            "top_members": [r["member"] for r in single],
            "per_domain_test": {d: round(statistics.mean(r["test_per_domain"].get(d, 0.0) for r in single), 4)
                                for d in sorted({d for r in single for d in r["test_per_domain"]})},
            "per_seed": single}


def _cell(mean: float, ci95: list | None) -> str:
    return f"{mean:+.1f}" + (f" [{ci95[0]:+.1f}, {ci95[1]:+.1f}]" if ci95 else "")


def markdown_table(result: dict) -> str:
    """The README's claim-3 table from a saved result (so its figures are the JSON's, never typed by hand)."""
    from committee.eval_stats import seed_interval

    gain = result["committee"]["gain"]
    ci = seed_interval(gain["per_seed"]) if len(gain["per_seed"]) > 1 else None
    rows = ["| candidates of rounds 1-3 | top member (dev), per seed | test gain per seed | mean [95% CI] "
            "| committee minus it [95% CI] | verdict |", "|---|---|---|---|---|---|",
            f"| all five (the committee) | {', '.join(result['committee']['top_members'])} "
            f"| {', '.join(f'{g:+.1f}' for g in gain['per_seed'])} "
            f"| {_cell(gain['mean'], ci)} | | |"]
    for name, r in result["recipes"].items():
        a = r["committee_advantage"]
        rows.append(f"| {name} alone | {', '.join(r['top_members'])} "
                    f"| {', '.join(f'{g:+.1f}' for g in r['gain']['per_seed'])} "
                    f"| {_cell(r['gain']['mean'], r['gain']['ci95'])} | {_cell(a['mean'], a['ci95'])} "
                    f"| {a['verdict']} |")
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--committee-runs", help="runs folder of iterate_round3.py --keep (required unless --table)")
    parser.add_argument("--recipes", default="sft,rs,dpo,ipo,mdloo")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--round", type=int, default=3)
    parser.add_argument("--keep", default=None, help="folder for the single-recipe runs (default: a temporary one)")
    parser.add_argument("--json", default=str(HERE / "results" / "committee_vs_single.json"))
    parser.add_argument("--table", action="store_true",
                        help="print the README table of the saved --json and exit (runs nothing)")
    args = parser.parse_args()
    if args.table:
        if not Path(args.json).is_file():
            parser.error(f"{args.json}: no saved result to print (run the benchmark first)")
        print(markdown_table(json.loads(Path(args.json).read_text())))
        return 0
    if not args.committee_runs:
        parser.error("--committee-runs DIR is required (the runs folder of iterate_round3.py --keep)")
    committee_runs = Path(args.committee_runs)
    seeds = range(args.seeds)
    unfinished = [s for s in seeds if not finished(committee_runs / f"seed{s}", args.round)]
    if unfinished:
        parser.error(f"{committee_runs}: no finished round-{args.round} committee run for seeds {unfinished} "
                     f"(run benchmarks/iterate_round3.py --seeds {args.seeds} --keep {committee_runs} first)")
    gflops = matmul_gflops()
    print(f"machine: 2-thread fp32 matmul peak {gflops} GFLOP/s (budgets assume ~200)", flush=True)
    runs = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="afm-single-"))
    committee = [outcome(committee_runs / f"seed{s}", args.round) for s in seeds]
    recipes = {r: compare(committee, [single_run(r, s, committee_runs / f"seed{s}", runs, args.round) for s in seeds])
               for r in args.recipes.split(",")}
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=HERE.parent, capture_output=True, text=True).stdout
    result = {"benchmark": "committee_vs_single", "date": datetime.now().isoformat(timespec="seconds"),
              "commit": commit.strip(), "matmul_gflops": gflops, "seeds": args.seeds, "round": args.round,
              "command": f"python benchmarks/committee_vs_single.py --committee-runs DIR --recipes {args.recipes} "
                         f"--seeds {args.seeds} --round {args.round}",
              "protocol": "top member chosen on dev; gain = paired test difference against r0-sft (shared round 0); "
                          "committee advantage = committee gain - single-recipe gain per seed, t-interval over seeds",
              "committee": {"gain": {"mean": round(100 * statistics.mean(c["test_gain"] for c in committee), 2),
                                     "per_seed": [round(100 * c["test_gain"], 2) for c in committee]},
                            "top_members": [c["member"] for c in committee]},
              "recipes": recipes}
    gain = result["committee"]["gain"]
    print(f"\ncommittee: gain {gain['mean']:+.1f} points {gain['per_seed']}")
    for name, r in recipes.items():
        a = r["committee_advantage"]
        print(f"{name:>6}: gain {r['gain']['mean']:+.1f} {r['gain']['per_seed']}; committee minus it {a['mean']:+.1f} "
              f"{a['ci95']}: {a['verdict']}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2))
    print(f"saved {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
