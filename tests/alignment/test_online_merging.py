"""Issue 19: Qwen2's Online Merging Optimizer (OnDARE) around a torch optimizer, and its `online_merging` option
in the DPO recipe: one step by hand, the plain step when merging is off, the base found from meta.json, a tiny run.
"""
import copy
import json

import pytest
import torch

from afm_align.errors import UserError
from alignment import online_merging, preference
from alignment.members import read_meta
from alignment.online_merging import OnlineMergingOptimizer, make_optimizer, pretrained_base, trainer_optimizers
from alignment.preference import PreferenceConfig


class Toy(torch.nn.Module):
    """Two parameters; loss `sum(c * w) + sum(d * b)` has gradients c and d."""

    def __init__(self, w, b):
        super().__init__()
        self.w, self.b = torch.nn.Parameter(torch.tensor(w)), torch.nn.Parameter(torch.tensor(b))

    def loss(self):
        return (torch.tensor([1.0, -2.0, 3.0, 0.5]) * self.w).sum() + (torch.tensor([4.0, -1.0]) * self.b).sum()


def one_step(opt, model):
    opt.zero_grad()
    model.loss().backward()
    opt.step()


def test_one_step_by_hand():
    sft = Toy([1.0, 2.0, 3.0, 4.0], [0.5, -0.5])
    base = Toy([0.0, 2.5, 3.0, 2.0], [0.25, 0.5])  # tau = sft - base: w [1, -0.5, 0, 2], b [0.25, -1]
    opt = make_optimizer(sft, torch.optim.SGD(sft.parameters(), lr=0.1), alpha=0.25, drop=0.5, seed=14, base=base)
    one_step(opt, sft)  # SGD's update: u_w = -0.1 * [1, -2, 3, 0.5], u_b = -0.1 * [4, -1]
    # the keep-masks of seed 14, drawn per parameter in group order, the update's then tau's
    gen = torch.Generator().manual_seed(14)
    masks = [(torch.rand(n, generator=gen) >= 0.5).int().tolist() for n in (4, 4, 2, 2)]
    assert masks == [[1, 0, 1, 1], [1, 1, 0, 0], [0, 1], [0, 1]]
    # theta + 0.75 * F_R(u) + 0.25 * F_R(tau), entry by entry
    want_w = [1 + 0.75 * -0.1 + 0.25 * 1, 2 + 0.25 * -0.5, 3 + 0.75 * -0.3, 4 + 0.75 * -0.05]
    want_b = [0.5, -0.5 + 0.75 * 0.1 + 0.25 * -1]
    assert torch.allclose(torch.tensor(want_w), torch.tensor([1.175, 1.875, 2.775, 3.9625]))
    assert torch.allclose(sft.w, torch.tensor(want_w)) and torch.allclose(sft.b, torch.tensor(want_b))
    assert torch.allclose(sft.b, torch.tensor([0.5, -0.675]))


def test_tau_is_frozen_and_the_seed_fixes_the_run():
    def run(seed):
        model = Toy([1.0, 2.0, 3.0, 4.0], [0.5, -0.5])
        opt = make_optimizer(model, torch.optim.SGD(model.parameters(), lr=0.1), alpha=0.5, drop=0.3, seed=seed,
                             base=Toy([0.0] * 4, [0.0] * 2))
        for _ in range(3):
            one_step(opt, model)
        return torch.cat([model.w.detach(), model.b.detach()]), opt

    (a, opt), (b, _), (c, _) = run(0), run(0), run(1)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(opt._taus[next(iter(opt._taus))], torch.tensor([1.0, 2.0, 3.0, 4.0]))  # the SFT start's delta


def test_alpha_0_drop_0_is_the_plain_optimizer():
    torch.manual_seed(0)
    plain = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    wrapped = copy.deepcopy(plain)
    decay = [p for n, p in plain.named_parameters() if "bias" not in n]  # transformers' grouping, by hand
    opt_plain = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                                   {"params": [plain[0].bias, plain[2].bias], "weight_decay": 0.0}], lr=1e-2)
    opt_wrapped, scheduler = trainer_optimizers(wrapped, 1e-2, 0.1, alpha=0.0, drop=0.0, seed=0,
                                                base=copy.deepcopy(plain))
    assert scheduler is None and isinstance(opt_wrapped, OnlineMergingOptimizer)
    assert isinstance(opt_wrapped, torch.optim.Optimizer)  # what LR schedulers require
    x, y = torch.randn(16, 4), torch.randn(16, 1)
    for _ in range(3):
        for model, opt in ((plain, opt_plain), (wrapped, opt_wrapped)):
            opt.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            opt.step()
    # theta_old + (theta_new - theta_old) is theta_new up to one rounding of float32
    for p, q in zip(plain.parameters(), wrapped.parameters()):
        assert torch.allclose(p, q, rtol=1e-6, atol=1e-7)
    assert [(len(g["params"]), g["weight_decay"]) for g in opt_wrapped.param_groups] == [(2, 0.1), (2, 0.0)]
    assert opt_wrapped.param_groups is opt_wrapped.inner.param_groups


def test_settings_out_of_range_are_one_sentence():
    model = Toy([1.0] * 4, [1.0] * 2)
    with pytest.raises(UserError, match="omo_drop in"):
        make_optimizer(model, torch.optim.SGD(model.parameters(), lr=0.1), alpha=0.1, drop=1.0, seed=0)
    with pytest.raises(UserError, match="not the model's"):
        make_optimizer(model, torch.optim.SGD(Toy([0.0] * 4, [0.0] * 2).parameters(), lr=0.1), alpha=0.1,
                       drop=0.5, seed=0)
    with pytest.raises(UserError, match="no parameter w of shape"):
        make_optimizer(model, torch.optim.SGD(model.parameters(), lr=0.1), alpha=0.1, drop=0.5, seed=0,
                       base=torch.nn.Linear(2, 2))


