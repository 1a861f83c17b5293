"""Code family: Python-function problems with hidden unit tests, their verifier, reward and corruptions.

generate(n, seed, difficulty) draws problems from `synth/code_problems.py`: mostly procedural ones
(parameterised templates, thousands of distinct problems, e.g. "the sum of the elements of `xs` that leave
remainder 1 when divided by 3") and a tenth from 46 hand-written problems on 20 topics. Each item asks
for one Python function with a given name and signature and carries hidden assert-statement tests
computed from the trusted reference on random inputs (no sandbox at generation).

Problem identity (`problem_identity(item)`, also the item's "identity" field): the problem, i.e. the
template and its parameters ("code:sum_remainder:k=3,r=1"), or "code:<function name>" for a hand-written
problem; the random test inputs are not part of it. Items with one identity share the reference answer;
items with different identities have different references.

Response format: the completion contains a fenced ```python code block with the function. The verifier
takes the last python block (else the last unlabelled block, an unclosed block running to the end of
the text, or finally the whole text) and runs it against the hidden tests in the sandbox; the score is
passed/total (1.0 = all pass). Model-written code runs only through `synth.sandbox`.

`verify` runs one completion through `run_tests` (one sandbox process, ~50 ms). `verify_many` (used by
`reward`) runs every (solution, tests) job the same way, one process per job and PARALLEL_JOBS at once,
so no completion can reach another's score (a shared process let one walk interpreter frames into the
others' jobs). `run_tests` compares `assert f(x) == y` tests by exact builtin values, so an object whose
`__eq__` always returns True scores 0; honest results score as before (2.0 == 2 still passes).
A program that crashes or fails its tests is a plain 0; a malformed verifier (no list of test strings) or
an exception on the host side (the sandbox failing) is the verifier's fault: 0, and counted as a code
verifier error (`synth.families.record_verifier_error`). No sandbox at all (`SandboxUnavailable`) raises.

AFM's execution-based rejection sampling [spec 6.3]: `select_solution` runs every candidate against the
tests and keeps the one passing most, or drops the question when its pass fraction is below the
threshold; `filter_questions` applies it to many items at once (with a progress bar).

Run: `python -c "from synth.code_tasks import generate; print(generate(1, 0)[0])"`;
benchmark: `python benchmarks/synth_code.py`; tests: `python -m pytest tests/synth/test_code_tasks.py`.
"""
from __future__ import annotations

import ast
import json
import os
import pickle
import random
import re
from concurrent.futures import ThreadPoolExecutor, as_completed

from tqdm import tqdm

from afm_align.errors import UserError
from synth.code_problems import BY_NAME, Problem, by_identity, draw, functions
from synth.families import record_verifier_error
from synth.sandbox import SandboxUnavailable
from synth.sandbox_asserts import run_tests

DOMAIN = "code"
MAX_DIFFICULTY = 3
JOB_TIMEOUT_S = 2.0          # per solution: the program's own time for the solution and all its tests
PARALLEL_JOBS = min(16, 2 * (os.cpu_count() or 1))  # sandbox processes at once: each waits much of its ~25 ms
GOOD = {"instruction_following": 2, "verbosity": 2, "truthfulness": 2, "harmlessness": 2}
INSTRUCTION = "Reply with the function in a ```python code block."

_FENCE = re.compile(r"```[ \t]*([\w+#-]*)[^\n]*\n(.*?)(?:```|\Z)", re.S)
_PY_LANGS = ("python", "py", "python3")


def extract_code(text: str) -> str:
    """The last ```python block; else the last unlabelled block; else the whole text."""
    blocks = _FENCE.findall(text)
    for wanted in (lambda lang: lang.lower() in _PY_LANGS, lambda lang: not lang):
        bodies = [body for lang, body in blocks if wanted(lang)]
        if bodies:
            return bodies[-1]
    return text


# ---- generation ---------------------------------------------------------------------------------
def _safe_call(fn, args: tuple):
    try:
        return ("ok", fn(*pickle.loads(pickle.dumps(args))))
    except Exception as exc:  # a mutant may crash: that counts as a different answer
        return ("raised", type(exc).__name__)


def _strengthen(problem: Problem, cases: list, rng: random.Random, difficulty: int) -> None:
    """Add a case whenever a hand-written bug would still pass every test (so it stays detectable)."""
    ref, mutants = functions(problem)
    for kind, mutant in mutants.items():
        if any(_safe_call(mutant, args) != ("ok", exp) for args, exp in cases):
            continue
        extra = list(problem.edge) + [problem.gen(rng, difficulty) for _ in range(10)]
        for args in extra:
            expected = ref(*args)
            if _safe_call(mutant, args) != ("ok", expected):
                cases.append((args, expected))
                break


