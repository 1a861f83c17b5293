"""`afm-align train RECIPE`: every recipe of the recipe table reachable from one command, bad input as one line
and exit 2. The recipe list comes from `alignment.recipes.RECIPES`: a new row without a fast setting here fails."""
import json

import pytest

from afm_align.cli import main as cli_main
from alignment.recipes import RECIPES

DATASET_OF = {"sft_data": "sft", "prompts": "prompts", "preferences": "prefs", None: "sft"}  # round_data -> test data
FAST = {  # a few steps of each recipe
    "sft": ["max_steps=2", "num_checkpoints=1", "batch_size=4"],
    "rs": ["k=1", "max_new_tokens=4", "max_prompts=4", "min_score=null", "verifier_min=0", "sft.max_steps=1"],
    "dpo": ["max_steps=2", "batch_size=4", "min_level=0"],
    "ipo": ["max_steps=2", "batch_size=4", "min_level=0"],
    "mdloo": ["steps=1", "prompts_per_step=2", "k=2", "max_new_tokens=8"],
    "rloo": ["steps=1", "prompts_per_step=2", "k=2", "max_new_tokens=8"],
    "prune": ["importance=magnitude", "hidden_size=0", "num_layers=0", "num_heads=0", "num_kv_heads=0",
              "intermediate_size=32"],
    "distill": ["kd_mode=none", "steps=2", "batch_size=4"],
    "quantize": ["scheme=4bit"],
    "adapter": ["corpus_steps=0", "sft_steps=2", "batch_size=4", "lora_rank=8"],
    "merge": ["members=[{base},{base}]", "method=average"],
    "online_dpo": ["reward_model={rm}", "steps=1", "k=2", "prompts_per_step=2", "max_new_tokens=4"],
}


def test_every_recipe_of_the_table_is_tested_here():
    assert set(FAST) == set(RECIPES)


@pytest.fixture
def data(recipe_data):
    return recipe_data


@pytest.fixture
def rm_dir(tiny_base_dir, tiny_tokenizer, tmp_path):
    """A saved multi-head RM on the tiny backbone (heads untrained), for the recipes that need one."""
    from reward_model.model import MultiHeadRewardModel

    MultiHeadRewardModel.from_backbone(tiny_base_dir).save_pretrained(tmp_path / "rm")
    tiny_tokenizer.save_pretrained(tmp_path / "rm")
    return tmp_path / "rm"


@pytest.mark.parametrize("recipe", list(RECIPES))
def test_train_writes_a_member(recipe, data, tiny_base_dir, rm_dir, tmp_path):
    out = tmp_path / recipe
    dataset = DATASET_OF[RECIPES[recipe].round_data]
    assert cli_main(["train", recipe, "--from", str(tiny_base_dir), "--data", str(data / dataset),
                     "--out", str(out), *(a.format(base=tiny_base_dir, rm=rm_dir) for a in FAST[recipe])]) == 0
    meta = json.loads((out / "meta.json").read_text())
    assert meta["recipe"] == recipe
    assert (out / "metrics.jsonl").is_file() or recipe in ("prune", "merge", "quantize")  # these train nothing
    assert (out / ("adapter_config.json" if recipe == "adapter" else "config.json")).is_file()


@pytest.mark.parametrize("args, message", [
    (["sft", "--from", "/no/such/checkpoint", "--data", "sft"], "/no/such/checkpoint"),
    (["mdloo", "--data", "prompts", "num_iterations=1"], "num_iterations"),
    (["dpo", "--data", "weak"], "no preference pairs"),
    (["dpo", "--data", "prefs", "--rm", "/some/rm"], "takes no reward model"),
    (["sft", "--data", "sft", "grad_accum=2"], "config key 'grad_accum' was renamed to 'gradient_accumulation_steps'"),
    (["sft", "--data", "sft", "report_to=nosuchtracker"], "report_to 'nosuchtracker' is not a tracker"),
    (["quantize", "--data", "sft", "scheme=3bit"], "unknown scheme '3bit'; schemes are: 4bit, 2bit, 8bit, mixed"),
    (["quantize", "--data", "sft", "target_bpw=1.5"], "target_bpw"),
    (["adapter", "--data", "sft", "lora_rank=0"], "lora_rank"),
    (["distill", "--data", "sft", "kd_mode=top2"], "kd_mode"),
    (["sft"], "config key 'data' must be set"),
    (["merge", "members=[/a]"], "takes two or more members"),
    (["online_dpo", "--data", "prompts"], "needs a reward model"),
    (["merge", "method=slerp", "members=[/a,/b,/c]"], "takes 2 member(s)"),
])
def test_bad_input_is_one_line_exit_2(args, message, data, tiny_base_dir, tmp_path, capsys):
    args = [a if a not in ("sft", "prompts", "prefs", "weak") or i == 0 else str(data / a) for i, a in enumerate(args)]
    if "--from" not in args:
        args[1:1] = ["--from", str(tiny_base_dir)]
    assert cli_main(["train", *args, "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "m").exists()


def test_a_bug_keeps_its_traceback_and_is_not_a_user_error(data, tiny_base_dir, tmp_path, monkeypatch):
    """Only UserError is printed as one line (exit 2); a library error (here a JSONDecodeError) propagates."""
    import alignment.sft

    def broken(cfg):
        json.loads("{not json")

    monkeypatch.setattr(alignment.sft, "main", broken)
    with pytest.raises(json.JSONDecodeError):
        cli_main(["train", "sft", "--from", str(tiny_base_dir), "--data", str(data / "sft"), "--out", str(tmp_path / "m")])
