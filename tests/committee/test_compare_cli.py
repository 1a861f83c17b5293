"""`afm-align leaderboard`, `compare` and `eval` on fixture round files; bad input is one line, exit 2."""
import json
import os
from pathlib import Path

import pytest

from afm_align.cli import main as cli_main


def _entry(member, round_n, recipe, mean, elo, promoted=False):
    return {"member": member, "round": round_n, "recipe": recipe, "promoted": promoted,
            "dev": {"math": mean, "if": mean, "mean": mean}, "dev_ci95": [mean - 0.1, mean + 0.1],
            "elo": elo, "elo_ci95": [elo - 30, elo + 30], "winrate_vs_prev_best": None}


def make_demo_run(root: Path) -> Path:
    """`root` with round 0 (r0-sft) and round 1 (r1-dpo, plus r0-sft's reused samples)."""
    samples = []
    for i in range(20):
        for member, p_math, p_if in (("r0-sft", 0.2, 0.5), ("r1-dpo", 0.8, 0.5)):
            samples.append({"prompt_id": f"math-{i:02d}", "domain": "math", "member": member,
                            "prompt": [{"role": "user", "content": f"What is {i} + {i}?"}],
                            "completion": f"{member} says {2 * i if i < p_math * 20 else 0}",
                            "verifier_score": float(i < p_math * 20), "rm_score": p_math + i / 100})
            samples.append({"prompt_id": f"if-{i:02d}", "domain": "if", "member": member,
                            "prompt": [{"role": "user", "content": f"Write {i} words."}],
                            "completion": "word " * i, "verifier_score": float(i < p_if * 20), "rm_score": 0.0})
    for n, entries in ((0, [_entry("r0-sft", 0, "sft", 0.35, 1000, True)]),
                       (1, [_entry("r1-dpo", 1, "dpo", 0.65, 1080, True), _entry("r0-sft", 0, "sft", 0.35, 920, True)])):
        (root / f"round_{n}" / "eval").mkdir(parents=True)
        (root / f"round_{n}" / "eval" / "leaderboard.json").write_text(json.dumps(entries))
        rows = [s for s in samples if n == 1 or s["member"] == "r0-sft"]
        (root / f"round_{n}" / "eval" / "samples.jsonl").write_text("".join(json.dumps(s) + "\n" for s in rows))
    test = [{"member": "r1-dpo", "round": 1, "recipe": "dpo", "scored_in": 1, "test": {"math": 0.6, "mean": 0.6},
             "test_ci95": [0.5, 0.7]}]
    (root / "round_1" / "eval" / "test_leaderboard.json").write_text(json.dumps(test))
    return root


@pytest.fixture
def run_root():
    return make_demo_run(Path(os.environ["AFM_ALIGN_RUNS"]) / "demo")


