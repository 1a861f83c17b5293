"""The shared LoRA option of every policy recipe: adapters on all attention and MLP projections.

What it does: `lora_config(rank)` returns a `peft.LoraConfig` for a causal LM that adapts every linear
projection of self-attention (q, k, v, o) and of the SwiGLU feed-forward (gate, up, down), as AFM's
feature adapters do (afm-spec §7.1), with `lora_alpha = 2 * rank` and no bias. Ranks 8, 16 and 32 are the
workbench's presets (AFM uses 16); any positive rank is accepted. `rank = 0` in a recipe config means
full fine-tuning, so `lora_config_or_none(0)` is None.

What it simplifies: the LM head and embeddings are not adapted (tied embeddings; TRL's RL trainers also
refuse an adapter on `lm_head`); adapters are merged into the weights when a member is saved.

Run: `python -c "from alignment.lora import lora_config; print(lora_config(16))"`.
"""
from __future__ import annotations

from afm_align.errors import UserError


LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
PRESET_RANKS = (8, 16, 32)


def lora_config(rank: int, alpha: float | None = None, dropout: float = 0.0):
    """A peft LoraConfig of `rank` on all attention and MLP projections of a causal LM."""
    from peft import LoraConfig

    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise UserError(f"LoRA rank must be a positive integer (presets: 8, 16, 32), got {rank!r}.")
    return LoraConfig(r=rank, lora_alpha=alpha if alpha is not None else 2 * rank, lora_dropout=dropout,
                      target_modules=list(LORA_TARGETS), bias="none", task_type="CAUSAL_LM")


def lora_config_or_none(rank: int):
    """None for rank 0 (full fine-tuning), else `lora_config(rank)`."""
    return None if rank == 0 else lora_config(rank)


def merged(model):
    """The plain transformers model: a peft model with its adapters merged in, any other model as is."""
    return model.merge_and_unload() if hasattr(model, "merge_and_unload") else model
