"""The four post-training systems on one harness: `afm-align iterate --system S --round 3` for AFM, Llama 3.1,
Qwen2 and Gemma 2, from the same base, round-0 SFT member, prompts, families and dev/test problems.

For each pipeline seed (`--seeds N`: 0..N-1) it runs round 0 once (base model, the run's fixed datasets, r0-sft,
its dev and test scores), copies that run once per system, and continues each copy to round `--round` with
`--system S` as its own process (wall time and the process's peak memory measured, as
`benchmarks/iterate_round3.py` does). Then it reads what the evaluation protocol allows: after each round, the
member the promotion leaves on top (chosen on **dev**) and its **test** accuracy per domain and mean; at the last
round, its paired test gain over r0-sft with the cluster-bootstrap interval. Over seeds: mean, per seed and a 95%
t-interval. Writes the JSON (`benchmarks/results/systems.json`), a round-by-round plot of the test mean
(`benchmarks/results/systems.png`) and, with `--write-readme`, the README section between
`<!-- systems:start -->` and `<!-- systems:end -->` (`--check` fails when the README differs from the JSON).

Scale: `--scale quick` (the default) runs every system at a smaller round than configs/tiny/iterate.yaml (fewer
prompts per round, dev/test problems and RM pairs; `QUICK`), so that four systems x three rounds x three seeds fit
in about an hour and a half on 2 cores; `--scale full` runs the preset as it is. `--base DIR` starts every seed from
one pre-trained base (then the seed changes everything after pre-training); without it each seed pre-trains its own.
The open-ended gold score is not summarised (each run's round reports hold it).

Run: `python benchmarks/systems.py --seeds 3 --keep DIR [--base DIR] [--scale quick|full] [--write-readme]`;
`python benchmarks/systems.py --from-json --write-readme` (tables and plot again from the JSON, nothing run);
`python benchmarks/systems.py --check`.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
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

from iterate_round3 import WRAP, matmul_gflops, outcome, stage_seconds  # noqa: E402

SYSTEMS = ("afm", "llama3.1", "qwen2", "gemma2")
LABELS = {"afm": "AFM", "llama3.1": "Llama 3.1", "qwen2": "Qwen2", "gemma2": "Gemma 2"}
# the quick scale: every system's rounds at the same smaller size (iterate.yaml when the table below was measured:
# 150 prompts a family a round, 200 dev + 200 test problems a family, 500 fresh synthetic RM pairs a round; the
# SFT and distillation members on the round's prompts only, as iterate.yaml's later sft_prompts_per_round 300 and
# sft_prompts_by_family are not)
QUICK = ["prompts_per_round=60", "eval_prompts=100", "rm_round_pairs=200", "rm_eval_pairs=100", "sft_items=200",
         "sft_prompts_per_round=0", "sft_prompts_by_family.tool=0", "sft_prompts_by_family.code=0"]
README = HERE.parent / "README.md"
START, END = "<!-- systems:start -->", "<!-- systems:end -->"
DEFAULT_JSON = HERE / "results" / "systems.json"


def scale_overrides(scale: str) -> list[str]:
    return QUICK if scale == "quick" else []


def round0(seed: int, root: Path, base: Path | None, overrides: list[str]) -> tuple[Path, float]:
    """Round 0 of seed `seed` in `root/round0` (its base copied from `base` when given); (run dir, seconds)."""
    run = root / "round0"
    if (run / "round_0" / "manifest.json").is_file() and _round_done(run, 0):  # made before: its stages' seconds
        stages = json.loads((run / "round_0" / "manifest.json").read_text())["stages"]
        return run, sum(rec.get("seconds") or 0.0 for name, rec in stages.items() if name != "base")
    if base is not None and not (run / "base" / "config.json").is_file():
        shutil.copytree(base, run / "base")
    code = ("import sys; from committee.round_config import load; from committee.run_checks import check_run; "
            "from committee.rounds import run_round; import torch, os; "
            "cfg = load('tiny', None, sys.argv[1:]); run = check_run(cfg, 1); "
            "os.environ['AFM_ALIGN_THREADS'] = str(cfg.threads); torch.set_num_threads(cfg.threads); "
            "run.ensure(); run_round(cfg, run, 0)")
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, f"run={run}", f"seed={seed}", *overrides], cwd=HERE.parent,
                          env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        print("\n".join(proc.stdout.splitlines()[-30:]))
        raise RuntimeError(f"seed {seed}: round 0 failed with exit code {proc.returncode}")
    return run, time.perf_counter() - start


def _env() -> dict:
    return {**os.environ, "AFM_ALIGN_QUIET": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}


def _round_done(run: Path, n: int) -> bool:
    file = run / f"round_{n}" / "manifest.json"
    if not file.is_file():
        return False
    stages = json.loads(file.read_text())["stages"]
    return bool(stages) and "report" in stages and all(r.get("status") == "done" for r in stages.values())


def curve(run: Path, rounds: int) -> list[dict]:
    """After each round 0..N: the member on top by dev and its test mean and per-domain accuracy."""
    from afm_align.rundir import RunDir
    from committee.report_eval import read_test

    r0 = next(e for e in read_test(RunDir(run), 0) if e["member"] == "r0-sft")
    points = [{"round": 0, "member": "r0-sft", "test_mean": r0["test"]["mean"], "test": r0["test"]}]
    for n in range(1, rounds + 1):
        out = outcome(run, n)
        points.append({"round": n, "member": out["member"], "test_mean": out["test_mean"],
                       "test": {**out["test_per_domain"], "mean": out["test_mean"]}})
    return points


def run_system(system: str, seed: int, args, r0_run: Path, root: Path) -> dict:
    """One system for one seed: round 0 copied from `r0_run`, rounds 1..N in a child process."""
    name = system.replace(".", "_")
    run = root / name
    reused = _round_done(run, args.round)
    if not reused:
        if run.exists():
            shutil.rmtree(run)  # an unfinished copy this script made: started again from round 0's copy
        shutil.copytree(r0_run, run, symlinks=True)
        cmd = [sys.executable, "-m", "afm_align.cli", "iterate", "--round", str(args.round), "--run", str(run),
               "--system", system, f"seed={seed}", *scale_overrides(args.scale), *args.overrides]
        print(f"seed {seed} {system}: {' '.join(cmd[3:])}", flush=True)
        peak_file = root / f".peak-{name}"
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", WRAP, str(peak_file), *cmd], cwd=HERE.parent, env=_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        minutes = (time.perf_counter() - start) / 60
        if proc.returncode != 0:
            print("\n".join(proc.stdout.splitlines()[-30:]))
            raise RuntimeError(f"seed {seed} {system}: iterate failed with exit code {proc.returncode}")
        (run / "benchmark_timing.json").write_text(json.dumps(
            {"minutes": round(minutes, 2), "peak_gb": round(int(peak_file.read_text()) / 1024 ** 2, 2)}))
    timing = json.loads((run / "benchmark_timing.json").read_text())
    out = outcome(run, args.round)
    result = {"system": system, "seed": seed, **timing, "reused": reused, "member": out["member"], "test_mean": out["test_mean"],
              "test_ci95": out["test_ci95"], "test_per_domain": out["test_per_domain"],
              "r0_sft_test": out["r0_sft_test"], "test_gain": out["test_gain"], "test_gain_ci95": out["test_gain_ci95"],
              "dev_mean": out["dev_mean"], "curve": curve(run, args.round),
              "stages": {k: v for k, v in stage_seconds(run, args.round).items() if not k.startswith("round_0/")}}
    print(f"seed {seed} {system}: {timing['minutes']:.1f} min, peak {timing['peak_gb']} GB; {out['member']} test "
          f"{out['test_mean']:.3f} ({100 * out['test_gain']:+.1f} points over r0-sft "
          f"{[round(100 * x, 1) for x in out['test_gain_ci95']]})", flush=True)
    return result


def summarise(per_run: list[dict], systems: list[str], rounds: int) -> dict:
    """Per system over seeds: test mean, gain (mean, per seed, t-interval), per-domain means, curve, time, memory."""
    from committee.eval_stats import seed_interval

    out = {}
    for system in systems:
        runs = [r for r in per_run if r["system"] == system]
        gains = [r["test_gain"] for r in runs]
        domains = sorted(runs[0]["test_per_domain"])
        out[system] = {
            "seeds": [r["seed"] for r in runs],
            "test_mean": round(statistics.mean(r["test_mean"] for r in runs), 4),
            "r0_sft_test_mean": round(statistics.mean(r["r0_sft_test"]["mean"] for r in runs), 4),
            "test_gain_points": {"mean": round(100 * statistics.mean(gains), 2),
                                 "per_seed": [round(100 * g, 2) for g in gains],
                                 "ci95": [round(100 * x, 2) for x in seed_interval(gains)] if len(gains) > 1 else None},
            "per_domain_test": {d: round(statistics.mean(r["test_per_domain"][d] for r in runs), 4) for d in domains},
            "curve_test_mean": [round(statistics.mean(r["curve"][n]["test_mean"] for r in runs), 4)
                                for n in range(rounds + 1)],
            "curve_per_seed": [[round(r["curve"][n]["test_mean"], 4) for n in range(rounds + 1)] for r in runs],
            "minutes": [r["minutes"] for r in runs], "peak_gb": [r["peak_gb"] for r in runs],
            "members": [r["member"] for r in runs],
        }
    return out


# ---- plot and README ------------------------------------------------------------------------------------

def plot(result: dict, path: Path) -> None:
    """Test mean after each round, one line per system (mean over seeds), each seed's run as faint lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for i, (system, s) in enumerate(result["systems"].items()):
        color = f"C{i}"
        rounds = list(range(len(s["curve_test_mean"])))
        for seed_curve in s["curve_per_seed"]:
            ax.plot(rounds, [100 * v for v in seed_curve], color=color, alpha=0.25, linewidth=1)
        ax.plot(rounds, [100 * v for v in s["curve_test_mean"]], color=color, marker="o", linewidth=2,
                label=LABELS.get(system, system))
    ax.set_xlabel("round (0 = the shared r0-sft)")
    ax.set_xticks(rounds)
    ax.set_ylabel("test accuracy, mean over domains (%)")
    ax.set_title(f"Four post-training systems, tiny preset ({result['scale']} scale), {len(result['seeds'])} seeds")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _pts(values) -> str:
    return "[" + ", ".join(f"{v:+.1f}" for v in values) + "]" if values else "n/a"


