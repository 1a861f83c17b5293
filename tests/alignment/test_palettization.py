"""Palettisation math pinned by hand: 1-D k-means, LUT blocks, int8 embedding, sensitivity and the mixed plan."""
import pytest
import torch

from afm_align.errors import UserError
from alignment.palettization import (
    dequantize_embedding_int8, dequantize_weight, kmeans_lut, layer_sensitivity, mixed_bits_plan, palettize_model,
    palettize_weight, projection_names, quantize_embedding_int8,
)


def test_kmeans_by_hand():
    values = torch.tensor([0.0, 0.0, 1.0, 1.0, 5.0, 5.0])
    # k=2: quantile init 0.25 and 4 -> {0, 0, 1, 1} and {5, 5} -> centres 0.5 and 5, then stable
    lut, idx = kmeans_lut(values, 2)
    assert lut.tolist() == [0.5, 5.0] and idx.tolist() == [0, 0, 0, 0, 1, 1]
    lut, idx = kmeans_lut(values, 3)  # as many distinct values as entries: exact
    assert lut.tolist() == [0.0, 1.0, 5.0] and idx.tolist() == [0, 0, 1, 1, 2, 2]
    lut, idx = kmeans_lut(values, 4)  # fewer distinct values than entries: padded with the largest
    assert lut.tolist() == [0.0, 1.0, 5.0, 5.0] and lut[idx].tolist() == values.tolist()


def test_kmeans_reseeds_empty_clusters_and_is_deterministic():
    values = torch.tensor([0.0] * 20 + [1.0, 2.0, 3.0, 4.0, 5.0])  # quantile init puts two centres at 0
    lut, idx = kmeans_lut(values, 3)
    assert len(set(lut.tolist())) == 3 and lut.tolist() == sorted(lut.tolist())
    assert torch.equal(idx, kmeans_lut(values, 3)[1])
    assert (lut[idx] - values).pow(2).sum() < (values - values.mean()).pow(2).sum() / 5


def test_more_bits_give_smaller_error():
    w = torch.randn(40, 24, generator=torch.Generator().manual_seed(0))
    errors = {}
    for bits in (2, 4, 8):
        luts, idx = palettize_weight(w, bits, 16)
        assert luts.dtype == torch.float16 and luts.shape == (3, 2**bits)  # 16 + 16 + 8 rows
        assert idx.dtype == torch.uint8 and idx.shape == w.shape
        errors[bits] = (dequantize_weight(luts, idx, 16) - w).pow(2).mean()
    assert errors[8] < errors[4] < errors[2] < w.pow(2).mean()


def test_blocks_of_rows_share_a_lut():
    w = torch.randn(40, 24, generator=torch.Generator().manual_seed(1))
    for whole in (0, None):
        luts, idx = palettize_weight(w, 4, whole)
        assert luts.shape == (1, 16)
        assert set(dequantize_weight(luts, idx, whole).flatten().tolist()) <= set(luts[0].float().tolist())
    luts, idx = palettize_weight(w, 2, 16)
    values = dequantize_weight(luts, idx, 16)
    assert set(values[32:].flatten().tolist()) <= set(luts[2].float().tolist())  # the short last block
    assert set(values[16:32].flatten().tolist()) <= set(luts[1].float().tolist())


def test_bad_bits_and_group_size():
    w = torch.randn(8, 8)
    with pytest.raises(UserError, match=r"^bits must be 2, 4 or 8 \(got 3\)$"):
        palettize_weight(w, 3, 16)
    with pytest.raises(UserError, match="group_size must be at least 1 row, or 0"):
        palettize_weight(w, 4, -1)


def test_int8_embedding_per_row():
    w = torch.tensor([[-1.0, 0.0, 0.5, 1.0], [0.1, 0.2, 0.3, 0.4]])
    q, scale, zero_point = quantize_embedding_int8(w)
    assert q.dtype == zero_point.dtype == torch.uint8 and scale.dtype == torch.float16
    assert scale.float().tolist() == pytest.approx([2 / 255, 0.4 / 255], rel=1e-3)  # ranges hold 0
    assert zero_point.tolist() == [128, 0]
    back = dequantize_embedding_int8(q, scale, zero_point)
    assert back[0, 1] == 0.0  # zero is exact
    # half a step of rounding, plus at a range end up to half a step more from the rounded zero point
    assert ((back - w).abs() <= scale.float()[:, None] + 1e-6).all()
    assert ((back - w)[:, 1:3].abs() <= scale.float()[:, None] / 2 + 1e-6).all()


def test_mixed_plan_moves_the_cheapest_bits_first():
    sensitivity = {"a": 0.5, "b": 0.01, "c": 0.2}
    numels = {"a": 100, "b": 100, "c": 200}  # per weight: b 1e-4 < c 1e-3 < a 5e-3
    assert mixed_bits_plan(sensitivity, numels, 3.5) == {"a": 4, "b": 2, "c": 4}  # 1400 / 400 = 3.5
    assert mixed_bits_plan(sensitivity, numels, 3.0) == {"a": 4, "b": 2, "c": 2}  # 1000 / 400 = 2.5
    assert mixed_bits_plan(sensitivity, numels, 4.0) == {"a": 4, "b": 4, "c": 4}
    with pytest.raises(UserError, match="target_bpw must be at least 2"):
        mixed_bits_plan(sensitivity, numels, 1.5)


def batches_of(tokenizer):
    enc = tokenizer(["1 + 2 = 3", "4 + 5 = 9 and 12 + 13 = 25"], return_tensors="pt", padding=True)
    return [dict(enc, labels=enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100))]


def test_sensitivity_covers_every_projection_and_restores_weights(tiny_lm, tiny_tokenizer):
    before = {k: v.clone() for k, v in tiny_lm.state_dict().items()}
    sensitivity = layer_sensitivity(tiny_lm.eval(), batches_of(tiny_tokenizer), bits=2, group_size=16)
    names = projection_names(tiny_lm)
    assert list(sensitivity) == names and len(names) == 2 * 7
    assert all(torch.isfinite(torch.tensor(v)) for v in sensitivity.values())
    assert all(torch.equal(v, tiny_lm.state_dict()[k]) for k, v in before.items())


def test_palettize_model_writes_the_decoded_weights_in_place(tiny_lm):
    names = projection_names(tiny_lm)
    plan = {n: (2 if i % 2 else 4) for i, n in enumerate(names)}
    packed = palettize_model(tiny_lm, plan, group_size=16)
    embed = tiny_lm.get_input_embeddings().weight
    assert tiny_lm.lm_head.weight is embed and packed["model.embed_tokens.weight"]["kind"] == "int8"
    assert "lm_head.weight" not in packed  # tied: stored once
    modules = dict(tiny_lm.named_modules())
    for name, bits in plan.items():
        entry = packed[f"{name}.weight"]
        assert (entry["kind"], entry["bits"], entry["lut"].shape[1]) == ("palette", bits, 2**bits)
        assert set(modules[name].weight[:16].flatten().tolist()) <= set(entry["lut"][0].float().tolist())
    norm = tiny_lm.model.norm.weight
    assert torch.equal(norm, norm.half().float())  # the rest went through fp16, as saved
    with pytest.raises(UserError, match="not projections"):
        palettize_model(tiny_lm, {"model.norm": 4})
