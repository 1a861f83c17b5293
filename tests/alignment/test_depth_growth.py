"""Depth growth keeps the function exactly and doubles the layers; training then moves the new layers."""
import json

import pytest
import torch

from afm_align.errors import UserError
from alignment.depth_growth import ZEROED, grow_depth, grown_state


def test_grown_state_by_hand():
    state = {"model.embed_tokens.weight": torch.ones(2), "model.layers.0.mlp.down_proj.weight": torch.full((2,), 3.0),
             "model.layers.1.self_attn.q_proj.weight": torch.full((2,), 5.0)}
    out = grown_state(state, 2, 2)
    assert sorted(out) == ["model.embed_tokens.weight", "model.layers.0.mlp.down_proj.weight",
                           "model.layers.1.mlp.down_proj.weight", "model.layers.2.self_attn.q_proj.weight",
                           "model.layers.3.self_attn.q_proj.weight"]
    assert out["model.layers.0.mlp.down_proj.weight"].tolist() == [3.0, 3.0]
    assert out["model.layers.1.mlp.down_proj.weight"].tolist() == [0.0, 0.0]  # the copy adds nothing
    assert out["model.layers.3.self_attn.q_proj.weight"].tolist() == [5.0, 5.0]  # only ZEROED are zeroed
    assert state["model.layers.0.mlp.down_proj.weight"].tolist() == [3.0, 3.0]  # the input is kept
    with pytest.raises(UserError):
        grown_state(state, 2, 0)


def test_the_grown_model_computes_exactly_what_the_source_does(tiny_base_dir, tmp_path):
    from transformers import AutoModelForCausalLM

    out = grow_depth(tiny_base_dir, tmp_path / "grown", factor=2)
    src = AutoModelForCausalLM.from_pretrained(tiny_base_dir).eval()
    grown = AutoModelForCausalLM.from_pretrained(out).eval()
    assert grown.config.num_hidden_layers == 2 * src.config.num_hidden_layers
    assert json.loads((out / "meta.json").read_text())["parameters"] > sum(p.numel() for p in src.parameters())
    ids = torch.randint(0, src.config.vocab_size, (2, 12), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(src(ids).logits, grown(ids).logits, atol=1e-5)
    zeroed = [n for n, p in grown.named_parameters() if any(n.endswith(z) for z in ZEROED) and not p.abs().sum()]
    assert len(zeroed) == 2 * src.config.num_hidden_layers  # two projections in each added layer