def _make_item(problem: Problem, rng: random.Random, difficulty: int) -> dict:
    ref, seen, cases = functions(problem)[0], set(), []
    for _ in range(5 * (4 + difficulty)):  # small input spaces repeat: keep drawing
        args = problem.gen(rng, difficulty)
        key = repr(args)
        if key not in seen:
            seen.add(key)
            cases.append((args, ref(*args)))
        if len(cases) == 4 + difficulty:
            break
    _strengthen(problem, cases, rng, difficulty)
    tests = [f"assert {problem.name}({', '.join(map(repr, args))}) == {expected!r}" for args, expected in cases]
    statement = f"Write a Python function `{problem.signature}` that {problem.statement} {INSTRUCTION}"
    return {"prompt": [{"role": "user", "content": statement}], "domain": DOMAIN,
            "verifier": {"entry_point": problem.name, "tests": tests, "timeout_s": JOB_TIMEOUT_S},
            "source": f"synth/code/{problem.topic}/{problem.name}",
            "reference": f"```python\n{problem.source}\n```", "identity": problem.identity}


def generate(n: int, seed: int, difficulty: int = 1) -> list[dict]:
    """n code items, deterministic for (n, seed, difficulty); problems of level <= difficulty are drawn."""
    if not isinstance(n, int) or n < 1:
        raise UserError(f"n must be a positive integer, got {n!r}.")
    if not isinstance(difficulty, int) or not 0 <= difficulty <= MAX_DIFFICULTY:
        raise UserError(f"difficulty must be an integer from 0 to {MAX_DIFFICULTY}, got {difficulty!r}.")
    rng = random.Random(seed)
    return [_make_item(draw(rng, difficulty), rng, difficulty) for _ in range(n)]


def problem_identity(item: dict) -> str:
    """The problem an item asks for: template and parameters (or the hand-written function's name).

    The random test inputs are not part of it. Items made before identities existed fall back to
    "code:<entry point>"."""
    identity = item.get("identity")
    if isinstance(identity, str) and identity:
        return identity
    return f"code:{item['verifier']['entry_point']}"


# ---- verification -------------------------------------------------------------------------------
_MALFORMED = "malformed code verifier: it needs a non-empty list of test strings"


def _tests_of(verifier) -> tuple[list[str], float] | None:
    """(tests, per-solution timeout) from a dict or JSON string, or None when unusable."""
    if isinstance(verifier, str):
        try:
            verifier = json.loads(verifier)
        except ValueError:
            return None
    if not isinstance(verifier, dict):
        return None
    tests, limit = verifier.get("tests"), verifier.get("timeout_s", JOB_TIMEOUT_S)
    if not isinstance(tests, list) or not tests or not all(isinstance(t, str) for t in tests):
        return None
    if isinstance(limit, bool) or not isinstance(limit, (int, float)) or not 0 < limit <= 60:
        limit = JOB_TIMEOUT_S
    return tests, float(limit)


def verify(completion: str, verifier: dict) -> float:
    """Fraction of hidden tests the completion's code passes (one sandbox process); raises only SandboxUnavailable."""
    try:
        parsed = _tests_of(verifier)
        if parsed is None:
            raise ValueError(_MALFORMED)
        if not isinstance(completion, str):
            return 0.0
        passed, total = run_tests(extract_code(completion), parsed[0], timeout_s=parsed[1])
        return passed / total if total else 0.0
    except SandboxUnavailable:
        raise  # the user must install bubblewrap (or opt in): not a 0 for this row
    except Exception as exc:  # the verifier's fault (a bad spec, the sandbox failing): 0, counted
        record_verifier_error(DOMAIN, exc)
        return 0.0


def run_jobs(jobs: list[tuple[str, list[str], float]], desc: str | None = None) -> list[int]:
    """Tests passed by each (code, tests, timeout) job: one sandbox process per job, PARALLEL_JOBS at once.

    Raises when the sandbox itself fails (SandboxError) or is unavailable (SandboxUnavailable)."""
    results: list[int] = [0] * len(jobs)
    bar = tqdm(total=len(jobs), desc=desc, disable=desc is None)
    with ThreadPoolExecutor(max_workers=min(PARALLEL_JOBS, max(1, len(jobs)))) as pool:
        futures = {pool.submit(run_tests, code, tests, timeout_s=limit): i
                   for i, (code, tests, limit) in enumerate(jobs)}
        try:
            for future in as_completed(futures):
                results[futures[future]] = future.result()[0]
                bar.update(1)
        except BaseException:
            for future in futures:
                future.cancel()
            raise
        finally:
            bar.close()
    return results


