"""The DPO / IPO recipe: offline preference optimisation on labelled pairs with TRL's DPOTrainer.

DPO and IPO are one recipe with two configs (`configs/<preset>/dpo.yaml`, `ipo.yaml`) that differ in
`loss_type`: `sigmoid` is DPO (Rafailov et al. 2023: -log σ(β·Δ)), `ipo` is IPO (Azar et al. 2023:
(Δ - 1/(2τ))², with τ = `beta`), where Δ is the chosen-minus-rejected log-ratio against the reference.
AFM trains both as committee members (afm-spec §3); Llama 3 adds 0.2 × NLL on the chosen response
(`nll_weight`, TRL's `sft` loss term, off by default). Llama 3 also masks formatting tokens out of the loss:
with `mask_special_tokens: true` every special token of the tokenizer (`<|im_end|>`, ...) is left out of both the
chosen and the rejected log-probabilities, and so of the NLL term too (`mask_special`, applied by
`SpecialTokenMaskCollator` on top of TRL's own `DataCollatorForPreference`).

What it does, top to bottom (`main(cfg)`):
1. load the starting checkpoint `cfg.from_checkpoint`; a frozen copy of it is the reference (with LoRA the
   reference is the same weights with the adapters disabled, so no copy is made);
2. read the preference rows of `cfg.data` and keep the pairs labelled at least `min_level`
   (0 negligibly .. 3 significantly better; Llama 3 keeps only "better" and "significantly better", so the
   default is 2); pairs whose chosen and rejected texts are equal are dropped; no pair left -> NothingToTrain
   (a round's candidate then sits the round out);
3. train (device-safe TRL args from afm_align.member_io; dropout disabled, as TRL does for DPO), merge LoRA adapters if any;
   with `online_merging: true` the optimizer is Qwen2's Online Merging Optimizer (`alignment.online_merging`:
   AdamW whose every update is merged with the start's SFT delta, OnDARE), recorded in meta.json;
4. write the member directory `cfg.out` atomically, recipe `dpo` or `ipo` (alignment.members).

What it simplifies: by default Llama 3's masking of formatting tokens is off (TRL's loss covers the whole
assistant turn, `<|im_end|>` included; `mask_special_tokens: true` turns it on); the mask is by special token
id, so plain-text formatting in a response (the newline after `<|im_end|>`) still counts; the grading
dimensions of a pair are not used here.

Run: `python -c "from afm_align.config import load_config; from alignment.preference import PreferenceConfig, main;
main(load_config(PreferenceConfig, preset='tiny', recipe='ipo', overrides=['from_checkpoint=runs/x/base',
'data=runs/x/round_1/preferences', 'out=runs/x/round_1/members/ipo']))"`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from afm_align.errors import NothingToTrain, UserError
from afm_align.length_batches import group_by_length
from afm_align.member_io import trainer_args
from afm_align.store import read_rows
from alignment.lora import lora_config_or_none, merged
from alignment.members import (
    WORK_DIR, check_common, data_meta, load_start, member_staging, train_summary, write_member,
)
from alignment.online_merging import OMO_ALPHA, OMO_DROP, check_recipe, recipe_meta, recipe_optimizers

# TRL loss_type -> the recipe name a member records (DPO and IPO are one recipe, two configs)
LOSS_RECIPES = {"sigmoid": "dpo", "ipo": "ipo"}


@dataclass
class PreferenceConfig:
    """Every knob of the DPO / IPO recipe."""

    from_checkpoint: str = ""  # starting checkpoint directory; also the frozen reference policy
    data: str = ""  # `preference` dataset folder
    out: str = ""  # member directory to write
    member: str = ""  # member name in provenance ("" = the name of `out`)
    round: int = 0  # iTeC round this member belongs to
    loss_type: str = "sigmoid"  # "sigmoid" = DPO, "ipo" = IPO
    beta: float = 0.1  # DPO β (Llama 3: 0.1) / IPO τ: strength of the pull toward the reference
    min_level: int = 2  # keep pairs labelled at least this (0 negligibly .. 3 significantly better)
    nll_weight: float = 0.0  # weight of an NLL term on the chosen response (Llama 3: 0.2; 0 = off)
    mask_special_tokens: bool = False  # Llama 3: special tokens (end of turn, ...) out of both log-probs and the NLL
    seed: int = 0  # training and shuffling seed
    learning_rate: float = 1e-6  # AdamW learning rate (Llama 3 DPO: 1e-5 on far larger batches)
    lr_scheduler: str = "linear"  # learning-rate schedule after warm-up
    warmup_steps: int = 0  # linear warm-up steps
    weight_decay: float = 0.0  # AdamW weight decay
    epochs: float = 1.0  # passes over the pairs (ignored when max_steps > 0)
    max_steps: int = -1  # optimiser steps (-1 = run `epochs`)
    batch_size: int = 8  # pairs per device per step
    gradient_accumulation_steps: int = 1  # micro-batches per optimiser step
    max_length: int = 512  # token cap of prompt + response (longer pairs are truncated)
    group_by_length: bool = False  # batches of pairs of similar length in random order (afm_align.length_batches)
    lora_rank: int = 0  # 0 = full fine-tuning; 8, 16 or 32 = LoRA adapters, merged before saving
    logging_steps: int = 1  # log the loss every this many steps
    bf16: bool = False  # bf16 mixed precision (GPU presets; off on CPU)
    report_to: str = "none"  # trackers through TRL's integrations (tensorboard, trackio, ...); metrics.jsonl always
    online_merging: bool = False  # Qwen2's Online Merging Optimizer (OnDARE) around AdamW; full fine-tuning only
    omo_alpha: float = OMO_ALPHA  # weight of the SFT delta in each merged step (Qwen2 gives none)
    omo_drop: float = OMO_DROP  # drop rate of the random sparsification, no rescaling (Qwen2 gives none)
    omo_base: str = ""  # pre-trained base of the start ("" = follow meta.json's from_checkpoint links)


def check_config(cfg: PreferenceConfig) -> None:
    """One-sentence errors for a bad config."""
    check_common(cfg)
    if cfg.loss_type not in LOSS_RECIPES:
        raise UserError(f"loss_type must be one of {', '.join(LOSS_RECIPES)} (got '{cfg.loss_type}')")
    if cfg.min_level not in (0, 1, 2, 3):
        raise UserError(f"min_level must be 0, 1, 2 or 3 (got {cfg.min_level})")
    check_recipe(cfg)


# ---- pairs --------------------------------------------------------------------------------------

def _assistant(response) -> list[dict]:
    return [{"role": "assistant", "content": response}] if isinstance(response, str) else list(response)


def _text(messages: list[dict]) -> str:
    return "\n".join(m["content"] for m in messages).strip()


def preference_pairs(rows: list[dict], min_level: int, source: str = "the preference dataset") -> list[dict]:
    """TRL conversational pairs {prompt, chosen, rejected} of the train rows labelled at least `min_level`.

    Rows of the dev or test split (by problem identity) are never trained on: a dataset may carry them for
    evaluation, and DPO/IPO must not learn the answers of the problems it is scored on.
    """
    pairs = []
    for row in rows:
        if row.get("split") not in (None, "train"):
            continue
        chosen, rejected = _assistant(row["chosen"]), _assistant(row["rejected"])
        if row["level"] >= min_level and _text(chosen) != _text(rejected):
            pairs.append({"prompt": list(row["prompt"]), "chosen": chosen, "rejected": rejected})
    if not pairs:
        raise NothingToTrain(f"{source} has no preference pairs with level >= {min_level} among its {len(rows)} rows.")
    return pairs


# ---- special-token masking (Llama 3) ------------------------------------------------------------

def mask_special(completion_mask, input_ids, special_ids):
    """`completion_mask` with 0 wherever `input_ids` is one of `special_ids` (a new tensor; the input is kept).

    Llama 3 (Dubey et al. 2024, §4.1.4) masks formatting tokens such as the end-of-turn token out of both the
    chosen and the rejected log-probabilities to stabilise DPO: both responses carry them, so the contrastive
    loss must raise and lower their likelihood at once (the paper saw tail repetition and abrupt termination
    tokens). TRL reads the same mask for the NLL term, which therefore skips them too.
    """
    import torch

    special = torch.as_tensor(list(special_ids), dtype=input_ids.dtype, device=input_ids.device)
    return completion_mask.masked_fill(torch.isin(input_ids, special), 0)


@dataclass
class SpecialTokenMaskCollator:
    """TRL's preference collator (`base`), then `mask_special` on the completion mask of its batch."""

    base: Any  # trl.trainer.dpo_trainer.DataCollatorForPreference, built as DPOTrainer builds its default
    special_ids: tuple[int, ...]

    def __call__(self, examples: list[dict]) -> dict:
        batch = self.base(examples)
        batch["completion_mask"] = mask_special(batch["completion_mask"], batch["input_ids"], self.special_ids)
        return batch


