"""The on-disk format of a palettised (k-means look-up-table quantised) checkpoint, and loading it back.

A quantised member folder holds:

```
quantized.safetensors   every parameter of the model, stored as one of three kinds (below)
config.json             model.config.save_pretrained: the architecture, to rebuild the model
tokenizer files         tokenizer.save_pretrained (chat template kept)
meta.json               what the folder is (alignment.quantize writes plan, sensitivity, measured bits)
```
The kinds, recorded per parameter in the safetensors header (metadata key `afm_palette`, JSON:
`{name: {"kind", "shape", "bits", "group_size"}}`), so the file alone says how to decode it:
- `palette` (projection matrices): `<name>.lut` fp16 [groups, 2**bits], one LUT per block of `group_size`
  rows (the last block may be shorter), and `<name>.idx`, the LUT indices packed `8 // bits` to a byte
  (`pack_indices`); a weight is `lut[row // group_size, idx]`;
- `int8` (the input/output embedding, per row = per channel): `<name>.q` uint8 codes, `<name>.scale` fp16
  and `<name>.zero_point` uint8 per row; a weight is `(q - zero_point) * scale`;
- `fp16` (everything else: norms, biases): `<name>` as fp16.
Tied input/output embeddings are one parameter and are stored once; the model built from config.json
ties them again.

Why a format of our own: Core ML's palettizer (coremltools.optimize.torch) fake-quantises weights in place
and packs them only when converting to an .mlpackage, which does not run on Linux; HQQ, optimum-quanto and
torchao store uniform affine grids, not k-means LUTs. So indices are packed here for real, and
`bits_report` measures bits per weight and bytes on disk from the saved file instead of estimating them.
The k-means itself is `alignment.palettization`; this core module only encodes and decodes.

What it simplifies: decoding happens once at load time into a plain float model (no LUT kernels), so a
quantised member runs at full-precision speed and memory; the file is what a device would ship.

Run: `python -c "from afm_align.palette_format import bits_report; print(bits_report('runs/x/members/q'))"`.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from afm_align.errors import UserError
from afm_align.store import write_json_atomic

WEIGHTS_FILE = "quantized.safetensors"
META_FILE = "meta.json"
LAYOUT_KEY = "afm_palette"  # the safetensors metadata entry holding the per-parameter layout
BITS = (2, 4, 8)  # index widths that pack whole indices into a byte


def check_bits(bits) -> int:
    """`bits` as an int, or the one-line UserError `bits must be 2, 4 or 8 (got 3)`."""
    if isinstance(bits, bool) or bits not in BITS:
        raise UserError(f"bits must be 2, 4 or 8 (got {bits})")
    return int(bits)


# ---- index packing -------------------------------------------------------------------------------------

def pack_indices(idx, bits: int):
    """Flat uint8 tensor of the indices `idx` (any shape, values < 2**bits), `8 // bits` per byte, the first
    index in the lowest bits; the last byte is padded with zeros."""
    import torch

    bits = check_bits(bits)
    flat = idx.reshape(-1).to(torch.uint8)
    if flat.numel() and int(flat.max()) >= 1 << bits:
        raise ValueError(f"an index is {int(flat.max())}, too large for {bits} bits")
    per = 8 // bits
    if per == 1:
        return flat.clone()
    pad = (-flat.numel()) % per
    groups = torch.cat([flat, flat.new_zeros(pad)]).reshape(-1, per).to(torch.int32)
    shifts = torch.arange(per, dtype=torch.int32, device=flat.device) * bits
    return (groups << shifts).sum(dim=1).to(torch.uint8)


def unpack_indices(packed, bits: int, numel: int):
    """The first `numel` indices of `packed` (inverse of `pack_indices`), as a flat uint8 tensor."""
    import torch

    bits = check_bits(bits)
    per = 8 // bits
    if per == 1:
        return packed.reshape(-1)[:numel].clone()
    shifts = torch.arange(per, dtype=torch.int32, device=packed.device) * bits
    values = (packed.reshape(-1, 1).to(torch.int32) >> shifts) & ((1 << bits) - 1)
    return values.reshape(-1)[:numel].to(torch.uint8)


# ---- decoding (the one implementation; alignment.palettization re-uses it) -----------------------------

def dequantize_weight(luts, idx, group_size: int):
    """Float32 weight [rows, cols] from LUTs [groups, K] and indices [rows, cols]: row r reads LUT
    `r // group_size` (`group_size` 0 or None: one LUT for the whole tensor)."""
    import torch

    rows = idx.shape[0]
    size = group_size or rows
    group_of_row = torch.arange(rows, device=idx.device) // size
    return luts.float()[group_of_row].gather(1, idx.long())


def dequantize_embedding_int8(q, scale, zero_point):
    """Float32 weight from per-row affine codes: `(q - zero_point) * scale`."""
    return (q.float() - zero_point.float()[:, None]) * scale.float()[:, None]


def decode(entry: dict, tensors: dict, name: str):
    """The float32 value of parameter `name` from its layout `entry` and the file's tensors."""
    shape = tuple(entry["shape"])
    if entry["kind"] == "palette":
        idx = unpack_indices(tensors[f"{name}.idx"], entry["bits"], math.prod(shape)).reshape(shape)
        return dequantize_weight(tensors[f"{name}.lut"], idx, entry["group_size"])
    if entry["kind"] == "int8":
        return dequantize_embedding_int8(tensors[f"{name}.q"], tensors[f"{name}.scale"],
                                         tensors[f"{name}.zero_point"])
    if entry["kind"] == "fp16":
        return tensors[name].float().reshape(shape)
    raise KeyError(f"unknown kind {entry['kind']!r}")


