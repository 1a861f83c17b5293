"""`afm-align train RECIPE`: every recipe reachable from one command, bad input as one line and exit 2."""
import json

import pytest

from afm_align.cli import main as cli_main
from synth.builders import build


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    build("math", 24, seed=0, out=root / "sft", kind="sft", difficulty=0)
    build("math", 24, seed=1, out=root / "prompts", difficulty=0)
    build("prefs", 40, seed=0, out=root / "prefs")
    from afm_align.store import read_rows, write_dataset
    weak = [dict(r, level=0) for r in read_rows(root / "prefs", "preference")]
    write_dataset(weak, "preference", root / "weak", producer="test")  # nothing survives min_level 2
    return root


@pytest.mark.parametrize("recipe, dataset, extra", [
    ("sft", "sft", ["max_steps=2", "num_checkpoints=1", "batch_size=4"]),
    ("dpo", "prefs", ["max_steps=2", "batch_size=4", "min_level=0"]),
    ("mdloo", "prompts", ["steps=1", "prompts_per_step=2", "k=2", "max_new_tokens=8"]),
])
def test_train_writes_a_member(recipe, dataset, extra, data, tiny_base_dir, tmp_path):
    out = tmp_path / recipe
    assert cli_main(["train", recipe, "--from", str(tiny_base_dir), "--data", str(data / dataset),
                     "--out", str(out), *extra]) == 0
    meta = json.loads((out / "meta.json").read_text())
    assert meta["recipe"] == recipe
    assert (out / "metrics.jsonl").is_file() and (out / "config.json").is_file()


@pytest.mark.parametrize("args, message", [
    (["sft", "--from", "/no/such/checkpoint", "--data", "sft"], "/no/such/checkpoint"),
    (["mdloo", "--data", "prompts", "num_iterations=1"], "num_iterations"),
    (["dpo", "--data", "weak"], "no preference pairs"),
])
def test_bad_input_is_one_line_exit_2(args, message, data, tiny_base_dir, tmp_path, capsys):
    args = [a if a not in ("sft", "prompts", "prefs", "weak") or i == 0 else str(data / a) for i, a in enumerate(args)]
    if "--from" not in args:
        args[1:1] = ["--from", str(tiny_base_dir)]
    assert cli_main(["train", *args, "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "m").exists()