def special_mask_collator(tokenizer, args) -> SpecialTokenMaskCollator:
    """The collator DPOTrainer would build from `args` (a DPOConfig) and `tokenizer`, masking every special token.

    TRL's `DataCollatorForPreference` is reused with the fields DPOTrainer passes it for text data (pad token:
    `args.pad_token`, else the tokenizer's pad, else its eos), so only the mask differs from the default.
    """
    from trl.trainer.dpo_trainer import DataCollatorForPreference

    pad = args.pad_token or tokenizer.pad_token or tokenizer.eos_token
    base = DataCollatorForPreference(pad_token_id=tokenizer.convert_tokens_to_ids(pad), max_length=args.max_length,
                                     truncation_mode=args.truncation_mode, pad_to_multiple_of=args.pad_to_multiple_of)
    return SpecialTokenMaskCollator(base, tuple(tokenizer.all_special_ids))


# ---- trainer ------------------------------------------------------------------------------------

def build_trainer(model, tokenizer, pairs: list[dict], cfg: PreferenceConfig, output_dir: str | Path):
    """TRL's DPOTrainer with the config's loss (plus the optional NLL term) and the device-safe args (afm_align.member_io).

    The reference is a frozen copy of `model` as it is now (TRL would otherwise reload it by name, which
    for an in-memory model means a hub lookup); with LoRA it is the model with its adapters disabled.
    With `online_merging` the optimizer is the Online Merging Optimizer over `model` as it is now (the SFT start).
    With `mask_special_tokens` the collator is `special_mask_collator` (None: TRL's default collator).
    """
    import copy

    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    losses = {"loss_type": [cfg.loss_type]}
    if cfg.nll_weight:
        losses = {"loss_type": [cfg.loss_type, "sft"], "loss_weights": [1.0, cfg.nll_weight]}
    args = trainer_args(
        DPOConfig, output_dir, stage=f"{LOSS_RECIPES[cfg.loss_type]}-training", bf16=cfg.bf16,
        report_to=cfg.report_to, seed=cfg.seed, data_seed=cfg.seed, learning_rate=cfg.learning_rate,
        lr_scheduler_type=cfg.lr_scheduler, warmup_steps=cfg.warmup_steps, weight_decay=cfg.weight_decay,
        num_train_epochs=cfg.epochs, max_steps=cfg.max_steps, per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps, logging_steps=cfg.logging_steps,
        max_length=cfg.max_length, beta=cfg.beta, **losses,
    )
    ref_model = None if cfg.lora_rank else copy.deepcopy(model).eval()
    collator = special_mask_collator(tokenizer, args) if cfg.mask_special_tokens else None
    trainer = DPOTrainer(model=model, ref_model=ref_model, args=args, train_dataset=Dataset.from_list(pairs),
                         processing_class=tokenizer, peft_config=lora_config_or_none(cfg.lora_rank),
                         data_collator=collator,
                         optimizers=recipe_optimizers(model, cfg, cfg.learning_rate, cfg.weight_decay))
    if cfg.group_by_length:
        group_by_length(trainer)
    return trainer


