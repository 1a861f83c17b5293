"""Run every benchmark, print one table, and save `benchmarks/results/<date>.json` and `results/latest.json`.

Each speed figure is a ratio against a baseline measured in the same run (the machines are shared and
noisy): the median of at least 10 interleaved, warmed-up pairs with a bootstrap 95% interval
(`benchmarks/paired_ratio.py`); each benchmark script is run as its own process with `--json`, and
its JSON is kept whole under `details`. `ratios` holds the headline ratios with their bars; `rounds` holds
the wall time and peak memory of `afm-align iterate --round 3` on the tiny default.

`--quick` uses smaller workloads (still 10 pairs a ratio). Neither mode re-runs the round benchmark (three
20-minute pipeline runs): both read the committed `benchmarks/results/iterate_round3.json` written by
`benchmarks/iterate_round3.py --seeds 3`, and print that the figure is REUSED, when (and how many days ago), at
which commit and on which machine it was measured.

Run: `python benchmarks/run_all.py [--quick]`.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

# name -> (script, full args, quick args)
BENCHMARKS = {
    "mdloo_vs_trl_rloo": ("mdloo_vs_trl_rloo.py", [], ["--pairs", "10", "--steps", "2", "--prompts", "4",
                                                    "--max-new-tokens", "16"]),
    "rm_step_vs_trl": ("rm_step_vs_trl.py", [], ["--repeats", "10", "--warmup", "2"]),
    "rs_generation": ("generation_throughput.py", [], ["--prompts", "16", "--batch-size", "32", "--new-tokens", "96",
                                                      "--pairs", "10"]),
    "rm_scoring": ("rm_scoring_throughput.py", [], ["--repeats", "10", "--pairs", "128"]),
    "training_mfu": ("training_mfu.py", [], ["--steps", "5"]),
    "sandbox": ("sandbox_throughput.py", [], ["--n", "30"]),
    "label_store": ("label_store_load.py", [], []),
    "synth_families": ("synth_families.py", [], ["--n", "1000"]),
    "cli_startup": ("cli_startup.py", [], ["--repeats", "5"]),
}
ROUND_BENCHMARK = ("iterate_round3.py", "iterate_round3.json")

# ratio name -> (benchmark, key in its JSON, bar, "min" or "max"). The key names a paired_ratio summary
# ({"ratio", "ci95", ...}) or a number with a sibling "ci95". A "min" bar is met when the ratio reaches it and
# its interval lies above 1.0; a "max" bar when the ratio stays at or below it. None: reported, no bar.
RATIOS = {
    "mdloo_vs_trl_rloo": ("mdloo_vs_trl_rloo", "vs_rloo", 1.15, "min"),
    "mdloo_vs_trl_grpo": ("mdloo_vs_trl_rloo", "vs_grpo", None, "min"),
    "rm_step_vs_trl_reward": ("rm_step_vs_trl", "ratio_ours_over_trl", 1.15, "max"),
    "rs_generation_vs_naive": ("rs_generation", "vs_batched_hf", 1.5, "min"),  # naive = one batched HF generate
    "rm_scoring_vs_naive": ("rm_scoring", "ratio", 1.5, "min"),
}


def provenance(command: list[str]) -> dict:
    """date, commit, machine and command of a measurement (what every committed result JSON carries)."""
    import platform

    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=HERE.parent,
                                check=False).stdout.strip() or None
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                                    text=True, cwd=HERE.parent, check=False).stdout.strip())
    except OSError:
        commit, dirty = None, None
    try:
        cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name")), platform.processor())
    except OSError:
        cpu = platform.processor()
    return {"date": datetime.datetime.now().isoformat(timespec="seconds"), "commit": commit,
            "uncommitted_changes": dirty, "machine": f"{cpu}, {os.cpu_count()} cores, {platform.system()}",
            "command": " ".join(command)}


def run_benchmark(script: str, args: list[str]) -> tuple[dict | None, float, str]:
    """Run one benchmark script with `--json`; return (its JSON or None, seconds, last output line)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        env = {**os.environ, "AFM_ALIGN_QUIET": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, str(HERE / script), *args, "--json", str(out)],
                              capture_output=True, text=True, env=env, cwd=HERE.parent)
        seconds = time.perf_counter() - start
        lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]
        tail = lines[-1] if lines else ""
        if not out.is_file():
            return None, seconds, f"FAILED (exit {proc.returncode}): {tail}"
        return json.loads(out.read_text()), seconds, tail


