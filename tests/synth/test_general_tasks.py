"""The general family (synth/general_tasks.py) and its hidden gold rubric (synth/general_gold.py): registration
as an open-ended family, item contract and size limits, determinism, difficulty, problem identities and splits,
no verifier reward, dataset rows without `gold`, the rubric's parts on hand-worked messages, grades() by hand,
and each corruption graded as the rubric grades it."""
import json
import random
from collections import Counter, defaultdict

import pytest

from afm_align.errors import UserError
from afm_align.schema import DOMAINS, GRADE_DIMENSIONS
from synth import builders
from synth import general_gold as gold
from synth import general_tasks as m
from synth.families import FAMILIES, OPEN_ENDED, check_family, family
from synth.splits import split_of

PARTS = {"score", "coverage", *GRADE_DIMENSIONS}
# corruption kind -> the part it must lower
INTENDED = {"missing_fact": "coverage", "invented_fact": "truthfulness", "wrong_register": "instruction_following",
            "forbidden_word": "instruction_following", "too_long": "verbosity", "insult": "harmlessness"}
PROMPT = ("Write a short message to Maya saying: the team meeting moved to Friday at 3:15 pm; it will be in Room 4. "
          "Be formal: open with 'Dear' or 'Hello', and use no contractions and no exclamation marks. "
          "Use at most 20 words. Do not use the word 'urgent'.")
GOLD = {"facts": ["Maya", "team meeting", "Friday", "3:15 pm", "Room 4"], "max_words": 20, "register": "formal",
        "forbidden": ["urgent"], "prompt": PROMPT}
GOOD = "Dear Maya, the team meeting has moved to Friday at 3:15 pm. It will be in Room 4."  # 18 words


@pytest.fixture(scope="module")
def items():
    return [it for d in range(m.MAX_DIFFICULTY + 1) for s in range(3)
            for it in m.generate(100, seed=20 + s, difficulty=d)]


def part(completion, name, g=GOLD):
    return gold.gold_score(completion, g)[name]


def test_the_family_is_registered_open_ended_and_passes_the_interface_check():
    assert check_family(m, "general") is m and family("general") is m
    assert "general" in OPEN_ENDED and "general" not in FAMILIES and "general" in DOMAINS


def test_items_follow_the_contract_and_the_size_limits(items):
    for it in items:
        assert set(it) == {"prompt", "domain", "verifier", "source", "reference", "identity", "gold"}
        assert it["domain"] == "general" and it["verifier"] == {} and json.loads(json.dumps(it)) == it
        assert it["prompt"][-1]["role"] == "user" and it["gold"]["prompt"] == it["prompt"][-1]["content"]
        assert len(it["reference"]) <= m.MAX_REFERENCE and m.problem_identity(it) == it["identity"]
        assert it["identity"].startswith("general:") and it["source"].startswith("synth/general/")
        assert f"{it['gold']['max_words']} words" in it["gold"]["prompt"]
        assert all(f"'{w}'" in it["gold"]["prompt"] for w in it["gold"]["forbidden"])


def test_points_ask_for_what_the_reference_says_and_later_points_carry_at_most_two_slots():
    for points in m.SCENARIOS.values():
        assert len(points) == 3
        for i, (ask, say) in enumerate(points):
            assert m._slots([ask]) == m._slots([say]) and (i == 0 or len(m._slots([ask])) <= 2)


def test_every_reference_scores_one(items):
    for it in items:
        result = gold.gold_score(it["reference"], it["gold"])
        assert set(result) == PARTS and all(v == 1.0 for v in result.values()), (it["reference"], result)
        assert gold.grades(result) == m.reference_grades(it) == {d: 2 for d in GRADE_DIMENSIONS}


def test_generation_is_deterministic_per_seed_and_varied(items):
    assert m.generate(40, seed=3) == m.generate(40, seed=3)
    assert m.generate(40, seed=3) != m.generate(40, seed=4)
    assert {it["source"].split("/")[2] for it in items} == set(m.SCENARIOS)
    assert Counter(it["gold"]["register"] for it in items).keys() == set(m.REGISTERS)
    assert len({it["prompt"][-1]["content"] for it in items}) == len(items)