# ---- the recipe ---------------------------------------------------------------------------------

def main(cfg: PreferenceConfig) -> Path:
    """Run DPO or IPO (by `cfg.loss_type`) and return the member directory."""
    check_config(cfg)
    rows = read_rows(cfg.data, "preference")  # the data is checked before the model is loaded
    pairs = preference_pairs(rows, cfg.min_level, source=str(cfg.data))
    model, tokenizer = load_start(cfg.from_checkpoint, stage=f"{LOSS_RECIPES[cfg.loss_type]}-training")
    with member_staging(cfg.out) as stage:
        trainer = build_trainer(model, tokenizer, pairs, cfg, stage / WORK_DIR)
        trainer.train()
        history = trainer.state.log_history
        meta = {"member": cfg.member or Path(cfg.out).name, "recipe": LOSS_RECIPES[cfg.loss_type],
                "round": cfg.round, "from_checkpoint": str(cfg.from_checkpoint), **data_meta(cfg.data),
                "lora_rank": cfg.lora_rank, "loss_type": cfg.loss_type, "beta": cfg.beta,
                "mask_special_tokens": cfg.mask_special_tokens,
                "pairs": {"rows": len(rows), "kept": len(pairs), "min_level": cfg.min_level},
                "online_merging": recipe_meta(cfg), "train": train_summary(history)}
        write_member(stage, merged(trainer.model), tokenizer, meta=meta, cfg=cfg, log_history=history)
    return Path(cfg.out)
