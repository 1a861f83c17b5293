"""Palettisation math (AFM §7.2): k-means look-up tables for projection weights, int8 per-channel embeddings,
per-layer sensitivity and the mixed 2/4-bit plan.

- `kmeans_lut(values, k)`: deterministic 1-D k-means. Values are sorted once, so every cluster is a run of
  the sorted values and one Lloyd step is a `searchsorted` of the k-1 midpoints plus prefix sums (no
  n x k distance matrix, the same result on any device). Init at the quantiles (i + 0.5) / k; an empty
  cluster is re-seeded at the value farthest from its centre; a group with at most k distinct values gets
  exactly those values (padded with its largest), so palettising a palettised weight changes nothing.
- `palettize_weight(w, bits, group_size)`: one LUT of 2**bits fp16 values per block of `group_size` rows
  (AFM: "every 16 columns/rows share one LUT"; 0 or None = the whole tensor, AFM's very large blocks);
  the last block may be shorter. Indices are the nearest fp16 LUT entry.
- `quantize_embedding_int8(w)`: the shared input/output embedding at 8 bits per channel: per row an
  asymmetric affine grid (fp16 scale, uint8 zero point) whose range holds the row's min, max and 0.
- `layer_sensitivity(model, batches)`: the LM-loss increase on calibration text when one projection alone
  is palettised at 2 bits (then restored); `mixed_bits_plan` moves projections to 2 bits, least sensitive
  per weight first, until the projections' average index bits reach the target (AFM: ~3.5 bpw).
- `palettize_model(model, plan, group_size)`: palettises every planned projection and the embedding, writes
  the decoded values into `model` in place (the rest rounded through fp16, exactly what is saved) and returns
  the packed entries for `afm_align.palette_format.save_quantized`.

What it simplifies: sensitivity is one projection at a time (no interactions), k-means is unweighted (no
Hessian or activation weighting), and the plan's bits count indices only; the LUT overhead depends on the
group size and is measured from the saved file (`palette_format.bits_report`). AFM's accuracy-recovery
adapters are not trained here. Decoding lives in the core format module and is re-exported here.

Run: `python -c "import torch; from alignment.palettization import palettize_weight;
print(palettize_weight(torch.randn(32, 8), 2, 16)[0])"`.
"""
from __future__ import annotations

from afm_align.errors import UserError
from afm_align.palette_format import (  # noqa: F401 - decoding is the format's; re-exported as the math's inverse
    check_bits, dequantize_embedding_int8, dequantize_weight, pack_indices,
)

PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


# ---- 1-D k-means ---------------------------------------------------------------------------------------

def _nearest(values, lut):
    """Index of the nearest LUT entry (sorted [G, k]) for every value [G, n]; a tie goes to the lower entry."""
    import torch

    lut = lut.double()
    mids = ((lut[:, 1:] + lut[:, :-1]) / 2).contiguous()
    return torch.searchsorted(mids, values.double().contiguous())


def _reseed_empty(centers, counts, sorted_vals) -> None:
    """Move each group's empty clusters to its values farthest from their centres (in place)."""
    for g in (counts == 0).any(dim=1).nonzero().flatten().tolist():
        empty = (counts[g] == 0).nonzero().flatten()
        vals = sorted_vals[g:g + 1]
        err = (vals - centers[g:g + 1].gather(1, _nearest(vals, centers[g:g + 1]))).abs()[0]
        far = err.topk(min(len(empty), err.numel())).indices
        centers[g, empty[:len(far)]] = sorted_vals[g, far].to(centers.dtype)


def _lloyd(sorted_vals, k: int, iters: int):
    """Sorted k-means centres [G, k] (float64) of the sorted rows of `sorted_vals` [G, n]."""
    import torch

    groups, n = sorted_vals.shape
    vals = sorted_vals.double()
    csum = torch.cat([vals.new_zeros(groups, 1), vals.cumsum(1)], dim=1)
    pos = (torch.arange(k, dtype=torch.float64, device=vals.device) + 0.5) / k * (n - 1)
    lo, frac = pos.floor().long(), pos - pos.floor()
    hi = (lo + 1).clamp(max=n - 1)
    centers = vals[:, lo] + frac * (vals[:, hi] - vals[:, lo])  # quantile init
    for _ in range(iters):
        mids = ((centers[:, 1:] + centers[:, :-1]) / 2).contiguous()
        bounds = torch.searchsorted(vals, mids, right=True)  # values <= mid go to the lower cluster
        end = torch.cat([bounds, bounds.new_full((groups, 1), n)], dim=1)
        start = torch.cat([bounds.new_zeros(groups, 1), bounds], dim=1)
        counts = end - start
        sums = csum.gather(1, end) - csum.gather(1, start)
        new = torch.where(counts > 0, sums / counts.clamp(min=1), centers)
        _reseed_empty(new, counts, vals)
        new = new.sort(dim=1).values
        if torch.equal(new, centers):
            break
        centers = new
    return centers