def test_leaderboard_prints_all_members_of_the_latest_round(run_root, capsys):
    assert cli_main(["leaderboard", "--run", "demo"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("run demo, round 1: 2 members; promotion used the dev split; the test split is for "
                             "reports only (1 members scored on it)")
    assert out[1].split() == ["member", "round", "recipe", "promoted", "dev", "mean", "[95%", "CI]", "test", "mean",
                              "[95%", "CI]", "dev", "if", "dev", "math", "Elo", "[95%", "CI]"]
    assert out[2].split()[:5] == ["r1-dpo", "1", "dpo", "yes", "0.650"] and "[0.550, 0.750]" in out[2]
    assert "0.600 [0.500, 0.700]" in out[2]  # its test mean, shown beside the dev mean
    assert "1080 [1050, 1110]" in out[2] and out[3].startswith("r0-sft") and " - " in out[3]
    assert cli_main(["leaderboard", "--run", "demo", "--round", "0"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("run demo, round 0: 1 members") and len(out) == 3 and "1000 [970, 1030]" in out[2]


def test_compare_prints_paired_deltas_and_side_by_side_samples(run_root, capsys):
    assert cli_main(["compare", "r1-dpo", "r0-sft", "--run", "demo", "--samples", "2", "--bootstrap", "300"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("run demo, round 1: r1-dpo - r0-sft")
    math_line = next(x for x in lines if x.strip().startswith("math"))
    if_line = next(x for x in lines if x.strip().startswith("if "))
    mean_line = next(x for x in lines if x.strip().startswith("mean"))
    assert "+0.600" in math_line and "(20 prompts)" in math_line
    assert "+0.000 [0.000, 0.000]" in if_line
    low = float(mean_line.split("[")[1].split(",")[0])
    assert "+0.300" in mean_line and low > 0 and "(interval above zero)" in mean_line
    assert "dev win rate of r1-dpo over r0-sft, judged by the families' verifiers" in out
    assert "not both of r1-dpo and r0-sft were scored on the test split" in out
    headers = [x for x in lines if x.startswith("[")]
    assert len(headers) == 2 and all(h.startswith("[math] math-") for h in headers)  # disagreements first
    assert any("r1-dpo says" in x and "| r0-sft says" in x for x in lines)


def test_compare_with_zero_samples_and_explicit_round(run_root, capsys):
    assert cli_main(["compare", "r0-sft", "r1-dpo", "--run", "demo", "--round", "1", "--samples", "0"]) == 0
    out = capsys.readouterr().out
    assert "-0.300" in out and "interval below zero" in out and "says" not in out


@pytest.mark.parametrize("argv, message", [
    (["leaderboard", "--run", "nope"], "run 'nope' not found"),
    (["leaderboard", "--run", "demo", "--round", "7"], "no evaluated round 7"),
    (["compare", "r1-dpo", "r9-x", "--run", "demo"], "holds dev answers of both 'r1-dpo' and 'r9-x'"),
    (["eval", "--run", "demo", "--member", "r9-x"], "unknown member 'r9-x'"),
    (["eval", "--run", "nope", "--member", "r1-dpo"], "run 'nope' not found"),
    (["compare", "r1-dpo", "r0-sft", "--run", "demo", "--round", "0"], "'r1-dpo' has no samples in round 0"),
    (["compare", "r1-dpo", "r1-dpo", "--run", "demo"], "two different members"),
    (["leaderboard", "--run", "bad name!"], "must be 1-64 letters"),
])
def test_bad_input_is_one_line_and_exit_2(run_root, capsys, argv, message):
    assert cli_main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and err.startswith(f"afm-align {argv[0]}: error:")


def test_a_run_without_evaluated_rounds_is_a_clear_error(capsys):
    (Path(os.environ["AFM_ALIGN_RUNS"]) / "empty" / "round_0").mkdir(parents=True)
    assert cli_main(["leaderboard", "--run", "empty"]) == 2
    assert "has no evaluated round yet" in capsys.readouterr().err


def test_eval_rejects_a_missing_dataset_and_a_split_it_lacks(run_root, capsys, tmp_path):
    from afm_align.store import write_dataset

    (run_root / "round_1" / "members" / "r1-dpo").mkdir(parents=True)
    assert cli_main(["eval", "--run", "demo", "--member", "r1-dpo", "--data", str(tmp_path / "none")]) == 2
    assert "no such dataset folder" in capsys.readouterr().err
    rows = [{"id": "p0", "prompt": [{"role": "user", "content": "1 + 1?"}], "domain": "math", "verifier": "{}",
             "source": "test", "split": "train"}]
    write_dataset(rows, "prompt", tmp_path / "mine", producer="test")
    assert cli_main(["eval", "--run", "demo", "--member", "r1-dpo", "--data", str(tmp_path / "mine"),
                     "--split", "test"]) == 2
    err = capsys.readouterr().err
    assert "has no rows of split 'test' (it has: train)" in err and err.count("\n") == 1
    assert cli_main(["eval", "--run", "demo", "--member", "r1-dpo"]) == 2  # a run with no data stage yet
    assert "has no dev prompts yet" in capsys.readouterr().err
