"""The quantize recipe: AFM-style palettisation of a member checkpoint (afm-spec §7.2), for on-device use.

What it does, top to bottom (`main(cfg)`):
1. load the checkpoint `cfg.from_checkpoint` (float32, on the device of `afm_align.member_io`);
2. plan the bits of every projection (q/k/v/o, gate/up/down): `4bit`, `2bit` and `8bit` put all of them at
   that width; `mixed` (AFM: 4-bit default, the least important layers at 2 bits, ~3.5 bits per weight)
   measures each projection's LM-loss increase when it alone is palettised at 2 bits, on calibration text
   (the `train` rows of `cfg.data` rendered with the chat template), and moves the least sensitive per
   weight to 2 bits until the average index bits reach `cfg.target_bpw` (alignment.palettization);
3. palettise: one k-means LUT per `cfg.group_size` rows (0 = the whole tensor), the shared embedding at
   8 bits per channel; with calibration text, the LM loss before and after is recorded;
4. write the quantised folder `cfg.out` atomically (afm_align.palette_format: packed indices, LUTs,
   config, tokenizer, meta.json with the plan, the sensitivity and the bits per weight measured on disk).

meta.json: `member` (folder name), `recipe` ("quantize"), `from_checkpoint`, `scheme`, `group_size`,
`embedding_bits`, `target_bpw`, `plan` ({projection: bits}), `sensitivity` ({projection: loss increase},
mixed only), `calibration` (rows, loss before / after), `bits` (palette_format.bits_report), `created`.

What it simplifies: no accuracy-recovery adapters (AFM trains LoRA on the frozen quantised model), no
activation quantisation; the loaded model decodes to floats (palette_format). Calibration uses train rows:
fitting the bits is like fitting weights, and dev stays for choosing among members.

Run: `python -c "from afm_align.config import load_config; from alignment.quantize import QuantizeConfig, main;
main(load_config(QuantizeConfig, preset='tiny', recipe='quantize', overrides=['from_checkpoint=runs/x/base',
'data=runs/x/data/sft-...', 'out=runs/x/members/sft-q']))"`.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path

from afm_align.errors import UserError

SCHEMES = {"4bit": 4, "2bit": 2, "8bit": 8, "mixed": None}  # scheme -> bits of every projection (None: planned)
RECIPE_CONFIG_FILE = "recipe_config.yaml"
LOW_BITS, HIGH_BITS = 2, 4  # the mixed scheme's two widths (AFM: 4-bit default, some layers at 2)


@dataclass
class QuantizeConfig:
    """Every knob of the quantize recipe."""

    from_checkpoint: str = ""  # checkpoint directory to quantise (a member or the base; not a quantised one)
    data: str | None = ""  # calibration text (needed by mixed): an sft or prompt dataset folder (""/None = none)
    out: str = ""  # quantised folder to write
    member: str = ""  # name in provenance ("" = the name of `out`)
    round: int = 0  # iTeC round this member belongs to (0 outside rounds)
    scheme: str = "mixed"  # 4bit | 2bit | 8bit: every projection at that width; mixed: 4 and 2 bits by sensitivity
    group_size: int = 16  # rows sharing one LUT (AFM: 16); 0 = one LUT per tensor (AFM's very large blocks)
    target_bpw: float = 3.5  # mixed: average index bits per projection weight to reach (AFM: ~3.5; 3.7 shipped)
    embedding_bits: int = 8  # 8: the embedding at int8 per channel (AFM); 16: kept fp16
    calibration_rows: int = 64  # rows of `data` used as calibration text (shuffled by `seed`)
    seq_len: int = 256  # token cap of a calibration row
    batch_size: int = 8  # calibration rows per forward pass
    seed: int = 0  # which calibration rows are drawn


# ---- checks --------------------------------------------------------------------------------------------

def check_config(cfg: QuantizeConfig) -> None:
    """One-line UserErrors for what the recipe cannot run with, before any model is loaded."""
    from afm_align.palette_format import is_quantized
    from alignment.palettization import check_group_size

    for key in ("from_checkpoint", "out"):
        if not getattr(cfg, key):
            raise UserError(f"config key '{key}' must be set")
    if cfg.scheme not in SCHEMES:
        raise UserError(f"unknown scheme '{cfg.scheme}'; schemes are: {', '.join(SCHEMES)}")
    check_group_size(cfg.group_size)
    if cfg.embedding_bits not in (8, 16):
        raise UserError(f"embedding_bits must be 8 or 16 (got {cfg.embedding_bits})")
    if cfg.scheme == "mixed":
        if not cfg.data:
            raise UserError("scheme mixed needs `data` (calibration text to measure layer sensitivity); "
                            "or choose scheme=4bit")
        if not LOW_BITS <= cfg.target_bpw <= HIGH_BITS:
            raise UserError(f"target_bpw must be in [{LOW_BITS}, {HIGH_BITS}] for scheme mixed (got {cfg.target_bpw})")
    if not Path(cfg.from_checkpoint).is_dir():
        raise UserError(f"{cfg.from_checkpoint}: no such checkpoint directory")
    if is_quantized(cfg.from_checkpoint):
        raise UserError(f"{cfg.from_checkpoint}: is already quantised; quantise the checkpoint it came from")
    if cfg.data and not Path(cfg.data).exists():
        raise UserError(f"data {cfg.data}: no such dataset folder")


# ---- calibration text ----------------------------------------------------------------------------------

def row_messages(row: dict) -> list[dict]:
    """The chat of one sft or prompt row: its messages, prompt + completion, or the prompt alone."""
    if "messages" in row:
        return list(row["messages"])
    completion = row.get("completion") or []
    if isinstance(completion, str):
        completion = [{"role": "assistant", "content": completion}]
    return list(row["prompt"]) + list(completion)


def calibration_texts(cfg: QuantizeConfig, tokenizer) -> list[str]:
    """Up to `calibration_rows` train rows of `cfg.data` (drawn by `seed`), rendered with the chat template."""
    from afm_align.store import read_rows

    rows = [r for r in read_rows(cfg.data) if r.get("split") in (None, "train")]
    rows = [r for r in rows if "messages" in r or "prompt" in r]
    if not rows:
        raise UserError(f"data {cfg.data}: no train rows with messages or a prompt to calibrate on")
    random.Random(cfg.seed).shuffle(rows)
    return [tokenizer.apply_chat_template(row_messages(r), tokenize=False) for r in rows[:cfg.calibration_rows]]


def calibration_batches(texts: list[str], tokenizer, cfg: QuantizeConfig, device) -> list[dict]:
    """Tokenised batches with labels (padding masked out of the loss) on `device`; padded on the right, so
    every row starts at position 0 as in training."""
    batches, side = [], tokenizer.padding_side
    tokenizer.padding_side = "right"
    try:
        for start in range(0, len(texts), cfg.batch_size):
            enc = tokenizer(texts[start:start + cfg.batch_size], return_tensors="pt", padding=True,
                            truncation=True, max_length=cfg.seq_len)
            labels = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
            batches.append({k: v.to(device) for k, v in dict(enc, labels=labels).items()})
    finally:
        tokenizer.padding_side = side
    return batches


# ---- the plan ------------------------------------------------------------------------------------------

def plan_bits(model, batches, cfg: QuantizeConfig) -> tuple[dict[str, int], dict[str, float] | None]:
    """({projection: bits}, sensitivity or None): every projection at the scheme's width, or the mixed plan."""
    from alignment.palettization import layer_sensitivity, mixed_bits_plan, projection_names

    names = projection_names(model)
    if not names:
        raise UserError(f"{cfg.from_checkpoint}: the model has no projection layers ({', '.join(SCHEMES)} need them)")
    if SCHEMES[cfg.scheme] is not None:
        return {name: SCHEMES[cfg.scheme] for name in names}, None
    sensitivity = layer_sensitivity(model, batches, bits=LOW_BITS, group_size=cfg.group_size)
    modules = dict(model.named_modules())
    numels = {name: modules[name].weight.numel() for name in names}
    return mixed_bits_plan(sensitivity, numels, cfg.target_bpw, low=LOW_BITS, high=HIGH_BITS), sensitivity


