"""Issue 17, finding 9: every numeric knob of every config has a range, checked before anything runs.

The table is `afm_align.config.RANGES` (keyed by field name; `Class.field` keys for the few names whose range
differs by config). A config that gains an int or float field without a range fails
`test_every_numeric_field_has_a_range`; a value out of range (or NaN / inf) is a one-line UserError naming
the key and its range, from `load_config` and so from every command.
"""
import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

from afm_align.cli import main as cli_main
from afm_align.config import CONFIG_ROOT, RANGES, check_ranges, load_config, numeric_fields, preset_names, range_for
from afm_align.errors import UserError


def config_classes() -> dict:
    """Every config class of the project, with the preset recipe name it loads from (None: nested only)."""
    from afm_align.base_model import ModelShape
    from afm_align.init_base import InitConfig
    from alignment.mdloo import MDLOOConfig
    from alignment.preference import PreferenceConfig
    from alignment.rejection_sampling import RSConfig
    from alignment.sft import SFTRecipeConfig
    from committee.promotion import PromotionRule
    from committee.round_config import IterateConfig
    from reward_model.trainer import RMTrainConfig
    from alignment.adapters import AdapterConfig
    from alignment.distill import DistillConfig
    from alignment.merge import MergeConfig
    from alignment.online_dpo import OnlineDPOConfig
    from alignment.pruning import PruneConfig
    from alignment.quantize import QuantizeConfig
    from committee.on_device import OnDeviceConfig

    return {InitConfig: "init", ModelShape: None, SFTRecipeConfig: "sft", PreferenceConfig: "dpo",
            MDLOOConfig: "mdloo", RSConfig: "rs", RMTrainConfig: "rm", IterateConfig: "iterate",
            PromotionRule: None, PruneConfig: "prune", DistillConfig: "distill", QuantizeConfig: "quantize",
            AdapterConfig: "adapter", OnDeviceConfig: "on_device", MergeConfig: "merge",
            OnlineDPOConfig: "online_dpo"}


CLASS_NAMES = ["InitConfig", "ModelShape", "SFTRecipeConfig", "PreferenceConfig", "MDLOOConfig", "RSConfig",
               "RMTrainConfig", "IterateConfig", "PromotionRule", "PruneConfig", "DistillConfig", "QuantizeConfig",
               "AdapterConfig", "OnDeviceConfig", "MergeConfig", "OnlineDPOConfig"]


def cls_named(name: str):
    return next(c for c in config_classes() if c.__name__ == name)


def test_the_class_list_is_every_recipe_config():
    from alignment import recipes

    known = set(config_classes())
    assert {recipes.config_class(name) for name in recipes.RECIPES} <= known
    assert [c.__name__ for c in config_classes()] == CLASS_NAMES


@pytest.mark.parametrize("name", CLASS_NAMES)
def test_every_numeric_field_has_a_range(name):
    cls = cls_named(name)
    fields = numeric_fields(cls)
    missing = [key for owner, key, field, _ in fields if range_for(owner, field) is None]
    assert not missing, f"{name}: add these numeric knobs to afm_align.config.RANGES: {missing}"


def test_every_range_names_a_numeric_field_of_some_config():
    known = {(owner, field) for cls in config_classes() for owner, _, field, _ in numeric_fields(cls)}
    for key in RANGES:
        owner, _, field = key.rpartition(".")
        if owner:
            assert (owner, field) in known, key
        else:
            assert any(f == field for _, f in known), key


@pytest.mark.parametrize("name", CLASS_NAMES)
def test_defaults_and_every_preset_are_in_range(name):
    cls = cls_named(name)
    check_ranges(cls())
    recipe = config_classes()[cls]
    for preset in preset_names() if recipe else []:  # a preset without the recipe's YAML is an error
        if (CONFIG_ROOT / preset / f"{recipe}.yaml").is_file():
            load_config(cls, preset=preset, recipe=recipe)


def float_fields():
    out = []
    for cls in config_classes():
        for owner, key, field, kind in numeric_fields(cls):
            hints = {f.name: f.type for f in dataclasses.fields(cls_named(owner))}
            if "float" in str(hints[field]):
                out.append((cls.__name__, key, kind))
    return out


