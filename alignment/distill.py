"""The `distill` recipe: token-level distillation of a teacher into a student (afm-spec §8), with its baselines.

What it does, top to bottom (`main(cfg)`):
1. check the config, the teacher and that student and teacher share one vocabulary;
2. the student starts from `cfg.from_checkpoint` (`init: checkpoint`, e.g. a `prune` member) or, as the
   from-scratch baseline at equal compute, from a fresh model of that checkpoint's config (`init: random`,
   seeded by `cfg.seed`);
3. the train rows of the `sft` dataset `cfg.data` become token sequences (the conversation rendered with the
   chat template); the loss covers every token (`loss_on: all`, as in pre-training; a row keeps its first
   `seq_len` tokens) or the assistant tokens only (`loss_on: assistant`; a row keeps its last `seq_len` tokens,
   so the trained final turn survives the cut);
4. `steps` AdamW steps (warm-up, then cosine to a tenth of the peak, as `afm_align.init_base`; gradients clipped
   at 1) on seeded batches, with the per-token loss of `kd_mode`:
   - `top1_mix` (AFM-on-device pre-training): cross-entropy against `teacher_weight` x the teacher's top-1 token
     + (1 - teacher_weight) x the true next token (`system_losses.afm_distillation_targets`, `soft_target_loss`);
   - `kl` (Gemma 2): KL(P_teacher || P_student) over the full vocabulary at `temperature`
     (`system_losses.distillation_kl`);
   - `none`: plain cross-entropy on the true next tokens, no teacher (the baseline that trains the same student
     the same way without one);
   `on_policy: true` is Gemma 2's on-policy variant: each step the student samples one completion (temperature
   1, `max_new_tokens`) to each row's prompt (the messages before its last assistant turn) with
   `afm_align.generation.generate`, and the loss is on the sampled tokens only, against the teacher (with
   `top1_mix` the sampled token stands in for the true label);
5. the loss is logged every `logging_steps` to the member's `metrics.jsonl`; the member is written atomically
   (`alignment.members`) with the teacher, kd_mode, a train summary and the compute spent in meta.json.

Why not TRL's `trl.experimental.gkd.GKDTrainer` (trl 1.16): it has the KL and on-policy variants but not AFM's
top-1 mix target nor the same-compute random-init baseline, so one loop serves the three `kd_mode`s; its loss is
the reference: `distillation_kl` equals its `generalized_jsd_loss` at beta 0, times T^2 (a test pins it).

What it simplifies: one process (no accelerate launch), no gradient accumulation, no packing (one conversation
per row, right-padded); the teacher's logits are recomputed each step, not cached; on-policy samples end with
the template's end-of-turn token even when cut at `max_new_tokens`.

Run: `python -c "from afm_align.config import load_config; from alignment.distill import DistillConfig, main;
main(load_config(DistillConfig, preset='tiny', recipe='distill', overrides=['from_checkpoint=runs/x/members/pruned',
'teacher=runs/x/base', 'data=runs/x/data/sft-...', 'out=runs/x/members/distilled']))"`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from afm_align.errors import NothingToTrain, UserError
from afm_align.init_base import lr_factor
from afm_align.store import read_rows
from afm_align.tracking import MetricsLog, progress
from alignment.members import METRICS_FILE, data_meta, load_start, member_staging, write_member
from alignment.sft import to_prompt_completion
from alignment.system_losses import afm_distillation_targets, distillation_kl, soft_target_loss


@dataclass
class DistillConfig:
    """Every knob of the distill recipe."""

    from_checkpoint: str = ""  # the student's start (e.g. a `prune` member); with init random, only its config
    teacher: str = ""  # teacher member or base directory (same tokenizer vocabulary); unused with kd_mode none
    data: str = ""  # `sft` dataset folder whose train rows are the training text
    out: str = ""  # member directory to write
    member: str = ""  # member name in provenance ("" = the name of `out`)
    round: int = 0  # iTeC round this member belongs to
    kd_mode: str = "top1_mix"  # top1_mix (AFM) | kl (Gemma 2, full distribution) | none (plain CE, no teacher)
    teacher_weight: float = 0.9  # top1_mix: weight of the teacher's top-1 token (the rest on the true label)
    temperature: float = 1.0  # kl: softmax temperature of teacher and student (the loss is scaled by T^2)
    init: str = "checkpoint"  # checkpoint (the from_checkpoint weights) | random (fresh init of its config, seeded)
    loss_on: str = "all"  # all (every token, as pre-training) | assistant (assistant tokens only)
    on_policy: bool = False  # Gemma 2: the student samples completions to the prompts; loss on those tokens
    max_new_tokens: int = 64  # on_policy: length cap of the student's samples
    steps: int = 100  # optimiser steps
    batch_size: int = 8  # rows per step
    seq_len: int = 256  # token cap of a training conversation
    learning_rate: float = 1e-3  # AdamW peak learning rate
    warmup_steps: int = 0  # linear warm-up steps, then cosine decay to a tenth of the peak
    weight_decay: float = 0.0  # AdamW weight decay
    seed: int = 0  # init (random), batch order and on-policy sampling
    logging_steps: int = 10  # log the loss every this many steps (and at the first and last)
    bf16: bool = False  # bf16 autocast of the forward passes (GPU presets; off on CPU)


# ---- losses: pure -------------------------------------------------------------------------------

def loss_top1_mix(student_logits, teacher_logits, labels, mask, teacher_weight: float, temperature: float):
    """AFM: -w log p_S(teacher top-1) - (1 - w) log p_S(true token), mean over masked tokens."""
    return soft_target_loss(student_logits, afm_distillation_targets(teacher_logits, labels, teacher_weight), mask)


def loss_kl(student_logits, teacher_logits, labels, mask, teacher_weight: float, temperature: float):
    """Gemma 2: KL(P_T || P_S) at `temperature`, mean over masked tokens."""
    return distillation_kl(student_logits, teacher_logits, mask, temperature)


def loss_none(student_logits, teacher_logits, labels, mask, teacher_weight: float, temperature: float):
    """Plain next-token cross-entropy on the true tokens, mean over masked tokens (no teacher)."""
    per_token = F.cross_entropy(student_logits.flatten(0, -2), labels.flatten(), reduction="none")
    mask = mask.flatten().to(per_token.dtype)
    return (per_token * mask).sum() / mask.sum().clamp_min(1.0)


KD_LOSSES = {"top1_mix": loss_top1_mix, "kl": loss_kl, "none": loss_none}
INITS = ("checkpoint", "random")
LOSS_ON = ("all", "assistant")


# ---- data ---------------------------------------------------------------------------------------

def encode(tokenizer, messages: list[dict], seq_len: int, loss_on: str) -> tuple[list[int], list[int]]:
    """(token ids, loss mask) of one conversation: every token or the assistant tokens; `seq_len` tokens at most,
    the first ones (`all`) or the last ones (`assistant`: the trained turn ends the conversation)."""
    assistant = loss_on == "assistant"
    out = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True,
                                        return_assistant_tokens_mask=assistant)
    ids = list(out["input_ids"])
    mask = list(out["assistant_masks"]) if assistant else [1] * len(ids)
    window = slice(max(0, len(ids) - seq_len), None) if assistant else slice(0, seq_len)
    return ids[window], mask[window]


def conversation(row: dict) -> list[dict]:
    """An sft row (`messages` or `prompt` + `completion`) as one list of messages."""
    pc = to_prompt_completion(row)
    return pc["prompt"] + pc["completion"]


def collate(examples: list[tuple[list[int], list[int]]], pad_id: int, device=None):
    """(ids, attention mask, loss mask) [B, T], right-padded."""
    width = max(len(ids) for ids, _ in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    attn = torch.zeros((len(examples), width), dtype=torch.long)
    loss_mask = torch.zeros((len(examples), width), dtype=torch.long)
    for i, (x, m) in enumerate(examples):
        ids[i, : len(x)], attn[i, : len(x)], loss_mask[i, : len(m)] = torch.tensor(x), 1, torch.tensor(m)
    return tuple(t.to(device) for t in (ids, attn, loss_mask)) if device is not None else (ids, attn, loss_mask)


def batch_order(n: int, steps: int, batch_size: int, seed: int) -> list[list[int]]:
    """Row indices of each step: seeded shuffles of all rows, one after the other (batches cross epochs)."""
    gen = torch.Generator().manual_seed(seed)
    stream: list[int] = []
    while len(stream) < steps * batch_size:
        stream += torch.randperm(n, generator=gen).tolist()
    return [stream[s * batch_size:(s + 1) * batch_size] for s in range(steps)]


def on_policy_examples(model, tokenizer, rows: list[dict], cfg: DistillConfig, step: int):
    """The student's own samples to the rows' prompts, encoded with the loss on the sampled tokens only."""
    from afm_align.generation import generate

    prompts = [to_prompt_completion(r)["prompt"] for r in rows]
    texts = generate(model, tokenizer, prompts, k=1, max_new_tokens=cfg.max_new_tokens, temperature=1.0,
                     batch_size=len(prompts), seed=cfg.seed + step)
    return [encode(tokenizer, p + [{"role": "assistant", "content": t[0]}], cfg.seq_len, "assistant")
            for p, t in zip(prompts, texts)]


# ---- one step -----------------------------------------------------------------------------------

def batch_loss(student, teacher, batch, cfg: DistillConfig) -> torch.Tensor:
    """The `kd_mode` loss of one (ids, attention mask, loss mask) batch: position t predicts token t + 1."""
    ids, attn, loss_mask = batch
    device_type = ids.device.type
    with torch.autocast(device_type, dtype=torch.bfloat16, enabled=cfg.bf16):
        student_logits = student(input_ids=ids, attention_mask=attn).logits[:, :-1].float()
        teacher_logits = None
        if teacher is not None:
            with torch.no_grad():
                teacher_logits = teacher(input_ids=ids, attention_mask=attn).logits[:, :-1].float()
    mask = loss_mask[:, 1:] * attn[:, 1:]
    return KD_LOSSES[cfg.kd_mode](student_logits, teacher_logits, ids[:, 1:], mask, cfg.teacher_weight,
                                  cfg.temperature)


def train(model, teacher, tokenizer, rows: list[dict], cfg: DistillConfig, log: MetricsLog) -> dict:
    """`cfg.steps` AdamW steps; returns the train summary (steps, first / last logged loss, tokens)."""
    device = next(model.parameters()).device
    examples = None if cfg.on_policy else [encode(tokenizer, conversation(r), cfg.seq_len, cfg.loss_on) for r in rows]
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, betas=(0.9, 0.95), weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, cfg))
    losses, tokens, loss_tokens = [], 0, 0
    model.train()
    bar = progress(batch_order(len(rows), cfg.steps, cfg.batch_size, cfg.seed), desc="distill", unit="step")
    for step, idx in enumerate(bar):
        chosen = (on_policy_examples(model, tokenizer, [rows[i] for i in idx], cfg, step) if cfg.on_policy
                  else [examples[i] for i in idx])
        batch = collate(chosen, tokenizer.pad_token_id, device)
        loss = batch_loss(model, teacher, batch, cfg)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        tokens += int(batch[1].sum())
        loss_tokens += int((batch[2][:, 1:] * batch[1][:, 1:]).sum())
        if step % cfg.logging_steps == 0 or step == cfg.steps - 1:
            losses.append(loss.item())
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
            log.log(source="trainer", step=step + 1, loss=losses[-1], lr=sched.get_last_lr()[0], tokens=tokens)
    model.eval()
    return {"steps": cfg.steps, "first_loss": losses[0], "last_loss": losses[-1], "tokens_seen": tokens,
            "loss_tokens": loss_tokens}


# ---- setup --------------------------------------------------------------------------------------

def check_config(cfg: DistillConfig) -> None:
    """One-line UserErrors for a config that cannot run (before anything is loaded)."""
    for key in ("from_checkpoint", "data", "out"):
        if not getattr(cfg, key):
            raise UserError(f"config key '{key}' must be set")
    choices = {"kd_mode": tuple(KD_LOSSES), "init": INITS, "loss_on": LOSS_ON}
    for key, allowed in choices.items():
        if getattr(cfg, key) not in allowed:
            raise UserError(f"{key} must be one of {', '.join(allowed)} (got {getattr(cfg, key)!r})")
    if cfg.steps < 1:
        raise UserError(f"steps must be at least 1 (got {cfg.steps})")
    if cfg.kd_mode != "none" and not cfg.teacher:
        raise UserError(f"kd_mode {cfg.kd_mode} needs a teacher: set 'teacher' (or kd_mode none for the baseline)")
    if cfg.on_policy and cfg.kd_mode == "none":
        raise UserError("on_policy needs a teacher to score the student's samples (kd_mode top1_mix or kl)")
    if cfg.kd_mode == "kl" and cfg.temperature <= 0:
        raise UserError(f"kd_mode kl needs a positive temperature (got {cfg.temperature})")
    if not 0.0 <= cfg.teacher_weight <= 1.0:
        raise UserError(f"teacher_weight must be in [0, 1] (got {cfg.teacher_weight})")
    for key in ("from_checkpoint",) + (("teacher",) if cfg.kd_mode != "none" else ()):
        if not Path(getattr(cfg, key)).is_dir():
            raise UserError(f"{key} {getattr(cfg, key)}: no such checkpoint directory")


def vocabulary(path: str | Path) -> tuple[int, int, dict]:
    """(config vocab_size, tokenizer length, token -> id) of a checkpoint directory, without loading its weights."""
    from transformers import AutoConfig, AutoTokenizer

    config = AutoConfig.from_pretrained(path, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    return config.vocab_size, len(tokenizer), tokenizer.get_vocab()


def check_vocab(student: str | Path, teacher: str | Path) -> None:
    """A one-line UserError unless student and teacher share one vocabulary: the same size and the same ids
    for the same tokens (two BPEs trained on different corpora can have equal sizes and mean other things)."""
    s, t = vocabulary(student), vocabulary(teacher)
    if s[:2] != t[:2]:
        raise UserError(f"teacher {teacher} has vocabulary {t[0]} ({t[1]} tokenizer tokens) but the student "
                        f"{s[0]} ({s[1]}): distillation needs one shared tokenizer")
    if s[2] != t[2]:
        raise UserError(f"teacher {teacher} and the student have vocabularies of one size but other tokens: "
                        f"distillation needs one shared tokenizer")


def start_student(cfg: DistillConfig):
    """(model, tokenizer) to train: the checkpoint, or a fresh seeded init of its config; on the device."""
    from transformers import AutoModelForCausalLM

    from afm_align.member_io import stage_device

    model, tokenizer = load_start(cfg.from_checkpoint, stage="distill-training")
    if cfg.init == "random":
        torch.manual_seed(cfg.seed)
        fresh = AutoModelForCausalLM.from_config(model.config, dtype=torch.float32)
        fresh.generation_config = model.generation_config
        model = fresh
    device = stage_device("distill-training")
    return (model if device.type == "meta" else model.to(device)), tokenizer


def parameter_count(model) -> int:
    """Parameters of a model, tied ones counted once."""
    return sum(p.numel() for p in model.parameters())


# ---- the recipe ---------------------------------------------------------------------------------

def main(cfg: DistillConfig) -> dict:
    """Distil the teacher into the student, write the member, return its meta.json."""
    from afm_align.member_io import load

    check_config(cfg)
    rows = [r for r in read_rows(cfg.data, "sft") if r.get("split") in (None, "train")]  # never dev/test problems
    if not rows:
        raise NothingToTrain(f"data {cfg.data}: no sft rows of the train split to train on")
    use_teacher = cfg.kd_mode != "none"
    if use_teacher:
        check_vocab(cfg.from_checkpoint, cfg.teacher)
    model, tokenizer = start_student(cfg)
    teacher = load(cfg.teacher, stage="distill-teacher", bf16=cfg.bf16)[0].requires_grad_(False) if use_teacher else None
    torch.manual_seed(cfg.seed)  # dropout, if the config has any
    with member_staging(cfg.out) as stage:
        summary = train(model, teacher, tokenizer, rows, cfg, MetricsLog(stage / METRICS_FILE))
        n_student = parameter_count(model)
        n_teacher = parameter_count(teacher) if teacher is not None else 0
        compute = {"tokens_seen": summary["tokens_seen"], "steps": cfg.steps, "batch_size": cfg.batch_size,
                   "seq_len": cfg.seq_len, "token_budget": cfg.steps * cfg.batch_size * cfg.seq_len,
                   "student_parameters": n_student, "teacher_parameters": n_teacher,
                   # 6 N D for the student's forward and backward, 2 N D for the teacher's forward
                   "flops_estimate": float((6 * n_student + 2 * n_teacher) * summary["tokens_seen"])}
        meta = {"member": cfg.member or Path(cfg.out).name, "recipe": "distill", "round": cfg.round,
                "from_checkpoint": str(cfg.from_checkpoint), "teacher": str(cfg.teacher) if use_teacher else None,
                **data_meta(cfg.data), "kd_mode": cfg.kd_mode, "init": cfg.init, "loss_on": cfg.loss_on,
                "on_policy": cfg.on_policy, "train": summary, "compute": compute}
        meta = write_member(stage, model, tokenizer, meta=meta, cfg=cfg)
    return meta
