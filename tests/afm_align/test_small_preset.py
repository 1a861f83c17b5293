"""The `small` preset (configs/small/): every recipe's config loads, the init shape is a ~0.5B model, and the
training recipes run two steps on CPU with the small preset's settings.

What is reduced on CPU, and why: the small preset is for one GPU (bf16, a 28-layer 1024-wide model of ~0.47B
parameters). CI has 2 shared CPU cores and no GPU, so
- the parameter count is taken on the `meta` device (no 0.5B real weights are allocated);
- the training runs use a DEPTH-REDUCED variant of the small shape: the same width (hidden 1024, 16 query /
  8 KV heads, SwiGLU 4096) with 1 layer instead of 28, and the tests' tiny tokenizer (a few hundred tokens
  instead of 32000), in fp32 (`bf16=false`: CPU bf16 autocast is slow and not what the GPU would run), with
  2 optimizer steps, batch 2 and shorter sequences. Everything else (learning rates, schedules, losses,
  betas, K, ...) is the preset's. The GPU benchmark of the full preset has not been run (no GPU here).

Run: `python -m pytest tests/afm_align/test_small_preset.py`.
"""
import json
import math
from dataclasses import replace

import pytest

from alignment import recipes

from afm_align.config import load_config
from afm_align.init_base import InitConfig

# recipe yaml -> (module, config class): every recipe of the preset
RECIPES = {
    "init": ("afm_align.init_base", "InitConfig"),
    "sft": ("alignment.sft", "SFTRecipeConfig"),
    "rs": ("alignment.rejection_sampling", "RSConfig"),
    "dpo": ("alignment.preference", "PreferenceConfig"),
    "ipo": ("alignment.preference", "PreferenceConfig"),
    "mdloo": ("alignment.mdloo", "MDLOOConfig"),
    "rloo": ("alignment.mdloo", "MDLOOConfig"),
    "rm": ("reward_model.trainer", "RMTrainConfig"),
}
CPU = ["bf16=false"]  # the one precision change of every CPU run below


def small(recipe: str, overrides=()):
    import importlib

    module, cls = RECIPES[recipe]
    return load_config(getattr(importlib.import_module(module), cls), preset="small", recipe=recipe,
                       overrides=list(overrides))


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_every_small_config_loads(recipe):
    from afm_align.config import preset_file

    assert preset_file("small", recipe).is_file()
    cfg = small(recipe)
    if recipe == "rs":
        assert cfg.sft.bf16 is True
    elif recipe != "init":
        assert cfg.bf16 is True  # the small preset is for a GPU


def test_small_configs_keep_the_recipe_choices():
    assert small("dpo").loss_type == "sigmoid" and small("ipo").loss_type == "ipo"
    assert small("mdloo").loss == "mdloo" and small("rloo").loss == "ppo_clip"
    assert small("mdloo").num_iterations >= 2  # MDLOO needs at least two inner steps


class VocabStub:
    """What build_model reads from a tokenizer: its length and the pad / EOS ids."""

    pad_token_id, eos_token_id = 0, 1

    def __init__(self, size: int):
        self.size = size

    def __len__(self) -> int:
        return self.size


def test_small_init_shape_is_about_half_a_billion_parameters():
    import torch

    from afm_align.base_model import build_model

    cfg = load_config(InitConfig, preset="small", recipe="init")
    with torch.device("meta"):  # shapes only: no memory for the weights
        model = build_model(VocabStub(cfg.vocab_size), cfg.shape)
    total = sum(p.numel() for p in model.parameters())  # tied embeddings are counted once
    embedding = cfg.vocab_size * cfg.shape.hidden_size
    assert 0.4e9 <= total <= 0.6e9, total
    assert 0.4e9 <= total - embedding  # still ~0.5B if the corpus BPE stops short of 32000 tokens
    c = model.config
    assert c.tie_word_embeddings and c.num_key_value_heads < c.num_attention_heads and c.num_hidden_layers == 28


# ---- two steps on CPU of the depth-reduced small shape --------------------------------------------------