def _kmeans_groups(values, k: int, iters: int = 20):
    """Sorted float64 centres [G, k] for each row of `values` [G, n] (see the module doc)."""
    import torch

    sorted_vals = values.double().sort(dim=1).values
    distinct = 1 + (sorted_vals[:, 1:] != sorted_vals[:, :-1]).sum(dim=1)
    centers = torch.empty(values.shape[0], k, dtype=torch.float64, device=values.device)
    few = distinct <= k
    if (~few).any():
        centers[~few] = _lloyd(sorted_vals[~few], k, iters)
    for g in few.nonzero().flatten().tolist():  # at most k distinct values: keep them exactly
        unique = torch.unique_consecutive(sorted_vals[g])
        centers[g] = torch.cat([unique, unique[-1:].expand(k - len(unique))])
    return centers


def kmeans_lut(values, k: int, iters: int = 20):
    """(lut [k] float32 sorted, idx [n] long): deterministic 1-D k-means of a flat tensor."""
    if k < 1 or values.numel() == 0:
        raise UserError(f"k-means needs k >= 1 and some values (got k={k}, {values.numel()} values)")
    flat = values.reshape(1, -1)
    centers = _kmeans_groups(flat, k, iters)
    return centers[0].float(), _nearest(flat, centers)[0]


# ---- weights -------------------------------------------------------------------------------------------

def check_group_size(group_size) -> int:
    """`group_size` as rows per LUT (0 = whole tensor), or a one-line UserError."""
    if group_size is None:
        return 0
    if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 0:
        raise UserError(f"group_size must be at least 1 row, or 0 for one LUT per tensor (got {group_size!r})")
    return group_size


def palettize_weight(w, bits: int, group_size: int | None = 16, iters: int = 20):
    """(luts [groups, 2**bits] fp16, idx uint8 [rows, cols]) of a 2-D weight, one LUT per `group_size` rows."""
    import torch

    bits, size = check_bits(bits), check_group_size(group_size)
    if w.dim() != 2:
        raise UserError(f"palettize_weight needs a 2-D weight (got shape {tuple(w.shape)})")
    rows, cols = w.shape
    size = min(size or rows, rows)
    flat = w.detach().float()
    full = rows // size * size
    parts = [flat[:full].reshape(-1, size * cols)] if full else []
    if full < rows:
        parts.append(flat[full:].reshape(1, -1))  # the shorter last block
    luts, idx = [], []
    for part in parts:
        lut = _kmeans_groups(part, 1 << bits, iters).half()  # the nearest entry is chosen among fp16 values
        luts.append(lut)
        idx.append(_nearest(part, lut).to(torch.uint8).reshape(-1, cols))
    return torch.cat(luts), torch.cat(idx)


def quantize_embedding_int8(w):
    """(q uint8 [rows, cols], scale fp16 [rows], zero_point uint8 [rows]): per-row asymmetric affine codes.

    The scale is rounded to fp16 before coding (what is stored is what codes were made with) and kept at
    least fp16's smallest normal number (a constant row codes exactly anyway). Zero codes exactly; the error
    is at most half a step inside a row's range and up to one step at its ends (the zero point is an integer)."""
    import torch

    w = w.detach().float()
    lo = w.min(dim=1).values.clamp(max=0)
    hi = w.max(dim=1).values.clamp(min=0)
    tiny = torch.finfo(torch.float16).tiny
    scale = ((hi - lo) / 255).clamp(min=tiny).half()
    s = scale.float()
    zero_point = (-lo / s).round().clamp(0, 255)
    q = (w / s[:, None]).round().add(zero_point[:, None]).clamp(0, 255)
    return q.to(torch.uint8), scale, zero_point.to(torch.uint8)


