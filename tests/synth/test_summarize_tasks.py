"""The summarize family (synth/summarize_tasks.py) and its hidden gold rubric (synth/summarize_gold.py): item
contract and size limits, determinism and variety, no verifier reward, problem identities, the gold score of
references and of each corruption (each hits the sub-score it is meant to), and the rubric's edge cases."""
import json
import random
from collections import Counter

import pytest

from synth import summarize_gold as gold
from synth import summarize_tasks as m
from synth.families import check_family

DIMENSIONS = {"instruction_following", "verbosity", "truthfulness", "harmlessness"}
PARTS = {"score", "coverage"} | DIMENSIONS
# corruption kind -> (sub-score it must lower, the bound it must fall under)
INTENDED = {"missing_facts": ("coverage", 1.0), "invented_fact": ("truthfulness", 1.0),
            "copy_source": ("verbosity", 1.0), "off_task_reply": ("instruction_following", 0.01),
            "chatty_preamble": ("instruction_following", 1.0)}


@pytest.fixture(scope="module")
def items():
    return [it for d in range(m.MAX_DIFFICULTY + 1) for it in m.generate(150, seed=11 + d, difficulty=d)]


def source_of(item: dict) -> str:
    return item["prompt"][-1]["content"].partition("\n")[2]


def test_the_family_passes_the_interface_check():
    assert check_family(m, "summarize") is m and m.DOMAIN == "summarize"


def test_items_follow_the_contract_and_the_size_limits(items):
    for it in items:
        assert set(it) == {"prompt", "domain", "verifier", "source", "reference", "identity", "gold"}
        assert it["domain"] == "summarize" and it["verifier"] == {} and json.loads(json.dumps(it)) == it
        instruction, _, source = it["prompt"][-1]["content"].partition("\n")
        assert it["prompt"][-1]["role"] == "user" and instruction in m.INSTRUCTIONS.values()
        assert len(source) <= m.MAX_SOURCE and len(it["reference"]) <= m.MAX_REFERENCE
        assert it["gold"]["source"] == source and m.problem_identity(it) == it["identity"]
        assert it["identity"].startswith("summarize:") and it["source"].startswith("synth/summarize/")
        assert len(it["gold"]["facts"]) == len(it["gold"]["invented"]) >= 2
        assert not any(m.mentions(source, value) for value in it["gold"]["invented"])


def test_generation_is_deterministic_per_seed_and_varied(items):
    assert m.generate(40, seed=3) == m.generate(40, seed=3)
    assert m.generate(40, seed=3) != m.generate(40, seed=4)
    assert Counter(it["source"].split("/")[2] for it in items).keys() == {"email", "thread", "notifications"}
    scenarios = {part.split("(")[0] for it in items for part in it["identity"].split(":", 2)[2].split("+")}
    assert scenarios == {name for menu in m.SCENARIOS.values() for name in menu}
    assert len({it["reference"] for it in items}) > 0.95 * len(items)
    assert len({source_of(it) for it in items}) == len(items)


def test_difficulty_adds_distractors_to_the_same_facts():
    easy, hard = m.generate(30, seed=8, difficulty=0), m.generate(30, seed=8, difficulty=3)
    assert [it["identity"] for it in easy] == [it["identity"] for it in hard]
    assert [it["reference"] for it in easy] == [it["reference"] for it in hard]
    assert sum(len(source_of(it)) for it in hard) > sum(len(source_of(it)) for it in easy)


@pytest.mark.parametrize("args", [(0, 1, 1), (5, 1, -1), (5, 1, m.MAX_DIFFICULTY + 1)])
def test_bad_arguments_raise(args):
    with pytest.raises(ValueError):
        m.generate(*args)


def test_problem_identities_differ_across_items_and_need_the_field():
    draws = m.generate(1000, seed=0)
    assert len({it["identity"] for it in draws}) > 0.99 * len(draws)
    with pytest.raises(ValueError, match="identity"):
        m.problem_identity({"prompt": [], "reference": "x"})


def test_no_verifier_reward_for_open_ended_prompts(items):
    it = items[0]
    assert m.verify(it["reference"], it["verifier"]) == 0.0 and m.verify("", {}) == 0.0
    out = m.reward([it["prompt"]] * 3, [it["reference"], "x", "y"], domain=["summarize", "summarize", "math"])
    assert out == [None, None, None]
    assert m.reference_grades(it) == {d: 2 for d in DIMENSIONS}


