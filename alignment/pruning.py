"""The `prune` recipe: structured pruning of a Qwen3 teacher into a smaller student (AFM on-device, afm-spec §8).

What it does, top to bottom (`main(cfg)`):
1. load the teacher `cfg.from_checkpoint` and resolve the target shape (a shape field of 0 keeps the teacher's;
   `num_heads: 0` keeps the teacher's query heads per KV group);
2. score every prunable unit (`importance`):
   - `activation` (default, Minitron-style): a calibration pass over `calibration_rows` train rows of the `sft`
     dataset `cfg.data` (each conversation rendered with the tokenizer's chat template, `seq_len` tokens at
     most); a unit's score is its mean |activation| over real tokens times the norm of its weights:
     MLP channel j: |act_fn(gate_j) * up_j| x ||gate_j, up_j, down[:, j]||; query head h: ||head output|| x
     ||q rows of h, o columns of h||; hidden channel c: |x_c| of every RMSNorm output (what the layers and the
     LM head read) x ||embedding column c||; a layer: its block influence, 1 - mean cos(layer input, output)
     (ShortGPT): a layer that barely changes the residual stream is dropped first;
   - `magnitude`: the weight norms alone (no data); a layer by the norm of what it writes to the residual
     stream (o_proj and down_proj);
3. keep the top units (indices sorted, so pruning to the teacher's own shape gives the teacher back exactly):
   the top layers; per kept layer the top KV groups by the sum of their query heads' scores and, inside each
   kept group, its top query heads (head_dim is unchanged, so q_norm / k_norm copy as they are); the top MLP
   channels (gate / up rows, down columns); the top hidden channels, the same ones in the embedding (tied with
   the LM head), every projection and every norm weight;
4. copy the selected slices into a fresh student of the target shape and write it as a member (atomically,
   `alignment.members`); meta.json records both shapes, parameter counts, the method and a summary of the
   kept indices; `prune_plan.json` holds every kept index.

What it simplifies: AFM learns its FFN mask with Soft-Top-K on 188B tokens; here the mask is one-shot from
importance scores, and the student needs distillation afterwards (the `distill` recipe) to recover. Removing
hidden channels changes what each RMSNorm divides by, so only the full-shape prune is exact. Qwen3 layouts only.

Run: `python -c "from afm_align.config import load_config; from alignment.pruning import PruneConfig, main;
main(load_config(PruneConfig, preset='tiny', recipe='prune', overrides=['from_checkpoint=runs/x/base',
'data=runs/x/data/sft-...', 'out=runs/x/members/pruned']))"`.
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from afm_align.errors import UserError
from afm_align.store import read_rows, write_json_atomic
from afm_align.tracking import progress
from alignment.members import data_meta, member_staging, write_member
from alignment.sft import to_prompt_completion

SHAPE_KEYS = ("hidden_size", "num_layers", "num_heads", "num_kv_heads", "intermediate_size")


@dataclass
class PruneConfig:
    """Every knob of the prune recipe."""

    from_checkpoint: str = ""  # the teacher: a Qwen3 causal-LM member or base directory (with its tokenizer)
    data: str = ""  # `sft` dataset folder whose train rows are the calibration text (needed by `activation`)
    out: str = ""  # member directory to write (the pruned student)
    member: str = ""  # member name in provenance ("" = the name of `out`)
    round: int = 0  # iTeC round this member belongs to (0 outside rounds)
    hidden_size: int = 0  # student hidden size (0 = the teacher's)
    num_heads: int = 0  # student query heads (0 = num_kv_heads x the teacher's query heads per KV group)
    num_kv_heads: int = 0  # student KV heads, i.e. KV groups kept (0 = the teacher's)
    intermediate_size: int = 0  # student SwiGLU width (0 = the teacher's)
    num_layers: int = 0  # student layers (0 = the teacher's)
    importance: str = "activation"  # activation (calibration activations x weight norms) | magnitude (norms only)
    calibration_rows: int = 64  # train rows of `data` in the calibration pass (0 = all)
    seq_len: int = 256  # token cap of a calibration conversation
    batch_size: int = 8  # calibration rows per forward pass
    seed: int = 0  # which calibration rows are drawn


# ---- target shape ---------------------------------------------------------------------------------

def model_shape(config) -> dict:
    """The prunable shape of a Qwen3 config."""
    heads = config.num_attention_heads
    return {"hidden_size": config.hidden_size, "num_layers": config.num_hidden_layers, "num_heads": heads,
            "num_kv_heads": config.num_key_value_heads, "intermediate_size": config.intermediate_size,
            "head_dim": getattr(config, "head_dim", None) or config.hidden_size // heads}


def target_shape(cfg: PruneConfig, teacher: dict) -> dict:
    """The student shape: `cfg`'s fields with 0 resolved from the teacher; a one-line UserError when it cannot be cut
    from the teacher (larger than it, or query heads that do not split evenly over the kept KV groups)."""
    group = teacher["num_heads"] // teacher["num_kv_heads"]
    target = {key: getattr(cfg, key) or teacher[key] for key in SHAPE_KEYS}
    target["num_heads"] = cfg.num_heads or target["num_kv_heads"] * group
    target["head_dim"] = teacher["head_dim"]
    for key in SHAPE_KEYS:
        if not 1 <= target[key] <= teacher[key]:
            raise UserError(f"{key} must be between 1 and the teacher's {teacher[key]} (got {target[key]})")
    if target["num_heads"] % target["num_kv_heads"] or target["num_heads"] // target["num_kv_heads"] > group:
        raise UserError(f"num_heads {target['num_heads']} must be a multiple of num_kv_heads "
                        f"{target['num_kv_heads']}, at most {group} query heads per KV group (the teacher's)")
    return target


# ---- importance: pure functions -------------------------------------------------------------------

def top_indices(scores: torch.Tensor, k: int) -> torch.Tensor:
    """The indices of the `k` largest scores, in increasing index order (ties go to the lower index), on the CPU."""
    order = torch.argsort(scores.float(), descending=True, stable=True)
    return order[:k].sort().values.cpu()


def mlp_weight_norms(gate: torch.Tensor, up: torch.Tensor, down: torch.Tensor) -> torch.Tensor:
    """[I] norm of each SwiGLU channel's weights: its gate row, up row and down column."""
    return (gate.float().pow(2).sum(1) + up.float().pow(2).sum(1) + down.float().pow(2).sum(0)).sqrt()


