"""Recipe: `afm-align rm train` - train the multi-head RM on a preference dataset and report held-out metrics.

Reads top to bottom: load the preference rows (validated by the store) -> split train / held-out (the
rows' own `split`, else a seeded fraction; `min_level` then drops train pairs below it, in `train_reward_model`,
while every held-out pair is scored) -> build the RM on the backbone (`from_checkpoint`, the CLI's
`--base PATH`; else the run's base model), or continue an earlier RM (`init_from=DIR`, as each iTeC round
refreshes its RM) -> train with `MultiHeadRewardTrainer` -> evaluate on held-out pairs -> save model,
tokenizer, `meta.json`, `metrics.jsonl`, the resolved config, atomically (`member_io.staged_dir`: a staging
folder, then one rename; tracker logs, when `report_to` names any, land in `tracking/`) -> print the table.
Under `accelerate launch --num_processes N` every process trains; only the main process publishes and prints.

Run: `afm-align rm train --data DIR --out DIR [--base PATH | --run NAME] [key=value ...]`.
"""
from __future__ import annotations

import json
import random
from dataclasses import replace

from afm_align.config import load_config, save_resolved
from afm_align.errors import UserError
from afm_align.member_io import check_report_to, is_main_process, staged_dir
from afm_align.rundir import RunDir
from afm_align.schema import GRADE_DIMENSIONS, LEVEL_NAMES
from afm_align.tracking import MetricsLog
from reward_model.trainer import RMTrainConfig

WORK_DIR = "work"  # the trainer's own output inside the staging folder (tracker logs); dropped before publishing


def load(preset: str = "tiny", config_file: str | None = None, overrides=()) -> RMTrainConfig:
    """The resolved RM config of a preset plus overrides."""
    return load_config(RMTrainConfig, preset=preset, recipe="rm", config_file=config_file, overrides=overrides)