@pytest.fixture(scope="module")
def reduced(tmp_path_factory, tiny_tokenizer):
    """A 1-layer model of the small width, saved as a base directory, plus the datasets the recipes read."""
    from afm_align.base_model import build_model
    from synth.builders import build

    root = tmp_path_factory.mktemp("small")
    shape = replace(load_config(InitConfig, preset="small", recipe="init").shape, num_layers=1, max_positions=1024)
    build_model(tiny_tokenizer, shape, seed=0).save_pretrained(root / "base")
    tiny_tokenizer.save_pretrained(root / "base")
    build("math", 8, seed=0, out=root / "sft", kind="sft", difficulty=0)
    build("math", 8, seed=1, out=root / "prompts", difficulty=0)
    build("prefs", 12, seed=0, out=root / "prefs")
    return root


def losses(member) -> list[float]:
    records = [json.loads(line) for line in (member / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in records if r.get("source") == "trainer" and "loss" in r]


def paths(reduced, data: str, out) -> list[str]:
    return [f"from_checkpoint={reduced / 'base'}", f"data={reduced / data}", f"out={out}"]


@pytest.mark.slow
def test_small_sft_and_dpo_run_two_steps_on_cpu(reduced, tmp_path):
    from alignment import preference, sft

    sft.main(small("sft", [*paths(reduced, "sft", tmp_path / "sft"), *CPU, "max_steps=2", "batch_size=2",
                           "max_length=256", "num_checkpoints=1", "logging_steps=1"]))
    dpo = small("dpo", [*paths(reduced, "prefs", tmp_path / "dpo"), *CPU, "max_steps=2", "batch_size=2",
                        "gradient_accumulation_steps=1", "max_length=256", "min_level=0", "logging_steps=1"])
    preference.main(dpo)
    for name in ("sft", "dpo"):
        steps = losses(tmp_path / name)
        assert len(steps) == 2 and all(math.isfinite(x) and x > 0 for x in steps), (name, steps)
        meta = json.loads((tmp_path / name / "meta.json").read_text())
        assert meta["train"]["steps"] == 2


@pytest.mark.slow
def test_small_rm_and_mdloo_run_two_steps_on_cpu(reduced, tmp_path):
    from alignment import mdloo
    from reward_model import recipe

    rm_out = tmp_path / "rm"
    headline = recipe.main(recipe.load("small", overrides=[
        f"data={reduced / 'prefs'}", f"from_checkpoint={reduced / 'base'}", f"out={rm_out}", *CPU, "max_steps=2",
        "batch_size=2", "logging_steps=1"]))
    final = next(json.loads(line) for line in (rm_out / "metrics.jsonl").read_text().splitlines()
                 if json.loads(line).get("event") == "final")
    assert final["train_steps"] == 2 and math.isfinite(final["train_loss"]) and headline["n_pairs"] > 0
    cfg = recipes.load("mdloo", preset="small", overrides=[
        *paths(reduced, "prompts", tmp_path / "mdloo"), f"reward_model={rm_out}", *CPU, "steps=1", "k=2",
        "prompts_per_step=2", "micro_batches=1", "max_new_tokens=8"])
    metrics = mdloo.main(cfg)
    assert len(losses(tmp_path / "mdloo")) == 2  # 1 outer iteration x num_iterations 2
    assert all(math.isfinite(metrics[k]) for k in ("loss", "reward", "kl_old"))


def test_a_preset_without_an_iterate_config_is_one_line(capsys, tmp_path, monkeypatch):
    """Issue 20 item 3: `iterate --preset small` fell back to dataclass defaults and started a 0.47B pre-training."""
    monkeypatch.setenv("AFM_ALIGN_RUNS", str(tmp_path))
    from afm_align.cli import main as cli_main

    assert cli_main(["iterate", "--round", "1", "--preset", "small"]) == 2
    err = capsys.readouterr().err
    assert "preset 'small' has no iterate config" in err and "presets with one: tiny" in err
    assert list(tmp_path.iterdir()) == []  # nothing started, no run folder