def head_weight_norms(q: torch.Tensor, o: torch.Tensor, head_dim: int) -> torch.Tensor:
    """[num_heads] norm of each query head's weights: its q_proj rows and o_proj columns."""
    q_sq = q.float().pow(2).sum(1).view(-1, head_dim).sum(1)
    o_sq = o.float().pow(2).sum(0).view(-1, head_dim).sum(1)
    return (q_sq + o_sq).sqrt()


def block_influence(x_in: torch.Tensor, x_out: torch.Tensor, mask: torch.Tensor) -> tuple[float, int]:
    """(sum over real tokens of 1 - cos(layer input, layer output), token count): ShortGPT's block influence."""
    cos = torch.nn.functional.cosine_similarity(x_in.float(), x_out.float(), dim=-1)
    return float(((1.0 - cos) * mask).sum()), int(mask.sum())


def select_heads(scores: torch.Tensor, num_kv_heads: int, keep_groups: int, heads_per_group: int):
    """(kept KV heads, kept query heads) from per-query-head scores: the top `keep_groups` KV groups by the sum of
    their query heads' scores, then the top `heads_per_group` query heads inside each kept group."""
    per_group = scores.float().view(num_kv_heads, -1)
    groups = top_indices(per_group.sum(1), keep_groups)
    size = per_group.size(1)
    heads = [g * size + top_indices(per_group[g], heads_per_group) for g in groups.tolist()]
    return groups, torch.cat(heads)


def head_rows(heads: torch.Tensor, head_dim: int) -> torch.Tensor:
    """The weight rows (or columns) of the given heads: head h owns h*head_dim .. h*head_dim + head_dim - 1."""
    return (heads[:, None] * head_dim + torch.arange(head_dim, device=heads.device)).reshape(-1)


# ---- importance: measured ------------------------------------------------------------------------