def round_figures(quick: bool) -> dict:
    """iterate --round 3 wall time and peak memory, read from the committed multi-seed result (never re-run
    here: `python benchmarks/iterate_round3.py --seeds 3` takes about an hour and refreshes it)."""
    script, name = ROUND_BENCHMARK
    path = RESULTS / name
    if not path.is_file():
        return {"iterate_round3_s": None, "iterate_round3_peak_gb": None,
                "note": f"no {name} yet: run `python benchmarks/{script}`"}
    data = json.loads(path.read_text())
    measured = data.get("date") or datetime.datetime.fromtimestamp(path.stat().st_mtime).isoformat(timespec="minutes")
    try:
        age_days = (datetime.datetime.now() - datetime.datetime.fromisoformat(str(measured))).days
    except ValueError:
        age_days = None
    minutes, peaks = data.get("minutes") or [], data.get("peak_gb") or []
    return {"iterate_round3_s": round(60 * max(minutes), 1) if minutes else None,
            "iterate_round3_peak_gb": max(peaks) if peaks else None, "per_seed_minutes": minutes,
            "reused": True, "age_days": age_days,
            "source": f"REUSED, not re-run: {name} (slowest of {len(minutes)} pipeline seeds), measured {measured} "
                      f"({age_days if age_days is not None else '?'} days ago), commit "
                      f"{str(data.get('commit'))[:10]}, matmul peak {data.get('matmul_gflops')} GFLOP/s"}


def ratio_of(data: dict | None, key: str) -> tuple[float | None, list | None]:
    """(ratio, 95% interval) stored under `key` of a benchmark's JSON (see RATIOS)."""
    found = (data or {}).get(key)
    if isinstance(found, dict):
        return found.get("ratio"), found.get("ci95")
    return found, (data or {}).get("ci95")


def ratio_table(details: dict) -> dict:
    ratios = {}
    for name, (bench, key, bar, kind) in RATIOS.items():
        value, ci = ratio_of(details.get(bench), key)
        ok = None
        if value is not None and bar is not None:
            ok = value <= bar if kind == "max" else bool(value >= bar and ci and ci[0] > 1.0)
        verdict = None if not ci else ("no measurable difference" if ci[0] <= 1.0 <= ci[1] else
                                       "above 1" if ci[0] > 1.0 else "below 1")
        ratios[name] = {"value": value, "ci95": ci, "interval": verdict,
                        "bar": None if bar is None else f"{'>=' if kind == 'min' else '<='} {bar}", "meets_bar": ok}
    return ratios


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats; reuse the last round benchmark")
    parser.add_argument("--only", nargs="*", default=None, help="run only these benchmarks")
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    details, timings = {}, {}
    for name, (script, full, quick) in BENCHMARKS.items():
        if args.only and name not in args.only:
            continue
        chosen = quick if args.quick else full
        data, seconds, tail = run_benchmark(script, chosen)
        details[name], timings[name] = data, round(seconds, 1)
        if data is not None:  # each figure's own JSON, with where and how it was measured
            (RESULTS / f"{name}.json").write_text(json.dumps(
                {**provenance(["python", f"benchmarks/{script}", *chosen]), "seconds": round(seconds, 1),
                 "result": data}, indent=2, default=str))
        print(f"{name:<20} {seconds:7.1f} s  {tail}", flush=True)
    report = {**provenance(["python", "benchmarks/run_all.py", *(["--quick"] if args.quick else [])]),
              "quick": args.quick, "total_seconds": round(sum(timings.values()), 1),
              "ratios": ratio_table(details), "rounds": round_figures(args.quick),
              "mfu": details.get("training_mfu"), "seconds": timings, "details": details}
    print("\nratio                      value   95% interval      bar       meets")
    for name, r in report["ratios"].items():
        value = "n/a" if r["value"] is None else f"{r['value']:.3f}"
        ci = "" if not r["ci95"] else f"[{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}]"
        print(f"{name:<26} {value:>7}   {ci:<16}  {r['bar'] or '-':<9} {r['meets_bar']}  {r['interval'] or ''}")
    rounds = report["rounds"]
    print(f"iterate --round 3: {rounds.get('iterate_round3_s')} s, peak {rounds.get('iterate_round3_peak_gb')} GB"
          f"  ({rounds.get('source') or rounds.get('note')})")
    stamp = datetime.date.today().isoformat()
    for path in (RESULTS / f"{stamp}.json", RESULTS / "latest.json"):
        path.write_text(json.dumps(report, indent=2, default=str))
    print(f"saved {RESULTS / 'latest.json'}")
    return 0 if all(r["meets_bar"] for r in report["ratios"].values() if r["meets_bar"] is not None) else 1


if __name__ == "__main__":
    sys.exit(main())
