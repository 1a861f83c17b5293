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

A member is written atomically: `member_staging(out)` yields a temporary sibling folder, the recipe
writes everything there (trainer checkpoints go under its `work/` subfolder, deleted before commit), and
only when the block ends without error is the folder renamed into place. A crash never leaves a half
member, and `is_member(path)` (meta.json present) is what a resumed round checks.
Under `accelerate launch --num_processes N` every process runs the recipe, but only the main process
writes and publishes the member (`write_member` is a no-op elsewhere); every process then waits at a
barrier, so none returns before the member exists.

Shared recipe steps live here as functions: `load_start` (the starting checkpoint, a one-sentence
ValueError when missing), `cpu_safe_args` (a TRL config with bf16 / gradient checkpointing off, no
trackers, no dataloader workers), `train_summary`. LoRA itself is `alignment.lora`.
On CPU the recipes use `$AFM_ALIGN_THREADS` torch threads (default 1: the machines are shared).

Run: `python -c "from alignment.members import read_meta; print(read_meta('runs/x/round_1/members/sft'))"`.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from afm_align.config import save_resolved
from afm_align.store import publish_dir, read_manifest, write_json_atomic
from afm_align.tracking import MetricsLog

MEMBER_FORMAT = 1
META_FILE = "meta.json"
CONFIG_FILE = "recipe_config.yaml"
METRICS_FILE = "metrics.jsonl"
WORK_DIR = "work"  # trainer output (checkpoints) inside the staging folder; never committed
LORA_RANKS = (0, 8, 16, 32)


# ---- the directory contract -------------------------------------------------------------------------

@contextmanager
def member_staging(out: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling of `out`; on success drop its `work/` and rename it to `out`."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        yield stage
        if is_main_process():  # under accelerate launch the other processes only train
            if not (stage / META_FILE).is_file():
                raise RuntimeError(f"{out}: the recipe finished without writing {META_FILE}")
            shutil.rmtree(stage / WORK_DIR, ignore_errors=True)
            publish_dir(stage, out)  # replaces an older member only once the new one is complete
        wait_for_everyone()  # no process returns before the member is in place
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def is_main_process() -> bool:
    """True in a plain run and in the main process of an `accelerate launch` run (call after training starts)."""
    from accelerate import PartialState

    return PartialState().is_main_process


def wait_for_everyone() -> None:
    """A barrier across the processes of an `accelerate launch` run; nothing in a plain run."""
    from accelerate import PartialState

    PartialState().wait_for_everyone()


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
        raise ValueError(f"{path}: not a member directory (no {META_FILE})") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{file}: corrupt member metadata ({err.msg})") from None


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
            raise ValueError(f"config key '{key}' must be set")
    if cfg.lora_rank not in LORA_RANKS:
        raise ValueError(f"lora_rank must be one of {', '.join(map(str, LORA_RANKS))} (got {cfg.lora_rank})")
    if not Path(cfg.from_checkpoint).is_dir():  # checked before any data is read or model loaded
        raise ValueError(f"{cfg.from_checkpoint}: no such checkpoint directory")


def load_start(path: str | Path):
    """(model, tokenizer) of the starting checkpoint; a missing one is a one-sentence ValueError."""
    import torch

    from afm_align.base_model import load_base

    if not Path(path).is_dir():
        raise ValueError(f"from_checkpoint {path}: no such checkpoint directory.")
    if os.environ.get("AFM_ALIGN_THREADS"):  # default: torch's own choice (all cores)
        torch.set_num_threads(int(os.environ["AFM_ALIGN_THREADS"]))
    model, tokenizer = load_base(path)
    model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def data_meta(path: str | Path) -> dict:
    """Provenance of a dataset folder for meta.json: its path and content hash."""
    return {"data": str(path), "data_hash": read_manifest(path).content_hash}


def cpu_safe_args(config_cls, output_dir: str | Path, **fields):
    """A TRL config (SFTConfig, DPOConfig, ...) with the CPU-safe defaults, then `fields` on top.

    TRL defaults to bf16 and gradient checkpointing; both are off here (`fields` may turn them on).
    Trackers are off (`report_to` none), data loads in the main process, nothing is pushed anywhere.
    """
    quiet = os.environ.get("AFM_ALIGN_QUIET") == "1"
    base = dict(output_dir=str(output_dir), bf16=False, fp16=False, gradient_checkpointing=False,
                activation_checkpointing=False, report_to="none", dataloader_num_workers=0, dataloader_pin_memory=False,
                save_strategy="no", save_only_model=True, disable_tqdm=quiet, push_to_hub=False,
                logging_strategy="steps", logging_first_step=True)
    return config_cls(**{**base, **fields})


def train_summary(log_history: list[dict]) -> dict:
    """Steps run and the first / last logged training loss, for meta.json."""
    losses = [r["loss"] for r in log_history if "loss" in r]
    steps = max((r.get("step", 0) for r in log_history), default=0)
    return {"steps": steps, "first_loss": losses[0] if losses else None,
            "last_loss": losses[-1] if losses else None}