# ---- the recipe ----------------------------------------------------------------------------------------

def main(cfg: QuantizeConfig) -> dict:
    """Run the quantize recipe; returns the meta.json written into `cfg.out`."""
    from afm_align.config import save_resolved
    from afm_align.member_io import free, load_for_training, place, staged_dir
    from afm_align.palette_format import META_FILE, save_quantized
    from alignment.palettization import lm_loss, palettize_model

    check_config(cfg)
    model, tokenizer = load_for_training(cfg.from_checkpoint, stage="quantize")
    model = place(model, stage="quantize")
    device = next(model.parameters()).device
    batches = calibration_batches(calibration_texts(cfg, tokenizer), tokenizer, cfg, device) if cfg.data else []
    loss_before = lm_loss(model, batches) if batches else None
    plan, sensitivity = plan_bits(model, batches, cfg)
    packed = palettize_model(model, plan, cfg.group_size, cfg.embedding_bits)
    calibration = {"data": str(cfg.data) if cfg.data else None, "rows": sum(len(b["input_ids"]) for b in batches),
                   "loss_before": loss_before, "loss_after": lm_loss(model, batches) if batches else None}
    meta = {"member": cfg.member or Path(cfg.out).name, "recipe": "quantize",
            "from_checkpoint": str(cfg.from_checkpoint), "scheme": cfg.scheme, "group_size": cfg.group_size,
            "embedding_bits": cfg.embedding_bits, "target_bpw": cfg.target_bpw if cfg.scheme == "mixed" else None,
            "plan": plan, "sensitivity": sensitivity, "calibration": calibration, "created": round(time.time(), 3)}
    with staged_dir(cfg.out, required=META_FILE) as stage:
        save_resolved(cfg, stage, RECIPE_CONFIG_FILE)
        meta = save_quantized(stage, model, tokenizer, packed, meta)
    free(model)
    return meta
