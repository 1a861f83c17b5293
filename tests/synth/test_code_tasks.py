"""Tests of the code family: generation (hand-written and procedural problems, problem identities), the
sandboxed verifier (single and batched), reward, corruptions, and execution-based rejection sampling.
Sandbox work is batched through verify_many to stay fast."""
import json
import random
from collections import Counter
import time
from pathlib import Path

import pytest

import synth
from afm_align.schema import validate_row
from synth import code_tasks as ct
from synth import code_problems as cp
from synth.code_problems import BUG_KINDS, PROBLEMS, TEMPLATES, TOPICS

REPO = Path(__file__).resolve().parents[2]
GOOD_CODE = "def add(a, b):\n    return a + b\n"
ADD_TESTS = ["assert add(1, 2) == 3", "assert add(0, 0) == 0", "assert add(-1, 5) == 4", "assert add(2, 2) == 4"]
ADD_VERIFIER = {"entry_point": "add", "tests": ADD_TESTS, "timeout_s": 0.5}


@pytest.fixture(scope="module")
def items():
    return [item for d in range(ct.MAX_DIFFICULTY + 1) for item in ct.generate(80, 11 + d, d)]


@pytest.fixture(scope="module")
def corruptions(items):
    rng = random.Random(0)
    return [(item, c) for item in items for c in ct.corrupt(item, rng)]


def test_synth_package_is_this_repo():
    assert Path(synth.__file__).resolve().parent == REPO / "synth"


def test_handwritten_bank_covers_topics_with_bugs():
    assert len(TOPICS) >= 20
    assert len({p.name for p in PROBLEMS}) == len(PROBLEMS)
    assert all(p.bugs and set(p.bugs) <= set(BUG_KINDS) for p in PROBLEMS)
    assert {p.level for p in PROBLEMS} == {0, 1, 2}
    assert sum(p.level == 0 for p in PROBLEMS) >= 10


def test_items_follow_the_prompt_contract(items):
    for i, item in enumerate(items):
        validate_row("prompt", {**item, "id": str(i), "split": "train"})
        assert item["domain"] == "code" and item["prompt"][-1]["role"] == "user"
        name = item["verifier"]["entry_point"]
        assert f"`{name}(" in item["prompt"][-1]["content"] and "```python" in item["prompt"][-1]["content"]
        assert all(t.startswith(f"assert {name}(") for t in item["verifier"]["tests"])
        assert len(item["verifier"]["tests"]) >= 4
        assert item["source"].startswith("synth/code/")
        assert item["identity"].startswith("code:") and ct.problem_identity(item) == item["identity"]
        assert len(item["reference"].split()) < 80
        json.dumps(item)


def test_generation_is_deterministic_and_seeded():
    assert ct.generate(30, 7, 2) == ct.generate(30, 7, 2)
    assert ct.generate(30, 7, 2) != ct.generate(30, 8, 2)
    assert ct.generate(30, 7, 1) != ct.generate(30, 7, 2)


def test_difficulty_grows_tests_and_problem_pool():
    easy, hard = ct.generate(300, 3, 0), ct.generate(300, 3, 3)
    assert max(len(i["verifier"]["tests"]) for i in easy) < max(len(i["verifier"]["tests"]) for i in hard)
    easy_chars = sum(len(t) for i in easy for t in i["verifier"]["tests"]) / len(easy)
    hard_chars = sum(len(t) for i in hard for t in i["verifier"]["tests"]) / len(hard)
    assert easy_chars < hard_chars
    assert {cp.by_identity(i["identity"]).level for i in easy} == {0}
    assert {cp.by_identity(i["identity"]).level for i in hard} == {0, 1, 2}


def test_templates_are_many_simple_and_spread_over_levels():
    assert len(TEMPLATES) >= 25 and len({t.name for t in TEMPLATES}) == len(TEMPLATES)
    assert sum(t.level == 0 for t in TEMPLATES) >= 15 and {t.level for t in TEMPLATES} == {0, 1, 2}
    assert all(t.bugs and set(t.bugs) <= set(BUG_KINDS) for t in TEMPLATES)
    assert sum(len(t.grid) for t in TEMPLATES if t.level == 0) > 5000
    assert cp.count_problems(0) < cp.count_problems(1) < cp.count_problems(2) == cp.count_problems(3)


