"""Annotators: pair formation, the oracle's grades / levels / seeded noise, the judge, the human queue."""
from types import SimpleNamespace

import pytest

from afm_align.schema import validate_row
from committee.annotators import (
    FLIP_SCALE,
    OracleNoise,
    form_pairs,
    human_labels,
    label_judge,
    label_oracle,
    label_pairs,
    oracle_grades,
    oracle_label,
    preference_level,
    queue_pairs,
    verbosity_grade,
)

PROMPT = {"id": "math-1", "prompt": [{"role": "user", "content": "What is 2 + 3?"}], "domain": "math",
          "reference": "2 + 3 = 5\nAnswer: 5"}


def _resp(member, j, text, score=None, prompt_id="math-1"):
    return {"id": f"{member}-{prompt_id}-{j}", "prompt_id": prompt_id, "member": member, "round": 1,
            "completion": text, "verifier_score": score}


def _pair(a, b, pair_id="p1"):
    return {"pair_id": pair_id, "prompt_id": "math-1", "a": a, "b": b, "kind": "across"}


def test_pairs_go_across_members_first_then_within_and_never_pair_identical_texts():
    rows = [_resp("r0-sft", 0, "Answer: 5"), _resp("r0-sft", 1, "Answer: 6"),
            _resp("r1-dpo", 0, "Answer: 5"), _resp("r1-dpo", 1, "Answer: 7"), _resp("r1-dpo", 2, "  ")]
    pairs = form_pairs(rows, per_prompt=3, seed=0)
    # after dedup: r0-sft has 2 distinct answers, r1-dpo 1 -> 2 across pairs and 1 within pair exist
    assert [p["kind"] for p in pairs] == ["across", "within", "across"]
    for p in pairs:
        assert p["a"]["completion"] != p["b"]["completion"] and "  " not in (p["a"]["completion"], p["b"]["completion"])
        assert (p["a"]["member"] != p["b"]["member"]) == (p["kind"] == "across")
    assert len({p["pair_id"] for p in pairs}) == 3
    # "Answer: 5" of r1-dpo duplicates r0-sft's, so it is dropped: r1-dpo has one distinct answer left
    assert not any(p["a"]["id"] == "r1-dpo-math-1-0" or p["b"]["id"] == "r1-dpo-math-1-0" for p in pairs)
    assert form_pairs(rows, 3, seed=0) == pairs  # seeded
    assert len(form_pairs(rows, per_prompt=10, seed=0)) == 3  # no more distinct pairs exist
    only_one = [_resp("r0-sft", 0, "same"), _resp("r0-sft", 1, "same")]
    assert form_pairs(only_one, 2, seed=0) == []


def test_verbosity_levels_and_grades_follow_the_rules():
    assert verbosity_grade("a b c d", "w x y z") == 2  # ratio 1
    assert verbosity_grade("a", "w x y z") == 1  # ratio 0.25
    assert verbosity_grade("a " * 13, "w x y z") == 0  # ratio 3.25
    assert verbosity_grade("anything", None) is None
    assert [preference_level(g) for g in (0.0, 0.1, 0.15, 0.4, 0.74, 0.75, 1.0)] == [0, 0, 1, 2, 2, 3, 3]
    grades = oracle_grades("math", 0.0, "Answer: 7", PROMPT["reference"])  # 2 words against 7
    assert grades == {"instruction_following": 0, "truthfulness": 0, "verbosity": 1, "harmlessness": None}
    assert oracle_grades("if", 0.6, "x", None)["instruction_following"] == 1
    assert oracle_grades("safety", 1.0, "I cannot help.", None)["harmlessness"] == 2


def test_the_oracle_prefers_the_higher_score_with_a_level_from_the_gap():
    quiet = OracleNoise(flip=0.0, jitter=0.0, seed=0)
    good, bad = _resp("a", 0, "2 + 3 = 5\nAnswer: 5", 1.0), _resp("b", 0, "Answer: 9", 0.0)
    row = oracle_label(_pair(bad, good), PROMPT, quiet)
    validate_row("preference", row)
    assert row["chosen"][0]["content"] == good["completion"] and row["level"] == 3
    assert row["grades_chosen"]["truthfulness"] == 2 and row["grades_rejected"]["truthfulness"] == 0
    assert row["member_chosen"] == "a" and row["source"] == "oracle"
    half = oracle_label(_pair(_resp("a", 0, "x y", 0.5), _resp("b", 0, "z w", 0.0)), PROMPT, quiet)
    assert half["level"] == 2 and half["chosen"][0]["content"] == "x y"
    # equal scores: the answer closer to the reference length wins, at level 0
    near, far = _resp("a", 0, "2 + 3 = 5 Answer: 5", 0.0), _resp("b", 0, "5 " * 40, 0.0)
    tie = oracle_label(_pair(far, near), PROMPT, quiet)
    assert tie["level"] == 0 and tie["chosen"][0]["content"] == near["completion"]


