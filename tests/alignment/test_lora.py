"""The shared LoRA helper: adapters on every attention and MLP projection, and only there."""
import pytest


@pytest.mark.parametrize("rank", [8, 16, 32])
def test_lora_targets_all_projections(tiny_lm, rank):
    from peft import get_peft_model

    from alignment.lora import LORA_TARGETS, lora_config

    model = get_peft_model(tiny_lm, lora_config(rank))
    adapted = {name.split(".")[-1] for name, _ in model.named_modules() if hasattr(_, "lora_A") and _.lora_A}
    assert adapted == set(LORA_TARGETS)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    assert model.peft_config["default"].r == rank


def test_lora_rank_zero_means_full_and_bad_rank_fails():
    from alignment.lora import lora_config, lora_config_or_none

    assert lora_config_or_none(0) is None
    with pytest.raises(ValueError, match="positive integer"):
        lora_config(-4)
