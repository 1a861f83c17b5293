"""The adapter recipe: a LoRA adapter trained on a frozen (usually palettised) base - AFM's accuracy-recovery
adapters and the task adapters trained on top of them.

What it does, top to bottom (`main(cfg)`):
1. load the base `cfg.from_checkpoint` (a palettised member from the `quantize` recipe, or any plain member)
   through `afm_align.adapter_io`, freeze it, and put a LoRA adapter of `lora_rank` (8, 16 or 32; AFM's
   default 16) on every attention and MLP projection (`alignment.lora`); a task adapter starts from a
   recovery adapter's weights (`init_adapter`, AFM: "feature adapters are initialised from the accuracy-recovery
   adapter"), which must have been trained on the same base;
2. train it in two phases, as AFM trains recovery adapters "consistent with pre-training and post-training":
   `corpus_steps` on the base's pre-training text (`corpus`: conversations, every token counts) and then
   `sft_steps` on post-training data (`data`: `sft` rows, assistant tokens only). The target is the true
   next token (cross-entropy), or, with `teacher` set (the unquantised member), the teacher's distribution
   (KL(teacher || student), `alignment.system_losses.distillation_kl`): recovery by distillation;
3. write an adapter member directory atomically: peft's `adapter_config.json` + `adapter_model.safetensors`,
   the tokenizer, `meta.json` (recipe `adapter`, `task`, `base` and its weight fingerprint, `lora_rank`,
   trainable parameters, the adapter's size at 16 bits, train summary), `recipe_config.yaml` and the loss log
   `metrics.jsonl`. The adapter is never merged: merging would undo the base's quantisation.

What it simplifies: AFM trains recovery adapters on ~10B tokens (0.15% of the base's pre-training); the
tiny preset takes a few hundred short sequences. Batches are drawn with a seeded generator, so a seed gives
the same adapter.

Run: `afm-align train adapter --from runs/x/on_device/q4 --data DIR --out DIR corpus=DIR lora_rank=16`.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from afm_align.errors import UserError

TARGETS = ("labels", "teacher")


@dataclass
class AdapterConfig:
    """A LoRA adapter on a frozen base: recovery (corpus then SFT data) or task (SFT data, from a recovery adapter)."""

    from_checkpoint: str = ""  # the frozen base: a palettised member (quantize recipe) or a plain member
    data: str = ""  # an `sft` dataset: the post-training phase (assistant tokens only)
    out: str = ""  # the adapter member directory to write
    member: str = ""  # member name in provenance ("" = the name of `out`)
    round: int = 0  # iTeC round this member belongs to (0 outside rounds)
    corpus: str | None = None  # an `sft` dataset of pre-training conversations: the first phase (all tokens)
    teacher: str | None = None  # the unquantised member: when set, the target is its distribution (KL)
    init_adapter: str | None = None  # start from this adapter's weights (a recovery adapter of the same base)
    task: str = "recovery"  # what the adapter is for (recovery, summarize, math, ...): its name when served
    lora_rank: int = 16  # 8, 16 or 32 (AFM offers these; 16 is its default)
    corpus_steps: int = 100  # optimiser steps of the pre-training phase (0: skip it)
    sft_steps: int = 100  # optimiser steps of the post-training phase (0: skip it)
    batch_size: int = 16
    seq_len: int = 128  # longer conversations are cut
    learning_rate: float = 2.0e-3  # LoRA on a tiny model needs a large step to move in a few hundred steps
    weight_decay: float = 0.0
    logging_steps: int = 10
    seed: int = 0


def check(cfg: AdapterConfig) -> None:
    """One-line errors for the inputs, before anything is loaded."""
    from afm_align.adapter_io import check_adapter_base

    if not cfg.from_checkpoint or not Path(cfg.from_checkpoint).is_dir():
        raise UserError(f"from_checkpoint {cfg.from_checkpoint or '(unset)'}: no such base directory")
    if not cfg.out:
        raise UserError("config key 'out' must be set")
    if isinstance(cfg.lora_rank, bool) or not isinstance(cfg.lora_rank, int) or cfg.lora_rank < 1:
        raise UserError(f"lora_rank must be a positive integer (presets 8, 16, 32), got {cfg.lora_rank!r}")
    if cfg.corpus_steps < 0 or cfg.sft_steps < 0 or cfg.corpus_steps + cfg.sft_steps < 1:
        raise UserError("corpus_steps and sft_steps must be >= 0 and not both 0")
    if cfg.corpus_steps and not cfg.corpus:
        raise UserError("corpus_steps > 0 needs `corpus` (an sft dataset of pre-training conversations)")
    if cfg.sft_steps and not cfg.data:
        raise UserError("sft_steps > 0 needs `data` (an sft dataset)")
    if cfg.teacher and not Path(cfg.teacher).is_dir():
        raise UserError(f"teacher {cfg.teacher}: no such member directory")
    if cfg.init_adapter:
        check_adapter_base(cfg.init_adapter, cfg.from_checkpoint)


def conversations(path: str) -> list[list[dict]]:
    """The chat conversations of an `sft` dataset (`messages`, or `prompt` + `completion`)."""
    from afm_align.store import read_rows

    out = []
    for row in read_rows(path):
        if row.get("messages"):
            out.append(row["messages"])
        else:
            completion = row["completion"]
            out.append(list(row["prompt"]) + (completion if isinstance(completion, list)
                                              else [{"role": "assistant", "content": completion}]))
    if not out:
        raise UserError(f"{path}: no conversations to train on")
    return out


def encode(tokenizer, chats: list[list[dict]], seq_len: int, *, all_tokens: bool) -> list[tuple[list, list]]:
    """(token ids, loss mask) per conversation: every token, or the assistant's tokens only."""
    rows = []
    for chat in chats:
        enc = tokenizer.apply_chat_template(chat, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
        ids = list(enc["input_ids"])[:seq_len]
        mask = [1] * len(ids) if all_tokens else list(enc["assistant_masks"])[:seq_len]
        if sum(mask[1:]):
            rows.append((ids, mask))
    return rows


def lazy_encoder(tokenizer, chats: list[list[dict]], seq_len: int, *, all_tokens: bool):
    """`get(i)`: conversation i encoded (`encode`) on first use, None when it has no trainable token. A phase
    touches at most steps x batch_size rows, so a large corpus is not rendered whole for every adapter."""
    cache: dict[int, tuple | None] = {}

    def get(i: int):
        if i not in cache:
            cache[i] = (encode(tokenizer, [chats[i]], seq_len, all_tokens=all_tokens) or [None])[0]
        return cache[i]
    return get


def batch_tensors(rows: list[tuple[list, list]], pad_id: int):
    """Right-padded (input_ids, attention_mask, loss_mask) tensors of a batch."""
    import torch

    width = max(len(ids) for ids, _ in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attn = torch.zeros((len(rows), width), dtype=torch.long)
    loss = torch.zeros((len(rows), width), dtype=torch.float32)
    for i, (seq, mask) in enumerate(rows):
        ids[i, :len(seq)] = torch.tensor(seq)
        attn[i, :len(seq)] = 1
        loss[i, :len(seq)] = torch.tensor(mask, dtype=torch.float32)
    return ids, attn, loss


def next_token_loss(logits, ids, loss_mask, teacher_logits=None):
    """Mean loss over the masked next-token positions: CE on the true token, or KL to the teacher."""
    import torch.nn.functional as F

    from alignment.system_losses import distillation_kl

    logits, mask = logits[:, :-1], loss_mask[:, 1:]
    if teacher_logits is not None:
        return distillation_kl(logits, teacher_logits[:, :-1], mask)
    nll = F.cross_entropy(logits.transpose(1, 2), ids[:, 1:], reduction="none")
    return (nll * mask).sum() / mask.sum().clamp(min=1)


def build_model(cfg: AdapterConfig):
    """(peft model with one trainable adapter, tokenizer) on the frozen base."""
    from peft import PeftModel, get_peft_model

    from afm_align.adapter_io import load_any_base
    from afm_align.member_io import set_threads
    from alignment.lora import lora_config

    set_threads()
    base, tokenizer = load_any_base(cfg.from_checkpoint)
    if cfg.init_adapter:
        model = PeftModel.from_pretrained(base, cfg.init_adapter, is_trainable=True)
        if model.peft_config["default"].r != cfg.lora_rank:
            raise UserError(f"init_adapter {cfg.init_adapter} has rank {model.peft_config['default'].r}, "
                            f"not lora_rank {cfg.lora_rank}")
    else:
        model = get_peft_model(base, lora_config(cfg.lora_rank))
    return model, tokenizer


def train_phase(model, teacher, chats, steps: int, cfg: AdapterConfig, optimizer, log, phase: str,
                rng: random.Random, tokenizer, all_tokens: bool) -> list[float]:
    """`steps` optimiser steps on random batches of the conversations `chats`; the logged losses."""
    import torch

    from afm_align.tracking import progress

    get, losses = lazy_encoder(tokenizer, chats, cfg.seq_len, all_tokens=all_tokens), []
    model.train()
    for step in progress(range(steps), desc=f"adapter {cfg.task} ({phase})", unit="step"):
        rows = [r for r in map(get, rng.sample(range(len(chats)), min(cfg.batch_size, len(chats)))) if r]
        if not rows:
            if not any(get(i) for i in range(len(chats))):
                raise UserError(f"{phase} data: no trainable tokens within seq_len {cfg.seq_len}")
            continue
        ids, attn, mask = batch_tensors(rows, tokenizer.pad_token_id)
        teacher_logits = None
        if teacher is not None:
            with torch.no_grad():
                teacher_logits = teacher(input_ids=ids, attention_mask=attn).logits
        loss = next_token_loss(model(input_ids=ids, attention_mask=attn).logits, ids, mask, teacher_logits)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
        if (step + 1) % cfg.logging_steps == 0 or step + 1 == steps:
            log.log(source="adapter", phase=phase, step=step + 1, loss=sum(losses[-cfg.logging_steps:])
                    / len(losses[-cfg.logging_steps:]))
    model.eval()
    return losses


def adapter_bytes_16bit(model) -> int:
    """Bytes of the adapter's weights stored at 16 bits (AFM's adapter precision)."""
    return 2 * sum(p.numel() for n, p in model.named_parameters() if "lora_" in n)


def main(cfg: AdapterConfig) -> dict:
    """Train the adapter and write its member directory; returns its meta."""
    import time

    import torch

    from afm_align.adapter_io import base_fingerprint, load_any_base
    from afm_align.config import save_resolved
    from afm_align.member_io import staged_dir
    from afm_align.store import write_json_atomic
    from afm_align.tracking import MetricsLog
    from alignment.members import META_FILE, METRICS_FILE

    check(cfg)
    torch.manual_seed(cfg.seed)
    model, tokenizer = build_model(cfg)
    teacher = load_any_base(cfg.teacher)[0] if cfg.teacher else None
    if teacher is not None and teacher.config.vocab_size != model.config.vocab_size:
        raise UserError(f"teacher {cfg.teacher} has another vocabulary ({teacher.config.vocab_size} tokens, "
                        f"base {model.config.vocab_size})")
    phases = [("corpus", cfg.corpus, cfg.corpus_steps, True), ("sft", cfg.data, cfg.sft_steps, False)]
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.learning_rate,
                                  weight_decay=cfg.weight_decay)
    rng, summary, start = random.Random(cfg.seed), {}, time.perf_counter()
    with staged_dir(cfg.out, required=META_FILE) as stage:
        log = MetricsLog(Path(stage) / METRICS_FILE)
        for phase, path, steps, all_tokens in phases:
            if not steps:
                continue
            losses = train_phase(model, teacher, conversations(path), steps, cfg, optimizer, log, phase, rng,
                                 tokenizer, all_tokens)
            summary[phase] = {"steps": len(losses), "first_loss": losses[0] if losses else None,
                              "last_loss": losses[-1] if losses else None}
        model.save_pretrained(stage)
        tokenizer.save_pretrained(stage)
        save_resolved(cfg, stage, "recipe_config.yaml")
        meta = {"format": 1, "member": cfg.member or Path(cfg.out).name, "recipe": "adapter",
                "round": cfg.round, "task": cfg.task,
                "base": str(cfg.from_checkpoint), "base_fingerprint": base_fingerprint(cfg.from_checkpoint),
                "init_adapter": cfg.init_adapter, "teacher": cfg.teacher, "lora_rank": cfg.lora_rank,
                "target": "teacher" if cfg.teacher else "labels", "seed": cfg.seed,
                "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
                "adapter_bytes_16bit": adapter_bytes_16bit(model), "train": summary,
                "seconds": round(time.perf_counter() - start, 2), "created": round(time.time(), 3)}
        write_json_atomic(Path(stage) / META_FILE, meta)
    return meta
