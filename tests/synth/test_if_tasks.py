import json
import random

import pytest

from synth import if_tasks as m

DIMENSIONS = {"instruction_following", "verbosity", "truthfulness", "harmlessness"}


@pytest.fixture(scope="module")
def items():
    return [it for d in range(m.MAX_DIFFICULTY + 1) for it in m.generate(100, seed=11 + d, difficulty=d)]


def test_items_follow_the_contract(items):
    for it in items:
        assert set(it) == {"prompt", "domain", "verifier", "source", "reference", "identity"}
        assert it["domain"] == "if" and it["prompt"][-1]["role"] == "user"
        assert it["source"].startswith("synth/if/")
        assert json.loads(json.dumps(it)) == it
        assert len(it["reference"].split()) < 80


def test_every_reference_verifies(items):
    assert all(m.verify(it["reference"], it["verifier"]) == 1.0 for it in items)


def test_constraint_counts_grow_with_difficulty():
    for d, (lo, hi) in m.N_CONSTRAINTS.items():
        counts = [len(it["verifier"]["constraints"]) for it in m.generate(60, seed=d, difficulty=d)]
        assert lo <= min(counts) and max(counts) <= hi


def test_all_constraint_types_are_used_and_conflicts_avoided(items):
    seen = set()
    for it in items:
        types = {c["type"] for c in it["verifier"]["constraints"]}
        seen |= types
        assert len(types) == len(it["verifier"]["constraints"])
        if "json" in types:
            assert not types & {"no_commas", "lowercase", "uppercase", "ends_with", "starts_with"}
        if "bullets" in types:
            assert not types & {"ends_with", "starts_with"}
        assert sum(t in m.STRUCTURES for t in types) <= 1
    assert seen == set(m.CHECKS)


def test_corruptions_are_worse_and_well_formed(items):
    for i, it in enumerate(items):
        corruptions = m.corrupt(it, random.Random(i))
        assert len(corruptions) >= len(it["verifier"]["constraints"])
        for c in corruptions:
            assert set(c["grades"]) == DIMENSIONS and c["level"] in (0, 1, 2, 3)
            score = m.verify(c["completion"], it["verifier"])
            if c["verifiable"]:
                assert score < 1.0, (c, it)
            else:
                assert c["grades"]["verbosity"] < 2 and score == 1.0


def test_padding_beyond_the_word_bound_grades_verbosity_zero(items):
    found = 0
    for it in items:
        for c in m.corrupt(it, random.Random(0)):
            if c["kind"] == "violate_max_words":
                found += 1
                bound = next(x["n"] for x in it["verifier"]["constraints"] if x["type"] == "max_words")
                assert len(c["completion"].split()) > bound and c["grades"]["verbosity"] == 0
    assert found > 0


@pytest.mark.parametrize("kind,constraint,good,bad", [
    ("max_words", {"n": 3}, "one two three", "one two three four"),
    ("min_words", {"n": 3}, "one two three", "one two"),
    ("sentences", {"n": 2}, "Hi there. How are you?", "Hi there. How are you? Fine."),
    ("paragraphs", {"n": 2}, "One.\n\nTwo.", "One.\nTwo."),
    ("bullets", {"n": 2}, "- a\n- b", "- a\n- b\n- c"),
    ("include", {"words": ["budget"]}, "A small Budget.", "A small budgeting plan."),
    ("exclude", {"words": ["very"]}, "It is every day.", "It is Very good."),
    ("no_commas", {}, "No commas here.", "Well, a comma."),
    ("lowercase", {}, "all small.", "Not all small."),
    ("uppercase", {}, "ALL BIG.", "ALL BIG but."),
    ("ends_with", {"phrase": "That is all."}, "Text. that is all.  ", "That is all. More."),
    ("starts_with", {"word": "Today"}, "- Today we go.", "Yesterday we went."),
    ("json", {"keys": ["a", "b"]}, '```json\n{"a": 1, "b": 2}\n```', '{"a": 1}'),
])
def test_checks_on_hand_examples(kind, constraint, good, bad):
    verifier = {"constraints": [{"type": kind, **constraint}]}
    assert m.verify(good, verifier) == 1.0
    assert m.verify(bad, verifier) == 0.0


