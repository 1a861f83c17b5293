"""The gold-parts breakdown: an open-ended answer's rubric parts, invented values and solved share, read back."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.gold_parts import invented_values, over_seeds, summarize_parts  # noqa: E402
from synth import general_tasks  # noqa: E402


def _answer(pid, text):
    return {"prompt_id": pid, "domain": "general", "completion": [{"role": "assistant", "content": text}]}


def test_parts_separate_form_from_content():
    item = general_tasks.generate(1, 0)[0]
    gold = {"p": item["gold"]}
    reference = item["reference"]
    name = item["gold"]["facts"][0]
    other = "Felix" if name != "Felix" else "Grace"
    rows = [_answer("p", reference),                     # solved
            _answer("p", reference.replace(name, other)),  # right form, the recipient invented
            _answer("p", "Yo, no idea.")]                 # wrong register, nothing covered
    got = summarize_parts(rows, gold)
    assert got["n"] == 3
    assert got["solved"] == pytest.approx(1 / 3, abs=1e-4)
    assert got["instruction_following"]["perfect"] == pytest.approx(2 / 3, abs=1e-4)
    assert got["invented"] == pytest.approx(1 / 3, abs=1e-4)  # one invented name in three answers
    assert got["coverage"]["perfect"] == pytest.approx(1 / 3, abs=1e-4)
    assert 0 < got["score"] < 1


def test_invented_values_inverts_truthfulness():
    assert invented_values(1.0) == 0.0
    assert invented_values(0.25) == pytest.approx(2.0)


def test_an_answer_without_gold_is_a_one_line_error():
    with pytest.raises(SystemExit, match="has no gold for this prompt"):
        summarize_parts([_answer("missing", "Hi")], {})


def test_over_seeds_averages_each_seed_top_member():
    def parts(score):
        p = {"n": 1, "solved": 0.0, "score": score, "invented": 2.0}
        return {**p, **{k: {"mean": 0.5, "perfect": 0.0} for k in
                        ("coverage", "truthfulness", "verbosity", "instruction_following", "harmlessness")}}
    per_seed = {0: {"top_member": "r3-sft", "parts": {"r0-sft": {"test": {"general": parts(0.1)}},
                                                        "r3-sft": {"test": {"general": parts(0.3)}}}},
                1: {"top_member": "r2-rs", "parts": {"r0-sft": {"test": {"general": parts(0.2)}},
                                                       "r2-rs": {"test": {"general": parts(0.5)}}}}}
    got = over_seeds(per_seed, "test")
    assert got["top"]["general"]["score"] == pytest.approx(0.4)
    assert got["r0-sft"]["general"]["score"] == pytest.approx(0.15)
