"""Benchmark: RM loss ablations - {soft labels, hard labels} x {grading regulariser, none} over several seeds.

What it does: builds one synthetic preference dataset (`synth.builders.preference_rows`, `--pairs` pairs,
data seed `--data-seed`; the rows' own split: train pairs train, dev and test pairs are held out), then trains the multi-head RM from the same
backbone (`--base PATH`) under four loss settings:
  - `soft+grading`: soft BTL targets p_l (afm-spec §2.3) and lambda = the preset's `grading_weight`,
  - `soft`: soft targets, lambda = 0 (the grading heads get no gradient),
  - `hard+grading`: p = 1 for every pair, lambda = the preset's,
  - `hard`: p = 1, lambda = 0 (plain Bradley-Terry, TRL's RewardTrainer loss),
each with `--seeds` seeds (the seed changes the heads' initialisation and the data order; the data and the
backbone stay fixed). Every other setting is the tiny preset's `configs/tiny/rm.yaml` plus `key=value`
overrides. It prints held-out pairwise accuracy (overall and on "significantly better" pairs) and ECE as
mean +- std (sample std over seeds) per setting, and writes every run's metrics to `--json FILE`.

What it simplifies: one synthetic dataset (the verifiable corruptions of the synth families, whose levels
and grades are derived from what was corrupted), not human preferences; CPU runs use `--threads` torch
threads (1 by default: the machines are shared). `--epochs` (default 1) replaces the preset's epochs so that
the 12 runs stay short (1,500 pairs, about 30% of them of dev/test problems, 3 seeds, 1 epoch).
The ECE is measured against "chosen wins" (p = 1), so soft targets (p_l < 1) read as under-confident there.

Run: `python benchmarks/rm_ablations.py --base runs/default/base [--pairs 1500] [--seeds 3]
      [--json benchmarks/results/rm_ablations.json] [key=value ...]`
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere in the repo
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("AFM_ALIGN_QUIET", "1")

import torch

HERE = Path(__file__).resolve().parent
# setting name -> (hard_labels, keep the preset's grading weight)
SETTINGS = {
    "soft+grading": (False, True),
    "soft": (False, False),
    "hard+grading": (True, True),
    "hard": (True, False),
}
HEADLINE = {"accuracy": "eval_accuracy", "accuracy_significantly_better": "eval_accuracy_significantly_better",
            "ece": "eval_ece"}


def build_data(pairs: int, data_seed: int, heldout: float):
    """(train Dataset, held-out Dataset) of synthetic preference pairs: the held-out pairs are those of dev and
    test problems (by problem identity, synth.splits), so no held-out problem has a training pair."""
    from reward_model.recipe import split_rows, to_dataset
    from synth.builders import preference_rows

    rows, _ = preference_rows(pairs, data_seed)
    train, held = split_rows(rows, heldout, data_seed)
    if not held:
        raise ValueError(f"--pairs {pairs} gives no held-out pairs; use more pairs")
    return to_dataset(train), to_dataset(held)


def train_one(base: str, cfg, train_ds, held_ds) -> dict:
    """Train one RM from `base` with `cfg` (nothing saved); return its metrics and wall time."""
    from transformers import AutoTokenizer

    from reward_model.model import MultiHeadRewardModel
    from reward_model.trainer import train_reward_model

    torch.manual_seed(cfg.seed)  # the heads' initialisation
    tokenizer = AutoTokenizer.from_pretrained(base, local_files_only=True)
    model = MultiHeadRewardModel.from_backbone(base)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="rm_ablation_") as tmp:
        metrics = train_reward_model(model, tokenizer, train_ds, held_ds,
                                     replace(cfg, out=tmp, save_model=False))
    metrics["wall_s"] = time.perf_counter() - start
    return metrics


def mean_std(values: list[float]) -> tuple[float, float]:
    values = [v for v in values if v is not None]
    if not values:
        return float("nan"), float("nan")
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def summarise(runs: dict[str, list[dict]]) -> dict[str, dict]:
    """Per setting: mean and std over seeds of each headline metric."""
    out = {}
    for name, metrics in runs.items():
        out[name] = {}
        for key, source in HEADLINE.items():
            mean, std = mean_std([m.get(source) for m in metrics])
            out[name][key] = {"mean": mean, "std": std}
    return out


def print_table(summary: dict[str, dict], n_seeds: int) -> None:
    print(f"held-out RM metrics, mean +- std over {n_seeds} seeds")
    print(f"{'setting':<14}{'accuracy':>17}{'sig. better':>17}{'ECE':>17}")
    for name, s in summary.items():
        acc, sig, ece = s["accuracy"], s["accuracy_significantly_better"], s["ece"]
        print(f"{name:<14}{100 * acc['mean']:>9.1f} +- {100 * acc['std']:4.1f}"
              f"{100 * sig['mean']:>9.1f} +- {100 * sig['std']:4.1f}"
              f"{ece['mean']:>10.3f} +- {ece['std']:.3f}")


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1500, help="synthetic preference pairs (train + held-out)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per setting (RM init + data order)")
    parser.add_argument("--base", default=None, help="backbone checkpoint (default: the 'default' run's base)")
    parser.add_argument("--epochs", type=float, default=1.0,
                        help="passes over the training pairs (replaces the preset epochs: keeps 12 runs short)")
    parser.add_argument("--data-seed", type=int, default=0, help="seed of the synthetic data (same for all runs)")
    parser.add_argument("--heldout", type=float, default=0.25,
                        help="held-out share, used only for rows without a split (synthetic rows carry dev/test)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--json", default=str(HERE / "results" / "rm_ablations.json"))
    parser.add_argument("overrides", nargs="*", help="key=value overrides of the tiny RM preset")
    args = parser.parse_args(argv)
    if args.pairs < 20 or args.seeds < 1 or not 0 < args.heldout < 1:
        raise ValueError("--pairs must be at least 20, --seeds at least 1 and --heldout in (0, 1)")
    torch.set_num_threads(args.threads)

    from afm_align.base_model import check_base_dir
    from afm_align.rundir import RunDir
    from reward_model import recipe

    base = str(check_base_dir(args.base or RunDir.named("default").base_model_path()))
    preset = recipe.load("tiny", overrides=[f"epochs={args.epochs}", *args.overrides])
    train_ds, held_ds = build_data(args.pairs, args.data_seed, args.heldout)
    print(f"rm ablations: {len(train_ds)} train / {len(held_ds)} held-out pairs, {args.seeds} seeds, "
          f"{preset.epochs:g} epoch(s), grading_weight {preset.grading_weight}")
    start = time.perf_counter()
    runs: dict[str, list[dict]] = {name: [] for name in SETTINGS}
    for seed in range(args.seeds):  # seed-major order, so an interrupted run still covers every setting
        for name, (hard, grading) in SETTINGS.items():
            cfg = replace(preset, seed=seed, hard_labels=hard,
                          grading_weight=preset.grading_weight if grading else 0.0)
            metrics = train_one(base, cfg, train_ds, held_ds)
            runs[name].append(metrics)
            print(f"  {name:<14} seed {seed}: accuracy {100 * metrics['eval_accuracy']:.1f}%, significantly "
                  f"better {100 * (metrics.get('eval_accuracy_significantly_better') or float('nan')):.1f}% "
                  f"({metrics['wall_s']:.0f} s)", flush=True)
    summary = summarise(runs)
    print_table(summary, args.seeds)
    result = {
        "benchmark": "rm_ablations",
        "config": {"pairs": args.pairs, "seeds": args.seeds, "base": base, "data_seed": args.data_seed,
                   "heldout": args.heldout, "threads": args.threads,
                   "n_train": len(train_ds), "n_heldout": len(held_ds),
                   "preset": {k: v for k, v in asdict(preset).items() if k not in ("data", "out")}},
        "summary": summary,
        "runs": {name: [{k: v for k, v in m.items() if not k.endswith("_confusion")} for m in ms]
                 for name, ms in runs.items()},
        "wall_s": time.perf_counter() - start,
    }
    print(f"rm ablations: {result['wall_s'] / 60:.1f} min")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2, default=float))
    return result


if __name__ == "__main__":
    main()
