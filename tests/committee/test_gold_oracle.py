"""The gold oracle labels open-ended pairs from the hidden rubric: Bradley-Terry choice, level from the gap,
single-sided grades; seeded per pair."""
import math

import pytest

from afm_align.errors import UserError
from afm_align.schema import validate_row
from committee.gold_oracle import GoldNoise, gold_label, prefer_probability, rubric
from synth import general_tasks, summarize_tasks


def _pair(pid, a, b):
    return {"pair_id": pid, "kind": "within", "a": {"completion": a, "member": "r1-x"},
            "b": {"completion": b, "member": "r1-y"}}


def _prompt(item):
    return {"prompt": item["prompt"], "domain": item["domain"]}


def test_prefer_probability_is_bradley_terry_by_hand():
    assert prefer_probability(0.6, 0.5, 0.1) == pytest.approx(1 / (1 + math.exp(-1.0)))
    assert prefer_probability(0.5, 0.5, 0.1) == 0.5
    assert prefer_probability(0.2, 0.5, 0.1) == pytest.approx(1 / (1 + math.exp(3.0)))
    assert prefer_probability(0.6, 0.5, 0.0) == 1.0 and prefer_probability(0.4, 0.5, 0.0) == 0.0


def test_a_clear_pair_is_labelled_right_with_its_level_and_each_side_graded_on_itself():
    item = general_tasks.generate(1, seed=4, difficulty=1)[0]
    empty_ish = "ok"  # covers nothing: gold score 0
    row = gold_label(_pair("p0", empty_ish, item["reference"]), _prompt(item), item["gold"],
                     GoldNoise(temperature=0.0, jitter=0.0))
    validate_row("preference", row)
    assert row["chosen"][0]["content"] == item["reference"] and row["level"] == 3  # gap 1.0
    assert row["grades_chosen"] == {"instruction_following": 2, "verbosity": 2, "truthfulness": 2, "harmlessness": 2}
    assert row["grades_rejected"]["instruction_following"] == 0 and row["annotator"] == "gold-oracle"


def test_choices_follow_the_gold_gap_at_the_bradley_terry_rate():
    item = summarize_tasks.generate(1, seed=2, difficulty=0)[0]
    gold = item["gold"]
    rub = rubric("summarize")
    good = item["reference"]
    half = good.split(";")[0]  # fewer facts: a lower gold score
    ga, gb = rub.gold_score(good, gold)["score"], rub.gold_score(half, gold)["score"]
    assert ga > gb
    noise = GoldNoise(temperature=0.5, jitter=0.0, seed=1)
    wins = sum(gold_label(_pair(f"p{i}", good, half), _prompt(item), gold, noise)["chosen"][0]["content"] == good
               for i in range(2000))
    expected = prefer_probability(ga, gb, 0.5)
    assert abs(wins / 2000 - expected) < 0.035  # ~3.5 standard errors


def test_labels_are_seeded_per_pair_and_jitter_moves_levels_by_one():
    item = general_tasks.generate(1, seed=7, difficulty=0)[0]
    noise = GoldNoise(temperature=0.3, jitter=1.0, seed=3)
    pair = _pair("p9", item["reference"], "Hi")
    first = gold_label(pair, _prompt(item), item["gold"], noise)
    assert gold_label(pair, _prompt(item), item["gold"], noise) == first
    assert first["level"] == 2  # the gap's level 3 can only move inward


def test_a_domain_without_a_rubric_is_one_line():
    with pytest.raises(UserError, match="no gold rubric for domain 'math'"):
        rubric("math")
