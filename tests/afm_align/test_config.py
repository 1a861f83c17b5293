"""Config loading: presets, files, key=value overrides, type checks and clear errors."""
import pytest

from afm_align.config import load_config, parse_override, preset_names, save_resolved
from afm_align.init_base import InitConfig


def test_tiny_preset_loads_and_every_preset_yaml_fits_its_recipe():
    assert "tiny" in preset_names()
    cfg = load_config(InitConfig, preset="tiny", recipe="init")
    assert cfg.shape.rope_theta == 500000.0 and cfg.shape.num_kv_heads < cfg.shape.num_heads


def test_overrides_win_and_are_typed(tmp_path):
    file = tmp_path / "c.yaml"
    file.write_text("steps: 7\nlr: 0.1\n")
    cfg = load_config(InitConfig, preset="tiny", recipe="init", config_file=file,
                      overrides=["lr=1e-4", "shape.hidden_size=64", "run=abc"])
    assert cfg.steps == 7 and cfg.lr == pytest.approx(1e-4) and cfg.shape.hidden_size == 64
    assert cfg.run == "abc"
    assert isinstance(load_config(InitConfig, overrides=["lr=1"]).lr, float)


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