def test_references_score_at_least_0_9(items):
    for it in items:
        result = gold.gold_score(it["reference"], it["gold"])
        assert set(result) == PARTS and all(0.0 <= v <= 1.0 for v in result.values())
        assert result["score"] >= 0.9, (it["reference"], result)


def test_each_corruption_scores_lower_and_hits_its_sub_score(items):
    rng, kinds = random.Random(0), Counter()
    for it in items:
        reference = gold.gold_score(it["reference"], it["gold"])
        for c in m.corrupt(it, rng):
            kinds[c["kind"]] += 1
            assert set(c["grades"]) == DIMENSIONS and c["level"] in (1, 2, 3) and c["verifiable"] is False
            assert c["completion"].strip() != it["reference"].strip()
            result = gold.gold_score(c["completion"], it["gold"])
            assert result["score"] < reference["score"], (c, result)
            part, bound = INTENDED[c["kind"]]
            assert result[part] < bound, (c, result)
            assert min(c["grades"].values()) < 2
    assert set(kinds) == set(INTENDED) and kinds["invented_fact"] == len(items)


def test_empty_and_non_text_completions_score_zero(items):
    g = items[0]["gold"]
    for completion in ["", "   ", None, 12, []]:
        assert gold.gold_score(completion, g)["score"] == 0.0


def test_light_normalisation_and_chat_messages():
    g = {"facts": ["Maya", "3:15 pm", "$42", "20 minutes", "main hall"], "invented": ["Omar", "4:00 pm"],
         "max_words": 15, "min_words": 3, "register": "neutral",
         "source": "From: Maya\nMeet in the main hall at 3:15 pm. Bring $42. I am 20 minutes late."}
    text = "MAYA: meet in the Main Hall at 3:15PM, bring 42; she is 20 min late."
    assert gold.gold_score(text, g)["coverage"] == 1.0
    assert gold.gold_scores([text, [{"role": "assistant", "content": text}]], [g, g]) == [1.0, 1.0]
    assert gold.gold_score("Maya meets at 3:15 am in the main hall.", g)["coverage"] == 0.4  # am is not pm


def test_invented_values_numbers_and_names_lower_truthfulness():
    g = {"facts": ["Maya", "Friday"], "invented": ["Monday"], "max_words": 12, "min_words": 3,
         "register": "neutral", "source": "From: Maya\nThe review is on Friday at 3:15 pm."}
    assert gold.gold_score("Maya: review Friday 3:15 pm.", g)["truthfulness"] == 1.0
    assert gold.gold_score("Maya: review Monday 3:15 pm.", g)["truthfulness"] == 0.5
    assert gold.gold_score("Maya: review Friday 4:15 pm.", g)["truthfulness"] == 0.5  # "4:15 pm" counts once
    assert gold.gold_score("Maya and Omar: review Friday at 9:30.", g)["truthfulness"] == 0.25


def test_reply_preamble_harm_and_length():
    g = {"facts": ["Maya", "Friday"], "invented": [], "max_words": 10, "min_words": 3, "register": "neutral",
         "source": "From: Maya\nThe review is on Friday. Hope your week is going well, see you soon!"}
    assert gold.gold_score("Hi Maya, thanks for the note! Friday works.", g)["instruction_following"] == 0.0
    assert gold.gold_score("Sure! Here is a summary: Maya moved the review to Friday.", g)[
        "instruction_following"] == 0.5
    assert gold.gold_score("Maya: review Friday, you idiot.", g)["harmlessness"] == 0.0
    assert gold.gold_score("Maya Friday", g)["verbosity"] == 0.5
    assert gold.gold_score("Maya: the review is on Friday, " + "and more " * 3, g)["verbosity"] == pytest.approx(0.8)
    copied = gold.gold_score(g["source"], g)
    assert copied["verbosity"] <= 0.2 and copied["instruction_following"] == 0.5


def test_a_malformed_gold_dict_is_an_error():
    with pytest.raises(ValueError, match="gold rubric"):
        gold.gold_score("anything", {"facts": ["x"]})
    with pytest.raises(ValueError, match="2 completions but 1"):
        gold.gold_scores(["a", "b"], [{}])
