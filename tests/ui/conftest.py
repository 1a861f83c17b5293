"""Fixtures for the ui tests: a label store with accounts and queued pairs, preference rows, round files.

`round_files` writes what the committee's evaluation stage will write (shapes documented in
ui/compare_tab.py): round_1/eval/leaderboard.json, round_1/eval/samples.jsonl, round_1/plots/*.png.
"""
import json

import pytest

from afm_align.schema import GRADE_DIMENSIONS

XSS = "It is 5. <script>window.__pwned = 1</script><img src=x onerror=\"window.__pwned = 2\">"


def make_pairs(n: int, prefix: str = "p") -> list[dict]:
    """n pairs; response_a is the better one; pair 0's response_b carries HTML that must stay inert."""
    return [{"pair_id": f"{prefix}{i}", "prompt": [{"role": "user", "content": f"What is {i} + 2?"}],
             "response_a": f"The answer is **{i + 2}**.\n\n```python\nprint({i} + 2)\n```",
             "response_b": XSS if i == 0 else f"It is {i + 3}.", "member_a": "m1", "member_b": "m2",
             "domain": "math"} for i in range(n)]


@pytest.fixture
def pairs():
    return make_pairs


@pytest.fixture
def grades():
    """grades(v) -> all four dimensions at v; grades(*four) -> one value per dimension."""
    def build(*values):
        values = values * len(GRADE_DIMENSIONS) if len(values) == 1 else values
        return dict(zip(GRADE_DIMENSIONS, values))
    return build


@pytest.fixture
def preference_rows():
    def build(n: int) -> list[dict]:
        return [{"id": f"pref{i}", "prompt": [{"role": "user", "content": f"Say {i}."}],
                 "chosen": f"{i}.", "rejected": f"Not {i}.", "level": 2,
                 "grades_chosen": dict.fromkeys(GRADE_DIMENSIONS, 2),
                 "grades_rejected": dict.fromkeys(GRADE_DIMENSIONS, 1), "annotator": "synth",
                 "source": "synthetic", "guideline_version": "synth-v1", "domain": "general"}
                for i in range(n)]
    return build


def write_round_files(run) -> None:
    """Round 1's leaderboard, samples (3 prompts x 3 members, plus one only member a answered), a plot."""
    from PIL import Image

    eval_dir = run.round(1) / "eval"
    eval_dir.mkdir(parents=True)
    board = [{"member": m, "round": 1, "recipe": r, "promoted": m != "c", "dev": {"math": acc, "code": acc / 2,
              "mean": 0.75 * acc}, "dev_ci95": [acc - 0.1, acc + 0.1], "elo": elo}
             for m, r, acc, elo in (("a", "sft", 0.5, 1000.0), ("b", "dpo", 0.7, 1040.0), ("c", "mdloo", 0.2, 950.0))]
    (eval_dir / "leaderboard.json").write_text(json.dumps(board))
    test = [{"member": "b", "round": 1, "scored_in": 1, "test": {"math": 0.6, "mean": 0.45}, "test_ci95": [0.3, 0.6]}]
    (eval_dir / "test_leaderboard.json").write_text(json.dumps(test))
    rows = [{"prompt_id": f"q{i}", "prompt": [{"role": "user", "content": f"q{i}?"}], "domain": "math",
             "member": m, "completion": f"{m} says {i} <b>bold</b>", "rm_score": i + 0.5,
             "verifier_score": float(m == "b")} for i in range(3) for m in ("a", "b", "c")]
    rows.append({"prompt_id": "only-a", "prompt": "x", "domain": "code", "member": "a", "completion": "y",
                 "rm_score": None, "verifier_score": None})
    (eval_dir / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (run.round(1) / "plots").mkdir()
    Image.new("RGB", (8, 8), "white").save(run.round(1) / "plots" / "elo.png")


@pytest.fixture
def round_writer():
    return write_round_files


@pytest.fixture
def round_files(tmp_path):
    """A run folder holding the round files of `write_round_files`."""
    from afm_align.rundir import RunDir

    run = RunDir(tmp_path / "runs" / "cmp")
    write_round_files(run)
    return run
