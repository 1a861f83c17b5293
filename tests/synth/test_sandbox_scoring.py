"""Issue 17 finding 12: a completion cannot change another job's score, and `__eq__` tricks pass nothing,
while honest completions score exactly as before (the code family's own tests check its reward numbers)."""
from synth import code_tasks as ct
from synth.sandbox_asserts import run_tests

ADD_TESTS = ["assert add(1, 2) == 3", "assert add(0, 0) == 0", "assert add(-1, 5) == 4", "assert add(2, 2) == 4"]
ADD_VERIFIER = {"entry_point": "add", "tests": ADD_TESTS, "timeout_s": 2.0}
NONE = "def add(a, b):\n    return None\n"

FRAME_WALKER = """import sys
def rewrite(value):  # any job list in reach: make every test trivially true
    if isinstance(value, list):
        for job in value:
            if isinstance(job, list) and len(job) == 3 and isinstance(job[1], list):
                job[1][:] = ['assert True'] * len(job[1])
frame = sys._getframe()
while frame is not None:
    for value in list(frame.f_locals.values()):
        rewrite(value)
    frame = frame.f_back
def add(a, b):
    return None
"""

ALWAYS_EQUAL = """class Anything:
    def __eq__(self, other):
        return True
    def __ne__(self, other):
        return False
    __hash__ = object.__hash__
def add(a, b):
    return Anything()
"""

INT_SUBCLASS = """class Sneaky(int):
    def __eq__(self, other):
        return True
    __hash__ = int.__hash__
def add(a, b):
    return Sneaky(-999)
"""

LIST_SUBCLASS = """class Sneaky(list):
    def __eq__(self, other):
        return True
    def __iter__(self):
        return iter([1, 2])
def pair(a, b):
    return Sneaky([0])
"""


def test_a_completion_cannot_change_another_jobs_score():
    scores = ct.verify_many([FRAME_WALKER, NONE, FRAME_WALKER, NONE], [ADD_VERIFIER] * 4)
    assert scores[1] == scores[3] == 0.0


def test_eq_tricks_pass_no_test():
    completions = [ALWAYS_EQUAL, INT_SUBCLASS, f"```python\n{ALWAYS_EQUAL}```"]
    assert ct.verify_many(completions, [ADD_VERIFIER] * 3) == [0.0, 0.0, 0.0]
    assert ct.verify(ALWAYS_EQUAL, ADD_VERIFIER) == 0.0
    assert run_tests(LIST_SUBCLASS, ["assert pair(1, 2) == [1, 2]", "assert pair(1, 2) != [0]"]) == (0, 2)
    assert run_tests(ALWAYS_EQUAL, ["assert add(1, 2) == 3", "assert add(1, 2) != 3"]) == (1, 2)  # it is not 3


HONEST = """from collections import Counter, OrderedDict, namedtuple, defaultdict
Point = namedtuple('Point', 'x y')
class Name(str):
    pass
def as_float(x):
    return float(x)
def counts(s):
    return Counter(s)
def ordered(pairs):
    return OrderedDict(pairs)
def grouped(xs):
    d = defaultdict(list)
    for x in xs:
        d[x % 2].append(x)
    return d
def point(x, y):
    return Point(x, y)
def name(s):
    return Name(s)
def flag(x):
    return x > 0
def nan():
    return float('nan')
class Box:
    def __init__(self, v):
        self.v = v
    def __eq__(self, other):
        return isinstance(other, Box) and other.v == self.v
def box(v):
    return Box(v)
"""

HONEST_TESTS = [
    "assert as_float(3) == 3", "assert as_float(3) == 3.0", "assert as_float(2) != 3",
    "assert counts('aab') == {'a': 2, 'b': 1}", "assert counts('ab') == {'a': 1}",
    "assert ordered([(1, 2)]) == {1: 2}", "assert grouped([1, 2, 3]) == {1: [1, 3], 0: [2]}",
    "assert point(1, 2) == (1, 2)", "assert point(1, 2) == [1, 2]", "assert name('x') == 'x'",
    "assert flag(3) == True", "assert flag(3) == 1", "assert flag(-3) == 0", "assert nan() == nan()",
    "assert nan() != nan()", "assert box(1) == box(1)", "assert box(1) == 1", "assert box(1) != box(2)",
    "assert [as_float(1), counts('a')] == [1, {'a': 1}]", "assert (1, 2) == (1, 2) and True",
]


def test_honest_results_compare_as_plain_python_does():
    namespace: dict = {}
    exec(HONEST, namespace)
    expected = []
    for test in HONEST_TESTS:
        try:
            exec(test, dict(namespace))
            expected.append(True)
        except AssertionError:
            expected.append(False)
    got = [run_tests(HONEST, [test]) == (1, 1) for test in HONEST_TESTS]
    assert got == expected, [t for t, e, g in zip(HONEST_TESTS, expected, got) if e != g]
    assert 0 < sum(got) < len(got)


def test_identical_jobs_in_a_batch_run_once_and_share_their_result(monkeypatch):
    from synth import code_tasks

    ran = []
    real = code_tasks.run_jobs

    def counting(jobs):
        ran.extend(jobs)
        return real(jobs)

    monkeypatch.setattr(code_tasks, "run_jobs", counting)
    verifier = {"tests": ["assert f(2) == 4"], "setup": ""}
    right, wrong = "```python\ndef f(x):\n    return 2 * x\n```", "```python\ndef f(x):\n    return x\n```"
    scores = code_tasks.verify_many([right, wrong, right, right, wrong], [verifier] * 5)
    assert scores == [1.0, 0.0, 1.0, 1.0, 0.0] and len(ran) == 2
