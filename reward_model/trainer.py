"""Train the multi-head reward model: a TRL `RewardTrainer` with the AFM loss, and the `train_reward_model` recipe.

What it does:
- `MultiHeadRewardTrainer(trl.RewardTrainer)` overrides three methods: `__init__` (loss settings, row
  validation, a collator that keeps level and grades), `_set_signature_columns_if_needed` (keep the `level`
  and grade columns TRL would drop) and `compute_loss` (soft-label ranking + lambda * grading, losses.rm_loss).
  Like TRL it runs one forward over chosen+rejected concatenated, then splits the rewards in halves.
- `reward_config(output_dir, **fields)` builds the `RewardConfig`: `afm_align.member_io.trainer_args` (the
  one builder of device-safe trainer arguments: bf16 only when asked, trackers from `report_to`, no
  checkpoints) plus what the RM needs (no in-training evaluation, loss-only prediction).
- `train_reward_model(model, tokenizer, train_ds, eval_ds, cfg)` validates, trains, saves and evaluates;
  it returns a flat metrics dict. `work_dir` (default `cfg.out`) is where the trainer writes its own files
  (tracker logs); the recipe points it at a subfolder it drops before publishing.

What it simplifies: pairs longer than `max_length` are dropped (TRL's behaviour), not truncated. Rows with no
`level` column train with the hard label p = 1. The ablations are configs: `hard_labels=True` (p = 1) and
`grading_weight=0` (no grading loss; the heads still exist but get no gradient). Llama 3.1's margin filter is
`min_level` (train only on pairs labelled at least that; the evaluation pairs are all scored).

Run: `python -m pytest tests/reward_model/test_trainer.py`; from code, `train_reward_model(model, tokenizer,
train_ds, eval_ds, RMTrainConfig(...))` (the CLI wiring is not part of this module).
"""
from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from datasets import Dataset
from trl import RewardConfig, RewardTrainer

from afm_align.length_batches import group_by_length
from afm_align.member_io import trainer_args
from reward_model.data import PreferenceCollator, keep_min_level, validate_preferences
from reward_model.losses import DEFAULT_LEVEL_PROBS, level_to_prob, rm_loss

logger = logging.getLogger(__name__)

EXTRA_COLUMNS = ["level", "grades_chosen", "grades_rejected"]


@dataclass
class RMTrainConfig:
    """Reward-model training settings (one recipe config; every field documented once here)."""

    out: str = "runs/rm"  # where the trained RM, its tokenizer and rm_metrics.json are written
    data: str = ""  # preference dataset folder (rows whose split is not 'train' are the evaluation set)
    from_checkpoint: str = ""  # backbone checkpoint directory ('' = the run's base model)
    run: str = "default"  # run whose base model is the backbone when `from_checkpoint` is empty
    pooling: str = "last"  # new heads read the "last" token (AFM) or an "attention" pool of all (model.POOLINGS)
    copy_ngram: int = 0  # new heads get the exact-match channel, runs of this many tokens (copy_features); 0 = off
    init_from: str = ""  # an RM directory to continue training (backbone and heads); '' = new heads on the backbone
    heldout_fraction: float = 0.1  # evaluation share when every row is 'train' or has no split
    learning_rate: float = 1e-4  # AdamW peak learning rate (linear decay)
    epochs: float = 1.0  # passes over the training pairs
    max_steps: int = -1  # > 0 overrides epochs
    batch_size: int = 8  # preference pairs per device step (each pair is two sequences)
    eval_batch_size: int = 16  # sequences per scoring batch at evaluation
    gradient_accumulation_steps: int = 1  # micro-batches per optimizer step
    max_length: int | None = 512  # pairs with a side longer than this many tokens are dropped
    group_by_length: bool = False  # batches of pairs of similar length in random order (afm_align.length_batches)
    level_probs: tuple[float, ...] = DEFAULT_LEVEL_PROBS  # target p_l for level 0..3 (negligibly..significantly)
    hard_labels: bool = False  # ablation: p = 1 for every pair (plain Bradley-Terry)
    min_level: int = 0  # train only on pairs labelled at least this (Llama 3.1: drop near-ties); no level = kept
    grading_weight: float = 0.1  # lambda of the grading regulariser; 0 = ablation without grading heads
    warmup_steps: float = 0  # linear warm-up: a number of steps, or a fraction of all steps if < 1
    weight_decay: float = 0.0  # AdamW weight decay
    logging_steps: int = 10  # log train loss/accuracy every N optimizer steps
    seed: int = 0  # seed for head initialisation, shuffling and dropout
    save_model: bool = True  # save model + tokenizer to `out` after training
    bf16: bool = False  # bf16 mixed precision (GPU presets; off on CPU)
    report_to: str = "none"  # trackers through TRL's integrations (tensorboard, trackio, ...); metrics.jsonl either way