# ---- the model -----------------------------------------------------------------------------------------

def projection_names(model) -> list[str]:
    """Module names of the model's projection linears (PROJECTIONS), in model order."""
    import torch

    return [name for name, module in model.named_modules()
            if isinstance(module, torch.nn.Linear) and name.rsplit(".", 1)[-1] in PROJECTIONS]


def lm_loss(model, batches) -> float:
    """Mean next-token loss of `model` over `batches` (dicts with input_ids, attention_mask, labels)."""
    import torch

    with torch.no_grad():
        losses = [float(model(**batch).loss) for batch in batches]
    return sum(losses) / len(losses)


def layer_sensitivity(model, batches, bits: int = 2, group_size: int | None = 16) -> dict[str, float]:
    """{projection: LM-loss increase when it alone is palettised at `bits`}; every weight is restored."""
    import torch

    from afm_align.tracking import progress

    base, out = lm_loss(model, batches), {}
    modules = dict(model.named_modules())
    for name in progress(projection_names(model), desc="sensitivity", unit="layer"):
        weight = modules[name].weight
        saved = weight.detach().clone()
        luts, idx = palettize_weight(saved, bits, group_size)
        with torch.no_grad():
            weight.copy_(dequantize_weight(luts, idx, group_size).to(weight.dtype))
        try:
            out[name] = lm_loss(model, batches) - base
        finally:
            with torch.no_grad():
                weight.copy_(saved)
    return out


def mixed_bits_plan(sensitivity: dict[str, float], numels: dict[str, int], target_bpw: float = 3.5,
                    low: int = 2, high: int = 4) -> dict[str, int]:
    """{projection: bits}: all start at `high`; the projection with the smallest loss increase per weight
    (sensitivity / numel: cost per bit saved) moves to `low`, then the next, until the numel-weighted
    average index bits are <= `target_bpw`. Ties go by name, so the plan is deterministic."""
    if not low <= target_bpw:
        raise UserError(f"target_bpw must be at least {low} bits (got {target_bpw})")
    plan = {name: high for name in sensitivity}
    total = sum(numels[name] for name in plan)
    bits = high * total
    for name in sorted(plan, key=lambda n: (sensitivity[n] / numels[n], n)):
        if bits <= target_bpw * total:
            break
        plan[name] = low
        bits -= (high - low) * numels[name]
    return plan


def palettize_model(model, plan: dict[str, int], group_size: int | None = 16, embedding_bits: int = 8) -> dict:
    """Packed entries {parameter: entry} of the planned projections (LUT) and the embedding(s) (int8 with
    `embedding_bits` 8; 16 keeps them fp16); writes the decoded values into `model`, the rest through fp16."""
    import torch

    size = check_group_size(group_size)
    if embedding_bits not in (8, 16):
        raise UserError(f"embedding_bits must be 8 or 16 (got {embedding_bits})")
    unknown = set(plan) - set(projection_names(model))
    if unknown:
        raise UserError(f"the bits plan names layers that are not projections: {', '.join(sorted(unknown)[:3])}")
    embeddings = {id(m.weight) for m in (model.get_input_embeddings(), model.get_output_embeddings()) if m is not None}
    weights = {f"{name}.weight": bits for name, bits in plan.items()}
    packed = {}
    with torch.no_grad():
        for name, param in model.named_parameters():
            shape = list(param.shape)
            if name in weights:
                luts, idx = palettize_weight(param, weights[name], size)
                rows = min(size or shape[0], shape[0])
                packed[name] = {"kind": "palette", "shape": shape, "bits": weights[name], "group_size": rows,
                                "lut": luts, "idx": pack_indices(idx, weights[name])}
                value = dequantize_weight(luts, idx, rows)
            elif id(param) in embeddings and embedding_bits == 8:
                q, scale, zero_point = quantize_embedding_int8(param)
                packed[name] = {"kind": "int8", "shape": shape, "q": q, "scale": scale, "zero_point": zero_point}
                value = dequantize_embedding_int8(q, scale, zero_point)
            else:
                value = param.half().float()
            param.copy_(value.to(param.dtype))
    return packed