def calibration_batches(cfg: PruneConfig, tokenizer) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """[(ids, mask)] right-padded batches of the rendered calibration conversations (a seeded draw of rows)."""
    rows = [r for r in read_rows(cfg.data, "sft") if r.get("split") in (None, "train")]
    if not rows:
        raise UserError(f"data {cfg.data}: no sft rows of the train split to calibrate on")
    rows = random.Random(cfg.seed).sample(rows, min(len(rows), cfg.calibration_rows or len(rows)))
    texts = []
    for row in rows:
        pc = to_prompt_completion(row)
        texts.append(tokenizer.apply_chat_template(pc["prompt"] + pc["completion"], tokenize=False))
    ids = [torch.tensor(x[: cfg.seq_len]) for x in tokenizer(texts, add_special_tokens=False)["input_ids"]]
    pad = torch.nn.utils.rnn.pad_sequence
    return [(pad(chunk, batch_first=True, padding_value=tokenizer.pad_token_id),
             pad([torch.ones(len(x)) for x in chunk], batch_first=True))
            for chunk in (ids[i:i + cfg.batch_size] for i in range(0, len(ids), cfg.batch_size))]


def _hooks(model, sums: dict, current: dict) -> list:
    """Forward hooks that add each unit's activation statistic over real tokens into `sums`."""
    def add(key, value):
        sums[key] = sums.get(key, 0.0) + value

    def masked(x):  # [B, T, ...] summed over the real tokens of the current batch
        m = current["mask"].to(x.device).view(*x.shape[:2], *([1] * (x.dim() - 2)))
        return (x.float() * m).sum((0, 1))

    handles, head_dim = [], model_shape(model.config)["head_dim"]
    for i, layer in enumerate(model.model.layers):
        handles.append(layer.mlp.down_proj.register_forward_pre_hook(
            lambda mod, args, i=i: add(("mlp", i), masked(args[0].abs()))))
        handles.append(layer.self_attn.o_proj.register_forward_pre_hook(
            lambda mod, args, i=i: add(("heads", i), masked(args[0].unflatten(-1, (-1, head_dim)).norm(dim=-1)))))
        for norm in (layer.input_layernorm, layer.post_attention_layernorm):
            handles.append(norm.register_forward_hook(lambda mod, args, out: add("hidden", masked(out.abs()))))

        def influence(mod, args, kwargs, out, i=i):
            x_in = args[0] if args else kwargs["hidden_states"]
            total, count = block_influence(x_in, out[0] if isinstance(out, tuple) else out, current["mask"])
            add(("layer", i), total)
        handles.append(layer.register_forward_hook(influence, with_kwargs=True))
    handles.append(model.model.norm.register_forward_hook(lambda mod, args, out: add("hidden", masked(out.abs()))))
    return handles


def activation_means(model, batches) -> dict:
    """Mean activation statistics of every unit over the real calibration tokens (see the module doc)."""
    sums, current, tokens = {}, {}, 0
    handles = _hooks(model, sums, current)
    device = next(model.parameters()).device
    try:
        with torch.no_grad():
            for ids, mask in progress(batches, desc="calibration", unit="batch"):
                current["mask"] = mask.to(device)
                model(input_ids=ids.to(device), attention_mask=mask.long().to(device), use_cache=False)
                tokens += int(mask.sum())
    finally:
        for handle in handles:
            handle.remove()
    return {key: value / max(1, tokens) for key, value in sums.items()}


def weight_norms(model) -> dict:
    """Per-unit weight norms: `mlp` [L][I], `heads` [L][H], `hidden` [hidden], `layer_out` [L]."""
    head_dim = model_shape(model.config)["head_dim"]
    norms = {"mlp": [], "heads": [], "layer_out": [],
             "hidden": model.model.embed_tokens.weight.detach().float().norm(dim=0)}
    for layer in model.model.layers:
        mlp, attn = layer.mlp, layer.self_attn
        norms["mlp"].append(mlp_weight_norms(mlp.gate_proj.weight, mlp.up_proj.weight, mlp.down_proj.weight))
        norms["heads"].append(head_weight_norms(attn.q_proj.weight, attn.o_proj.weight, head_dim))
        out_sq = attn.o_proj.weight.float().pow(2).sum() + mlp.down_proj.weight.float().pow(2).sum()
        norms["layer_out"].append(out_sq.sqrt())
    return norms