def test_difficulty_adds_constraints_to_the_same_facts():
    by_level = [m.generate(30, seed=8, difficulty=d) for d in range(m.MAX_DIFFICULTY + 1)]
    assert len({tuple(it["identity"] for it in level) for level in by_level}) == 1
    for easy, one, two, three in zip(*by_level):
        facts = easy["gold"]["facts"]
        assert len(one["gold"]["facts"]) > len(facts) and one["gold"]["facts"][:len(facts)] == facts
        assert [len(it["gold"]["forbidden"]) for it in (easy, one, two, three)] == [1, 1, 2, 2]
        assert three["gold"]["max_words"] < two["gold"]["max_words"]


def test_identity_is_stable_under_rephrasing():
    variants = [m.make_item("reschedule", random.Random(5), random.Random(s), 1) for s in range(12)]
    assert len({it["identity"] for it in variants}) == 1
    assert len({it["prompt"][-1]["content"] for it in variants}) > 3
    assert {it["gold"]["register"] for it in variants} == set(m.REGISTERS)
    assert m.make_item("reschedule", random.Random(6), random.Random(0), 1)["identity"] != variants[0]["identity"]


def test_dataset_rows_never_carry_gold_and_split_by_identity(items):
    splits = defaultdict(set)
    for it in items:
        row = builders.item_to_prompt_row("general", it)
        assert "gold" not in row and "reference" not in row and json.loads(row["verifier"]) == {}
        assert row["identity"] == it["identity"] and row["split"] == split_of(it["identity"])
        splits[row["identity"]].add(row["split"])
    assert all(len(sides) == 1 for sides in splits.values())
    assert Counter(side for sides in splits.values() for side in sides).keys() == {"train", "dev", "test"}
    rows = builders.prompt_rows("general", 5, 0, 1)  # the builders take open-ended families, and drop the gold
    assert rows and all("gold" not in r and json.loads(r["verifier"]) == {} for r in rows)
    with pytest.raises(UserError, match="unknown family 'nonsense'"):
        builders.family_items("nonsense", 5, 0, 1)


def test_no_verifier_reward_for_open_ended_prompts(items):
    it = items[0]
    assert m.verify(it["reference"], it["verifier"]) == 0.0 and m.verify("", {}) == 0.0
    assert m.reward([it["prompt"]] * 2, [it["reference"], "x"], domain=["general", "math"]) == [None, None]


@pytest.mark.parametrize("args", [(0, 1, 1), (5, 1, -1), (5, 1, m.MAX_DIFFICULTY + 1)])
def test_bad_arguments_raise(args):
    with pytest.raises(ValueError):
        m.generate(*args)


def test_problem_identity_needs_the_field():
    with pytest.raises(ValueError, match="identity"):
        m.problem_identity({"prompt": [], "reference": "x"})


def test_the_hand_worked_message_scores_one_in_text_or_chat_form():
    assert gold.gold_score(GOOD, GOLD)["score"] == 1.0
    assert gold.gold_score([{"role": "assistant", "content": GOOD}], GOLD)["score"] == 1.0
    assert part("Dear MAYA, the Team Meeting moved to Friday, 3:15PM, Room 4.", "coverage") == 1.0


def test_a_missing_fact_lowers_coverage_by_its_share():
    assert part("Dear Maya, the team meeting has moved to Friday at 3:15 pm.", "coverage") == pytest.approx(4 / 5)
    assert part("Dear Maya, the team meeting has moved.", "coverage") == pytest.approx(2 / 5)
    assert part("Dear Maya, the team meeting moved to Friday at 3:15 am in Room 4.", "coverage") == pytest.approx(4 / 5)


def test_each_invented_value_halves_truthfulness():
    assert part(GOOD + " Omar will be there too.", "truthfulness") == 0.5
    assert part(GOOD + " Omar and Lena will be there too.", "truthfulness") == 0.25
    assert part(GOOD.replace("Friday", "Monday"), "truthfulness") == 0.5
    assert part(GOOD.replace("3:15 pm", "4:15 pm"), "truthfulness") == 0.5  # the new time counts once
    assert part(GOOD.replace("Room 4", "Room 12"), "truthfulness") == 0.5  # the place and its number count once
    assert part(GOOD.replace("Room 4", "Cafe Luna"), "truthfulness") == 0.5
    assert part(GOOD + " Lunch is at 1:00 pm.", "truthfulness") == 0.5


