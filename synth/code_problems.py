"""The problem bank of the code family: parameterised coding-interview-style problems on 20 topics.

Each `Problem` holds a short statement, a short reference solution (source text, correct by
construction), an input generator `gen(rng, difficulty) -> args` whose sizes grow with difficulty,
hand-written bugs (exact text replacements in the reference: off-by-one, wrong operator, wrong return,
wrong logic) used to build failing-code corruptions, and edge inputs that expose those bugs.
The reference sources are our own trusted code and are compiled in-process once at import, so
expected outputs for the hidden tests are computed without the sandbox (model-written code never
runs here). Simplification: a handful of problems per topic stand in for AFM's 71 seeded topics.
Used by `synth/code_tasks.py`; nothing to run on its own.
"""
from __future__ import annotations

from typing import Callable

from synth import code_topics_core, code_topics_more  # noqa: F401  (importing registers the problems)
from synth.code_problem_kit import BUG_KINDS, PROBLEMS, Problem

# ---- compile the trusted references and bugs once ---------------------------------------------
BY_NAME: dict[str, Problem] = {p.name: p for p in PROBLEMS}
TOPICS = sorted({p.topic for p in PROBLEMS})


def _compile(source: str, name: str) -> Callable:
    namespace: dict = {}
    exec(compile(source, f"<{name}>", "exec"), namespace)  # our own reference code, never model output
    return namespace[name]


def mutant_source(problem: Problem, kind: str) -> str:
    old, new = problem.bugs[kind]
    return problem.source.replace(old, new, 1)


def _check(problem: Problem) -> None:
    for kind, (old, _) in problem.bugs.items():
        if kind not in BUG_KINDS or old not in problem.source:
            raise AssertionError(f"{problem.name}: bug {kind!r} does not apply to the reference")


for _problem in PROBLEMS:
    _check(_problem)
REFERENCE_FNS: dict[str, Callable] = {p.name: _compile(p.source, p.name) for p in PROBLEMS}
MUTANT_FNS: dict[tuple[str, str], Callable] = {
    (p.name, kind): _compile(mutant_source(p, kind), p.name) for p in PROBLEMS for kind in p.bugs}
