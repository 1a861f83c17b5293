"""Run every benchmark, print one table, and save `benchmarks/results/<date>.json` and `results/latest.json`.

Each speed figure is a ratio against a baseline measured in the same run (the machines are shared and
noisy), the median of several repeats; each benchmark script is run as its own process with `--json`, and
its JSON is kept whole under `details`. `ratios` holds the headline ratios with their bars; `rounds` holds
the wall time and peak memory of `afm-align iterate --round 3` on the tiny default.

`--quick` uses fewer repeats. Neither mode re-runs the round benchmark (three 20-minute pipeline runs): both
read the committed `benchmarks/results/iterate_round3.json` written by `benchmarks/iterate_round3.py --seeds 3`
and say when, at which commit and on which machine it was measured.

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
    "mdloo_vs_trl_rloo": ("mdloo_vs_trl_rloo.py", [], ["--repeats", "3", "--steps", "4"]),
    "rm_step_vs_trl": ("rm_step_vs_trl.py", [], ["--repeats", "9"]),
    "rs_generation": ("generation_throughput.py", [], ["--repeats", "3"]),
    "rm_scoring": ("rm_scoring_throughput.py", [], ["--repeats", "3"]),
    "training_mfu": ("training_mfu.py", [], ["--steps", "3"]),
    "sandbox": ("sandbox_throughput.py", [], ["--n", "30"]),
    "label_store": ("label_store_load.py", [], []),
    "synth_families": ("synth_families.py", [], []),
    "cli_startup": ("cli_startup.py", [], ["--repeats", "5"]),
}
ROUND_BENCHMARK = ("iterate_round3.py", "iterate_round3.json")

# ratio name -> (benchmark, key in its JSON, bar, "min" or "max")
RATIOS = {
    "mdloo_vs_trl_rloo": ("mdloo_vs_trl_rloo", "median_paired_ratio", 0.95, "min"),
    "rm_step_vs_trl_reward": ("rm_step_vs_trl", "ratio_ours_over_trl", 1.15, "max"),
    "rs_generation_vs_naive": ("rs_generation", "ratio", 3.0, "min"),
    "rm_scoring_vs_naive": ("rm_scoring", "ratio", 1.5, "min"),
}


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
    minutes, peaks = data.get("minutes") or [], data.get("peak_gb") or []
    return {"iterate_round3_s": round(60 * max(minutes), 1) if minutes else None,
            "iterate_round3_peak_gb": max(peaks) if peaks else None, "per_seed_minutes": minutes,
            "source": f"{name} (slowest of {len(minutes)} pipeline seeds), measured {measured}, commit "
                      f"{str(data.get('commit'))[:10]}, matmul peak {data.get('matmul_gflops')} GFLOP/s"}


def ratio_table(details: dict) -> dict:
    ratios = {}
    for name, (bench, key, bar, kind) in RATIOS.items():
        value = (details.get(bench) or {}).get(key)
        ok = None if value is None else (value >= bar if kind == "min" else value <= bar)
        ratios[name] = {"value": value, "bar": f"{'>=' if kind == 'min' else '<='} {bar}", "meets_bar": ok}
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
        data, seconds, tail = run_benchmark(script, quick if args.quick else full)
        details[name], timings[name] = data, round(seconds, 1)
        print(f"{name:<20} {seconds:7.1f} s  {tail}", flush=True)
    report = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "quick": args.quick,
              "ratios": ratio_table(details), "rounds": round_figures(args.quick),
              "mfu": details.get("training_mfu"), "seconds": timings, "details": details}
    print("\nratio                      value    bar       meets")
    for name, r in report["ratios"].items():
        value = "n/a" if r["value"] is None else f"{r['value']:.3f}"
        print(f"{name:<26} {value:>7}   {r['bar']:<9} {r['meets_bar']}")
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
