import json
import random
import re
import threading
from fractions import Fraction

import pytest

from synth import math_tasks as m

DIMENSIONS = {"instruction_following", "verbosity", "truthfulness", "harmlessness"}


@pytest.fixture(scope="module")
def items():
    return [it for d in range(m.MAX_DIFFICULTY + 1) for it in m.generate(100, seed=7 + d, difficulty=d)]


def test_items_follow_the_contract(items):
    assert len(items) == 400
    for it in items:
        assert set(it) == {"prompt", "domain", "verifier", "source", "reference", "identity"}
        assert it["domain"] == "math" and it["prompt"][-1]["role"] == "user"
        assert it["source"].startswith("synth/math/")
        assert json.loads(json.dumps(it)) == it
        assert it["reference"].split("\n")[-1] == f"Answer: {it['verifier']['answer']}"
        assert len(it["reference"].split()) < 80


def test_every_reference_verifies(items):
    assert all(m.verify(it["reference"], it["verifier"]) == 1.0 for it in items)


def test_sources_cover_all_types_and_transforms(items):
    types = {it["source"].split("/")[2] for it in items}
    transforms = {it["source"].split("/")[3] for it in items}
    assert types == set(m.TYPES) and len(types) >= 8
    assert transforms == set(m.TRANSFORMS)


def test_difficulty_zero_is_small_add_sub():
    for it in m.generate(200, seed=3, difficulty=0):
        assert it["source"].split("/")[2] in {"add", "sub"}
        question = it["prompt"][0]["content"].split("If we know")[0]
        assert all(int(x) < 100 for x in re.findall(r"\d+", question))


def test_corruptions_are_worse_and_well_formed(items):
    kinds = set()
    for i, it in enumerate(items):
        ref = m.verify(it["reference"], it["verifier"])
        for c in m.corrupt(it, random.Random(i)):
            kinds.add(c["kind"])
            assert set(c["grades"]) == DIMENSIONS and c["level"] in (0, 1, 2, 3)
            score = m.verify(c["completion"], it["verifier"])
            if c["verifiable"]:
                assert score < ref, (c, it)
            else:
                assert c["grades"]["verbosity"] < 2 and score == ref
    assert {"off_by_small", "wrong_operation", "arithmetic_slip", "missing_answer_line", "padded",
            "truncated"} <= kinds


def test_wrong_answers_grade_truthfulness_zero(items):
    for c in m.corrupt(items[0], random.Random(0)):
        if c["kind"] in ("off_by_small", "wrong_operation", "arithmetic_slip"):
            assert c["grades"]["truthfulness"] == 0 and c["level"] >= 2
    assert m.reference_grades(items[0]) == {d: 2 for d in DIMENSIONS}


def test_determinism():
    assert m.generate(50, seed=1) == m.generate(50, seed=1)
    assert m.generate(50, seed=1) != m.generate(50, seed=2)
    assert m.generate(20, seed=1, difficulty=2) != m.generate(20, seed=1, difficulty=1)


@pytest.mark.parametrize("args", [(0, 1, 1), (-3, 1, 1), (5, 1, -1), (5, 1, m.MAX_DIFFICULTY + 1), (5, 1, "hard")])
def test_bad_arguments_raise(args):
    n, seed, difficulty = args
    with pytest.raises(ValueError):
        m.generate(n, seed, difficulty)


@pytest.mark.parametrize("text,gold,expected", [
    ("so the total is\nAnswer: 1,000", "1000", 1.0),
    ("Answer: 12.50", "12.5", 1.0),
    ("Answer: 3/4", "0.75", 1.0),
    ("Answer: 0.75.", "3/4", 1.0),
    ("Answer: $1,250", "1250", 1.0),
    ("Answer: x = 39", "39", 1.0),
    ("Answer: -4", "-4", 1.0),
    ("Answer: \\frac{3}{4}", "0.75", 1.0),
    ("Answer: 13\nAnswer: 12", "12", 1.0),
    ("Answer: 12\nAnswer: 13", "12", 0.0),
    ("Answer: 91", "92", 0.0),
    ("34 + 57 = 91", "91", 0.5),
    ("34 + 57 = 91", "90", 0.0),
    ("Answer:", "5", 0.0),
    ("garbage !!! \\frac{", "5", 0.0),
    ("", "5", 0.0),
    ("Answer: 1/0", "5", 0.0),
    ("Answer: " + "9" * 10000, "5", 0.0),
    ("Answer: 10^{10^{10}}", "5", 0.0),
])
def test_verify_answer_forms(text, gold, expected):
    assert m.verify(text, {"answer": gold}) == expected


