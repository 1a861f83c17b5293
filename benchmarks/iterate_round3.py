"""The README's main job, measured over pipeline seeds: `afm-align iterate --round 3` on the tiny default.

For each of `--seeds N` pipeline seeds (`seed=0..N-1`: the base model's pre-training, every dataset, every
training stage and every sampler differ), it runs the command as its own process in a fresh runs folder (so
round 0 includes `init`), then reads the round files and reports what the evaluation protocol allows:
- the member the round-N promotion leaves on top (chosen on **dev**: the round's promoted member, else the
  best earlier one), and its **test** accuracy against r0-sft: the paired difference on the same test
  problems with its cluster-bootstrap interval, per seed (`committee.report_eval` wrote it after promotion);
- over seeds: the mean test gain, each seed's value and a 95% t-interval over seeds (it covers
  seed-to-seed variance, not only the sampling of test problems);
- the promoted member's and r0-sft's test accuracy per domain (mean over seeds), dev figures for reference,
  the RM's accuracy on test-split synthetic pairs and on oracle-labelled pairs of committee answers;
- wall minutes and peak memory per seed (the largest process the command ran, `RUSAGE_CHILDREN`), and the
  machine's 2-thread fp32 matmul peak measured in the same run, so times can be scaled across machines.
Ablations: `--members dpo` (or any list) runs the same rounds with other candidates.
With `--keep DIR`, a stopped benchmark run again picks up where it stopped: finished seeds are read back, an
unfinished one resumes (`iterate` resumes its run), and such a seed's minutes are its stages' sum, since the
call's own clock saw only the rest (`resumed: true`, `minutes_this_call`).

Run: `python benchmarks/iterate_round3.py --seeds 3 [--round 3] [--members ...] [--keep DIR] [--json FILE]
[key=value ...]` (20-21 minutes a seed on the 2-core machine at 176-190 GFLOP/s, base included; 24 once, when the
host slowed). The JSON goes to `benchmarks/results/iterate_round3.json` (committed, so the README's figures have an
artefact).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def matmul_gflops(n: int = 2048, repeats: int = 5, threads: int = 2) -> float:
    """The best of `repeats` n x n fp32 matmuls at `threads` torch threads, in GFLOP/s."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    torch.set_num_threads(before)
    return round(2 * n ** 3 / best / 1e9, 1)


def pin_threads_and_read_peak() -> float:
    """Pin torch (and afm_align's own runs, `AFM_ALIGN_THREADS`) to at most 2 threads, never more than the CPUs,
    then read and print the 2-thread fp32 matmul peak that every timing of the model-running benchmarks is shown
    with; returns it."""
    import torch

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    os.environ["AFM_ALIGN_THREADS"] = str(torch.get_num_threads())
    peak = matmul_gflops()
    print(f"machine: 2-thread fp32 matmul peak {peak} GFLOP/s (budgets assume ~200)", flush=True)
    return peak


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def stage_seconds(run: Path, rounds: int) -> dict[str, float]:
    """{"round_N/stage": seconds} from the round manifests."""
    out = {}
    for n in range(rounds + 1):
        data = json.loads((run / f"round_{n}" / "manifest.json").read_text())
        for stage, record in data["stages"].items():
            out[f"round_{n}/{stage}"] = round(record.get("seconds") or 0.0, 1)
    return out


