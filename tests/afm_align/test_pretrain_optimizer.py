"""The pre-training optimizer option: AdamW by default, Muon (fp32) on the layers' matrices when asked."""
import pytest
import torch

from afm_align.init_base import InitConfig
from afm_align.pretrain_optimizer import _muon_step, orthogonalise, pretrain_optimizer


@pytest.mark.parametrize("shape", [(288, 96), (48, 96), (96, 96)])
def test_orthogonalise_keeps_the_shape_and_brings_singular_values_near_one(shape):
    g = torch.randn(*shape, generator=torch.Generator().manual_seed(0)) * torch.logspace(0, 1.5, shape[1])
    out = orthogonalise(g)
    singular = torch.linalg.svdvals(out)
    assert out.shape == g.shape
    # the raw matrix's spread is gone (a square one's near-zero singular values stay small after five steps)
    assert singular.max() < 1.3 and (singular > 0.5).float().mean() > 0.9
    assert torch.linalg.svdvals(g).max() / torch.linalg.svdvals(g).min() > 10


def test_muon_step_matches_torchs_muon():
    """Same update as torch.optim.Muon with match_rms_adamw, up to its bfloat16 Newton-Schulz."""
    gen = torch.Generator().manual_seed(1)
    ours = torch.randn(96, 288, generator=gen)
    theirs = torch.nn.Parameter(ours.clone())
    start = ours.clone()
    buf = torch.zeros_like(ours)
    opt = torch.optim.Muon([theirs], lr=0.01, weight_decay=0.1, adjust_lr_fn="match_rms_adamw")
    for _ in range(3):
        grad = torch.randn(96, 288, generator=gen)
        _muon_step(ours, grad, buf, lr=0.01, momentum=0.95, weight_decay=0.1)
        theirs.grad = grad.clone()
        opt.step()
    ours_move, their_move = ours - start, theirs.detach() - start
    assert their_move.abs().max() > 1e-3
    assert (ours_move - their_move).norm() / their_move.norm() < 0.03


def test_muon_option_splits_the_parameters_and_lowers_the_loss():
    from transformers import Qwen3Config, Qwen3ForCausalLM

    torch.manual_seed(0)
    model = Qwen3ForCausalLM(Qwen3Config(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                         num_attention_heads=4, num_key_value_heads=2, head_dim=8,
                                         tie_word_embeddings=True))
    assert isinstance(pretrain_optimizer(model, InitConfig()), torch.optim.AdamW)
    opt = pretrain_optimizer(model, InitConfig(optimizer="muon", learning_rate=0.01))
    muon, adamw = opt.optimizers
    names = {id(p): n for n, p in model.named_parameters()}
    muon_names = [names[id(p)] for p in muon.param_groups[0]["params"]]
    adamw_names = [names[id(p)] for g in adamw.param_groups for p in g["params"]]
    assert len(muon_names) == 2 * 7 and all(".layers." in n and n.endswith("weight") for n in muon_names)
    assert "model.embed_tokens.weight" in adamw_names and all("norm" in n or "embed" in n for n in adamw_names)
    ids = torch.randint(0, 64, (8, 16), generator=torch.Generator().manual_seed(2))
    losses = []
    for _ in range(20):
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.5
    assert all(p.grad is None for p in model.parameters())
