"""In-context copying: copy rows are a sequence and its repeat, the score reads the repeat, and pre-training on
copy rows makes the base copy."""
import json
import math

import pytest
import torch

from afm_align.cli import main as cli_main
from afm_align.context_copy import copy_batch, copy_score

SMALL = ["steps=600", "drill_problems=3000", "family_items=20", "family_counts.tool=20", "math_items=30", "probes=20",
         "vocab_size=300", "shape.hidden_size=32", "shape.num_layers=2", "shape.intermediate_size=64", "batch_size=16",
         "seq_len=48", "warmup_steps=5", "threads=1", "learning_rate=0.01"]


def test_a_copy_row_is_a_sequence_and_its_repeat_with_the_loss_on_the_repeat():
    ids, mask = copy_batch(5, 7, 4, 30, torch.Generator().manual_seed(0))
    assert ids.shape == mask.shape == (5, 14)
    assert torch.equal(ids[:, :7], ids[:, 7:])
    assert int(ids.min()) >= 4 and int(ids.max()) < 30
    assert not mask[:, :7].any() and mask[:, 7:].all()


class _Copier(torch.nn.Module):
    """Puts all its mass on the true next token from the repeat's second token on (a perfect copier), and
    spreads it evenly over `vocab` tokens before."""

    def __init__(self, length: int, vocab: int):
        super().__init__()
        self.length, self.vocab = length, vocab
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def forward(self, input_ids):
        n, t = input_ids.shape
        logits = torch.zeros(n, t, self.vocab)
        for j in range(self.length, t - 1):  # position j predicts token j + 1, a repeat of token j + 1 - length
            logits[torch.arange(n), j, input_ids[:, j + 1]] = 50.0
        return type("Out", (), {"logits": logits})()


def test_the_score_reads_the_first_showing_and_the_predictable_part_of_the_repeat():
    model = _Copier(length=24, vocab=40)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    score = copy_score(model, low=4, high=40, length=24, rows=8)
    assert score["repeat"] < 1e-3  # the repeat's first token (unpredictable) is left out
    assert score["first"] == pytest.approx(math.log(40), abs=1e-3)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())


@pytest.mark.slow
def test_copy_rows_in_pre_training_make_the_base_copy(tmp_path, monkeypatch):
    monkeypatch.setenv("AFM_ALIGN_RUNS", str(tmp_path))
    assert cli_main(["init", "--run", "c", "copy_rows=16", *SMALL]) == 0
    score = json.loads((tmp_path / "c" / "base" / "meta.json").read_text())["copy_score"]
    # under half a uniform guess over the 296 ordinary tokens (5.7 nats; 0.2-1.2 measured with these settings,
    # about 10 without copy rows, whose first showing is as bad): the model copies the repeat
    assert score["repeat"] < math.log(296) / 2 < score["first"]


@pytest.mark.parametrize("bad", ["copy_rows=-1", "copy_rows=x"])
def test_a_bad_copy_rows_is_a_one_line_error(bad, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("AFM_ALIGN_RUNS", str(tmp_path))
    assert cli_main(["init", "--run", "c", bad, *SMALL]) == 2
    err = capsys.readouterr().err
    assert "copy_rows" in err and "Traceback" not in err