def outcome(run: Path, rounds: int) -> dict:
    """The member on top after round N (by dev), its test result against r0-sft, and the RM's accuracies."""
    from afm_align.rundir import RunDir
    from committee.evaluation import read_leaderboard
    from committee.promotion import best_member
    from committee.report_eval import read_test

    rd = RunDir(run)
    manifests = {n: json.loads((run / f"round_{n}" / "manifest.json").read_text()) for n in range(rounds + 1)}
    dev = {e["member"]: e for e in read_leaderboard(rd, rounds)}
    top = ((manifests[rounds].get("promotion") or {}).get("promoted") or [None])[0] or best_member(list(dev.values()))
    test = {e["member"]: e for n in range(rounds + 1) for e in read_test(rd, n) if e["scored_in"] == n}
    if top not in test:
        raise RuntimeError(f"{top} was not scored on test (run with eval_test_members=all)")
    gain = test[top].get("vs_baseline") or {"delta": 0.0, "ci95": [0.0, 0.0]}
    return {"member": top, "test_mean": test[top]["test"]["mean"], "test_ci95": test[top]["test_ci95"],
            "test_per_domain": {d: v for d, v in test[top]["test"].items() if d != "mean"},
            "r0_sft_test": test["r0-sft"]["test"], "test_gain": gain["delta"], "test_gain_ci95": gain["ci95"],
            "dev_mean": dev[top]["dev"]["mean"], "r0_sft_dev_mean": dev["r0-sft"]["dev"]["mean"],
            "rm_test_pairs_accuracy": {n: (m.get("rm_accuracy") or {}).get("accuracy") for n, m in manifests.items() if n},
            "rm_committee_answers_accuracy": {n: (m.get("rm_on_committee_answers") or {}).get("accuracy")
                                              for n, m in manifests.items() if n},
            "committee": (manifests[rounds].get("promotion") or {}).get("committee")}


# a wrapper process per seed, so each seed's peak memory is its own (RUSAGE_CHILDREN only ever grows)
WRAP = ("import resource, subprocess, sys; code = subprocess.run(sys.argv[2:]).returncode; "
        "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)); sys.exit(code)")


def finished(run: Path, rounds: int) -> bool:
    """True when round `rounds` of the run at `run` has every stage done (a run this script made before)."""
    file = run / f"round_{rounds}" / "manifest.json"
    if not file.is_file():
        return False
    stages = json.loads(file.read_text())["stages"]
    return bool(stages) and all(rec.get("status") == "done" for rec in stages.values()) and "report" in stages


STAGE_TIMING = "sum of the stage wall times and the largest stage peak RSS in the run's manifests"


def stage_totals(run: Path, rounds: int) -> tuple[float, float]:
    """(minutes, peak GB) of a run from its round manifests: the stages' wall times summed, their largest RSS."""
    manifests = [json.loads((run / f"round_{n}" / "manifest.json").read_text()) for n in range(rounds + 1)]
    records = [rec for m in manifests for rec in m["stages"].values()]
    minutes = sum(rec.get("seconds") or 0.0 for rec in records) / 60
    return round(minutes, 2), round(max(rec.get("peak_rss_mb") or 0.0 for rec in records) / 1024, 2)


def reused_seed(seed: int, args, run: Path) -> dict:
    """A seed whose run already finished in `--keep DIR` (same command): minutes and memory from its manifests."""
    minutes, peak = stage_totals(run, args.round)
    result = {"seed": seed, "minutes": minutes, "peak_gb": peak, "reused_run": str(run), "timing_source": STAGE_TIMING,
              "stages": stage_seconds(run, args.round), **outcome(run, args.round)}
    print(f"seed {seed}: reused the finished run {run}: {minutes:.1f} min of stages; {result['member']} test "
          f"{100 * result['test_gain']:+.1f} points over r0-sft", flush=True)
    return result


def check_reuse(run: Path, seed: int, args) -> None:
    """A kept run is read only when its last round ran with this command's settings (the round manifest's config;
    a key the manifest predates counts as its default, as `committee.run_checks` reads it). The `recipes.init`
    overrides are left to `check_base` when the run holds a base (it compares what they build with that base): a
    run made with `recipes.init=[optimizer=muon]` when that was not yet the default is read by a command without
    it."""
    from afm_align.config import config_dict
    from committee.round_config import load
    from committee.run_checks import RESUME_FREE, changed_setting, recorded_setting

    members = [f"members=[{args.members}]"] if args.members else []
    wanted = config_dict(load("tiny", overrides=[f"seed={seed}", *members, *args.overrides]))
    recorded = json.loads((run / f"round_{args.round}" / "manifest.json").read_text())["config"]
    if (run / "base" / "config.yaml").is_file():
        for config in (wanted, recorded):
            if "recipes" in config:
                config["recipes"] = {k: v for k, v in config["recipes"].items() if k != "init"}
    diff = changed_setting(recorded, wanted, sorted(set(wanted) - RESUME_FREE))
    if diff is not None:
        raise SystemExit(f"{run}: made with {diff}={recorded_setting(recorded, diff)!r}, this command asks for "
                         f"{wanted[diff]!r}; use another --keep folder")