def readme_section(result: dict) -> str:
    """The README block, generated from the JSON alone."""
    systems = result["systems"]
    domains = sorted({d for s in systems.values() for d in s["per_domain_test"]})
    lines = [START, "",
             f"Measured {result['date']} at commit {result['commit'][:10]} (`{result['command']}`), "
             f"{len(result['seeds'])} pipeline seeds, {result['scale']} scale; 2-thread fp32 matmul peak "
             f"{result['matmul_gflops_before']} GFLOP/s before and {result['matmul_gflops_after']} after the runs. "
             f"Test split (problems disjoint from all training data), the member on top after round "
             f"{result['round']} chosen on dev; gain = paired test difference to the shared r0-sft, mean over seeds "
             f"[95% t-interval over seeds].", "",
             "| system | test mean, round 0 -> " + str(result["round"]) + " | gain, points [95% CI over seeds] | "
             "per seed | " + " | ".join(domains) + f" | minutes per run (rounds 1-{result['round']}) | peak GB |",
             "|---|---|---|---|" + "---|" * len(domains) + "---|---|"]
    for system, s in systems.items():
        g = s["test_gain_points"]
        lines.append(
            f"| {LABELS.get(system, system)} | {s['r0_sft_test_mean']:.3f} -> {s['test_mean']:.3f} | "
            f"{g['mean']:+.1f} {_pts(g['ci95'])} | {', '.join(f'{v:+.1f}' for v in g['per_seed'])} | "
            + " | ".join(f"{s['per_domain_test'][d]:.3f}" for d in domains)
            + f" | {', '.join(f'{m:.1f}' for m in s['minutes'])} | {max(s['peak_gb']):.2f} |")
    lines += ["", f"![test accuracy after each round, per system]({result['plot']})", "",
              f"Shared per seed (not in the minutes above): base pre-training ({result['base_note']}) and round 0 "
              f"({', '.join(f'{m:.1f}' for m in result['round0_minutes'])} min); {result.get('teacher_note', '')}. "
              f"Open-ended gold score: {result['gold_note']}", "", END]
    return "\n".join(lines)