# ---- saving --------------------------------------------------------------------------------------------

def _param_names(model) -> list[str]:
    """Parameter names of `model`, each shared tensor once (tied embeddings: the input embedding's name)."""
    return [name for name, _ in model.named_parameters()]


def save_quantized(stage_dir, model, tokenizer, packed: dict, meta: dict) -> dict:
    """Write the quantised folder into `stage_dir` and return the meta written (with `bits`: `bits_report`).

    `packed` maps parameter names to entries from `alignment.palettization.palettize_model`:
    `{"kind": "palette", "shape", "bits", "group_size", "lut", "idx" (packed)}` or
    `{"kind": "int8", "shape", "q", "scale", "zero_point"}`; every parameter not in it is stored as fp16.
    The folder's size in `bits` counts every file but meta.json itself (written last).
    """
    from safetensors.torch import save_file

    stage = Path(stage_dir)
    stage.mkdir(parents=True, exist_ok=True)
    layout, tensors = {}, {}
    params = dict(model.named_parameters())
    unknown = set(packed) - set(params)
    if unknown:
        raise ValueError(f"packed entries name no parameter of the model: {sorted(unknown)[:3]}")
    for name, param in params.items():
        entry = packed.get(name) or {"kind": "fp16", "value": param.detach().half()}
        layout[name] = {"kind": entry["kind"], "shape": list(param.shape)}
        if entry["kind"] == "palette":
            layout[name].update(bits=int(entry["bits"]), group_size=int(entry["group_size"]))
            tensors[f"{name}.lut"], tensors[f"{name}.idx"] = entry["lut"].half(), entry["idx"]
        elif entry["kind"] == "int8":
            tensors[f"{name}.q"], tensors[f"{name}.scale"] = entry["q"], entry["scale"].half()
            tensors[f"{name}.zero_point"] = entry["zero_point"]
        else:
            tensors[name] = entry["value"]
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    save_file(tensors, str(stage / WEIGHTS_FILE), metadata={"format": "pt", LAYOUT_KEY: json.dumps(layout)})
    model.config.save_pretrained(stage)
    tokenizer.save_pretrained(stage)
    full = {**meta, "bits": bits_report(stage)}
    write_json_atomic(stage / META_FILE, full)
    return full


# ---- loading -------------------------------------------------------------------------------------------

def is_quantized(path) -> bool:
    """True when `path` is a complete quantised folder (weights file and meta.json present)."""
    return (Path(path) / WEIGHTS_FILE).is_file() and (Path(path) / META_FILE).is_file()