def test_verify_is_a_fraction_and_never_raises():
    verifier = {"constraints": [{"type": "no_commas"}, {"type": "json", "keys": ["a"]}]}
    assert m.verify("plain text", verifier) == 0.5
    assert m.verify("[" * 100000, verifier) == 0.5
    assert m.verify("x", {"constraints": [{"type": "unknown"}]}) == 0.0
    for bad in [None, 3, ""]:
        assert m.verify(bad, verifier) == 0.0
    assert m.verify("text", {}) == 0.0 and m.verify("text", {"constraints": []}) == 0.0


def test_determinism():
    assert m.generate(50, seed=1) == m.generate(50, seed=1)
    assert m.generate(50, seed=1) != m.generate(50, seed=2)


@pytest.mark.parametrize("args", [(0, 1, 1), (5, 1, -1), (5, 1, m.MAX_DIFFICULTY + 1)])
def test_bad_arguments_raise(args):
    with pytest.raises(ValueError):
        m.generate(*args)


def test_reward_signature(items):
    it = items[0]
    completions = [it["reference"], [{"role": "assistant", "content": it["reference"]}], it["reference"], ""]
    verifiers = [it["verifier"], json.dumps(it["verifier"]), it["verifier"], it["verifier"]]
    out = m.reward([it["prompt"]] * 4, completions, verifier=verifiers, domain=["if", "if", "math", "if"])
    assert out == [1.0, 1.0, None, 0.0]
    assert m.reference_grades(it) == {d: 2 for d in DIMENSIONS}


# ---- problem identity (what the train/dev/test split hashes) ----

def test_identity_is_on_every_item_and_stable_for_a_seed(items):
    for it in items:
        assert it["identity"] == m.problem_identity(it) and it["identity"].startswith("if:")
    first = [it["identity"] for it in m.generate(200, seed=3, difficulty=1)]
    assert first == [it["identity"] for it in m.generate(200, seed=3, difficulty=1)]
    assert first != [it["identity"] for it in m.generate(200, seed=4, difficulty=1)]


def test_identity_follows_constraints_and_topic_template_not_the_form():
    def identity(topic, offset, constraints):
        return m.problem_identity({"reference": m.build(m._spec(topic, offset, constraints))})
    plain = identity("gardening", 0, [{"type": "no_commas"}])
    # constraints that leave the plain text as it is accept the very same reference: one problem
    assert identity("gardening", 0, [{"type": "exclude", "words": ["very"]}]) == plain
    assert identity("gardening", 0, [{"type": "lowercase"}]) != plain
    assert identity("gardening", 1, [{"type": "no_commas"}]) != plain
    assert identity("the ocean", 0, [{"type": "no_commas"}]) != plain
    assert identity("gardening", 0, [{"type": "starts_with", "word": "Today"}]) != \
        identity("gardening", 0, [{"type": "starts_with", "word": "Often"}])
    # the same constraints and topic template asked in another form ("short note", ...) is the same problem
    groups = {}
    for it in m.generate(3000, seed=5, difficulty=0):
        key = json.dumps(it["verifier"], sort_keys=True)
        groups.setdefault(key, []).append(it)
    forms = [g for g in groups.values() if len({x["prompt"][0]["content"] for x in g}) > 1]
    assert forms and all(len({x["identity"] for x in g}) == 1 for g in forms)


@pytest.mark.parametrize("difficulty", [0, 1])
def test_identical_references_share_the_identity(difficulty):
    items = m.generate(3000, seed=21, difficulty=difficulty)
    by_reference = {}
    for it in items:
        by_reference.setdefault(it["reference"], set()).add(it["identity"])
    assert all(len(ids) == 1 for ids in by_reference.values())
    assert all(m.verify(it["reference"], it["verifier"]) == 1.0 for it in items)
    distinct = len({it["identity"] for it in items})
    print(f"if difficulty {difficulty}: {distinct} distinct identities among 3000 items")
    assert distinct >= 1500
