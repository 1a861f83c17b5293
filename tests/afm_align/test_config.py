"""Config loading: presets, files, key=value overrides, type checks and clear errors."""
import pytest

from afm_align.config import RENAMED, load_config, parse_override, preset_names, save_resolved
from afm_align.errors import UserError
from afm_align.init_base import InitConfig


def test_tiny_preset_loads_and_every_preset_yaml_fits_its_recipe():
    assert "tiny" in preset_names()
    cfg = load_config(InitConfig, preset="tiny", recipe="init")
    assert cfg.shape.rope_theta == 500000.0 and cfg.shape.num_kv_heads < cfg.shape.num_heads


def test_overrides_win_and_are_typed(tmp_path):
    file = tmp_path / "c.yaml"
    file.write_text("steps: 7\nlearning_rate: 0.1\n")
    cfg = load_config(InitConfig, preset="tiny", recipe="init", config_file=file,
                      overrides=["learning_rate=1e-4", "shape.hidden_size=64", "run=abc"])
    assert cfg.steps == 7 and cfg.learning_rate == pytest.approx(1e-4) and cfg.shape.hidden_size == 64
    assert cfg.run == "abc"
    assert isinstance(load_config(InitConfig, overrides=["learning_rate=1"]).learning_rate, float)


def test_unknown_key_lists_valid_keys():
    with pytest.raises(ValueError) as err:
        load_config(InitConfig, overrides=["stepz=3"])
    msg = str(err.value)
    assert "unknown config key 'stepz'" in msg and "steps" in msg and "shape.hidden_size" in msg


@pytest.mark.parametrize("override, match", [
    ("steps=many", "needs int"),
    ("shape.widthh=3", "unknown config key 'shape.widthh'"),
    ("noequals", "key=value"),
])
def test_bad_overrides(override, match):
    with pytest.raises(ValueError, match=match):
        load_config(InitConfig, overrides=[override])


def test_unknown_preset_and_bad_file(tmp_path):
    with pytest.raises(ValueError, match="unknown preset 'huge'; presets are: .*tiny"):
        load_config(InitConfig, preset="huge", recipe="init")
    with pytest.raises(ValueError, match="does not exist"):
        load_config(InitConfig, config_file=tmp_path / "none.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match="mapping"):
        load_config(InitConfig, config_file=tmp_path / "list.yaml")


def test_parse_override_values():
    assert parse_override("a=[1, 2]") == ("a", [1, 2])
    assert parse_override("a=true") == ("a", True)
    assert parse_override("a=") == ("a", "")


def test_resolved_config_round_trips(tmp_path):
    cfg = load_config(InitConfig, overrides=["steps=3", "shape.num_layers=1"])
    path = save_resolved(cfg, tmp_path)
    again = load_config(InitConfig, config_file=path)
    assert again == cfg


@pytest.mark.parametrize("old, new", [("lr", "learning_rate"), ("grad_accum", "gradient_accumulation_steps"),
                                      ("num_epochs", "epochs"), ("output_dir", "out")])
def test_an_old_key_names_its_new_one_in_one_line(old, new, tmp_path):
    from alignment.sft import SFTRecipeConfig

    file = tmp_path / "old.yaml"
    file.write_text(f"{old}: 1\n")
    with pytest.raises(UserError, match=f"config key '{old}' was renamed to '{new}'$"):
        load_config(SFTRecipeConfig, config_file=file)


def test_every_policy_recipe_speaks_one_vocabulary():
    import dataclasses

    from alignment import recipes

    shared = {"from_checkpoint", "data", "out", "member", "round", "seed"}
    for name in recipes.RECIPES:
        fields = {f.name for f in dataclasses.fields(recipes.config_class(name))}
        assert shared <= fields, (name, shared - fields)
        assert not fields & set(RENAMED), (name, fields & set(RENAMED))  # no old name survives anywhere
        if recipes.RECIPES[name].round_data and name != "rs":  # rs trains through its nested `sft` config
            assert {"report_to", "learning_rate", "lora_rank", "bf16"} <= fields, name


def test_a_mapping_field_takes_dotted_keys_and_merges_mappings(tmp_path):
    from committee.round_config import IterateConfig

    file = tmp_path / "i.yaml"
    file.write_text("recipes:\n  dpo: [max_steps=4]\n")
    cfg = load_config(IterateConfig, preset="tiny", recipe="iterate", config_file=file,
                      overrides=["recipes.rm=[epochs=2]"])
    assert cfg.recipes["dpo"] == ["max_steps=4"] and cfg.recipes["rm"] == ["epochs=2"]
    assert cfg.recipes["sft0"][0] == "dropout=0.0"  # the preset's entries stay unless named
