"""The on-device track on the tiny preset, timed, and its README table.

It runs `afm-align on-device --run on_device_bench` in a fresh runs folder (its own process, so its peak memory
is its own), prints the machine's 2-thread fp32 matmul peak beside the wall time (the track's budget, 20
minutes, is for a ~200 GFLOP/s machine: `scaled_minutes` = minutes x peak / 200), and writes:
- `benchmarks/results/on_device.json`: provenance (date, commit, machine, command), wall minutes, peak memory,
  and the track's tables and claims as data (`committee.on_device_report`);
- with `--write-readme`, the README section between `<!-- on-device:start -->` and `<!-- on-device:end -->`
  (`--check` exits 1 when the README differs from the JSON; a test runs it).
The matmul peak is measured before and after the run (it drifts on a shared machine) and the mean scales.
`--from-json` recomputes the tables and claims from the committed JSON's measured results (nothing is re-run)
and regenerates the README section.

Run: `python benchmarks/on_device.py [--keep DIR] [--write-readme] [key=value ...]` (about 15 minutes on 2 cores).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(1, str(HERE))
JSON = HERE / "results" / "on_device.json"
README = ROOT / "README.md"
START, END = "<!-- on-device:start -->", "<!-- on-device:end -->"
BUDGET_MINUTES, REFERENCE_GFLOPS = 20.0, 200.0

from iterate_round3 import WRAP  # noqa: E402 - the wrapper that reports a child process's own peak memory


def run_track(keep: Path | None, overrides: list[str]) -> tuple[Path, float, float]:
    """(track folder, wall minutes, peak GB) of one `afm-align on-device` process."""
    runs = keep or Path(tempfile.mkdtemp(prefix="afm-on-device-"))
    runs.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "afm_align.cli", "on-device", "--run", "on_device_bench", *overrides]
    env = {**os.environ, "AFM_ALIGN_RUNS": str(runs), "AFM_ALIGN_QUIET": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    peak_file = runs / ".peak"
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", WRAP, str(peak_file), *cmd], env=env, cwd=ROOT, check=False)
    minutes = (time.perf_counter() - start) / 60
    if proc.returncode:
        raise SystemExit(f"on-device failed with exit code {proc.returncode}")
    return runs / "on_device_bench" / "on_device", minutes, int(peak_file.read_text()) / 1024 ** 2


def package(track: Path, minutes: float, peak_gb: float, gflops: float, command: str, source: str) -> dict:
    """The JSON of one measured track."""
    results = json.loads((track / "results.json").read_text())
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True,
                           text=True).stdout.strip()
    commit += "-dirty" if dirty else ""  # measured on uncommitted changes: say so
    scaled = round(minutes * gflops / REFERENCE_GFLOPS, 2)
    return {"date": datetime.now().isoformat(timespec="seconds"), "commit": commit, "command": command,
            "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "matmul_gflops_2_threads": gflops},
            "timing_source": source, "wall_minutes": round(minutes, 2), "scaled_minutes_at_200_gflops": scaled,
            "budget_minutes": BUDGET_MINUTES, "budget_met": scaled <= BUDGET_MINUTES, "peak_gb": round(peak_gb, 2),
            "step_seconds": results["seconds"], **derived(results), "serving": results["serving"],
            "summarize_task_rows": results.get("summarize_task_rows"), "results": results}


def derived(results: dict) -> dict:
    """The tables and claims computed from the track's results (`committee.on_device_report`)."""
    from committee.on_device_report import claims, quant_rows, student_rows, task_rows

    return {"quant_rows": quant_rows(results), "student_rows": student_rows(results), "task_rows": task_rows(results),
            "claims": claims(results)["claims"]}


def readme_text(data: dict) -> str:
    """The README section: a provenance line, then the track's tables (from the packaged results)."""
    from committee.on_device_report import markdown

    head = (f"Measured {data['date'][:10]} at commit {data['commit']} with `{data['command']}`: "
            f"{data['wall_minutes']:.1f} min wall ({data['scaled_minutes_at_200_gflops']:.1f} min scaled to a "
            f"200 GFLOP/s machine; this one's 2-thread fp32 matmul peak: {data['machine']['matmul_gflops_2_threads']} "
            f"GFLOP/s; budget {data['budget_minutes']:.0f} min: {'met' if data['budget_met'] else 'not met'}), "
            f"peak memory {data['peak_gb']:.2f} GB. Test split; adapters and students: mean [min, max] over seeds.")
    return head + "\n\n" + markdown(data["results"]).strip()


def section(text: str) -> str:
    return text[text.index(START) + len(START):text.index(END)].strip("\n")


def measured_peak() -> float:
    """The machine's 2-thread fp32 matmul peak now (GFLOP/s), printed."""
    from iterate_round3 import matmul_gflops  # the one peak measurement of the benchmarks

    gflops = matmul_gflops()
    print(f"matmul peak (fp32, 2 threads): {gflops} GFLOP/s", flush=True)
    return gflops


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, default=None, help="runs folder to keep (default: a temp folder)")
    parser.add_argument("--write-readme", action="store_true", help="replace the README section from the JSON")
    parser.add_argument("--check", action="store_true", help="exit 1 when the README section differs from the JSON")
    parser.add_argument("--from-json", action="store_true", help="only regenerate the README section from the JSON")
    parser.add_argument("overrides", nargs="*", metavar="key=value")
    args = parser.parse_args()
    if args.check:
        data = json.loads(JSON.read_text())
    elif args.from_json:  # derived tables and claims recomputed from the measured results (nothing re-measured)
        data = json.loads(JSON.read_text())
        data.update(derived(data["results"]))
        JSON.write_text(json.dumps(data, indent=1) + "\n")
    else:
        before = measured_peak()
        track, minutes, peak = run_track(args.keep, args.overrides)
        after = measured_peak()  # the peak drifts on a shared machine: measured on both sides, the mean scales
        command = "afm-align on-device" + "".join(f" {o}" for o in args.overrides)
        data = package(track, minutes, peak, round((before + after) / 2, 1), command,
                       "this script: wall time of the afm-align process and its peak RSS (RUSAGE_CHILDREN)")
        data["machine"]["matmul_gflops_before_after"] = [before, after]
        JSON.write_text(json.dumps(data, indent=1) + "\n")
        print(f"on-device track: {minutes:.1f} min ({data['scaled_minutes_at_200_gflops']:.1f} scaled), "
              f"peak {peak:.2f} GB; wrote {JSON}")
    generated = readme_text(data)
    text = README.read_text(encoding="utf-8")
    if args.check:
        same = section(text) == generated
        print("README on-device section matches the JSON" if same else "README on-device section differs: --write-readme")
        return 0 if same else 1
    if args.write_readme:
        start, end = text.index(START) + len(START), text.index(END)
        README.write_text(text[:start] + "\n" + generated + "\n" + text[end:], encoding="utf-8")
    print(generated)
    return 0


if __name__ == "__main__":
    sys.exit(main())
