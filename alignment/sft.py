"""The SFT recipe: supervised fine-tuning on an `sft` dataset with TRL's SFTTrainer, AFM style.

What it does, top to bottom (`main(cfg)`):
1. load the starting checkpoint `cfg.from_checkpoint` and the `sft` rows of `cfg.data`; every row becomes
   TRL's conversational prompt/completion format, so the loss covers completion tokens only
   (`completion_only_loss`: prompt tokens get label -100);
2. train with AFM's choices (afm-spec §5): constant learning rate (2e-5, AFM-on-device) and dropout 0.1
   (set on the attention-dropout of every layer for training only; the saved config keeps its value);
   optional LoRA (`lora_rank` 8/16/32, merged before saving);
3. checkpoint selection, as AFM picks SFT checkpoints ("automatic benchmarks and best-of-N sampling scored
   by the RM"): `num_checkpoints` checkpoints are saved evenly over training; each is evaluated on the
   dev rows of the prompt dataset `cfg.heldout` by (rewards from `alignment.rewards`, the one grader)
   - `verifier_accuracy`: mean synth-verifier reward of the greedy answer (rows whose domain has a verifier),
   - `rm_best_of_n` (when `cfg.reward_model` is set): mean over prompts of the best RM score among
     `best_of_n` samples at `select_temperature`;
   **Selection rule**: each metric is min-max normalised across the checkpoints (0 when all are equal) and
   the normalised metrics are summed; the highest sum wins, ties go to the later checkpoint. With no
   held-out data the last checkpoint is kept. Per-checkpoint scores go into meta.json `selection`;
4. write the member directory `cfg.out` atomically (alignment.members).

What it simplifies: a `messages` row trains only its last assistant turn (earlier turns are context);
AFM's mixture-weight search and embedding-based dedup are left to the data builders.

Run: `python -c "from afm_align.config import load_config; from alignment.sft import SFTRecipeConfig, main;
main(load_config(SFTRecipeConfig, preset='tiny', recipe='sft', overrides=['from_checkpoint=runs/x/base',
'data=runs/x/data/sft-...', 'out=runs/x/members/sft']))"`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from afm_align.errors import NothingToTrain, UserError
from afm_align.length_batches import group_by_length
from afm_align.member_io import is_main_process, place, trainer_args
from afm_align.store import read_rows
from afm_align.tracking import MetricsLog
from alignment.lora import lora_config_or_none, merged
from alignment.rewards import combine, load_rm, verifier_terms
from alignment.members import (
    METRICS_FILE, WORK_DIR, check_common, data_meta, load_start, member_staging, train_summary, write_member,
)


@dataclass
class SFTRecipeConfig:
    """Every knob of the SFT recipe."""

    from_checkpoint: str = ""  # starting checkpoint directory (the base or an earlier member)
    data: str = ""  # `sft` dataset folder to train on
    out: str = ""  # member directory to write
    member: str = ""  # member name in provenance ("" = the name of `out`)
    round: int = 0  # iTeC round this member belongs to
    heldout: str = ""  # `prompt` dataset folder whose `dev` rows select the checkpoint ("" = keep the last)
    reward_model: str = ""  # RM directory for best-of-N in checkpoint selection ("" = verifiers only)
    seed: int = 0  # training, shuffling and sampling seed
    learning_rate: float = 2e-5  # AFM-on-device SFT learning rate
    lr_scheduler: str = "constant"  # AFM: constant learning rate
    warmup_steps: int = 0  # linear warm-up steps before the schedule
    weight_decay: float = 0.0  # AdamW weight decay
    dropout: float = 0.1  # AFM: dropout 0.1 during SFT
    epochs: float = 1.0  # passes over the data (ignored when max_steps > 0)
    max_steps: int = -1  # optimiser steps (-1 = run `epochs`)
    batch_size: int = 8  # rows per device per step
    gradient_accumulation_steps: int = 1  # micro-batches per optimiser step
    max_length: int = 512  # token cap of prompt + completion (longer rows are truncated)
    group_by_length: bool = False  # batches of similar length in random order (afm_align.length_batches)
    lora_rank: int = 0  # 0 = full fine-tuning; 8, 16 or 32 = LoRA adapters, merged before saving
    logging_steps: int = 1  # log the loss every this many steps
    num_checkpoints: int = 3  # checkpoints saved evenly over training and compared by the selection rule
    select_prompts: int = 32  # held-out prompts used to score each checkpoint
    best_of_n: int = 4  # N of RM best-of-N in checkpoint selection
    select_temperature: float = 1.0  # sampling temperature of the best-of-N samples
    max_new_tokens: int = 128  # generation length cap in checkpoint selection
    gen_batch_size: int = 16  # prompts per generation batch
    bf16: bool = False  # bf16 mixed precision (GPU presets; off on CPU)
    report_to: str = "none"  # trackers through TRL's integrations (tensorboard, trackio, ...); metrics.jsonl always


# ---- data ---------------------------------------------------------------------------------------

def _assistant(completion) -> list[dict]:
    return [{"role": "assistant", "content": completion}] if isinstance(completion, str) else list(completion)


def to_prompt_completion(row: dict) -> dict:
    """One sft row in TRL's conversational prompt/completion format (last assistant turn = completion)."""
    if "prompt" in row and "completion" in row:
        return {"prompt": list(row["prompt"]), "completion": _assistant(row["completion"])}
    messages = row["messages"]
    last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=None)
    if last is None or last == 0:
        raise UserError(f"sft row {row.get('id')!r} has no assistant turn after a prompt to train on")
    return {"prompt": messages[:last], "completion": [messages[last]]}