def test_the_base_is_found_through_meta_json(tmp_path):
    def checkpoint(name, meta=None):
        (tmp_path / name).mkdir()
        if meta is not None:
            (tmp_path / name / "meta.json").write_text(json.dumps(meta))
        return tmp_path / name

    base = checkpoint("base", {"recipe": "init"})
    sft = checkpoint("sft", {"recipe": "sft", "from_checkpoint": str(base)})
    dpo = checkpoint("dpo", {"recipe": "dpo", "from_checkpoint": str(sft)})
    merged = checkpoint("merged", {"recipe": "merge", "members": [str(dpo), str(sft)], "from_checkpoint": None})
    assert pretrained_base(dpo) == base and pretrained_base(merged) == base
    assert pretrained_base(base) is None  # the start is the base: tau = 0
    assert pretrained_base(dpo, base=sft) == sft
    lost = checkpoint("lost", {"recipe": "sft", "from_checkpoint": str(tmp_path / "gone")})
    with pytest.raises(UserError, match="set omo_base"):
        pretrained_base(lost)


def test_recipe_rejects_lora_with_online_merging(tiny_base_dir, tmp_path):
    cfg = PreferenceConfig(from_checkpoint=str(tiny_base_dir), data="d", out="o", online_merging=True, lora_rank=8)
    with pytest.raises(UserError, match="needs full fine-tuning"):
        preference.check_config(cfg)


@pytest.fixture
def perturbed_base(tiny_lm, tiny_tokenizer, tmp_path):
    """The tiny LM with every weight shifted by 0.01: a 'pre-trained base' the tiny start differs from."""
    model = copy.deepcopy(tiny_lm)
    with torch.no_grad():
        for p in model.parameters():
            p.sub_(0.01)
    model.save_pretrained(tmp_path / "perturbed")
    tiny_tokenizer.save_pretrained(tmp_path / "perturbed")
    return tmp_path / "perturbed"


def test_tiny_dpo_with_online_merging(recipe_data, tiny_base_dir, perturbed_base, tmp_path):
    from transformers import AutoModelForCausalLM

    def train(name, *extra):
        cfg = PreferenceConfig(from_checkpoint=str(tiny_base_dir), data=str(recipe_data / "prefs"),
                               out=str(tmp_path / name), max_steps=2, batch_size=4, min_level=0,
                               learning_rate=1e-3)
        for key, value in extra:
            setattr(cfg, key, value)
        out = preference.main(cfg)
        return dict(AutoModelForCausalLM.from_pretrained(out).named_parameters()), read_meta(out)

    start = dict(AutoModelForCausalLM.from_pretrained(tiny_base_dir).named_parameters())
    plain, plain_meta = train("plain")
    omo, omo_meta = train("omo", ("online_merging", True))
    tau, tau_meta = train("omo-tau", ("online_merging", True), ("omo_alpha", 0.1), ("omo_base", str(perturbed_base)))
    assert plain_meta["online_merging"] is None
    assert omo_meta["online_merging"] == {"variant": "ondare", "alpha": online_merging.OMO_ALPHA,
                                          "drop": online_merging.OMO_DROP, "seed": 0, "base": None}
    assert tau_meta["online_merging"]["base"] == str(perturbed_base)
    changed = lambda a, b: any(not torch.equal(a[n], b[n]) for n in a)  # noqa: E731
    assert changed(omo, start) and changed(omo, plain) and changed(tau, omo)
    # with tau = 0 and drop 0.5, about half of each step's entries are dropped: some weights never moved
    name = "model.layers.0.mlp.up_proj.weight"
    assert (omo[name] == start[name]).any() and not (plain[name] == start[name]).all()


@pytest.mark.parametrize("recipe, args", [
    ("mdloo", ["steps=1", "prompts_per_step=2", "k=2", "max_new_tokens=8", "learning_rate=1e-3"]),
    ("online_dpo", ["steps=2", "k=2", "prompts_per_step=2", "max_new_tokens=4", "learning_rate=1e-3"]),
])
def test_rl_recipes_take_the_option(recipe, args, recipe_data, tiny_base_dir, tiny_tokenizer, tmp_path):
    """MDLOO (TRL's trainer, `optimizers=`) and online DPO (our loop) train with it and record it."""
    from transformers import AutoModelForCausalLM

    from afm_align.cli import main as cli_main

    if recipe == "online_dpo":
        from reward_model.model import MultiHeadRewardModel

        MultiHeadRewardModel.from_backbone(tiny_base_dir).save_pretrained(tmp_path / "rm")
        tiny_tokenizer.save_pretrained(tmp_path / "rm")
        args = [*args, f"reward_model={tmp_path / 'rm'}"]
    out = tmp_path / recipe
    assert cli_main(["train", recipe, "--from", str(tiny_base_dir), "--data", str(recipe_data / "prompts"),
                     "--out", str(out), "online_merging=true", *args]) == 0
    assert read_meta(out)["online_merging"]["drop"] == online_merging.OMO_DROP
    start = dict(AutoModelForCausalLM.from_pretrained(tiny_base_dir).named_parameters())
    trained = dict(AutoModelForCausalLM.from_pretrained(out).named_parameters())
    assert any(not torch.equal(p, start[n]) for n, p in trained.items())
