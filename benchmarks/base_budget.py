"""What the base model's pre-training budget buys: round 0 of `afm-align iterate` under several `init` settings.

The rounds can only sharpen what the base can already write, so this measures the base's side. For each setting
(a list of `recipes.init` overrides on the tiny preset) it runs round 0 of the iterate pipeline for one pipeline
seed (pre-training, the run's data, r0-sft, dev evaluation; the test stage runs but is not read) in its own
process, then reads:
- the base: pre-training seconds, held-out LM loss, greedy exact match on the held-out arithmetic probes;
- r0-sft on **dev** (the split tuning decisions read): accuracy per domain with its Wilson interval, the mean
  over domains with its cluster-bootstrap interval, and the mean hidden gold score of the open-ended families.
It prints a table, writes the JSON and draws one figure (dev accuracy per domain and open-ended gold per
setting, base minutes in the legend). It is a dev comparison of settings for one seed: a setting it favours
still needs the test split over several seeds (`benchmarks/iterate_round3.py --seeds 3 'recipes.init=[...]'`).

A setting whose folder in `--keep DIR` already holds a finished round 0 is read, not run again, after checking
that its base was built with the setting's values (`base/config.yaml`).

Run: `python benchmarks/base_budget.py --keep DIR [--settings default,whole,whole-2x,whole-3x] [--seed 0]`
(a setting takes its base's minutes, 5 to 23 on 2 CPU cores, plus about 1.5 for the rest of round 0). Results:
`benchmarks/results/base_budget.json` and `.png`.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from iterate_round3 import base_mismatch, matmul_gflops  # noqa: E402 - the round benchmark's peak and base check

WHOLE = ["chat_seq_len=384", "chat_groups=4"]  # whole tool conversations in pre-training, rows grouped by length
SETTINGS = {
    "default": [],
    "whole": WHOLE,
    "whole-2x": [*WHOLE, "steps=3000"],
    "whole-3x": [*WHOLE, "steps=4500"],
}
# what the `afm-align` entry point sets before it imports anything (afm_align.cli), so timings compare with it
CLI_ENV = {"HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
# round 0 of the pipeline, the way `iterate` runs it (committee.rounds.iterate), stopped before round 1
ROUND0 = """
import json, os, sys, torch
from committee.round_config import check_recipe_keys, load
from committee.rounds import run_round
from committee.run_checks import check_run
cfg = load("tiny", overrides=json.loads(sys.argv[1]))
check_recipe_keys(cfg)
run = check_run(cfg, 1)
os.environ["AFM_ALIGN_THREADS"] = str(cfg.threads)
torch.set_num_threads(cfg.threads)
run.ensure()
run_round(cfg, run, 0)
"""


def overrides_of(init: list[str], name: str, seed: int) -> list[str]:
    return [f"run={name}", f"seed={seed}", *([f"recipes.init=[{','.join(init)}]"] if init else [])]


def round0_done(run: Path) -> bool:
    path = run / "round_0" / "manifest.json"
    return path.exists() and json.loads(path.read_text())["stages"].get("eval", {}).get("status") == "done"


def check_run_matches(run: Path, init: list[str], seed: int) -> None:
    """A kept run is reused only when its base was pre-trained with the setting's values and its round 0 has the
    seed and the fixed data settings this benchmark asks for (committee.run_checks.RUN_FIXED)."""
    from afm_align import init_base
    from afm_align.config import config_dict
    from committee.round_config import load
    from committee.run_checks import RUN_FIXED, changed_setting, recorded_setting

    wanted = init_base.load("tiny", overrides=init)
    differs = base_mismatch(run, wanted, ("steps", "chat_seq_len", "chat_groups", "isolate_spaces", "learning_rate",
                                          "batch_size", "optimizer", "family_counts"))
    if differs is not None:
        key, has = differs
        raise SystemExit(f"{run}: its base has {key}={has!r}, the setting wants {getattr(wanted, key)!r}; "
                         f"use another --keep folder")
    recorded = json.loads((run / "round_0" / "manifest.json").read_text())["config"]
    now = config_dict(load("tiny", overrides=[f"seed={seed}"]))
    key = changed_setting(recorded, now, RUN_FIXED)
    if key is not None:
        raise SystemExit(f"{run}: its round 0 has {key}={recorded_setting(recorded, key)!r}, this benchmark wants "
                         f"{now[key]!r}; use another --keep folder")


def run_setting(name: str, init: list[str], seed: int, keep: Path) -> tuple[float | None, float | None]:
    """Round 0 of the setting in its own process: (wall seconds, the matmul peak measured just before it), or
    (None, None) when a finished run was reused."""
    run = keep / name
    if round0_done(run):
        check_run_matches(run, init, seed)
        print(f"{name}: reusing the finished round 0 in {run}", flush=True)
        return None, None
    peak = matmul_gflops()
    env = {**os.environ, "AFM_ALIGN_RUNS": str(keep), "AFM_ALIGN_QUIET": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1",
           **CLI_ENV}
    print(f"{name}: round 0 with recipes.init={init}", flush=True)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", ROUND0, json.dumps(overrides_of(init, name, seed))], env=env,
                          cwd=HERE.parent, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
    if proc.returncode != 0:
        print("\n".join(proc.stdout.splitlines()[-30:]))
        raise SystemExit(f"{name}: round 0 failed with exit code {proc.returncode}")
    return time.perf_counter() - start, peak


def read_setting(run: Path) -> dict:
    """The base's report and r0-sft's dev scores of a finished round 0."""
    meta = json.loads((run / "base" / "meta.json").read_text())
    board = json.loads((run / "round_0" / "eval" / "leaderboard.json").read_text())
    sft = next(e for e in board if e["member"] == "r0-sft")
    return {"base_seconds": meta["train_seconds"], "base_threads": meta.get("threads"),
            "heldout_lm_loss": meta["heldout_lm_loss"], "probe_exact_match": meta["probe_exact_match"],
            "dev_mean": sft["dev"]["mean"], "dev_mean_ci95": sft["dev_ci95"],
            "dev": {d: {"accuracy": v["accuracy"], "ci95": v["ci95"], "n": v["n"]}
                    for d, v in sft["dev_domains"].items()},
            "dev_gold": {d: {"mean": g["mean"], "ci95": g["ci95"]} for d, g in (sft.get("dev_gold") or {}).items()}}


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    domains = list(next(iter(results.values()))["dev"])
    golds = list(next(iter(results.values()))["dev_gold"])
    fig, (acc, gold) = plt.subplots(1, 2, figsize=(12, 4.2), gridspec_kw={"width_ratios": [3, 1]})
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        r = results[name]
        label = f"{name} (base {r['base_seconds'] / 60:.1f} min)"
        xs = [j + i * width for j in range(len(domains))]
        vals = [r["dev"][d]["accuracy"] for d in domains]
        errs = [[max(0.0, v - r["dev"][d]["ci95"][0]) for d, v in zip(domains, vals)],
                [max(0.0, r["dev"][d]["ci95"][1] - v) for d, v in zip(domains, vals)]]
        acc.bar(xs, vals, width, yerr=errs, capsize=2, label=label)
        means = [r["dev_gold"][g]["mean"] for g in golds]
        gold.bar([j + i * width for j in range(len(golds))], means, width, capsize=2,
                 yerr=[[max(0.0, m - r["dev_gold"][g]["ci95"][0]) for g, m in zip(golds, means)],
                       [max(0.0, r["dev_gold"][g]["ci95"][1] - m) for g, m in zip(golds, means)]])
    acc.set_xticks([j + 0.4 - width / 2 for j in range(len(domains))], domains)
    acc.set_ylabel("r0-sft dev accuracy (Wilson 95%)")
    acc.legend(fontsize=8)
    gold.set_xticks([j + 0.4 - width / 2 for j in range(len(golds))], golds)
    gold.set_ylabel("r0-sft dev mean hidden gold (95%)")
    fig.suptitle("What the base's pre-training budget buys (round 0, one pipeline seed, dev split)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", default=",".join(SETTINGS), help=f"some of {', '.join(SETTINGS)}")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", required=True, help="folder of the runs (a finished setting is reused)")
    parser.add_argument("--json", default=str(HERE / "results" / "base_budget.json"))
    args = parser.parse_args()
    names = [s for s in args.settings.split(",") if s]
    unknown = [s for s in names if s not in SETTINGS]
    if unknown or not names:
        parser.error(f"unknown setting(s) {', '.join(unknown) or '(none)'}; settings are: {', '.join(SETTINGS)}")
    peak = matmul_gflops()
    print(f"2-thread fp32 matmul peak: {peak} GFLOP/s (reference machine: ~200)", flush=True)
    keep = Path(args.keep).resolve()
    keep.mkdir(parents=True, exist_ok=True)
    results = {}
    for name in names:
        seconds, setting_peak = run_setting(name, SETTINGS[name], args.seed, keep)
        results[name] = {"init": SETTINGS[name], "round0_wall_seconds": round(seconds, 1) if seconds else None,
                         "matmul_gflops_before": setting_peak, **read_setting(keep / name)}
        r = results[name]
        print(f"{name:>9}: base {r['base_seconds'] / 60:4.1f} min, probes {100 * r['probe_exact_match']:3.0f}%, "
              f"r0-sft dev mean {r['dev_mean']:.3f} | " + " ".join(f"{d} {v['accuracy']:.2f}"
                                                               for d, v in r["dev"].items())
              + " | gold " + " ".join(f"{d} {g['mean']:.3f}" for d, g in r["dev_gold"].items()), flush=True)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=HERE.parent, capture_output=True, text=True).stdout
    out.write_text(json.dumps({"benchmark": "base_budget", "date": datetime.now().isoformat(timespec="seconds"),
                               "commit": commit.strip(), "command": " ".join(sys.argv), "seed": args.seed,
                               "split": "dev", "matmul_gflops": peak,
                               "timing_source": "base_seconds: the run's base/meta.json (a reused run's were "
                                                "measured when it ran, at that time's peak; matmul_gflops_before: "
                                                "measured just before a setting this invocation ran)",
                               "results": results}, indent=1))
    plot(results, out.with_suffix(".png"))
    print(f"wrote {out} and {out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
