"""The quantize recipe on the tiny model: a mixed plan under the target, a 4-bit scheme, clear errors, presets."""
import json

import pytest
import torch

from afm_align.config import load_config
from afm_align.errors import UserError
from afm_align.palette_format import bits_report, is_quantized, load_quantized
from afm_align.store import write_dataset
from alignment.quantize import QuantizeConfig, main


@pytest.fixture
def calibration_dir(tmp_path):
    """Twelve sft rows (messages) of the train split, two of dev."""
    rows = [{"id": f"s{i}", "split": "dev" if i >= 12 else "train",
             "messages": [{"role": "user", "content": f"{i} + {i + 1} ="},
                          {"role": "assistant", "content": f"{i} + {i + 1} = {2 * i + 1}"}]} for i in range(14)]
    write_dataset(rows, "sft", tmp_path / "calib", producer="test")
    return tmp_path / "calib"


def config(**overrides):
    return load_config(QuantizeConfig, preset="tiny", recipe="quantize",
                       overrides=[f"{k}={v}" for k, v in overrides.items()])


def test_mixed_scheme_meets_the_target_and_puts_the_least_sensitive_layer_at_2_bits(
        tiny_base_dir, calibration_dir, tmp_path):
    out = tmp_path / "q"
    meta = main(config(from_checkpoint=tiny_base_dir, data=calibration_dir, out=out, calibration_rows=8,
                       batch_size=4))
    assert is_quantized(out) and json.loads((out / "meta.json").read_text()) == meta
    assert (meta["member"], meta["recipe"], meta["scheme"], meta["group_size"]) == ("q", "quantize", "mixed", 16)
    plan, sensitivity = meta["plan"], meta["sensitivity"]
    assert set(plan) == set(sensitivity) and set(plan.values()) == {2, 4}
    model, _ = load_quantized(out)
    modules = dict(model.named_modules())
    numels = {n: modules[n].weight.numel() for n in plan}
    cheapest = min(plan, key=lambda n: (sensitivity[n] / numels[n], n))
    assert plan[cheapest] == 2
    average = sum(plan[n] * numels[n] for n in plan) / sum(numels.values())
    assert average <= 3.5 and meta["bits"]["index_bits_projections"] == pytest.approx(average)
    assert meta["calibration"]["rows"] == 8 and meta["calibration"]["loss_after"] > 0
    assert bits_report(out)["bits_per_weight"] == meta["bits"]["bits_per_weight"]


def test_4bit_scheme_needs_no_data(tiny_base_dir, tmp_path):
    meta = main(config(from_checkpoint=tiny_base_dir, out=tmp_path / "q4", scheme="4bit", group_size=0))
    assert set(meta["plan"].values()) == {4} and meta["sensitivity"] is None
    assert meta["bits"]["index_bits_projections"] == 4.0
    model, tokenizer = load_quantized(tmp_path / "q4")
    assert torch.isfinite(model(**tokenizer(["1 + 1 ="], return_tensors="pt")).logits).all()


@pytest.mark.parametrize("overrides, message", [
    ({"scheme": "3bit"}, "unknown scheme '3bit'; schemes are: 4bit, 2bit, 8bit, mixed"),
    ({"group_size": -1}, "group_size must be in [0, "),  # the config range check, before the recipe's own
    ({"embedding_bits": 4}, "embedding_bits must be in [8, 16]"),
    ({"scheme": "mixed", "data": ""}, "scheme mixed needs `data`"),
    ({"from_checkpoint": "/nonexistent/ckpt", "scheme": "4bit"}, "no such checkpoint directory"),
])
def test_bad_inputs_are_one_line_errors(tiny_base_dir, tmp_path, overrides, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace("[", r"\[")) as err:
        main(config(**{"from_checkpoint": tiny_base_dir, "out": tmp_path / "q", **overrides}))
    assert "\n" not in str(err.value) and not (tmp_path / "q").exists()


def test_a_quantised_folder_is_not_quantised_again(tiny_base_dir, tmp_path):
    main(config(from_checkpoint=tiny_base_dir, out=tmp_path / "q", scheme="4bit"))
    with pytest.raises(UserError, match="already quantised"):
        main(config(from_checkpoint=tmp_path / "q", out=tmp_path / "qq", scheme="4bit"))


@pytest.mark.parametrize("preset", ["tiny", "small"])
def test_presets_load(preset):
    cfg = load_config(QuantizeConfig, preset=preset, recipe="quantize")
    assert cfg.scheme == "mixed" and cfg.group_size == 16 and cfg.embedding_bits == 8