def test_every_parameter_set_renders_a_distinct_problem():
    for template in TEMPLATES:  # instance() raises when a bug does not apply to the rendered reference
        problems = [cp.instance(template.name, i) for i in range(len(template.grid))]
        assert len({p.source for p in problems}) == len({p.identity for p in problems}) == len(problems)
        assert all(p.identity.startswith(f"code:{template.name}:") and p.name == template.name for p in problems)
        assert all(cp.by_identity(p.identity) is p for p in problems[:: max(1, len(problems) // 7)])
    assert cp.by_identity("code:nope:k=1") is None and cp.by_identity("code:affine_map:a=1,b=0") is None
    assert cp.by_identity(None) is None and cp.by_identity("code:reverse_words").name == "reverse_words"


def test_thousands_of_distinct_problems_generated_fast():
    start = time.perf_counter()
    items = ct.generate(3000, 0, 0)
    assert time.perf_counter() - start < 10.0
    assert len({ct.problem_identity(i) for i in items}) >= 2000
    assert sum(i["identity"].count(":") == 2 for i in items) > 0.8 * len(items)  # mostly procedural
    assert len({ct.problem_identity(i) for i in ct.generate(3000, 0, 1)}) >= 2000


def test_identity_names_the_reference():
    items = ct.generate(3000, 21, 2)
    reference_of, identity_of = {}, {}
    for item in items:
        assert reference_of.setdefault(item["identity"], item["reference"]) == item["reference"]
        assert identity_of.setdefault(item["reference"], item["identity"]) == item["identity"]
    assert len(reference_of) > 2000 and len(reference_of) < len(items)  # many problems, some drawn twice
    common = Counter(i["identity"] for i in items).most_common(1)[0][0]
    same = [tuple(i["verifier"]["tests"]) for i in items if i["identity"] == common]
    assert len(same) > 1 and len(set(same)) > 1  # one identity, different random tests


def test_problem_identity_is_stable_for_a_seed():
    first, again = ct.generate(200, 5, 1), ct.generate(200, 5, 1)
    assert [ct.problem_identity(i) for i in first] == [ct.problem_identity(i) for i in again]
    assert [ct.problem_identity(i) for i in first] != [ct.problem_identity(i) for i in ct.generate(200, 6, 1)]
    legacy = {k: v for k, v in first[0].items() if k != "identity"}
    assert ct.problem_identity(legacy) == f"code:{first[0]['verifier']['entry_point']}"
    for item in first:
        assert f"```python\n{cp.by_identity(item['identity']).source}\n```" == item["reference"]


def test_template_references_pass_and_every_bug_fails_in_the_sandbox():
    rng, items, jobs = random.Random(3), [], []
    for template in TEMPLATES:
        for index in rng.sample(range(len(template.grid)), min(3, len(template.grid))):
            problem = cp.instance(template.name, index)
            item = ct._make_item(problem, rng, rng.randint(template.level, ct.MAX_DIFFICULTY))
            kinds = {c["kind"] for c in ct.corrupt(item, rng) if c["kind"] in BUG_KINDS}
            assert kinds == set(problem.bugs), problem.identity  # every bug stays detectable
            items.append(item)
            jobs.append((item, "reference", item["reference"]))
            jobs += [(item, kind, cp.mutant_source(problem, kind)) for kind in problem.bugs]
    scores = ct.verify_many([code for _, _, code in jobs], [item["verifier"] for item, _, _ in jobs])
    for (item, kind, _), score in zip(jobs, scores):
        assert (score == 1.0) == (kind == "reference"), (item["identity"], kind, score)
    assert ct.verify(items[0]["reference"], items[0]["verifier"]) == 1.0


@pytest.mark.parametrize("kwargs", [dict(n=0, seed=0), dict(n=-3, seed=0), dict(n=5, seed=0, difficulty=-1),
                                    dict(n=5, seed=0, difficulty=4), dict(n=2.5, seed=0)])
def test_bad_generate_args_raise(kwargs):
    with pytest.raises(ValueError):
        ct.generate(**kwargs)


def test_every_reference_verifies_in_the_sandbox(items):
    scores = ct.verify_many([i["reference"] for i in items], [i["verifier"] for i in items])
    bad = [(i["source"], s) for i, s in zip(items, scores) if s != 1.0]
    assert not bad
    assert all(ct.reference_grades(i) == ct.GOOD for i in items[:5])


def test_corruptions_score_lower_and_grades_match(items, corruptions):
    kinds = {c["kind"] for _, c in corruptions}
    assert {"syntax_error", "prose_only", "padded"} <= kinds and len(kinds & set(BUG_KINDS)) >= 3
    assert sum(c["kind"] in BUG_KINDS for _, c in corruptions) >= len(items)
    scores = ct.verify_many([c["completion"] for _, c in corruptions], [i["verifier"] for i, _ in corruptions])
    for (item, c), score in zip(corruptions, scores):
        assert set(c["grades"]) == set(ct.GOOD) and c["level"] in (1, 2, 3)
        if c["verifiable"]:
            assert score < 1.0, (item["source"], c["kind"])
            assert min(c["grades"].values()) == 0
        else:
            assert score == 1.0 and c["grades"]["verbosity"] < 2 and c["level"] == 1
        if c["kind"] in BUG_KINDS:  # level 3 exactly when the buggy code passes no test
            assert c["level"] == (3 if score == 0.0 else 2) and c["grades"]["truthfulness"] == 0
        if c["kind"] == "prose_only":
            assert c["grades"]["instruction_following"] == 0 and "```" not in c["completion"]


def test_verify_agrees_with_verify_many(items, corruptions):
    item = items[0]
    completions = [item["reference"]] + [c["completion"] for i, c in corruptions if i is item]
    batched = ct.verify_many(completions, [item["verifier"]] * len(completions))
    assert [ct.verify(c, item["verifier"]) for c in completions] == batched
    assert batched[0] == 1.0 and min(batched) == 0.0


def test_corrupt_never_runs_model_code_in_process(items):
    item = {**items[0], "reference": "```python\nimport os\nos._exit(1)\n```"}
    kinds = {c["kind"] for c in ct.corrupt(item, random.Random(0))}
    assert not kinds & set(BUG_KINDS) and "padded" in kinds


@pytest.mark.parametrize("text, code", [
    ("intro\n```python\nx = 1\n```\nmid\n```python\ny = 2\n```\nend", "y = 2\n"),
    ("```py\na = 1\n```", "a = 1\n"),
    ("```\nb = 1\n```", "b = 1\n"),
    ("```python\nc = 1\n```\n```text\nnot code\n```", "c = 1\n"),
    ("```python\nd = 1\n", "d = 1\n"),
    ("just prose", "just prose"),
])
def test_extract_code(text, code):
    assert ct.extract_code(text) == code


@pytest.mark.parametrize("completion, verifier", [
    (None, ADD_VERIFIER), (123, ADD_VERIFIER), (GOOD_CODE, None), (GOOD_CODE, "not json"),
    (GOOD_CODE, {"tests": []}), (GOOD_CODE, {"tests": "assert add(1, 2) == 3"}), (GOOD_CODE, 7),
])
def test_verify_garbage_is_zero(completion, verifier):
    assert ct.verify(completion, verifier) == 0.0


def test_verify_scores_partial_and_bare_code():
    assert ct.verify("no code here at all", ADD_VERIFIER) == 0.0
    assert ct.verify(GOOD_CODE, json.dumps(ADD_VERIFIER)) == 1.0  # no fence: the whole text is the code
    assert ct.verify("```python\ndef add(a, b):\n    return a * b\n```", ADD_VERIFIER) == 0.5


def test_verify_many_isolates_hostile_jobs():
    jobs = {
        "good": GOOD_CODE,
        "loop": "def add(a, b):\n    while True:\n        pass\n",
        "exit": "import sys\nsys.exit(0)\n",
        "noisy": "print('x' * 1000)\n" + GOOD_CODE,
        "patch": "import builtins\nbuiltins.len = lambda x: 0\n" + GOOD_CODE,
        "crash": "import os\nos._exit(3)\n",
        "after_crash": GOOD_CODE,
        "forge": "print('\\nffff 0 4')\n",
        "half": "def add(a, b):\n    return a * b\n",
    }
    scores = ct.verify_many(list(jobs.values()), [ADD_VERIFIER] * len(jobs))
    assert dict(zip(jobs, scores)) == {"good": 1.0, "loop": 0.0, "exit": 0.0, "noisy": 1.0, "patch": 1.0,
                                       "crash": 0.0, "after_crash": 1.0, "forge": 0.0, "half": 0.5}


def test_verify_many_checks_lengths():
    with pytest.raises(ValueError):
        ct.verify_many(["a"], [])


def test_reward_domains_and_formats():
    fenced = f"```python\n{GOOD_CODE}```"
    completions = [fenced, [{"role": "assistant", "content": fenced}], "42", fenced, [{"role": "user"}]]
    verifiers = [ADD_VERIFIER, json.dumps(ADD_VERIFIER), ADD_VERIFIER, {"answer": 42}, ADD_VERIFIER]
    domains = ["code", "code", "math", "code", "code"]
    rewards = ct.reward([[]] * 5, completions, verifier=verifiers, domain=domains)
    assert rewards == [1.0, 1.0, None, 0.0, 0.0]


CANDIDATES = {
    "wrong": "```python\ndef add(a, b):\n    return a - b\n```",
    "half": "```python\ndef add(a, b):\n    return a * b\n```",
    "right": f"```python\n{GOOD_CODE}```",
    "also_right": GOOD_CODE,
    "syntax": "```python\ndef add(a, b)\n    return a + b\n```",
}


def test_select_solution_keeps_the_best_candidate():
    c = CANDIDATES
    assert ct.select_solution([c["wrong"], c["half"], c["right"], c["also_right"]], ADD_TESTS, 0.8) == (c["right"], 1.0)
    assert ct.select_solution([c["syntax"], c["half"], c["wrong"]], ADD_TESTS, 0.5) == (c["half"], 0.5)
    assert ct.select_solution([c["syntax"], c["half"]], ADD_TESTS, 0.75) == (None, 0.5)
    assert ct.select_solution([c["syntax"]], ADD_TESTS, 0.0) == (c["syntax"], 0.0)


@pytest.mark.parametrize("candidates, tests, threshold", [
    ([], ADD_TESTS, 0.5), ([GOOD_CODE], [], 0.5), ([GOOD_CODE], ADD_TESTS, 1.5), ([GOOD_CODE], ADD_TESTS, -0.1),
    ([None], ADD_TESTS, 0.5),
])
def test_select_solution_bad_args(candidates, tests, threshold):
    with pytest.raises(ValueError):
        ct.select_solution(candidates, tests, threshold)


def test_filter_questions_drops_and_keeps(items):
    c = CANDIDATES
    add_item = {"prompt": [{"role": "user", "content": "add"}], "domain": "code", "verifier": ADD_VERIFIER,
                "source": "hand", "reference": ""}
    real = items[1]
    batch = [add_item, add_item, real, {**add_item, "verifier": {}}, add_item]
    candidates = [[c["wrong"], c["right"]], [c["half"], c["syntax"]], ["nope", real["reference"]], [c["right"]], []]
    kept = ct.filter_questions(batch, candidates, threshold=0.75)
    assert [(k["source"], k["reference"], k["pass_rate"]) for k in kept] == [
        ("hand", c["right"], 1.0), (real["source"], real["reference"], 1.0)]
    assert kept[1]["verifier"] == real["verifier"] and "pass_rate" not in batch[0]
    with pytest.raises(ValueError):
        ct.filter_questions(batch, candidates[:2], 0.5)
    with pytest.raises(ValueError):
        ct.filter_questions(batch, candidates, 2)