def sft_dataset(rows: list[dict]):
    """A `datasets.Dataset` holding only the prompt/completion columns TRL needs."""
    from datasets import Dataset

    if not rows:
        raise UserError("the sft dataset has no rows to train on")
    return Dataset.from_list([to_prompt_completion(r) for r in rows])


# ---- model and trainer --------------------------------------------------------------------------

def set_dropout(model, p: float) -> int:
    """Set the attention dropout of every layer that has one (used only in train mode); returns the count."""
    count = 0
    for module in model.modules():
        if hasattr(module, "attention_dropout") and isinstance(module.attention_dropout, float):
            module.attention_dropout = float(p)
            count += 1
    return count


def build_trainer(model, tokenizer, rows: list[dict], cfg: SFTRecipeConfig, output_dir: str | Path,
                  save_checkpoints: bool = False):
    """TRL's SFTTrainer over `rows` with completion-only loss and the device-safe args (afm_align.member_io)."""
    from trl import SFTConfig, SFTTrainer

    saves = dict(save_strategy="steps", save_steps=1.0 / max(1, cfg.num_checkpoints)) if save_checkpoints else {}
    args = trainer_args(
        SFTConfig, output_dir, stage="sft-training", bf16=cfg.bf16, report_to=cfg.report_to, seed=cfg.seed, data_seed=cfg.seed, learning_rate=cfg.learning_rate,
        lr_scheduler_type=cfg.lr_scheduler, warmup_steps=cfg.warmup_steps, weight_decay=cfg.weight_decay,
        num_train_epochs=cfg.epochs, max_steps=cfg.max_steps, per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps, logging_steps=cfg.logging_steps,
        max_length=cfg.max_length, completion_only_loss=True, packing=False, dataset_num_proc=None, **saves,
    )
    set_dropout(model, cfg.dropout)
    trainer = SFTTrainer(model=model, args=args, train_dataset=sft_dataset(rows), processing_class=tokenizer,
                         peft_config=lora_config_or_none(cfg.lora_rank))
    if cfg.group_by_length:
        group_by_length(trainer)
    return trainer


# ---- checkpoint evaluation and selection ------------------------------------------------------------

def heldout_rows(path: str | Path, limit: int) -> list[dict]:
    """The first `limit` dev rows of a prompt dataset: checkpoints are chosen on dev, never on test."""
    rows = [r for r in read_rows(path, "prompt") if r["split"] == "dev"]
    if not rows:
        raise UserError(f"heldout {path}: the prompt dataset has no rows with split 'dev'")
    return rows[:limit] if limit > 0 else rows


def evaluate_policy(model, tokenizer, rows: list[dict], cfg: SFTRecipeConfig, scorer=None) -> dict:
    """Greedy verifier accuracy and (with `scorer`) mean RM best-of-N on held-out prompt rows."""
    from afm_align.generation import generate

    prompts = [r["prompt"] for r in rows]
    common = dict(max_new_tokens=cfg.max_new_tokens, top_p=1.0, batch_size=cfg.gen_batch_size, seed=cfg.seed)
    greedy = [s[0] for s in generate(model, tokenizer, prompts, k=1, temperature=0.0, **common)]
    verify = combine(verifier_terms())
    graded = [x for x in verify(prompts, greedy, domain=[r["domain"] for r in rows],
                                verifier=[r["verifier"] for r in rows]) if x is not None]
    result = {"verifier_accuracy": sum(graded) / len(graded) if graded else None, "verified": len(graded),
              "rm_best_of_n": None}
    if scorer is not None:
        samples = generate(model, tokenizer, prompts, k=cfg.best_of_n, temperature=cfg.select_temperature, **common)
        flat_p = [p for p, s in zip(prompts, samples) for _ in s]
        scores = scorer(flat_p, [c for s in samples for c in s])
        best, pos = [], 0
        for s in samples:
            best.append(max(scores[pos:pos + len(s)]))
            pos += len(s)
        result["rm_best_of_n"] = sum(best) / len(best)
    return result


SELECTION_METRICS = ("verifier_accuracy", "rm_best_of_n")


