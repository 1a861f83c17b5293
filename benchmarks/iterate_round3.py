"""The README's main job, measured: `afm-align iterate --round 3` on the tiny default from a fresh run.

It runs the command as its own process in a fresh runs folder (so round 0 includes `init`), then reads the
round manifests and prints, per stage, the wall time and the process's peak resident memory at the end of
the stage (`ru_maxrss`; the figure only grows, so a stage's own need shows where it rises). It also reports
what the acceptance asks about the result:
- total wall time and peak memory of the whole command (`RUSAGE_CHILDREN` ru_maxrss: the largest process
  it ran, the iterate process itself or a sandbox child);
- the round-N promoted member (the best one) against the round-0 SFT member: held-out verifiable accuracy
  (mean over domains), their paired difference and its 95% bootstrap interval (committee.evaluation);
- the RM's held-out pairwise accuracy by round (`rm_accuracy` of each manifest).
Ablations: `--members dpo` (or any list) runs the same rounds with other candidates, for comparing the full
committee with each single algorithm.

Run: `python benchmarks/iterate_round3.py [--round 3] [--members sft,rs,dpo,ipo,mdloo] [--keep DIR]
[--json FILE] [key=value ...]` (it takes about as long as the command: ~15-20 minutes on 2 CPU cores).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def stage_table(run: Path, rounds: int) -> dict[str, dict]:
    """{"round_N/stage": {seconds, peak_rss_mb, attempts}} from the round manifests, in the order they ran."""
    out = {}
    for n in range(rounds + 1):
        data = json.loads((run / f"round_{n}" / "manifest.json").read_text())
        for stage, record in sorted(data["stages"].items(), key=lambda kv: kv[1].get("started", 0.0)):
            out[f"round_{n}/{stage}"] = {k: record.get(k) for k in ("seconds", "peak_rss_mb", "attempts", "skipped")
                                         if record.get(k) is not None}
    return out


def outcome(run: Path, rounds: int) -> dict:
    """Round-N promoted member vs r0-sft on held-out accuracy, and RM accuracy by round."""
    from afm_align.rundir import RunDir
    from committee.evaluation import paired_difference, read_leaderboard, read_samples

    rd = RunDir(run)
    entries = read_leaderboard(rd, rounds)
    manifest = json.loads((run / f"round_{rounds}" / "manifest.json").read_text())
    promoted = (manifest.get("promotion") or {}).get("promoted") or []
    means = {e["member"]: (e["heldout"] or {}).get("mean") for e in entries}
    best = promoted[0] if promoted else max((m for m in means if means[m] is not None), key=means.get)
    delta, ci = paired_difference(read_samples(rd, rounds), best, "r0-sft", n_boot=2000, seed=0)
    rm = {}
    for n in range(1, rounds + 1):
        value = json.loads((run / f"round_{n}" / "manifest.json").read_text()).get("rm_accuracy") or {}
        rm[n] = value.get("accuracy")
    return {"member": best, "promoted_this_round": bool(promoted), "heldout_mean": means[best],
            "r0_sft_heldout_mean": means.get("r0-sft"), "difference": delta, "difference_ci95": ci,
            "per_domain": next(e["heldout"] for e in entries if e["member"] == best),
            "r0_sft_per_domain": next(e["heldout"] for e in entries if e["member"] == "r0-sft"),
            "rm_accuracy_by_round": rm, "committee": (manifest.get("promotion") or {}).get("committee")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--round", type=int, default=3)
    parser.add_argument("--members", default=None, help="candidates, e.g. dpo (ablation); default: the preset's")
    parser.add_argument("--keep", default=None, help="runs folder to keep (default: a temporary one)")
    parser.add_argument("--json", default=str(HERE / "results" / "iterate_round3.json"))
    parser.add_argument("overrides", nargs="*", metavar="key=value")
    args = parser.parse_args()
    runs = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="afm-iterate-"))
    cmd = [sys.executable, "-m", "afm_align.cli", "iterate", "--round", str(args.round), "--run", "bench",
           *(["--members", args.members] if args.members else []), *args.overrides]
    env = {**os.environ, "AFM_ALIGN_RUNS": str(runs), "AFM_ALIGN_QUIET": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    print(f"running: {' '.join(cmd[2:])}  (runs in {runs})", flush=True)
    start = time.perf_counter()
    proc = subprocess.run(cmd, check=False, env=env, cwd=HERE.parent, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    total = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("iterate:")]
    if proc.returncode != 0:
        print("\n".join(proc.stdout.splitlines()[-30:]))
        print(f"iterate failed with exit code {proc.returncode}")
        return 1
    run = runs / "bench"
    stages = stage_table(run, args.round)
    result = {"command": " ".join(cmd[2:]), "total_s": round(total, 1), "peak_gb": round(peak_kb / 1024 ** 2, 2),
              "stages": stages, "outcome": outcome(run, args.round), "log_tail": lines[-5:]}
    print(f"\n{'stage':<28} {'seconds':>8} {'peak RSS MiB':>13}")
    for name, rec in stages.items():
        note = f"  ({rec['skipped'][:50]})" if rec.get("skipped") else ""
        print(f"{name:<28} {rec.get('seconds', 0):8.1f} {rec.get('peak_rss_mb', 0):13.0f}{note}")
    per_round = {}
    for name, rec in stages.items():
        per_round[name.split("/")[0]] = per_round.get(name.split("/")[0], 0.0) + rec.get("seconds", 0.0)
    result["per_round_s"] = {k: round(v, 1) for k, v in per_round.items()}
    o = result["outcome"]
    print(f"\nper round (s): {result['per_round_s']}")
    print(f"total {total / 60:.1f} min, peak memory {result['peak_gb']:.2f} GB")
    print(f"round {args.round} member {o['member']}: held-out mean {o['heldout_mean']:.3f} vs r0-sft "
          f"{o['r0_sft_heldout_mean']:.3f}: {100 * o['difference']:+.1f} points "
          f"[{100 * o['difference_ci95'][0]:+.1f}, {100 * o['difference_ci95'][1]:+.1f}]")
    print(f"RM held-out accuracy by round: {o['rm_accuracy_by_round']}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2))
    print(f"saved {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
