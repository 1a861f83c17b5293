"""The member directory contract, and the steps every training recipe shares to produce one.

A member is a trained policy checkpoint that can sit on the committee. Its directory holds:

```
members/<member>/
  config.json, model.safetensors, generation_config.json   save_pretrained of a plain causal LM
  tokenizer.json, tokenizer_config.json, ...               tokenizer.save_pretrained (chat template kept)
  meta.json              what the member is (fields below)
  recipe_config.yaml     the resolved recipe config (afm_align.config.save_resolved)
  metrics.jsonl          the training log (one JSON object a line; the trainer's log history and the
                         recipe's own records, e.g. checkpoint-selection scores)
```
`meta.json` fields: `member` (name), `recipe` (sft / rs / dpo / ipo / ...), `round`, `from_checkpoint`,
`data` and `data_hash` (the dataset folder and its manifest content hash), `lora_rank` (adapters are
merged before saving, so the weights are always a plain model), `train` (steps, first and last loss),
recipe extras (e.g. SFT's `selection`), `created` and `format`.

A member is written atomically: `member_staging(out)` (`afm_align.member_io.staged_dir` with this
contract) yields a temporary sibling folder, the recipe writes everything there (trainer checkpoints go
under its `work/` subfolder, deleted before commit; tracker logs move to `tracking/`), and only when the
block ends without error is the folder renamed into place. A crash never leaves a half member, and
`is_member(path)` (meta.json present) is what a resumed round checks.
Under `accelerate launch --num_processes N` every process runs the recipe, but only the main process
writes and publishes the member (`write_member` is a no-op elsewhere); every process then waits at a
barrier, so none returns before the member exists.

Shared recipe steps live here as functions: `check_common` (the checks every policy recipe shares),
`load_start` (the starting checkpoint through `afm_align.member_io`, a one-sentence UserError when
missing), `train_summary`. Devices, dtypes and the trainers' arguments are `afm_align.member_io`'s;
LoRA itself is `alignment.lora`. On CPU the recipes use `$AFM_ALIGN_THREADS` torch threads when set.

Run: `python -c "from alignment.members import read_meta; print(read_meta('runs/x/round_1/members/sft'))"`.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from afm_align.config import save_resolved
from afm_align.errors import UserError
from afm_align.member_io import check_report_to, is_main_process, load_for_training, staged_dir
from afm_align.store import read_manifest, write_json_atomic
from afm_align.tracking import MetricsLog

MEMBER_FORMAT = 1
META_FILE = "meta.json"
CONFIG_FILE = "recipe_config.yaml"
METRICS_FILE = "metrics.jsonl"
WORK_DIR = "work"  # trainer output (checkpoints) inside the staging folder; never committed
LORA_RANKS = (0, 8, 16, 32)


# ---- the directory contract -------------------------------------------------------------------------

def member_staging(out: str | Path):
    """A staging folder for member `out`: published only once meta.json is written (see the module doc)."""
    return staged_dir(out, required=META_FILE, drop=WORK_DIR)


def write_member(stage: str | Path, model, tokenizer, *, meta: dict, cfg: Any,
                 log_history: list[dict] = ()) -> dict:
    """Write weights, tokenizer, meta.json, the resolved config and the trainer's log into `stage`.

    Only the main process writes (under accelerate launch the others return the meta without writing).
    """
    stage = Path(stage)
    full = {"format": MEMBER_FORMAT, "created": round(time.time(), 3), **meta}
    if not is_main_process():
        return full
    model.save_pretrained(stage)
    tokenizer.save_pretrained(stage)
    save_resolved(cfg, stage, CONFIG_FILE)
    log = MetricsLog(stage / METRICS_FILE)
    for record in log_history:
        log.log(source="trainer", **record)
    write_json_atomic(stage / META_FILE, full)
    return full


def is_member(path: str | Path) -> bool:
    """True when `path` is a complete member directory (committed, so meta.json is there)."""
    return (Path(path) / META_FILE).is_file() and (Path(path) / "config.json").is_file()


def read_meta(path: str | Path) -> dict:
    """The member's meta.json; a missing or corrupt one is a one-line ValueError."""
    file = Path(path) / META_FILE
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: not a member directory (no {META_FILE})") from None
    except json.JSONDecodeError as err:
        raise UserError(f"{file}: corrupt member metadata ({err.msg})") from None


def read_metrics(path: str | Path) -> list[dict]:
    """The member's metrics.jsonl records (empty when absent)."""
    return MetricsLog(Path(path) / METRICS_FILE).read()


def member_name(path: str | Path) -> str:
    """The name a checkpoint goes by in provenance: meta.json's `member`, else the folder name."""
    path = Path(path)
    if (path / META_FILE).is_file():
        return str(read_meta(path).get("member") or path.name)
    return path.name


def load_member(path: str | Path, dtype=None):
    """(model, tokenizer, meta) of a member directory, loaded with the Auto classes, offline."""
    from afm_align.base_model import load_base

    meta = read_meta(path)
    model, tokenizer = load_base(path, dtype=dtype)
    return model, tokenizer, meta


# ---- shared recipe steps --------------------------------------------------------------------------

def check_common(cfg: Any) -> None:
    """The checks every training recipe shares: paths given and a supported LoRA rank."""
    for key in ("from_checkpoint", "data", "out"):
        if not getattr(cfg, key):
            raise UserError(f"config key '{key}' must be set")
    if cfg.lora_rank not in LORA_RANKS:
        raise UserError(f"lora_rank must be one of {', '.join(map(str, LORA_RANKS))} (got {cfg.lora_rank})")
    if not Path(cfg.from_checkpoint).is_dir():  # checked before any data is read or model loaded
        raise UserError(f"{cfg.from_checkpoint}: no such checkpoint directory")
    check_report_to(getattr(cfg, "report_to", "none"))


def load_start(path: str | Path, *, stage: str = "training"):
    """(model, tokenizer) of the starting checkpoint to train (float32); a missing one is a one-sentence UserError."""
    return load_for_training(path, stage=stage)


def data_meta(path: str | Path) -> dict:
    """Provenance of a dataset folder for meta.json: its path and content hash."""
    return {"data": str(path), "data_hash": read_manifest(path).content_hash}


def train_summary(log_history: list[dict]) -> dict:
    """Steps run and the first / last logged training loss, for meta.json."""
    losses = [r["loss"] for r in log_history if "loss" in r]
    steps = max((r.get("step", 0) for r in log_history), default=0)
    return {"steps": steps, "first_loss": losses[0] if losses else None,
            "last_loss": losses[-1] if losses else None}