def split_rows(rows: list[dict], fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    """(train, held out): by the rows' own split when present (every row not `train` is held out: dev and
    test pairs are of problems no training pair has), else a seeded random fraction."""
    held = [r for r in rows if r.get("split") not in (None, "train")]
    if held:
        return [r for r in rows if r.get("split") in (None, "train")], held
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    cut = max(1, int(len(rows) * fraction))
    return [rows[i] for i in order[cut:]], [rows[i] for i in order[:cut]]


def to_dataset(rows: list[dict]):
    """Rows as a `datasets.Dataset` with the columns the trainer reads."""
    from datasets import Dataset

    keep = ("prompt", "chosen", "rejected", "level", "grades_chosen", "grades_rejected")
    return Dataset.from_list([{k: r[k] for k in keep} for r in rows])


def summary(metrics: dict) -> dict:
    """The headline metrics in the documented JSON shape of `rm eval` / `rm train`."""
    return {
        "pairwise_accuracy": metrics.get("accuracy"),
        "pairwise_accuracy_by_level": {k: metrics.get(f"accuracy_{k}") for k in LEVEL_NAMES},
        "grading_accuracy": {d: metrics.get(f"grading_{d}_accuracy") for d in GRADE_DIMENSIONS},
        "grading_majority_baseline": {d: metrics.get(f"grading_{d}_majority_baseline") for d in GRADE_DIMENSIONS},
        "ece": metrics.get("ece"),
        "length_correlation": metrics.get("length_correlation"),
        "n_pairs": metrics.get("n_pairs"),
    }


def print_table(s: dict) -> None:
    """A readable table of the headline metrics."""
    fmt = lambda v: "  n/a" if v is None else f"{100 * v:5.1f}%"  # noqa: E731
    print(f"pairwise accuracy      {fmt(s['pairwise_accuracy'])}   ({s['n_pairs']} held-out pairs)")
    for level in reversed(LEVEL_NAMES):
        print(f"  {level:<21}{fmt(s['pairwise_accuracy_by_level'][level])}")
    print("grading head           accuracy  majority baseline")
    for dim in GRADE_DIMENSIONS:
        print(f"  {dim:<21}{fmt(s['grading_accuracy'][dim])}    {fmt(s['grading_majority_baseline'][dim])}")
    ece, corr = s["ece"], s["length_correlation"]
    print(f"calibration (ECE)      {'n/a' if ece is None else f'{ece:.3f}'}")
    print(f"reward-length corr.    {'n/a' if corr is None else f'{corr:+.3f}'}")


def load_init(path: str, copy_ngram: int = 0):
    """The RM at `path` to continue training from (a refreshed RM keeps what its last round learned); one with
    another `copy_ngram` than the config asks for is a one-line UserError (the channel is part of the model)."""
    import torch

    from reward_model.model import MultiHeadRewardModel, check_rm_dir

    model = MultiHeadRewardModel.from_pretrained(check_rm_dir(path, "init_from"), local_files_only=True,
                                                 dtype=torch.float32)
    if model.config.copy_ngram != copy_ngram:
        raise UserError(f"init_from {path}: that RM was trained with copy_ngram={model.config.copy_ngram}, this "
                        f"config asks for {copy_ngram}; give the same, or train new heads (init_from='')")
    return model


def copy_settings(tokenizer, copy_ngram: int) -> dict:
    """The RM config fields of the exact-match channel (`reward_model.copy_features`); {} when it is off."""
    from reward_model.copy_features import assistant_header

    if copy_ngram < 0:
        raise UserError(f"copy_ngram={copy_ngram}: give 0 (off) or a run length >= 1")
    if not copy_ngram:
        return {}
    turn_start_id, header_len = assistant_header(tokenizer)
    return {"copy_ngram": copy_ngram, "turn_start_id": turn_start_id, "answer_header_len": header_len}


def main(cfg: RMTrainConfig) -> dict:
    """Train, evaluate and save the RM described by `cfg`; returns the headline metrics."""
    import torch
    from transformers import AutoTokenizer

    import reward_model  # noqa: F401  (registers the Auto classes)
    from afm_align.base_model import check_base_dir
    from afm_align.store import read_rows
    from reward_model.model import MultiHeadRewardModel, check_pooling
    from reward_model.trainer import train_reward_model

    if not cfg.data:
        raise UserError("rm train needs --data DIR (a preference dataset folder)")
    check_pooling(cfg.pooling)
    check_report_to(cfg.report_to)  # a tracker that is not installed fails now, not after the data and model load
    rows = read_rows(cfg.data, "preference")
    backbone = check_base_dir(cfg.from_checkpoint or RunDir.named(cfg.run).base_model_path())
    train_rows, held_rows = split_rows(rows, cfg.heldout_fraction, cfg.seed)
    with staged_dir(cfg.out, required="meta.json", drop=WORK_DIR) as staging:
        torch.manual_seed(cfg.seed)
        tokenizer = AutoTokenizer.from_pretrained(backbone, local_files_only=True)
        model = (load_init(cfg.init_from, cfg.copy_ngram) if cfg.init_from
                 else MultiHeadRewardModel.from_backbone(backbone, pooling=cfg.pooling,
                                                         **copy_settings(tokenizer, cfg.copy_ngram)))
        metrics = train_reward_model(model, tokenizer, to_dataset(train_rows), to_dataset(held_rows),
                                     replace(cfg, out=str(staging)), work_dir=staging / WORK_DIR)
        evals = {k[len("eval_"):]: v for k, v in metrics.items() if k.startswith("eval_")}
        headline = summary(evals)
        log = MetricsLog(staging / "metrics.jsonl")
        log.log(event="final", train_loss=metrics["train_loss"], train_steps=metrics["train_steps"],
                dropped_identical=metrics["n_dropped_identical"], kept_min_level=metrics["n_kept_min_level"],
                below_min_level=metrics["n_below_min_level"],
                **{k: v for k, v in headline.items() if not isinstance(v, dict)})
        meta = {"recipe": "rm", "backbone": str(backbone), "init_from": cfg.init_from, "data": str(cfg.data),
                "train_pairs": metrics["n_train_pairs"], "heldout_pairs": len(held_rows),
                "dropped_identical": metrics["n_dropped_identical"],
                "min_level": {"min_level": cfg.min_level, "kept": metrics["n_kept_min_level"],
                              "dropped": metrics["n_below_min_level"]}, "heldout": headline}
        (staging / "meta.json").write_text(json.dumps(meta, indent=2))
        save_resolved(cfg, staging)
    if not is_main_process():  # under accelerate launch only the main process published; it alone reports
        return headline
    if metrics["n_dropped_identical"]:
        print(f"rm train: dropped {metrics['n_dropped_identical']} pairs whose two responses are identical")
    print_table(headline)
    print(f"rm train: saved {cfg.out}")
    return headline