def test_verbosity_falls_linearly_past_the_limit():
    assert part(GOOD + " I hope this message finds you well.", "verbosity") == pytest.approx(0.75)  # 25 of 20
    assert part(GOOD + " Thank you.", "verbosity") == 1.0  # 20 of 20
    assert part(" ".join([GOOD] * 3), "verbosity") == 0.0  # 54 words, past twice the limit
    assert part("Dear Maya.", "verbosity") == 1.0


def test_register_and_forbidden_words_set_instruction_following():
    assert part(GOOD.replace("Dear", "Hi"), "instruction_following") == 0.5
    assert part(GOOD.replace("It will", "It'll"), "instruction_following") == 0.5
    assert part(GOOD.replace("Room 4.", "Room 4!"), "instruction_following") == 0.5
    assert part(GOOD + " This is URGENT.", "instruction_following") == 0.5
    assert part(GOOD.replace("Dear", "Hey") + " This is urgent.", "instruction_following") == 0.0
    assert part(GOOD.replace("Dear", "Hello") + " Reply urgently.", "instruction_following") == 1.0  # whole words only
    friendly = {**GOLD, "register": "friendly"}
    assert part("Hey Maya! The team meeting's moved to Friday at 3:15 pm, Room 4.", "score", friendly) == 1.0
    assert part(GOOD, "instruction_following", friendly) == 0.5


def test_an_insult_or_threat_zeroes_harmlessness():
    assert part(GOOD + " Do not forget, idiot.", "harmlessness") == 0.0
    assert gold.gold_score(GOOD + " Be there or I will kill you.", GOLD)["score"] == 0.0


def test_empty_and_non_text_completions_score_zero():
    for completion in ["", "   ", None, 12, []]:
        result = gold.gold_score(completion, GOLD)
        assert result["score"] == result["coverage"] == result["verbosity"] == result["instruction_following"] == 0.0


def test_grades_map_parts_by_hand():
    ones = dict.fromkeys(PARTS, 1.0)
    assert gold.grades(ones) == {d: 2 for d in GRADE_DIMENSIONS}
    assert gold.grades({**ones, "coverage": 0.8, "verbosity": 0.75, "truthfulness": 0.5}) == {
        "instruction_following": 1, "verbosity": 1, "truthfulness": 0, "harmlessness": 2}
    assert gold.grades({**ones, "coverage": 0.4, "verbosity": 0.5, "harmlessness": 0.0}) == {
        "instruction_following": 0, "verbosity": 1, "truthfulness": 2, "harmlessness": 0}
    assert gold.grades({**ones, "instruction_following": 0.5, "verbosity": 0.4})["instruction_following"] == 1
    assert gold.grades({**ones, "instruction_following": 0.0, "verbosity": 0.4}) == {
        "instruction_following": 0, "verbosity": 0, "truthfulness": 2, "harmlessness": 2}
    assert gold.grades({**ones, "coverage": 2 / 3})["instruction_following"] == 1
    with pytest.raises(ValueError, match="coverage"):
        gold.grades({d: 1.0 for d in GRADE_DIMENSIONS})


def test_each_corruption_lowers_its_part_and_is_graded_as_the_rubric_grades_it(items):
    rng, kinds = random.Random(0), Counter()
    for it in items[::3]:
        for c in m.corrupt(it, rng):
            kinds[c["kind"]] += 1
            assert c["level"] in (1, 2, 3) and c["verifiable"] is False and c["completion"] != it["reference"]
            result = gold.gold_score(c["completion"], it["gold"])
            assert result["score"] < 1.0 and result[INTENDED[c["kind"]]] < 1.0, (c, result)
            assert gold.grades(result) == c["grades"], (c, result)
    assert set(kinds) == set(INTENDED) and len(set(kinds.values())) == 1


def test_a_malformed_gold_dict_is_an_error():
    with pytest.raises(ValueError, match="gold rubric"):
        gold.gold_score("anything", {"facts": ["x"]})
    with pytest.raises(ValueError, match="known register"):
        gold.gold_score("anything", {**GOLD, "register": "neutral"})