def read_file(path) -> tuple[dict, dict]:
    """(layout, tensors) of a quantised folder's weights file; a missing or corrupt one is a one-line UserError."""
    if not is_quantized(path):
        raise UserError(f"{path}: not a quantised checkpoint (needs {WEIGHTS_FILE} and {META_FILE})")
    return _read(Path(path) / WEIGHTS_FILE)


def _read(file: Path) -> tuple[dict, dict]:
    from safetensors import safe_open

    try:
        with safe_open(str(file), framework="pt") as fh:
            layout = json.loads((fh.metadata() or {})[LAYOUT_KEY])
            tensors = {key: fh.get_tensor(key) for key in fh.keys()}
    except Exception as err:  # noqa: BLE001 - any read failure is a corrupt file in the user's folder
        raise UserError(f"{file}: corrupt quantised weights ({type(err).__name__})") from None
    return layout, tensors


def load_quantized(path, dtype=None):
    """(model, tokenizer) of a quantised folder: the architecture from config.json, every parameter filled with
    its decoded value (tied embeddings stay tied), in eval mode. `dtype` defaults to float32."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    dtype = dtype or torch.float32
    layout, tensors = read_file(path)
    try:
        config = AutoConfig.from_pretrained(path, local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"{path}: cannot read the config or tokenizer ({first})") from None
    model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    names = _param_names(model)
    if set(names) != set(layout):
        raise UserError(f"{path}: the weights file does not match config.json "
                        f"({len(set(names) ^ set(layout))} parameters differ)")
    with torch.no_grad():
        for name, param in model.named_parameters():
            try:
                value = decode(layout[name], tensors, name)
            except (KeyError, RuntimeError) as err:
                raise UserError(f"{path}: corrupt quantised parameter {name} ({type(err).__name__})") from None
            if tuple(value.shape) != tuple(param.shape):
                raise UserError(f"{path}: parameter {name} has shape {tuple(value.shape)}, "
                                f"config.json says {tuple(param.shape)}")
            param.copy_(value.to(dtype))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model.eval(), tokenizer


# ---- measuring -----------------------------------------------------------------------------------------

def _bits(tensor) -> int:
    return tensor.numel() * tensor.element_size() * 8


def bits_report(path) -> dict:
    """Bits per weight and bytes on disk, measured from the saved file.

    `bits_per_weight`: every stored tensor's bits (packed indices incl. padding, LUTs, int8 codes, scales,
    zero points, fp16 rest) / the model's parameter count (tied embeddings counted once);
    `bits_per_weight_projections`: the palettised matrices only (their indices + LUTs / their weights);
    `index_bits_projections`: the same without the LUTs (what a bits plan targets); `size_bytes`: the
    weights file (header included); `folder_bytes`: every file of the folder.
    """
    folder = Path(path)
    if not (folder / WEIGHTS_FILE).is_file():
        raise UserError(f"{path}: no {WEIGHTS_FILE} to measure")
    layout, tensors = _read(folder / WEIGHTS_FILE)  # meta.json may not be written yet (save_quantized)
    n_params = sum(math.prod(e["shape"]) for e in layout.values())
    total = sum(_bits(t) for t in tensors.values())
    palette = [n for n, e in layout.items() if e["kind"] == "palette"]
    proj_params = sum(math.prod(layout[n]["shape"]) for n in palette)
    proj_idx = sum(_bits(tensors[f"{n}.idx"]) for n in palette)
    proj_lut = sum(_bits(tensors[f"{n}.lut"]) for n in palette)
    return {
        "parameters": n_params,
        "bits_per_weight": total / n_params if n_params else 0.0,
        "projection_parameters": proj_params,
        "bits_per_weight_projections": (proj_idx + proj_lut) / proj_params if proj_params else None,
        "index_bits_projections": proj_idx / proj_params if proj_params else None,
        "size_bytes": (folder / WEIGHTS_FILE).stat().st_size,
        "folder_bytes": sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()),
    }
