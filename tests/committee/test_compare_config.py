"""`afm-align compare A B` shows the keys of the two members' recipe_config.yaml that differ, side by side."""
import json
import os
from pathlib import Path

import pytest
import yaml

from afm_align.cli import main as cli_main
from committee.member_configs import config_diff, diff_lines

DPO = {"from_checkpoint": "runs/demo/round_0/members/r0-sft", "out": "runs/demo/round_1/members/r1-dpo",
       "member": "r1-dpo", "round": 1, "learning_rate": 5.0e-6, "beta": 0.1, "loss": "dpo", "lora_rank": 0,
       "families": ["math", "code"]}
SFT = {"from_checkpoint": "runs/demo/base", "out": "runs/demo/round_0/members/r0-sft", "member": "r0-sft",
       "round": 0, "learning_rate": 2.0e-4, "lora_rank": 0, "families": ["math"], "epochs": 2.0, "samples_out": ""}


def test_config_diff_lists_differing_keys_knobs_first():
    rows = config_diff(DPO, SFT)
    assert [r[0] for r in rows] == ["from_checkpoint", "learning_rate", "families", "beta", "loss", "epochs",
                                    "samples_out", "out", "member", "round"]
    by_key = {k: (a, b) for k, a, b in rows}
    assert by_key["learning_rate"] == ("5e-06", "0.0002")
    assert by_key["families"] == ('["math", "code"]', '["math"]')
    assert by_key["beta"] == ("0.1", "(absent)") and by_key["epochs"] == ("(absent)", "2.0")
    assert by_key["samples_out"] == ("(absent)", '""')  # an empty string is shown, not left blank
    assert "lora_rank" not in by_key  # equal values are not listed
    assert config_diff({"sft": {"epochs": 1, "lr": 2}}, {"sft": {"epochs": 1, "lr": 3}}) == [("sft.lr", "2", "3")]
    assert diff_lines("a", {"x": 1}, "b", {"x": 1}) == ["config: a and b were trained with the same recipe_config.yaml"]


def _make_run(root: Path) -> None:
    samples = [{"prompt_id": f"p{i}", "domain": "math", "member": m, "prompt": "1 + 1?", "completion": "2",
                "verifier_score": float(i % 2 or m == "r1-dpo"), "rm_score": 0.0}
               for i in range(6) for m in ("r0-sft", "r1-dpo")]
    entries = [{"member": m, "round": n, "recipe": r, "promoted": True, "dev": {"math": 0.5, "mean": 0.5}}
               for m, n, r in (("r1-dpo", 1, "dpo"), ("r0-sft", 0, "sft"))]
    (root / "round_1" / "eval").mkdir(parents=True)
    (root / "round_1" / "eval" / "leaderboard.json").write_text(json.dumps(entries))
    (root / "round_1" / "eval" / "samples.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples))
    for n, name, config in ((1, "r1-dpo", DPO), (0, "r0-sft", SFT)):
        folder = root / f"round_{n}" / "members" / name
        folder.mkdir(parents=True)
        (folder / "recipe_config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


@pytest.fixture
def run_root():
    root = Path(os.environ["AFM_ALIGN_RUNS"]) / "demo"
    _make_run(root)
    return root


def test_compare_prints_the_config_diff_side_by_side(run_root, capsys):
    assert cli_main(["compare", "r1-dpo", "r0-sft", "--run", "demo", "--samples", "0", "--bootstrap", "50"]) == 0
    lines = capsys.readouterr().out.splitlines()
    start = lines.index("config: 10 keys of recipe_config.yaml differ")
    assert lines[start + 1].split() == ["key", "r1-dpo", "r0-sft"]
    table = {x.split()[0]: x.split()[1:] for x in lines[start + 2:start + 12]}
    assert table["learning_rate"] == ["5e-06", "0.0002"] and table["beta"] == ["0.1", "(absent)"]
    assert table["from_checkpoint"] == ["runs/demo/round_0/members/r0-sft", "runs/demo/base"]
    column = lines[start + 1].index("r0-sft")  # B's values line up under B's name
    assert all(x[column:].split()[0] == v[-1] for x, v in ((x, x.split()) for x in lines[start + 2:start + 12]))


def test_compare_says_which_config_is_missing(run_root, capsys):
    (run_root / "round_0" / "members" / "r0-sft" / "recipe_config.yaml").unlink()
    assert cli_main(["compare", "r1-dpo", "r0-sft", "--run", "demo", "--samples", "0", "--bootstrap", "50"]) == 0
    out = capsys.readouterr().out
    assert "config: no recipe_config.yaml for r0-sft under" in out and "keys of recipe_config.yaml differ" not in out