def test_verify_never_raises_on_odd_input():
    for bad in [None, 42, ["Answer: 1"], {"answer": 1}]:
        assert m.verify(bad, {"answer": "1"}) == 0.0
    assert m.verify("Answer: 1", {}) == 0.0
    assert m.verify("Answer: 1", {"answer": "not a number"}) == 0.0


def test_latex_answer_works_off_the_main_thread():
    out = []
    thread = threading.Thread(target=lambda: out.append(m.verify("Answer: \\frac{1}{4}", {"answer": "0.25"})))
    thread.start()
    thread.join(timeout=30)
    assert out == [1.0]


def test_reward_signature(items):
    it = items[0]
    prompts = [it["prompt"]] * 5
    completions = [it["reference"], [{"role": "assistant", "content": it["reference"]}], "Answer: -1",
                   it["reference"], it["reference"]]
    verifiers = [it["verifier"], json.dumps(it["verifier"]), it["verifier"], it["verifier"], "{not json"]
    domains = ["math", "math", "math", "code", "math"]
    assert m.reward(prompts, completions, verifier=verifiers, domain=domains) == [1.0, 1.0, 0.0, None, 0.0]


def test_fmt_is_exact():
    assert [m.fmt(Fraction(x)) for x in ("91", "25/2", "-1/8", "1/3", "3/40")] == ["91", "12.5", "-0.125", "1/3", "0.075"]


# ---- the transformations ----

def _numbers_exact(value: Fraction) -> bool:
    den = value.denominator
    while den % 2 == 0 or den % 5 == 0:
        den //= 2 if den % 2 == 0 else 5
    return den == 1


@pytest.mark.parametrize("ptype", sorted(m.TYPES))
def test_rephrase_and_breadth_keep_the_answer(ptype):
    rng = random.Random(ptype)
    for _ in range(30):
        seed = m.seed_problem(rng, 2, ptype)
        answer = m.solve(seed)[0]
        assert isinstance(answer, Fraction) and _numbers_exact(answer)
        for transform in (m.rephrase, m.evolve_breadth):
            new = transform(seed, rng)
            assert m.render(new) != m.render(seed)
            assert m.solve(new)[0] == answer
        assert m.evolve_breadth(seed, rng)["setting"] != seed["setting"]


@pytest.mark.parametrize("ptype", sorted(m.TYPES))
def test_depth_adds_a_step_and_recomputes(ptype):
    rng = random.Random(ptype)
    for _ in range(30):
        seed = m.seed_problem(rng, 1, ptype)
        answer = m.solve(seed)[0]
        deeper = m.evolve_depth(seed, rng)
        op, c = deeper["steps"][-1]
        assert m.solve(deeper)[0] == m.OPS[m.STEPS[op][1]](answer, Fraction(c))
        assert m.render(deeper).startswith(m.render(seed)) and m.render(deeper) != m.render(seed)
        assert len(m.solve(deeper)[1]) == len(m.solve(seed)[1]) + 1


@pytest.mark.parametrize("ptype", sorted(t for t in m.TYPES if m.TYPES[t]["unknowns"]))
def test_reversion_asks_for_a_statement_number(ptype):
    rng = random.Random(ptype)
    for _ in range(30):
        seed = m.seed_problem(rng, 2, ptype)
        rev = m.reversion(seed, rng)
        var = rev["unknown"]
        answer, lines = m.solve(rev)
        assert answer == Fraction(seed["params"][var]) and _numbers_exact(answer)
        text = m.render(rev)
        assert "unknown variable x" in text and m.fmt(m.solve(seed)[0]) in text
        assert lines[-1].endswith(f"= {m.fmt(answer)}")