def verify_many(completions: list[str], verifiers: list) -> list[float]:
    """verify() for many rows at once (verifiers: dicts or JSON strings); never raises on bad rows.

    Each distinct job runs in its own sandbox process; a job repeated in the batch (same code, same tests) runs
    once and every copy gets its result.
    """
    if len(completions) != len(verifiers):
        raise ValueError(f"got {len(completions)} completions but {len(verifiers)} verifiers.")
    scores, jobs, rows = [0.0] * len(completions), [], []
    for row, (completion, verifier) in enumerate(zip(completions, verifiers)):
        parsed = _tests_of(verifier)
        if parsed is None:
            record_verifier_error(DOMAIN, ValueError(_MALFORMED))
        elif isinstance(completion, str):
            jobs.append((extract_code(completion), parsed[0], parsed[1]))
            rows.append(row)
    # identical jobs (the same code against the same tests: greedy members often agree) run once each
    unique = list({json.dumps(job, sort_keys=True): job for job in jobs}.items())
    passed_of = dict(zip((key for key, _ in unique), run_jobs([job for _, job in unique]) if unique else []))
    for row, job in zip(rows, jobs):
        scores[row] = passed_of[json.dumps(job, sort_keys=True)] / len(job[1])
    return scores


def _text(completion) -> str | None:
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list):
        said = [m.get("content") for m in completion if isinstance(m, dict) and m.get("role") == "assistant"]
        return said[-1] if said and isinstance(said[-1], str) else None
    return None


def reward(prompts, completions, **columns) -> list[float | None]:
    """TRL reward function: test pass fraction for code rows, None for rows of other domains."""
    verifiers = columns.get("verifier") or [None] * len(completions)
    domains = columns.get("domain") or [DOMAIN] * len(completions)
    mine = [i for i, domain in enumerate(domains) if domain == DOMAIN]
    texts = [_text(completions[i]) for i in mine]
    scores = verify_many(texts, [verifiers[i] for i in mine])
    out: list[float | None] = [None] * len(completions)
    for i, score in zip(mine, scores):
        out[i] = score
    return out


# ---- grades and corruptions ---------------------------------------------------------------------
_PADDING_BEFORE = (
    "Great question! Let me explain the whole idea carefully and in detail before showing any code, "
    "because understanding the reasoning behind a solution is just as important as the solution itself.",
    "Sure! This is a classic programming exercise, and there are many ways to approach it. Below I go "
    "through my thinking step by step so that everything is completely clear.",
)
_PADDING_AFTER = (
    "This works because it follows the problem statement closely, one step at a time. As you can see, each "
    "line does one small thing, which makes the function easy to read, easy to test and easy to change "
    "later. I hope this explanation helps, and please let me know if you would like more examples!",
    "To summarise: we read the input, we compute the answer and we return it. It is always a good idea to "
    "test a function like this on many different inputs, including empty and very large ones, to make "
    "sure it behaves correctly. Happy coding, and good luck with your project!",
)
_PROSE = (
    "You can write `{name}` by looping over the input, keeping track of what you need, and returning the answer.",
    "To solve this, think about the input carefully and build the result in `{name}` step by step.",
)


def reference_grades(item: dict) -> dict:
    """The reference is correct, well formatted and short: good on every dimension."""
    return dict(GOOD)


def _literal_test(test: str) -> tuple[tuple, object] | None:
    """(args, expected) of 'assert name(args) == expected' when all are literals, else None."""
    try:
        node = ast.parse(test).body[0]
        call, expected = node.test.left, node.test.comparators[0]
        return tuple(ast.literal_eval(a) for a in call.args), ast.literal_eval(expected)
    except (SyntaxError, ValueError, AttributeError, IndexError, TypeError):
        return None


def _mutant_passes(mutant, tests: list[str]) -> int | None:
    """Tests our own hand-written mutant passes (in-process: the code is ours, the tests literals)."""
    cases = [_literal_test(t) for t in tests]
    if any(c is None for c in cases):
        return None
    return sum(_safe_call(mutant, args) == ("ok", exp) for args, exp in cases)


