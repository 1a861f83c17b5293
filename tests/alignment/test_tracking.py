"""`report_to` in every recipe: TRL's own tracker integrations write beside the member; off by default."""
import pytest

from afm_align.cli import main as cli_main


@pytest.fixture
def data(recipe_data):
    return recipe_data


@pytest.mark.parametrize("recipe, dataset, extra", [
    ("sft", "sft", ["max_steps=2", "batch_size=4"]),
    ("dpo", "prefs", ["max_steps=2", "batch_size=4", "min_level=0"]),
    ("mdloo", "prompts", ["steps=1", "prompts_per_step=2", "k=2", "max_new_tokens=6"]),
])
def test_report_to_tensorboard_keeps_event_files_in_the_member(recipe, dataset, extra, data, tiny_base_dir, tmp_path):
    out = tmp_path / recipe
    assert cli_main(["train", recipe, "--from", str(tiny_base_dir), "--data", str(data / dataset), "--out", str(out),
                     "report_to=tensorboard", *extra]) == 0
    assert list((out / "tracking").rglob("events.out.tfevents*")), sorted(p.name for p in out.rglob("*"))
    assert not (out / "work").exists()


def test_no_tracker_by_default(data, tiny_base_dir, tmp_path):
    out = tmp_path / "sft"
    assert cli_main(["train", "sft", "--from", str(tiny_base_dir), "--data", str(data / "sft"), "--out", str(out),
                     "max_steps=1", "batch_size=4"]) == 0
    assert not (out / "tracking").exists() and (out / "metrics.jsonl").is_file()


def test_a_missing_tracker_package_names_the_extra_in_one_line(data, tiny_base_dir, tmp_path, monkeypatch, capsys):
    """Without tensorboard installed, `report_to=tensorboard` is refused before anything loads (exit 2, one line)."""
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a, **k: None if name == "tensorboard" else real(name, *a, **k))
    out = tmp_path / "sft"
    assert cli_main(["train", "sft", "--from", str(tiny_base_dir), "--data", str(data / "sft"), "--out", str(out),
                     "report_to=tensorboard"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs the tensorboard package" in err and "pip install -e '.[tracking]'" in err
    assert not out.exists()