def test_reversion_rejects_types_without_an_affine_number():
    with pytest.raises(ValueError):
        m.reversion(m.seed_problem(random.Random(0), 1, "remainder"), random.Random(0))


# ---- problem identity (what the train/dev/test split hashes) ----

def _problem(ptype, params, setting="plain", unknown=None):
    return {"type": ptype, "setting": setting, "tpl": 0, "params": {"name": "Ana", **params}, "steps": [],
            "unknown": unknown}


def test_identity_is_the_canonical_working(items):
    for it in items:
        assert it["identity"].startswith("math:") and m.problem_identity(it) == it["identity"]
    add = m.make_item(_problem("add", {"a": 57, "b": 34}), "seed")
    assert add["identity"] == "math:34 + 57 = 91" == m.op_identity(57, "+", 34) == m.op_identity(34, "+", 57)
    word = m.make_item(_problem("word", {"a": 5, "b": 3, "c": 4, "d": 2}, setting="bakery"), "seed")
    assert word["reference"].startswith("3 * 4 = 12\n5 + 12 = 17\n")  # numeric order: 5 before 12
    assert word["identity"] == "math:3 * 4 = 12; 5 + 12 = 17; 17 - 2 = 15"
    assert m.op_identity(57, "-", 34) == "math:57 - 34 = 23" != m.op_identity(34, "-", 57)
    assert m.op_identity(9, "*", 12) == "math:9 * 12 = 108" == m.op_identity(12, "*", 9)
    with pytest.raises(ValueError):
        m.op_identity(8, "/", 2)


def test_identity_is_stable_for_a_seed():
    first = [it["identity"] for it in m.generate(200, seed=5, difficulty=1)]
    assert first == [it["identity"] for it in m.generate(200, seed=5, difficulty=1)]
    assert first != [it["identity"] for it in m.generate(200, seed=6, difficulty=1)]


@pytest.mark.parametrize("ptype", sorted(m.TYPES))
def test_paraphrases_share_the_identity_and_reversion_has_its_own(ptype):
    rng = random.Random(ptype)
    for d in [d for d in range(m.MAX_DIFFICULTY + 1) if ptype in m._types_for(d)]:
        seed = m.seed_problem(rng, d, ptype)
        ident = m.make_item(seed, "seed")["identity"]
        renamed = {**seed, "params": {**seed["params"], "name": "Zed"}}
        for new in (m.rephrase(seed, rng), m.evolve_breadth(seed, rng), renamed):
            item = m.make_item(new, "rephrase")
            assert item["identity"] == ident
        assert m.make_item(m.evolve_depth(seed, rng), "depth")["identity"] != ident
        if m.TYPES[ptype]["unknowns"]:
            assert m.make_item(m.reversion(seed, rng), "reversion")["identity"] != ident


def test_op_identity_matches_difficulty_zero_problems():
    checked = 0
    for it in m.generate(500, seed=9, difficulty=0):
        ptype, transform = it["source"].split("/")[2:]
        if transform == "reversion":
            continue
        a, b = sorted((int(x) for x in re.findall(r"\d+", it["prompt"][0]["content"])), reverse=True)
        sym = {"add": "+", "sub": "-"}[ptype]
        assert m.problem_identity(it) == m.op_identity(a, sym, b) == it["identity"]
        if sym == "+":
            assert m.op_identity(b, sym, a) == it["identity"]
        checked += 1
    assert checked > 300


@pytest.mark.parametrize("difficulty", [0, 1])
def test_identical_references_share_the_identity(difficulty):
    items = m.generate(3000, seed=21, difficulty=difficulty)
    by_reference = {}
    for it in items:
        by_reference.setdefault(it["reference"], set()).add(it["identity"])
    assert all(len(ids) == 1 for ids in by_reference.values())
    distinct = len({it["identity"] for it in items})
    print(f"math difficulty {difficulty}: {distinct} distinct identities among 3000 items")
    assert distinct >= 1500
