"""`afm-align rm train|eval|score` end to end on a tiny backbone and synthetic preference pairs."""
import json

import pytest

from afm_align.cli import main as cli_main
from afm_align.store import read_rows
from synth.builders import build


@pytest.fixture(scope="module")
def prefs(tmp_path_factory):
    path = tmp_path_factory.mktemp("prefs") / "prefs"
    build("prefs", 160, seed=0, out=path)
    return path


def test_train_eval_score(prefs, tiny_base_dir, tmp_path, capsys):
    out = tmp_path / "rm"
    assert cli_main(["rm", "train", "--data", str(prefs), "--out", str(out), "--base", str(tiny_base_dir),
                     "epochs=1", "batch_size=8", "max_length=512"]) == 0
    printed = capsys.readouterr().out
    assert "pairwise accuracy" in printed and "significantly_better" in printed
    meta = json.loads((out / "meta.json").read_text())
    assert meta["train_pairs"] + meta["heldout_pairs"] <= 160 and meta["heldout_pairs"] > 0
    assert (out / "config.yaml").is_file() and (out / "metrics.jsonl").is_file()
    assert not (out / "work").exists() and not list(tmp_path.glob(".rm.tmp-*"))  # staging published, work dropped

    report = tmp_path / "eval.json"
    assert cli_main(["rm", "eval", "--model", str(out), "--data", str(prefs), "--json", str(report)]) == 0
    figures = json.loads(report.read_text())
    assert 0.0 <= figures["pairwise_accuracy"] <= 1.0
    assert set(figures["pairwise_accuracy_by_level"]) == {
        "significantly_better", "better", "slightly_better", "negligibly_better"}
    assert set(figures["grading_accuracy"]) == {"instruction_following", "verbosity", "truthfulness", "harmlessness"}
    assert "ece" in figures and "length_correlation" in figures

    sft = tmp_path / "sft"
    build("math", 12, seed=0, out=sft, kind="sft")
    assert cli_main(["rm", "score", "--model", str(out), "--data", str(sft), "--out", str(tmp_path / "scored")]) == 0
    scored = read_rows(tmp_path / "scored", "response")
    assert len(scored) == 12 and all(isinstance(r["rm_score"], float) for r in scored)


def test_bad_rows_are_named(tmp_path, tiny_base_dir, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "x", "prompt": [{"role": "user", "content": "q"}], "chosen": "a",
                               "level": 9}) + "\n")
    from afm_align.store import write_dataset  # noqa: F401
    folder = tmp_path / "badset"
    folder.mkdir()
    (folder / "rows.jsonl").write_text(bad.read_text())
    (folder / "manifest.json").write_text(json.dumps({"kind": "preference", "rows": 1, "content_hash": "0",
                                                      "producer": "hand"}))
    assert cli_main(["rm", "train", "--data", str(folder), "--out", str(tmp_path / "o"),
                     "--base", str(tiny_base_dir)]) == 2
    err = capsys.readouterr().err
    assert "line 1" in err and "'rejected'" in err
    assert not (tmp_path / "o").exists()


def test_eval_of_a_non_rm_directory(tiny_base_dir, tmp_path, capsys):
    build("prefs", 20, seed=0, out=tmp_path / "p")
    assert cli_main(["rm", "eval", "--model", str(tiny_base_dir), "--data", str(tmp_path / "p")]) == 2
    assert "not an afm-align RM" in capsys.readouterr().err


def test_init_from_continues_an_earlier_rm(prefs, tiny_base_dir, tmp_path, capsys):
    from safetensors.torch import load_file

    def train(out, *extra):
        return cli_main(["rm", "train", "--data", str(prefs), "--out", str(out), "--base", str(tiny_base_dir),
                         "max_steps=2", "batch_size=8", "max_length=512", *extra])

    assert train(tmp_path / "first", "learning_rate=0.01") == 0
    assert train(tmp_path / "fresh", "learning_rate=0") == 0
    assert train(tmp_path / "cont", "learning_rate=0", f"init_from={tmp_path / 'first'}") == 0
    first, fresh, cont = (load_file(str(tmp_path / d / "model.safetensors")) for d in ("first", "fresh", "cont"))
    heads = [k for k in first if k.startswith("reward_head") or k.startswith("grade_heads")]
    assert heads and all((cont[k] == first[k]).all() for k in first)  # lr 0: the continued RM is the first one
    assert any(not (fresh[k] == first[k]).all() for k in heads)  # a fresh RM starts from new heads
    assert json.loads((tmp_path / "cont" / "meta.json").read_text())["init_from"] == str(tmp_path / "first")
    capsys.readouterr()

    assert train(tmp_path / "bad", f"init_from={tiny_base_dir}") == 2  # a causal LM is not an RM
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a reward-model directory" in err


def test_min_level_kept_count_is_in_meta_and_metrics(prefs, tiny_base_dir, tmp_path, capsys):
    from reward_model import recipe

    rows = read_rows(prefs, "preference")
    train, held = recipe.split_rows(rows, 0.1, seed=0)
    expected_kept = sum(r["level"] >= 2 for r in train if r["chosen"] != r["rejected"])
    out = tmp_path / "rm"
    recipe.main(recipe.load("tiny", overrides=[f"data={prefs}", f"out={out}", f"from_checkpoint={tiny_base_dir}",
                                               "max_steps=1", "batch_size=4", "min_level=2"]))
    meta = json.loads((out / "meta.json").read_text())
    assert meta["min_level"]["min_level"] == 2 and meta["min_level"]["kept"] == expected_kept > 0
    assert meta["min_level"]["dropped"] > 0 and meta["heldout_pairs"] == len(held)  # held-out pairs unfiltered
    final = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()][-1]
    assert final["kept_min_level"] == expected_kept and final["below_min_level"] == meta["min_level"]["dropped"]


def test_attention_pooling_trains_and_is_kept_in_the_saved_rm(prefs, tiny_base_dir, tmp_path):
    import torch
    from transformers import AutoModel

    out = tmp_path / "rm"
    assert cli_main(["rm", "train", "--data", str(prefs), "--out", str(out), "--base", str(tiny_base_dir),
                     "epochs=1", "batch_size=8", "max_length=512", "pooling=attention"]) == 0
    rm = AutoModel.from_pretrained(out)
    assert rm.config.pooling == "attention"
    assert rm.pool_scorer.weight.abs().sum() > 0  # started at zero; training moved it
    assert json.loads((out / "meta.json").read_text())["heldout"]["n_pairs"] > 0
    assert torch.isfinite(rm.pool_scorer.bias).all()


def test_unknown_pooling_fails_before_training(prefs, tiny_base_dir, tmp_path, capsys):
    assert cli_main(["rm", "train", "--data", str(prefs), "--out", str(tmp_path / "o"), "--base", str(tiny_base_dir),
                     "pooling=max"]) == 2
    assert "pooling='max': choose one of last, attention" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