def write_readme(result: dict) -> None:
    text = README.read_text(encoding="utf-8")
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    README.write_text(head + readme_section(result) + tail, encoding="utf-8")


def check_readme(result: dict) -> bool:
    text = README.read_text(encoding="utf-8")
    start, end = text.find(START), text.find(END)
    return start >= 0 and end > start and text[start:end + len(END)] == readme_section(result)


# ---- main ---------------------------------------------------------------------------------------------------

def measure(args) -> dict:
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = [s for s in systems if s not in SYSTEMS]
    if unknown:
        raise SystemExit(f"systems.py: unknown system '{unknown[0]}'; systems are: {', '.join(SYSTEMS)}")
    before = matmul_gflops()
    print(f"machine: 2-thread fp32 matmul peak {before} GFLOP/s (budgets assume ~200)", flush=True)
    runs = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="afm-systems-"))
    base = Path(args.base).resolve() if args.base else None
    per_run, r0_minutes = [], []
    for seed in range(args.seeds):
        root = runs / f"seed{seed}"
        root.mkdir(parents=True, exist_ok=True)
        r0_run, seconds = round0(seed, root, base, [*scale_overrides(args.scale), *args.overrides])
        r0_minutes.append(round(seconds / 60, 2))
        per_run += [run_system(system, seed, args, r0_run, root) for system in systems]
    after = matmul_gflops()
    earlier = json.loads(Path(args.json).read_text()) if Path(args.json).is_file() else {}
    if all(r.get("reused") for r in per_run) and earlier.get("matmul_gflops_before"):
        # nothing ran now: the machine's peak that matters is the one measured when the runs were made
        before, after = earlier["matmul_gflops_before"], earlier["matmul_gflops_after"]
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=HERE.parent, capture_output=True, text=True).stdout.strip()
    command = (f"python benchmarks/systems.py --seeds {args.seeds} --round {args.round} --scale {args.scale}"
               + (" --base DIR" if base else "") + "".join(f" {o}" for o in args.overrides))
    return {"benchmark": "systems", "date": datetime.now().isoformat(timespec="seconds"), "commit": commit,
            "command": command, "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
            "matmul_gflops_before": before, "matmul_gflops_after": after, "scale": args.scale,
            "scale_overrides": scale_overrides(args.scale), "round": args.round, "seeds": list(range(args.seeds)),
            "base_note": (f"one base for every seed, {base.name} of `afm-align init` seed 0, built before the runs"
                          if base else "each seed its own, inside round 0"),
            "round0_minutes": r0_minutes,
            "teacher_note": "each Gemma 2 run builds its own teacher (in its minutes)",
            "gold_note": "not summarised here: each run's round reports hold the open-ended domains' gold "
                         "(`test_gold` in eval/test_leaderboard.json).",
            "plot": "benchmarks/results/systems.png",
            "protocol": "promotion on dev, report on test (problem-disjoint splits); gain = paired test difference",
            "systems": summarise(per_run, systems, args.round), "per_run": per_run}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="pipeline seeds 0..N-1 (default 3)")
    parser.add_argument("--round", type=int, default=3)
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated, default: all four")
    parser.add_argument("--scale", choices=("quick", "full"), default="quick")
    parser.add_argument("--base", default=None, help="a pre-trained base directory every seed starts from")
    parser.add_argument("--keep", default=None, help="runs folder to keep (default: a temporary one); a system "
                        "whose run in it already finished is read, not run again")
    parser.add_argument("--json", default=str(DEFAULT_JSON))
    parser.add_argument("--from-json", action="store_true", help="no runs: tables and plot from --json")
    parser.add_argument("--write-readme", action="store_true")
    parser.add_argument("--check", action="store_true", help="exit 1 when the README section differs from --json")
    parser.add_argument("overrides", nargs="*", metavar="key=value")
    args = parser.parse_args()
    if args.seeds < 1 or args.round < 1:
        parser.error("--seeds and --round must be at least 1")
    if args.check:
        ok = check_readme(json.loads(Path(args.json).read_text()))
        print("README systems section matches the JSON" if ok else "README systems section differs from the JSON: "
              "run python benchmarks/systems.py --from-json --write-readme")
        return 0 if ok else 1
    if args.from_json:
        result = json.loads(Path(args.json).read_text())
    else:
        result = measure(args)
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2))
        print(f"saved {args.json}")
    plot(result, HERE.parent / result["plot"])
    print(readme_section(result))
    if args.write_readme:
        write_readme(result)
        print(f"wrote the systems section of {README}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