def reward_config(output_dir, *, bf16: bool = False, report_to: str = "none", **fields) -> RewardConfig:
    """The RM's `RewardConfig`: `member_io.trainer_args` (device-safe, trackers checked) + the RM's own fields.

    The RM is evaluated once after training by `evaluate_preferences`, not by the trainer (`eval_strategy`
    no), and `prediction_loss_only` keeps TRL from gathering logits it has no use for.
    """
    rm_fields = dict(eval_strategy="no", prediction_loss_only=True)
    return trainer_args(RewardConfig, output_dir, stage="rm-training", bf16=bf16, report_to=report_to,
                        **{**rm_fields, **fields})


class MultiHeadRewardTrainer(RewardTrainer):
    """TRL `RewardTrainer` training `MultiHeadRewardModel` with L_rank + lambda * L_regu (afm-spec §2.3)."""

    def __init__(
        self,
        model,
        args: RewardConfig | None = None,
        *,
        level_probs=DEFAULT_LEVEL_PROBS,
        hard_labels: bool = False,
        grading_weight: float = 0.1,
        **kwargs,
    ):
        self.level_probs = tuple(level_probs)
        self.hard_labels = hard_labels
        self.grading_weight = float(grading_weight)
        # Validate raw rows before TRL tokenizes them, so errors name the row index of the input dataset.
        self.n_dropped_identical = 0
        for key in ("train_dataset", "eval_dataset"):
            ds = kwargs.get(key)
            if isinstance(ds, Dataset) and "chosen" in ds.column_names:
                kwargs[key], dropped = validate_preferences(ds)
                self.n_dropped_identical += dropped
        if self.n_dropped_identical:
            logger.warning("dropped %d preference pairs whose two responses are identical", self.n_dropped_identical)
        if kwargs.get("data_collator") is None and kwargs.get("processing_class") is not None:
            tok = kwargs["processing_class"]
            pad = (args.pad_token if args is not None else None) or tok.pad_token or tok.eos_token
            kwargs["data_collator"] = PreferenceCollator(
                pad_token_id=tok.convert_tokens_to_ids(pad),
                pad_to_multiple_of=args.pad_to_multiple_of if args is not None else None,
            )
        super().__init__(model, args, **kwargs)

    def _set_signature_columns_if_needed(self):
        if self._signature_columns is None:
            self._signature_columns = ["chosen_ids", "rejected_ids", *EXTRA_COLUMNS]

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        mode = "train" if self.model.training else "eval"
        outputs = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], use_cache=False)
        r_chosen, r_rejected = outputs.rewards.chunk(2)
        level = inputs.get("level")
        if self.hard_labels or level is None or bool((level < 0).all()):
            target = torch.ones_like(r_chosen)
        else:
            target = level_to_prob(level, self.level_probs).to(r_chosen)
        logits_c, logits_r = outputs.grade_logits.chunk(2) if self.grading_weight else (None, None)
        losses = rm_loss(
            r_chosen, r_rejected, target, logits_c, logits_r,
            inputs.get("grades_chosen"), inputs.get("grades_rejected"), self.grading_weight,
        )
        loss = losses["loss"]
        if self.args.center_rewards_coefficient is not None:
            loss = loss + self.args.center_rewards_coefficient * torch.mean((r_chosen + r_rejected) ** 2)

        with torch.no_grad():
            gather = self.accelerator.gather_for_metrics
            metrics = {
                "accuracy": (r_chosen > r_rejected).float().mean(),
                "margin": (r_chosen - r_rejected).mean(),
                "mean_reward": outputs.rewards.mean(),
                "ranking_loss": losses["ranking"],
                "grading_loss": losses["grading"],
            }
            for name, value in metrics.items():
                self._metrics[mode][name].append(gather(value.detach()).mean().item())
        return (loss, outputs) if return_outputs else loss


