"""In-context copying: copy rows are a sequence and its repeat, and pre-training on them makes the base copy."""
import json

import pytest
import torch

from afm_align.cli import main as cli_main
from afm_align.context_copy import copy_batch

SMALL = ["steps=400", "drill_problems=3000", "family_items=20", "math_items=30", "probes=20", "vocab_size=300",
         "shape.hidden_size=32", "shape.num_layers=2", "shape.intermediate_size=64", "batch_size=16",
         "seq_len=48", "warmup_steps=5", "threads=1", "learning_rate=0.01"]


def test_a_copy_row_is_a_sequence_and_its_repeat_with_the_loss_on_the_repeat():
    ids, mask = copy_batch(5, 7, 4, 30, torch.Generator().manual_seed(0))
    assert ids.shape == mask.shape == (5, 14)
    assert torch.equal(ids[:, :7], ids[:, 7:])
    assert int(ids.min()) >= 4 and int(ids.max()) < 30
    assert not mask[:, :7].any() and mask[:, 7:].all()


def test_copy_rows_in_pre_training_make_the_base_copy(tmp_path, monkeypatch):
    monkeypatch.setenv("AFM_ALIGN_RUNS", str(tmp_path))
    assert cli_main(["init", "--run", "c", "copy_rows=16", *SMALL]) == 0
    score = json.loads((tmp_path / "c" / "base" / "meta.json").read_text())["copy_score"]
    # a model that does not copy predicts the repeat no better than the random first showing (log 296 = 5.7)
    assert score["first"] > 4.0
    assert score["repeat"] < 0.5 * score["first"]


@pytest.mark.parametrize("bad", ["copy_rows=-1", "copy_rows=x"])
def test_a_bad_copy_rows_is_a_one_line_error(bad, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("AFM_ALIGN_RUNS", str(tmp_path))
    assert cli_main(["init", "--run", "c", bad, *SMALL]) == 2
    err = capsys.readouterr().err
    assert "copy_rows" in err and "Traceback" not in err
