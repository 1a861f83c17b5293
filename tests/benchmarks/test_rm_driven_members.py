"""The rounds' RM-driven members against the member each round starts from, paired on test prompts."""
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import rm_claims  # noqa: E402
from benchmarks.rm_driven_members import member_dir, one_seed, round_members, summary  # noqa: E402


def _run(root: Path, starts: dict[int, str], members: dict[int, list[str]]) -> Path:
    for n, start in starts.items():
        (root / f"round_{n}").mkdir(parents=True)
        (root / f"round_{n}" / "manifest.json").write_text(json.dumps({"start": start, "stages": {}}))
        for name in members.get(n, []):
            (root / f"round_{n}" / "members" / name).mkdir(parents=True)
            (root / f"round_{n}" / "members" / name / "config.json").write_text("{}")
    return root


def test_each_member_is_paired_with_its_rounds_start_and_scored_once(tmp_path, monkeypatch):
    run = _run(tmp_path / "seed0", {1: "r0-sft", 2: "r1-sft"}, {1: ["r1-rs", "r1-mdloo", "r1-sft"], 2: ["r2-rs"]})
    rows = [{"id": "general-0"}, {"id": "summarize-0"}]
    monkeypatch.setattr(rm_claims, "open_ended_rows", lambda r, split: (rows, {"split": split}))
    golds = {"r0-sft": [0.1, 0.2], "r1-rs": [0.3, 0.2], "r1-mdloo": [0.1, 0.1], "r1-sft": [0.2, 0.2],
             "r2-rs": [0.5, 0.1]}
    calls = []

    def scorer(r, name, prompts, gold):
        assert gold == {"split": "test"} and prompts == rows
        calls.append(name)
        return golds[name]

    out = one_seed(run, [1, 2], scorer)
    assert out[1]["rs"] == {"member": "r1-rs", "start": "r0-sft", "gold": 0.25, "start_gold": 0.15, "gain": 0.1}
    assert out[1]["mdloo"]["gain"] == -0.05
    assert out[2] == {"rs": {"member": "r2-rs", "start": "r1-sft", "gold": 0.3, "start_gold": 0.2, "gain": 0.1}}
    assert sorted(calls) == sorted(set(calls))  # every member generated once, the start member included
    assert member_dir(run, "r2-rs") == run / "round_2" / "members" / "r2-rs"


def test_the_summary_holds_the_seeds_that_ran_each_member():
    per_seed = [{1: {"rs": {"gold": 0.3, "start_gold": 0.2, "gain": 0.1}}},
                {1: {"rs": {"gold": 0.4, "start_gold": 0.1, "gain": 0.3},
                     "mdloo": {"gold": 0.1, "start_gold": 0.1, "gain": 0.0}}}]
    out = summary(per_seed, [1])
    assert out[1]["rs"]["gain"] == 0.2 and out[1]["rs"]["seeds"] == 2 and out[1]["rs"]["gain_per_seed"] == [0.1, 0.3]
    assert out[1]["rs"]["gain_ci95"][0] < 0.2 < out[1]["rs"]["gain_ci95"][1]
    assert out[1]["mdloo"]["seeds"] == 1


def test_an_unfinished_round_or_one_without_a_start_is_a_one_line_error(tmp_path):
    run = _run(tmp_path / "seed0", {1: ""}, {})
    with pytest.raises(SystemExit, match="round 2 has no manifest"):
        round_members(run, 2)
    with pytest.raises(SystemExit, match="names no start member"):
        round_members(run, 1)
