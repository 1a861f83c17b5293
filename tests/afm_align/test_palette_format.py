"""The palettised checkpoint format: index packing by hand, bits measured from the saved file, exact reload."""
import math

import pytest
import torch

from afm_align.errors import UserError
from afm_align.palette_format import (
    WEIGHTS_FILE, bits_report, is_quantized, load_quantized, pack_indices, save_quantized, unpack_indices,
)


def test_packing_puts_the_first_index_in_the_lowest_bits():
    two = pack_indices(torch.tensor([1, 2, 3, 0, 3], dtype=torch.uint8), 2)
    assert two.tolist() == [1 | 2 << 2 | 3 << 4, 3]  # 57, then the padded last byte
    assert pack_indices(torch.tensor([1, 15, 7], dtype=torch.uint8), 4).tolist() == [1 | 15 << 4, 7]
    assert pack_indices(torch.tensor([200, 7], dtype=torch.uint8), 8).tolist() == [200, 7]


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_pack_unpack_round_trip(bits):
    idx = torch.randint(0, 2**bits, (7, 11), generator=torch.Generator().manual_seed(bits), dtype=torch.uint8)
    packed = pack_indices(idx, bits)
    assert packed.dtype == torch.uint8 and packed.numel() == math.ceil(77 * bits / 8)
    assert torch.equal(unpack_indices(packed, bits, idx.numel()).reshape(7, 11), idx)


def test_bad_bits_and_too_large_indices():
    with pytest.raises(UserError, match=r"^bits must be 2, 4 or 8 \(got 3\)$"):
        pack_indices(torch.zeros(4, dtype=torch.uint8), 3)
    with pytest.raises(ValueError, match="too large for 2 bits"):
        pack_indices(torch.tensor([4], dtype=torch.uint8), 2)


@pytest.fixture
def quantized_4bit(tiny_lm, tiny_tokenizer, tmp_path):
    """The tiny LM palettised at 4 bits, 16 rows per LUT, int8 embedding; saved; (folder, in-place model)."""
    from alignment.palettization import palettize_model, projection_names

    model = tiny_lm.eval()
    packed = palettize_model(model, {n: 4 for n in projection_names(model)}, group_size=16)
    folder = tmp_path / "q"
    meta = save_quantized(folder, model, tiny_tokenizer, packed, {"recipe": "test"})
    return folder, model, meta


def test_bits_are_measured_from_the_file(quantized_4bit, tiny_lm, tiny_tokenizer, tmp_path):
    folder, model, meta = quantized_4bit
    report = bits_report(folder)
    assert is_quantized(folder)
    assert {k: v for k, v in meta["bits"].items() if k != "folder_bytes"} == {k: v for k, v in report.items()
                                                                              if k != "folder_bytes"}
    assert meta["bits"]["folder_bytes"] + (folder / "meta.json").stat().st_size == report["folder_bytes"]
    modules = dict(model.named_modules())
    from alignment.palettization import projection_names

    shapes = [tuple(modules[n].weight.shape) for n in projection_names(model)]
    numel = sum(o * i for o, i in shapes)
    luts = sum(math.ceil(o / 16) * 16 * 16 for o, _ in shapes)  # 16 fp16 entries per block of 16 rows
    assert report["index_bits_projections"] == 4.0
    assert report["bits_per_weight_projections"] == pytest.approx((4 * numel + luts) / numel, rel=1e-12)
    vocab, hidden = model.get_input_embeddings().weight.shape
    n_params = sum(p.numel() for p in model.parameters())  # tied embedding counted once
    rest = n_params - numel - vocab * hidden
    total = 4 * numel + luts + 8 * vocab * hidden + vocab * (16 + 8) + 16 * rest
    assert report["parameters"] == n_params
    assert report["bits_per_weight"] == pytest.approx(total / n_params, rel=1e-12)
    fp32 = tmp_path / "fp32"
    tiny_lm.save_pretrained(fp32)
    tiny_tokenizer.save_pretrained(fp32)
    assert report["size_bytes"] < (fp32 / "model.safetensors").stat().st_size / 4
    assert report["folder_bytes"] < sum(f.stat().st_size for f in fp32.rglob("*") if f.is_file())


def test_load_reproduces_the_in_place_model_exactly(quantized_4bit, tiny_tokenizer):
    folder, model, _ = quantized_4bit
    loaded, tokenizer = load_quantized(folder)
    assert loaded.lm_head.weight is loaded.model.embed_tokens.weight  # still tied
    assert not loaded.training and loaded.dtype == torch.float32
    ids = tokenizer(["1 + 2 = 3", "What is the answer?"], return_tensors="pt", padding=True)
    with torch.no_grad():
        assert torch.equal(loaded(**ids).logits, model(**ids).logits)


def test_missing_and_corrupt_folders_are_one_line_errors(quantized_4bit, tmp_path):
    with pytest.raises(UserError, match="not a quantised checkpoint") as missing:
        load_quantized(tmp_path / "nope")
    folder, _, _ = quantized_4bit
    (folder / WEIGHTS_FILE).write_bytes(b"not a safetensors file")
    with pytest.raises(UserError, match="corrupt quantised weights") as corrupt:
        load_quantized(folder)
    assert "\n" not in str(missing.value) + str(corrupt.value)