def importance_scores(norms: dict, means: dict | None) -> dict:
    """Scores per unit: weight norms (`means` None: magnitude) or activation means x weight norms."""
    n = len(norms["mlp"])
    if means is None:
        return {"mlp": norms["mlp"], "heads": norms["heads"], "hidden": norms["hidden"],
                "layers": torch.stack(norms["layer_out"])}
    return {"mlp": [means[("mlp", i)] * norms["mlp"][i] for i in range(n)],
            "heads": [means[("heads", i)] * norms["heads"][i] for i in range(n)],
            "hidden": means["hidden"] * norms["hidden"],
            "layers": torch.tensor([float(means[("layer", i)]) for i in range(n)])}


IMPORTANCE = {"activation": "mean |activation| on calibration tokens x weight norm; layers by block influence",
              "magnitude": "weight norms only; layers by the norm of o_proj and down_proj"}


# ---- the plan and the weight slicing ------------------------------------------------------------

def prune_plan(scores: dict, teacher: dict, target: dict) -> dict:
    """Which teacher units the student keeps: `layers` (teacher layer ids), `hidden` channels and, per kept layer,
    its `kv` heads, `q` heads and `mlp` channels (index tensors, increasing)."""
    layers = top_indices(scores["layers"], target["num_layers"]).tolist()
    per_layer = []
    for i in layers:
        kv, q = select_heads(scores["heads"][i], teacher["num_kv_heads"], target["num_kv_heads"],
                             target["num_heads"] // target["num_kv_heads"])
        per_layer.append({"kv": kv, "q": q, "mlp": top_indices(scores["mlp"][i], target["intermediate_size"])})
    return {"layers": layers, "hidden": top_indices(scores["hidden"], target["hidden_size"]), "per_layer": per_layer}


# the axes of every Qwen3 tensor (by the last two parts of its name) and which kept indices select along each:
# `hidden` channels, `q` / `kv` head rows, `mlp` channels; None keeps the axis whole
SLICES = {
    "embed_tokens.weight": (None, "hidden"), "lm_head.weight": (None, "hidden"), "norm.weight": ("hidden",),
    "input_layernorm.weight": ("hidden",), "post_attention_layernorm.weight": ("hidden",),
    "q_proj.weight": ("q", "hidden"), "k_proj.weight": ("kv", "hidden"), "v_proj.weight": ("kv", "hidden"),
    "o_proj.weight": ("hidden", "q"), "q_proj.bias": ("q",), "k_proj.bias": ("kv",), "v_proj.bias": ("kv",),
    "o_proj.bias": ("hidden",), "q_norm.weight": (None,), "k_norm.weight": (None,),
    "gate_proj.weight": ("mlp", "hidden"), "up_proj.weight": ("mlp", "hidden"), "down_proj.weight": ("hidden", "mlp"),
}
LAYER_NAME = re.compile(r"^(.*\blayers)\.(\d+)\.(.+)$")


def slice_tensor(tensor: torch.Tensor, axes: tuple, index: dict) -> torch.Tensor:
    """`tensor` cut to the kept indices along each named axis."""
    for axis, kind in enumerate(axes):
        if kind is not None:
            tensor = tensor.index_select(axis, index[kind].to(tensor.device))
    return tensor


def student_state(teacher_state: dict, plan: dict, head_dim: int) -> dict:
    """The student's state dict: every teacher tensor of a kept layer (renumbered) or outside the layers, sliced."""
    student_of = {t: s for s, t in enumerate(plan["layers"])}
    out = {}
    for name, tensor in teacher_state.items():
        index, match = {"hidden": plan["hidden"]}, LAYER_NAME.match(name)
        if match:
            teacher_layer = int(match.group(2))
            if teacher_layer not in student_of:
                continue
            kept = plan["per_layer"][student_of[teacher_layer]]
            index.update(q=head_rows(kept["q"], head_dim), kv=head_rows(kept["kv"], head_dim), mlp=kept["mlp"])
            name = f"{match.group(1)}.{student_of[teacher_layer]}.{match.group(3)}"
        key = ".".join(name.split(".")[-2:])
        if key not in SLICES:
            raise UserError(f"prune: unexpected tensor {name} (only Qwen3 causal LMs can be pruned)")
        out[name] = slice_tensor(tensor, SLICES[key], index).clone()
    return out


def student_config(teacher_config, target: dict, layers: list[int]):
    """The teacher's config with the student's shape (per-layer fields follow the kept layers)."""
    fields = teacher_config.to_dict()
    fields.update(hidden_size=target["hidden_size"], intermediate_size=target["intermediate_size"],
                  num_hidden_layers=target["num_layers"], num_attention_heads=target["num_heads"],
                  num_key_value_heads=target["num_kv_heads"], head_dim=target["head_dim"])
    if fields.get("layer_types"):
        fields["layer_types"] = [fields["layer_types"][i] for i in layers]
    return type(teacher_config).from_dict(fields)


def build_student(teacher, plan: dict, target: dict):
    """A student model of the target shape holding the teacher's kept weights."""
    from transformers import AutoModelForCausalLM

    student = AutoModelForCausalLM.from_config(student_config(teacher.config, target, plan["layers"]),
                                               dtype=next(teacher.parameters()).dtype)
    student.load_state_dict(student_state(teacher.state_dict(), plan, target["head_dim"]), strict=True)
    student.generation_config = teacher.generation_config
    return student.eval()


def plan_summary(plan: dict) -> dict:
    """The kept indices in brief, for meta.json (every index is in prune_plan.json)."""
    return {"layers": plan["layers"], "hidden_kept": len(plan["hidden"]),
            "kv_heads": [p["kv"].tolist() for p in plan["per_layer"]],
            "q_heads": [p["q"].tolist() for p in plan["per_layer"]],
            "mlp_kept": [len(p["mlp"]) for p in plan["per_layer"]]}


def plan_json(plan: dict) -> dict:
    """Every kept index as plain lists."""
    return {"layers": plan["layers"], "hidden": plan["hidden"].tolist(),
            "per_layer": [{k: v.tolist() for k, v in p.items()} for p in plan["per_layer"]]}


# ---- the recipe ---------------------------------------------------------------------------------

def check_config(cfg: PruneConfig) -> None:
    """One-line UserErrors for a config that cannot run."""
    for key in ("from_checkpoint", "out") + (("data",) if cfg.importance == "activation" else ()):
        if not getattr(cfg, key):
            raise UserError(f"config key '{key}' must be set")
    if cfg.importance not in IMPORTANCE:
        raise UserError(f"importance must be one of {', '.join(IMPORTANCE)} (got {cfg.importance!r})")
    if not Path(cfg.from_checkpoint).is_dir():
        raise UserError(f"{cfg.from_checkpoint}: no such checkpoint directory")


def parameter_count(model) -> int:
    """Parameters of a model, tied ones counted once."""
    return sum(p.numel() for p in model.parameters())


def main(cfg: PruneConfig) -> dict:
    """Prune the teacher into the target shape, write the member, return its meta.json."""
    from afm_align.member_io import load

    check_config(cfg)
    teacher, tokenizer = load(cfg.from_checkpoint, stage="prune", bf16=False)
    if teacher.config.model_type != "qwen3":
        raise UserError(f"{cfg.from_checkpoint}: a {teacher.config.model_type} model; prune handles Qwen3 only")
    shape = model_shape(teacher.config)
    target = target_shape(cfg, shape)
    means = activation_means(teacher, calibration_batches(cfg, tokenizer)) if cfg.importance == "activation" else None
    plan = prune_plan(importance_scores(weight_norms(teacher), means), shape, target)
    student = build_student(teacher, plan, target)
    with member_staging(cfg.out) as stage:
        meta = {"member": cfg.member or Path(cfg.out).name, "recipe": "prune",
                "from_checkpoint": str(cfg.from_checkpoint), "teacher_shape": shape, "student_shape": target,
                "parameters": {"teacher": parameter_count(teacher), "student": parameter_count(student)},
                "importance": cfg.importance, "importance_rule": IMPORTANCE[cfg.importance],
                **(data_meta(cfg.data) if cfg.importance == "activation" else {}), "kept": plan_summary(plan)}
        write_json_atomic(stage / "prune_plan.json", plan_json(plan))
        meta = write_member(stage, student, tokenizer, meta=meta, cfg=cfg)
    print(f"prune: {meta['parameters']['teacher']:,} -> {meta['parameters']['student']:,} parameters, "
          f"written to {cfg.out}")
    return meta