@pytest.mark.parametrize("name, key, kind", float_fields())
@pytest.mark.parametrize("bad", [".nan", ".inf", "-.inf"])
def test_nan_and_inf_are_refused_for_every_float(name, key, kind, bad):
    value = f"[{bad}]" if kind == "items" else bad
    with pytest.raises(UserError, match=rf"^{key}( entries)? must be (a finite number|in |at least|greater)") as err:
        load_config(cls_named(name), overrides=[f"{key}={value}"])
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("name, override, message", [
    ("InitConfig", "steps=-5", "steps must be in [1, 100000000] (got -5)"),
    ("InitConfig", "steps=0", "steps must be in [1, 100000000] (got 0)"),
    ("InitConfig", "shape.num_layers=0", "shape.num_layers must be in [1, 4096] (got 0)"),
    ("InitConfig", "learning_rate=-0.1", "learning_rate must be in [0, 1] (got -0.1)"),
    ("IterateConfig", "temperature=-1", "temperature must be in [0, 10] (got -1.0)"),
    ("IterateConfig", "temperature=nan", "temperature must be a finite number (got nan)"),
    ("IterateConfig", "top_p=7", "top_p must be in (0, 1] (got 7.0)"),
    ("IterateConfig", "top_p=0", "top_p must be in (0, 1] (got 0.0)"),
    ("IterateConfig", "difficulty=99", "difficulty must be in [0, 3] (got 99)"),
    ("IterateConfig", "max_new_tokens=1000000000", "max_new_tokens must be in [1, 32768] (got 1000000000)"),
    ("IterateConfig", "promotion.top_k=5000", "promotion.top_k must be in [1, 1000] (got 5000)"),
    ("IterateConfig", "judge_levels=[0.1,-2,3]", "judge_levels entries must be in [0, 1000] (got [0.1, -2.0, 3.0])"),
    ("SFTRecipeConfig", "max_steps=0", "max_steps must be in [1, 100000000] or -1 (use epochs) (got 0)"),
    ("SFTRecipeConfig", "dropout=1", "dropout must be in [0, 1) (got 1.0)"),
    ("PreferenceConfig", "beta=0", "beta must be in (0, 100] (got 0.0)"),
    ("RSConfig", "sft.batch_size=0", "sft.batch_size must be in [1, 65536] (got 0)"),
    ("RMTrainConfig", "level_probs=[0.6,1.5]", "level_probs entries must be in [0, 1] (got (0.6, 1.5))"),
    ("MDLOOConfig", "kl_budget=-1", "kl_budget must be at least 0 (got -1.0)"),
])
def test_out_of_range_is_one_line_naming_key_and_range(name, override, message):
    with pytest.raises(UserError) as err:
        load_config(cls_named(name), overrides=[override])
    assert str(err.value) == message


@pytest.mark.parametrize("name, override", [
    ("SFTRecipeConfig", "max_steps=-1"),  # -1: run `epochs`
    ("MDLOOConfig", "kl_budget=0"),  # 0: no budget
    ("MDLOOConfig", "beta=0"),  # MDLOO: no KL term
    ("RSConfig", "min_score=null"),  # no floor
    ("RSConfig", "min_score=-3.5"),  # RM scores are unbounded
    ("RSConfig", "max_prompts=0"),  # all prompts
    ("InitConfig", "threads=0"),  # torch's default
    ("IterateConfig", "temperature=0"),  # greedy
    ("IterateConfig", "promotion.min_improvement=-0.05"),
    ("RMTrainConfig", "learning_rate=0"),  # tests continue an RM without moving it
    ("RMTrainConfig", "max_length=null"),
    ("RMTrainConfig", "warmup_steps=0.1"),  # a fraction of the steps
])
def test_sentinels_and_edges_still_load(name, override):
    load_config(cls_named(name), overrides=[override])


def test_a_bool_is_not_a_number():
    with pytest.raises(UserError, match="needs int"):
        load_config(cls_named("InitConfig"), overrides=["steps=true"])


def test_iterate_check_config_checks_ranges_of_a_config_built_in_code():
    from committee.round_config import IterateConfig, check_config

    with pytest.raises(UserError, match=r"^temperature must be in \[0, 10\] \(got -1\)$"):
        check_config(IterateConfig(temperature=-1))


def test_recipe_overrides_of_a_round_are_range_checked():
    from committee.round_config import check_recipe_keys, load

    cfg = load("tiny", None, ["recipes.init=[steps=-5]"])
    with pytest.raises(UserError, match=r"^recipes.init: steps must be in \[1, 100000000\] \(got -5\)$"):
        check_recipe_keys(cfg)


# ---- through the command line: exit 2, one line, nothing written ----------------------------------------

@pytest.mark.parametrize("argv, key", [
    (["init", "steps=-5"], "steps"),
    (["init", "shape.num_layers=0"], "shape.num_layers"),
    (["iterate", "--round", "1", "temperature=-1"], "temperature"),
    (["iterate", "--round", "1", "temperature=nan"], "temperature"),
    (["iterate", "--round", "1", "top_p=7"], "top_p"),
    (["iterate", "--round", "1", "difficulty=99"], "difficulty"),
    (["iterate", "--round", "1", "max_new_tokens=1000000000"], "max_new_tokens"),
    (["iterate", "--round", "1", "recipes.init=[steps=-5]"], "recipes.init: steps"),
])
def test_cli_refuses_out_of_range_values_before_writing(argv, key, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli_main([*argv, "--run", "r"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"error: {key} must be" in err, err
    assert not (tmp_path / "runs").exists() and list(tmp_path.iterdir()) == []


def test_init_with_negative_steps_exits_2_in_a_real_process(tmp_path):
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "AFM_ALIGN_RUNS": str(tmp_path / "runs"), "AFM_ALIGN_QUIET": "1", "PYTHONPATH": str(root)}
    proc = subprocess.run([sys.executable, "-m", "afm_align.cli", "init", "--run", "r", "steps=-5"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == "afm-align init: error: steps must be in [1, 100000000] (got -5)\n"
    assert not (tmp_path / "runs").exists()