def check_base(run: Path, seed: int, args) -> None:
    """A kept run's base must be the one this command's init settings build: the round manifests record only the
    `recipes.init` overrides, not what `configs/tiny/init.yaml` said when the base was made (an AdamW base kept from
    before the tiny preset's Muon would otherwise pass for the Muon default). A key the base predates counts as the
    InitConfig default; `run` and `threads` do not change the base's kind."""
    from afm_align.config import config_dict
    from afm_align.init_base import load as load_init
    from committee.round_config import load, overrides_of

    cfg = load("tiny", overrides=[f"seed={seed}", *args.overrides])
    wanted = load_init("tiny", None, [f"seed={seed}", *overrides_of(cfg, "init")])
    differs = base_mismatch(run, wanted, sorted(set(config_dict(wanted)) - {"run", "threads"}))
    if differs is not None:
        key, has = differs
        raise SystemExit(f"{run}: its base was made with {key}={has!r}, this command's init builds "
                         f"{config_dict(wanted)[key]!r}; use another --keep folder")


def base_mismatch(run: Path, wanted, keys) -> tuple[str, object] | None:
    """(key, the base's value) of the first of `keys` where the run's `base/config.yaml` differs from the InitConfig
    `wanted` (a key the base predates counts as the InitConfig default); None when all match or there is no base.
    Shared with `benchmarks/base_budget.py`."""
    import yaml
    from afm_align.config import config_dict
    from afm_align.init_base import InitConfig

    file = run / "base" / "config.yaml"
    if not file.is_file():
        return None
    recorded, defaults, want = yaml.safe_load(file.read_text()) or {}, config_dict(InitConfig()), config_dict(wanted)
    for key in keys:
        has = recorded.get(key, defaults.get(key))
        if has != want[key]:
            return key, has
    return None