def _trainer_args(cfg: RMTrainConfig, work_dir) -> RewardConfig:
    return reward_config(
        work_dir,
        bf16=cfg.bf16,
        report_to=cfg.report_to,
        learning_rate=cfg.learning_rate,
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        max_length=cfg.max_length,
        warmup_steps=cfg.warmup_steps,
        weight_decay=cfg.weight_decay,
        logging_steps=cfg.logging_steps,
        seed=cfg.seed,
        data_seed=cfg.seed,
    )


def train_reward_model(model, tokenizer, train_ds, eval_ds, cfg: RMTrainConfig, work_dir=None) -> dict:
    """Validate the pairs, train `model` in place, save it (if `cfg.save_model`), evaluate; return metrics.

    Metrics: `train_loss`, `train_steps`, `n_train_pairs`, `n_dropped_identical`, `n_kept_min_level` and
    `n_below_min_level` (the train pairs `keep_min_level` kept and dropped), and when `eval_ds` is given
    the `eval_*` metrics of `reward_model.evaluate.evaluate_preferences`. They are also written to
    `<out>/rm_metrics.json` together with the resolved config. The trainer's own files (tracker logs) go
    to `work_dir`, default `cfg.out`.
    """
    from reward_model.evaluate import evaluate_preferences
    from reward_model.scorer import RewardScorer

    train_ds, dropped = validate_preferences(train_ds)
    train_ds, below = keep_min_level(train_ds, cfg.min_level)  # the train pairs only: every eval pair is scored
    trainer = MultiHeadRewardTrainer(
        model,
        _trainer_args(cfg, work_dir or cfg.out),
        level_probs=cfg.level_probs,
        hard_labels=cfg.hard_labels,
        grading_weight=cfg.grading_weight,
        train_dataset=train_ds,
        processing_class=tokenizer,
    )
    if cfg.group_by_length:
        group_by_length(trainer)
    result = trainer.train()
    metrics = {
        "train_loss": float(result.training_loss),
        "train_steps": int(result.global_step),
        "n_train_pairs": len(trainer.train_dataset),
        "n_dropped_identical": dropped,
        "n_kept_min_level": len(train_ds),
        "n_below_min_level": below,
    }
    out = Path(cfg.out)
    if cfg.save_model:
        trainer.save_model(str(out))
    if eval_ds is not None:
        eval_ds, eval_dropped = validate_preferences(eval_ds)
        scorer = RewardScorer(trainer.model, tokenizer, batch_size=cfg.eval_batch_size, max_length=cfg.max_length,
                              stage="rm-eval")
        evals = evaluate_preferences(scorer, eval_ds, level_probs=cfg.level_probs)
        metrics.update({f"eval_{k}": v for k, v in evals.items()})
        metrics["eval_n_dropped_identical"] = eval_dropped
    out.mkdir(parents=True, exist_ok=True)
    (out / "rm_metrics.json").write_text(json.dumps({"config": asdict(cfg), "metrics": metrics}, indent=2))
    return metrics