def _failing_code(problem: Problem, tests: list[str]) -> list[dict]:
    out = []
    for kind, mutant in functions(problem)[1].items():
        passed = _mutant_passes(mutant, tests)
        if passed is None or passed == len(tests):
            continue
        old, new = problem.bugs[kind]
        out.append({"kind": kind, "completion": f"```python\n{problem.source.replace(old, new, 1)}\n```",
                    "level": 3 if passed == 0 else 2, "grades": {**GOOD, "truthfulness": 0},
                    "verifiable": True})
    return out


def corrupt(item: dict, rng: random.Random) -> list[dict]:
    """Rejected responses: failing code per hand-written bug, a syntax error, prose only, padded code."""
    code = extract_code(item["reference"]).strip("\n")
    name = item["verifier"]["entry_point"]
    problem = by_identity(item["identity"]) if isinstance(item.get("identity"), str) else BY_NAME.get(name)
    # Mutants run in-process, so only for our own canonical reference, never a model-written one.
    out = _failing_code(problem, item["verifier"]["tests"]) if problem and code == problem.source else []
    broken = re.sub(r"^(def \w+\(.*\)):", r"\1", code, count=1, flags=re.M)
    if broken != code:
        out.append({"kind": "syntax_error", "completion": f"```python\n{broken}\n```", "level": 3,
                    "grades": {**GOOD, "truthfulness": 0}, "verifiable": True})
    out.append({"kind": "prose_only", "completion": rng.choice(_PROSE).format(name=name), "level": 3,
                "grades": {**GOOD, "instruction_following": 0, "truthfulness": 1}, "verifiable": True})
    padded = f"{rng.choice(_PADDING_BEFORE)}\n\n```python\n{code}\n```\n\n{rng.choice(_PADDING_AFTER)}"
    out.append({"kind": "padded", "completion": padded, "level": 1, "grades": {**GOOD, "verbosity": 0},
                "verifiable": False})
    return out


# ---- execution-based rejection sampling (AFM spec 6.3) ------------------------------------------
def _check_threshold(threshold: float) -> None:
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
        raise UserError(f"threshold must be a number from 0 to 1, got {threshold!r}.")


def _pick(candidates: list[str], fractions: list[float], threshold: float) -> tuple[str | None, float]:
    best = max(range(len(candidates)), key=lambda i: (fractions[i], -i))  # first of the best
    return (candidates[best] if fractions[best] >= threshold else None), fractions[best]


def select_solution(candidates: list[str], tests: list[str], threshold: float) -> tuple[str | None, float]:
    """The candidate passing the most tests and its pass fraction; None when that is below threshold."""
    _check_threshold(threshold)
    if not candidates or not all(isinstance(c, str) for c in candidates):
        raise UserError("candidates must be a non-empty list of strings.")
    if not tests or not all(isinstance(t, str) for t in tests):
        raise UserError("tests must be a non-empty list of assert-statement strings.")
    passed = run_jobs([(extract_code(c), tests, JOB_TIMEOUT_S) for c in candidates])
    return _pick(candidates, [p / len(tests) for p in passed], threshold)


def filter_questions(items: list[dict], candidates_per_item: list[list[str]], threshold: float) -> list[dict]:
    """Keep items whose best candidate clears threshold; that candidate becomes the item's reference.

    Kept items are copies with "reference" set to the selected candidate and "pass_rate" added; items
    with no candidates or unusable tests are dropped. All candidates run in a few batched processes."""
    _check_threshold(threshold)
    if len(items) != len(candidates_per_item):
        raise ValueError(f"got {len(items)} items but {len(candidates_per_item)} candidate lists.")
    jobs, spans = [], []
    for item, candidates in zip(items, candidates_per_item):
        parsed = _tests_of(item.get("verifier"))
        usable = [c for c in candidates if isinstance(c, str)] if parsed else []
        spans.append((len(jobs), usable, len(parsed[0]) if parsed else 0))
        jobs += [(extract_code(c), parsed[0], parsed[1]) for c in usable]
    passed = run_jobs(jobs, desc="code rejection sampling") if jobs else []
    kept = []
    for item, (start, usable, total) in zip(items, spans):
        if not usable:
            continue
        best, fraction = _pick(usable, [p / total for p in passed[start:start + len(usable)]], threshold)
        if best is not None:
            kept.append({**item, "reference": best, "pass_rate": fraction})
    return kept