def select_checkpoint(scores: list[dict]) -> int:
    """Index of the winner: min-max-normalised metrics summed, highest wins, ties to the later one."""
    if not scores:
        raise ValueError("no checkpoints to select from")
    total = [0.0] * len(scores)
    for metric in SELECTION_METRICS:
        values = [s.get(metric) for s in scores]
        if any(v is None for v in values):
            continue  # a metric counts only when every checkpoint has it
        lo, hi = min(values), max(values)
        for i, v in enumerate(values):
            total[i] += (v - lo) / (hi - lo) if hi > lo else 0.0
    for s, t in zip(scores, total):
        s["selection_score"] = t
    best = max(total)
    return max(i for i, t in enumerate(total) if math.isclose(t, best, abs_tol=1e-12))


def checkpoints(work_dir: str | Path) -> list[Path]:
    """The trainer's checkpoint folders in step order."""
    found = Path(work_dir).glob("checkpoint-*")
    return sorted((p for p in found if p.name.split("-")[-1].isdigit()), key=lambda p: int(p.name.split("-")[-1]))


def load_checkpoint(ckpt: Path, cfg: SFTRecipeConfig):
    """A plain model from a trainer checkpoint (LoRA checkpoints hold adapters: put them on the start)."""
    from transformers import AutoModelForCausalLM

    if not cfg.lora_rank:
        return place(AutoModelForCausalLM.from_pretrained(ckpt, local_files_only=True), stage="sft-selection")
    from peft import PeftModel

    start, _ = load_start(cfg.from_checkpoint, stage="sft-selection")
    return place(PeftModel.from_pretrained(start, ckpt).merge_and_unload(), stage="sft-selection")


def select_member(tokenizer, work_dir: Path, cfg: SFTRecipeConfig, rows: list[dict], scorer, log: MetricsLog):
    """Evaluate every saved checkpoint, log the scores, return (best model, selection record)."""
    from afm_align.tracking import progress

    ckpts, scores = checkpoints(work_dir), []
    if not ckpts:
        raise RuntimeError(f"{work_dir}: training saved no checkpoints to select from")
    for ckpt in progress(ckpts, desc="sft checkpoints", unit="ckpt"):
        model = load_checkpoint(ckpt, cfg)  # one model in memory at a time; the winner is reloaded
        scores.append({"step": int(ckpt.name.split("-")[-1]), **evaluate_policy(model, tokenizer, rows, cfg, scorer)})
        del model
    best = select_checkpoint(scores)
    for record in scores:
        log.log(source="selection", **record)
    rule = "max sum of min-max-normalised verifier_accuracy and rm_best_of_n; ties to the later step"
    selection = {"rule": rule, "chosen_step": scores[best]["step"], "checkpoints": scores}
    return load_checkpoint(ckpts[best], cfg), selection


# ---- the recipe ---------------------------------------------------------------------------------

def train_member(cfg: SFTRecipeConfig, recipe: str = "sft", extra_meta: dict | None = None,
                 saved_cfg=None) -> Path:
    """Train and write one SFT member; `recipe`, `extra_meta` and `saved_cfg` (the config written beside
    the member, default `cfg`) let callers such as the rs recipe label it as theirs."""
    check_common(cfg)
    rows = [r for r in read_rows(cfg.data, "sft") if r.get("split") in (None, "train")]  # never dev/test problems
    if not rows:
        raise NothingToTrain(f"data {cfg.data}: no sft rows of the train split to train on")
    model, tokenizer = load_start(cfg.from_checkpoint, stage="sft-training")
    held = heldout_rows(cfg.heldout, cfg.select_prompts) if cfg.heldout else []
    scorer = load_rm(cfg.reward_model) if cfg.reward_model and held else None
    attention_dropout = getattr(model.config, "attention_dropout", None)
    with member_staging(cfg.out) as stage:
        trainer = build_trainer(model, tokenizer, rows, cfg, stage / WORK_DIR, save_checkpoints=bool(held))
        trainer.train()
        selection = {"rule": "last checkpoint (no held-out data)", "checkpoints": []}
        if held and is_main_process():  # trainer checkpoints exist in the main process's stage only
            model, selection = select_member(tokenizer, stage / WORK_DIR, cfg, held, scorer,
                                             MetricsLog(stage / METRICS_FILE))
        else:
            model = merged(trainer.model)
        set_dropout(model, attention_dropout or 0.0)  # the member is saved as it was configured
        meta = {"member": cfg.member or Path(cfg.out).name, "recipe": recipe, "round": cfg.round,
                "from_checkpoint": str(cfg.from_checkpoint), **data_meta(cfg.data), "lora_rank": cfg.lora_rank,
                "train": train_summary(trainer.state.log_history), "selection": selection, **(extra_meta or {})}
        write_member(stage, model, tokenizer, meta=meta, cfg=saved_cfg or cfg,
                     log_history=trainer.state.log_history)
    return Path(cfg.out)


def main(cfg: SFTRecipeConfig) -> Path:
    """Run the SFT recipe and return the member directory."""
    return train_member(cfg)
