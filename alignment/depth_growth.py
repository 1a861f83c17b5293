"""Depth growth: a deeper model that computes exactly what a checkpoint computes, to be trained further.

`grow_depth(src, out, factor)` writes a model with `factor` x the decoder layers of `src`: each layer is followed by
`factor - 1` copies of itself whose two output projections (attention `o_proj`, MLP `down_proj`) are zero, so
each copy adds nothing to the residual stream and the grown model's logits equal the source's (tested to float
precision). Training then moves the copies away from zero. This is how the systems' Gemma 2 preset gets a
teacher larger than its student without minutes of CPU pre-training (a tiny model pre-trained from scratch in the
budget is weaker than the student: `committee.systems.build_teacher`); the idea is the function-preserving
growth of Net2Net (Chen et al. 2016) and depth up-scaling, here with zeroed outputs instead of halved copies.

What it simplifies: Qwen3-style decoder layers only (`model.layers[i]` with `self_attn.o_proj` and
`mlp.down_proj`); all layers must share one attention type.

Run: `python -c "from alignment.depth_growth import grow_depth; grow_depth('runs/x/base', 'runs/x/teacher', 2)"`.
"""
from __future__ import annotations

from pathlib import Path

from afm_align.errors import UserError

ZEROED = ("self_attn.o_proj.weight", "mlp.down_proj.weight")  # a copy's outputs into the residual stream


def grown_state(state: dict, num_layers: int, factor: int) -> dict:
    """The state dict of the grown model: layer i of the source becomes layers i*factor .. i*factor + factor - 1,
    the first a plain copy, the others copies with `ZEROED` set to 0; every other tensor is kept."""
    if factor < 1:
        raise UserError(f"depth growth factor must be at least 1 (got {factor})")
    out = {}
    for key, value in state.items():
        if not key.startswith("model.layers."):
            out[key] = value.clone()
            continue
        index, rest = key[len("model.layers."):].split(".", 1)
        for j in range(factor):
            copy = value.clone()
            if j and rest in ZEROED:
                copy.zero_()
            out[f"model.layers.{int(index) * factor + j}.{rest}"] = copy
    return out


def grow_depth(src: str | Path, out: str | Path, factor: int = 2) -> Path:
    """Write the grown model (weights, config with `factor` x the layers, tokenizer) of checkpoint `src` to `out`."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    import json

    from afm_align.member_io import staged_dir

    src, out = Path(src), Path(out)
    model = AutoModelForCausalLM.from_pretrained(src, local_files_only=True)
    config = model.config
    layer_types = getattr(config, "layer_types", None)
    if layer_types and len(set(layer_types)) > 1:
        raise UserError(f"{src}: depth growth needs one attention type in every layer (got {sorted(set(layer_types))})")
    n = config.num_hidden_layers
    config.num_hidden_layers = n * factor
    if layer_types:
        config.layer_types = [layer_types[0]] * (n * factor)
    grown = AutoModelForCausalLM.from_config(config)
    grown.load_state_dict(grown_state(model.state_dict(), n, factor), strict=True)
    with staged_dir(out, required="meta.json") as stage:
        grown.save_pretrained(stage)
        AutoTokenizer.from_pretrained(src, local_files_only=True).save_pretrained(stage)
        meta = {"recipe": "depth_growth", "from_checkpoint": str(src), "factor": factor, "layers": [n, n * factor],
                "parameters": sum(p.numel() for p in grown.parameters())}
        (stage / "meta.json").write_text(json.dumps(meta, indent=2))
    return out