def test_oracle_noise_flips_close_pairs_far_more_than_clear_ones_and_is_seeded():
    noise = OracleNoise(flip=0.4, jitter=0.0, seed=3)
    close = [_pair(_resp("a", i, f"x{i}", 0.5), _resp("b", i, f"y{i} y", 0.45), f"c{i}") for i in range(400)]
    clear = [_pair(_resp("a", i, f"x{i}", 1.0), _resp("b", i, f"y{i} y", 0.0), f"d{i}") for i in range(400)]
    prompts = {"math-1": PROMPT}
    flips_close = sum(r["member_chosen"] == "b" for r in label_oracle(close, prompts, noise))
    flips_clear = sum(r["member_chosen"] == "b" for r in label_oracle(clear, prompts, noise))
    # expected 400 * 0.4 * FLIP_SCALE: 160 for level 0, 8 for level 3
    assert FLIP_SCALE[0] == 1.0 and FLIP_SCALE[3] < 0.1
    assert 120 < flips_close < 200 and flips_clear < 20
    assert label_oracle(close, prompts, noise) == label_oracle(close, prompts, noise)
    other = label_oracle(close, prompts, OracleNoise(flip=0.4, jitter=0.0, seed=4))
    assert other != label_oracle(close, prompts, noise)
    jittered = label_oracle(clear, prompts, OracleNoise(flip=0.0, jitter=1.0, seed=0))
    assert {r["level"] for r in jittered} == {2}  # level 3 can only move down


class _FakeScorer:
    """Scores a completion by its length; grades say 'good' for long answers."""

    def score(self, prompts, completions):
        rewards = [float(len(c)) for c in completions]
        grades = [{"instruction_following": 2 if len(c) > 3 else 0, "verbosity": 1, "truthfulness": 1,
                   "harmlessness": 2} for c in completions]
        return SimpleNamespace(rewards=rewards, grades=grades)


def test_the_judge_picks_the_higher_rm_score_with_levels_from_the_gap():
    pairs = [_pair(_resp("a", 0, "ab"), _resp("b", 0, "abcdef"), "p1"),  # gap 4 -> level 3
             _pair(_resp("a", 1, "abcd"), _resp("b", 1, "abc"), "p2")]  # gap 1 -> level 2 (0.25, 0.75 passed)
    rows = label_judge(pairs, {"math-1": PROMPT}, _FakeScorer(), [0.25, 0.75, 1.5])
    assert [r["member_chosen"] for r in rows] == ["b", "a"] and [r["level"] for r in rows] == [3, 2]
    assert rows[0]["grades_chosen"]["instruction_following"] == 2
    assert rows[0]["grades_rejected"]["instruction_following"] == 0
    for row in rows:
        validate_row("preference", row)
        assert row["source"] == "judge"


def test_human_pairs_wait_in_the_label_store_until_labelled(tmp_path):
    from afm_align.label_store import LabelStore

    run = SimpleNamespace(labels=tmp_path / "labels.sqlite")
    cfg = SimpleNamespace(annotator="human", pairs_per_prompt=2, human_k=1, human_min_labels=0, run="r")
    rows = [_resp("r0-sft", 0, "Answer: 5", 1.0), _resp("r0-sft", 1, "Answer: 6", 0.0),
            _resp("r0-sft", 2, "Answer: 8", 0.0)]
    labelled, message = label_pairs(cfg, run, 1, {"math-1": PROMPT}, rows, seed=0)
    assert labelled is None and message.startswith("round 1: 0 of 2 pairs labelled") and "afm-align annotate" in message
    store = LabelStore(run.labels, seed=0)
    assert queue_pairs(store, form_pairs(rows, 2, 0), {"math-1": PROMPT}, 1, 1) == 0  # idempotent
    store.add_user("ann", "a-long-password")
    grades = {"instruction_following": 2, "verbosity": 2, "truthfulness": 2, "harmlessness": 2}
    for _ in range(2):
        a = store.next_pair("ann", round=1)
        store.submit("ann", a.id, "A", 2, grades, grades)
    assert human_labels(store, 1, needed=3) == (None, 2)
    out, message = label_pairs(cfg, run, 1, {"math-1": PROMPT}, rows, seed=0)
    assert message == "" or out is not None
    assert len(out) == 2 and {r["source"] for r in out} == {"human"}
    for row in out:
        validate_row("preference", row)


def test_unknown_annotator_settings_are_rejected_by_the_round_config():
    from committee.round_config import IterateConfig, check_config

    with pytest.raises(ValueError, match="unknown annotator 'crowd'"):
        check_config(IterateConfig(annotator="crowd"))
    with pytest.raises(ValueError, match="oracle_flip"):
        check_config(IterateConfig(oracle_flip=0.9))