def run_seed(seed: int, args, runs: Path) -> dict:
    """One pipeline seed, in a child process whose own peak memory it reports (or its finished run, reused)."""
    check_base(runs / f"seed{seed}", seed, args)
    if finished(runs / f"seed{seed}", args.round):
        check_reuse(runs / f"seed{seed}", seed, args)
        return reused_seed(seed, args, runs / f"seed{seed}")
    cmd = [sys.executable, "-m", "afm_align.cli", "iterate", "--round", str(args.round), "--run", f"seed{seed}",
           *(["--members", args.members] if args.members else []), f"seed={seed}", *args.overrides]
    env = {**os.environ, "AFM_ALIGN_RUNS": str(runs), "AFM_ALIGN_QUIET": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    print(f"seed {seed}: {' '.join(cmd[2:])}  (runs in {runs})", flush=True)
    peak_file = runs / f".peak-seed{seed}"
    resumed = (runs / f"seed{seed}" / "round_0").is_dir()  # an interrupted run: iterate resumes it
    runs.mkdir(parents=True, exist_ok=True)
    gflops_before = matmul_gflops()  # the machine as this seed finds it (a shared host drifts between seeds)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", WRAP, str(peak_file), *cmd], check=False, env=env, cwd=HERE.parent,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    minutes = (time.perf_counter() - start) / 60
    peak_kb = int(peak_file.read_text()) if peak_file.is_file() else 0
    if proc.returncode != 0:
        print("\n".join(proc.stdout.splitlines()[-30:]))
        raise RuntimeError(f"seed {seed}: iterate failed with exit code {proc.returncode}")
    run = runs / f"seed{seed}"
    result = {"seed": seed, "minutes": round(minutes, 2), "matmul_gflops_before": gflops_before,
              "peak_gb": round(peak_kb / 1024 ** 2, 2),
              "stages": stage_seconds(run, args.round), **outcome(run, args.round)}
    if resumed:  # this call's wall covers only the rest of the run: the whole run's time is its stages'
        whole_minutes, whole_peak = stage_totals(run, args.round)
        result.update(minutes=whole_minutes, peak_gb=max(result["peak_gb"], whole_peak), resumed=True,
                      minutes_this_call=round(minutes, 2), timing_source=f"resumed run: {STAGE_TIMING}; "
                      "matmul_gflops_before is the resuming call's reading")
    print(f"seed {seed}: {result['minutes']:.1f} min{' (resumed: its stages)' if resumed else ''}, peak "
          f"{result['peak_gb']} GB; {result['member']} test "
          f"{result['test_mean']:.3f} vs r0-sft {result['r0_sft_test']['mean']:.3f}: "
          f"{100 * result['test_gain']:+.1f} points {[round(100 * x, 1) for x in result['test_gain_ci95']]}",
          flush=True)
    return result


def summary(per_seed: list[dict]) -> dict:
    from committee.eval_stats import seed_interval

    gains = [r["test_gain"] for r in per_seed]
    domains = sorted({d for r in per_seed for d in r["test_per_domain"]})
    mean_of = lambda values: round(statistics.mean(values), 4)  # noqa: E731
    return {
        "test_gain": {"mean": round(100 * statistics.mean(gains), 2), "per_seed": [round(100 * g, 2) for g in gains],
                      "ci95": [round(100 * x, 2) for x in seed_interval(gains)] if len(gains) > 1 else None,
                      "per_seed_ci95": [[round(100 * x, 2) for x in r["test_gain_ci95"]] for r in per_seed],
                      "units": "points of mean-over-domains test accuracy, round-N top member minus r0-sft"},
        "per_domain_test": {d: mean_of([r["test_per_domain"].get(d, 0.0) for r in per_seed]) for d in domains},
        "r0_sft_per_domain_test": {d: mean_of([r["r0_sft_test"].get(d, 0.0) for r in per_seed]) for d in domains},
        "test_mean": mean_of([r["test_mean"] for r in per_seed]),
        "r0_sft_test_mean": mean_of([r["r0_sft_test"]["mean"] for r in per_seed]),
        "minutes": [r["minutes"] for r in per_seed], "peak_gb": [r["peak_gb"] for r in per_seed],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="pipeline seeds 0..N-1 (default 3)")
    parser.add_argument("--round", type=int, default=3)
    parser.add_argument("--members", default=None, help="candidates, e.g. dpo (ablation); default: the preset's")
    parser.add_argument("--keep", default=None, help="runs folder to keep (default: a temporary one); a seed whose "
                        "run in it already finished is read, not run again")
    parser.add_argument("--json", default=str(HERE / "results" / "iterate_round3.json"))
    parser.add_argument("overrides", nargs="*", metavar="key=value")
    args = parser.parse_args()
    if args.seeds < 1 or args.round < 1:
        parser.error("--seeds and --round must be at least 1")
    gflops = matmul_gflops()
    print(f"machine: 2-thread fp32 matmul peak {gflops} GFLOP/s (budgets assume ~200)", flush=True)
    runs = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="afm-iterate-"))
    per_seed = [run_seed(seed, args, runs) for seed in range(args.seeds)]
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=HERE.parent, capture_output=True, text=True).stdout.strip()
    result = {"benchmark": "iterate_round3", "date": datetime.now().isoformat(timespec="seconds"), "commit": commit,
              "command": f"python benchmarks/iterate_round3.py --seeds {args.seeds} --round {args.round}"
                         + (f" --members {args.members}" if args.members else "") + "".join(f" {o}" for o in args.overrides),
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform()}, "matmul_gflops": gflops,
              "protocol": "promotion on dev, report on test (problem-disjoint splits); gain = paired test difference",
              **summary(per_seed), "per_seed": per_seed}
    g = result["test_gain"]
    print(f"\ntest gain over r0-sft: mean {g['mean']:+.1f} points, per seed {g['per_seed']}, 95% interval over "
          f"seeds {g['ci95']}")
    print(f"per-domain test accuracy of the top member (mean over seeds): {result['per_domain_test']}")
    print(f"minutes per seed {result['minutes']}, peak GB {result['peak_gb']} (matmul peak {gflops} GFLOP/s)")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2))
    print(f"saved {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
