"""The RM's config vocabulary and member I/O: shared key names, trackers from `report_to`, devices per stage.

Checks that the trainer arguments come from `afm_align.member_io.trainer_args` (CPU-safe, the RM's own fields on
top), that a tracker which is unknown or not installed is a one-line UserError (exit 2 from the CLI, before any
data or model loads), that `--base` / `--out` fill `from_checkpoint` / `out` and an old key name is refused
with its new name, and that a saved RM loads on the device the I/O module gives its stage.
"""
import importlib.util

import pytest

from afm_align import member_io
from afm_align.cli import main as cli_main
from afm_align.errors import UserError
from reward_model.trainer import RMTrainConfig, reward_config


def _without(package: str, monkeypatch) -> None:
    """Make `package` look uninstalled to `importlib.util.find_spec` (every other name is looked up as usual)."""
    real = importlib.util.find_spec

    def find_spec(name, *args, **kwargs):
        return None if name == package else real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)


def test_reward_config_is_cpu_safe_with_the_rm_fields(tmp_path):
    args = reward_config(tmp_path, learning_rate=3e-3)
    assert args.learning_rate == 3e-3 and args.prediction_loss_only and args.eval_strategy == "no"
    assert not args.bf16 and not args.gradient_checkpointing and args.save_strategy == "no"
    assert args.report_to in ([], "none", ["none"])
    assert member_io.DEVICES["rm-training"] == str(member_io.device())


def test_missing_tracker_package_is_a_one_line_user_error(tmp_path, monkeypatch):
    _without("tensorboard", monkeypatch)
    with pytest.raises(UserError, match="needs the tensorboard package") as err:
        reward_config(tmp_path, report_to="tensorboard")
    assert "\n" not in str(err.value)


def test_unknown_tracker_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="'tensorbored' is not a tracker"):
        reward_config(tmp_path, report_to="tensorbored")


def test_cli_refuses_a_missing_tracker_before_loading_anything(tmp_path, monkeypatch, capsys):
    _without("tensorboard", monkeypatch)
    out = tmp_path / "rm"
    assert cli_main(["rm", "train", "--data", str(tmp_path / "no-such-data"), "--out", str(out),
                     "report_to=tensorboard"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "tensorboard" in err and not out.exists()


def test_cli_flags_fill_the_shared_keys(tmp_path, monkeypatch):
    from reward_model import recipe

    seen = []
    monkeypatch.setattr(recipe, "main", seen.append)
    assert cli_main(["rm", "train", "--data", "d", "--out", str(tmp_path / "rm"), "--base", "b", "epochs=3"]) == 0
    cfg = seen[0]
    assert isinstance(cfg, RMTrainConfig)
    assert (cfg.from_checkpoint, cfg.out, cfg.epochs, cfg.report_to) == ("b", str(tmp_path / "rm"), 3.0, "none")


@pytest.mark.parametrize("old,new", [("num_epochs", "epochs"), ("output_dir", "out"), ("base", "from_checkpoint")])
def test_old_key_names_are_refused_with_the_new_name(tmp_path, capsys, old, new):
    assert cli_main(["rm", "train", "--data", "d", "--out", str(tmp_path / "rm"), f"{old}=1"]) == 2
    assert f"renamed to '{new}'" in capsys.readouterr().err


def test_load_reward_model_places_on_the_stage_device(rm, tokenizer, tmp_path):
    from reward_model.scorer import RewardScorer, load_reward_model

    rm.save_pretrained(tmp_path / "rm")
    tokenizer.save_pretrained(tmp_path / "rm")
    model, tok = load_reward_model(tmp_path / "rm", stage="rm-eval")
    assert next(model.parameters()).device.type == member_io.device().type and not model.training
    assert member_io.DEVICES["rm-eval"] == str(member_io.device())
    scorer = RewardScorer(model, tok)
    assert member_io.DEVICES["rm-scoring"] == str(member_io.device())
    assert scorer(["1+1="], ["2"]) == pytest.approx(RewardScorer(rm, tokenizer)(["1+1="], ["2"]), abs=1e-5)


def test_load_reward_model_refuses_other_folders(tmp_path):
    from reward_model.scorer import load_reward_model

    with pytest.raises(UserError, match="not a trained reward-model directory"):
        load_reward_model(tmp_path)
    (tmp_path / "config.json").write_text('{"model_type": "qwen3"}')
    with pytest.raises(UserError, match="holds a 'qwen3' model, not an afm-align RM"):
        load_reward_model(tmp_path)
