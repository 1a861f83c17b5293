"""The problem pool of the code family: 46 hand-written problems plus thousands of procedural ones.

Hand-written problems (`code_topics_core.py`, `code_topics_more.py`, 20 topics) are fixed; procedural
problems come from parameterised templates (`code_templates_lists.py`, `code_templates_numbers.py`,
`code_templates_strings.py`, machinery in `code_procedural.py`): one template and one parameter set make
one problem. Both are `Problem` records (statement, reference source, input generator, hand-written
bugs, edge inputs, identity), so `code_tasks.py` treats them alike.

`draw(rng, difficulty)` picks a problem of level <= difficulty: a hand-written one with probability
HANDWRITTEN_SHARE, else a template (weighted by the square root of its number of parameter sets, so
large families are drawn more often without drowning the small ones) and one of its parameter sets.
`functions(problem)` compiles the reference and each bug once (cached by identity): the sources are our
own trusted text, so they run in-process to compute expected outputs (model-written code never runs
here). `by_identity(identity)` finds the problem an item names (None for anything else).
Simplification: a few dozen templates stand in for AFM's 71 seeded topics.
Used by `synth/code_tasks.py`; nothing to run on its own.
"""
from __future__ import annotations

import functools
import math
import random
from typing import Callable

from synth import code_templates_lists, code_templates_numbers, code_templates_strings  # noqa: F401
from synth import code_topics_core, code_topics_more  # noqa: F401  (importing registers the problems)
from synth.code_problem_kit import BUG_KINDS, PROBLEMS, Problem
from synth.code_procedural import BY_TEMPLATE, TEMPLATES, Template, instance
from synth.code_procedural import by_identity as _procedural

HANDWRITTEN_SHARE = 0.1
BY_NAME: dict[str, Problem] = {p.name: p for p in PROBLEMS}
BY_IDENTITY: dict[str, Problem] = {p.identity: p for p in PROBLEMS}
TOPICS = sorted({p.topic for p in PROBLEMS} | {t.topic for t in TEMPLATES})
if set(BY_NAME) & set(BY_TEMPLATE) or len(BY_NAME) < len(PROBLEMS):
    raise AssertionError("every hand-written problem and template needs its own function name")


def _check(problem: Problem) -> None:
    for kind, (old, _) in problem.bugs.items():
        if kind not in BUG_KINDS or old not in problem.source:
            raise AssertionError(f"{problem.name}: bug {kind!r} does not apply to the reference")


for _problem in PROBLEMS:
    _check(_problem)


def mutant_source(problem: Problem, kind: str) -> str:
    old, new = problem.bugs[kind]
    return problem.source.replace(old, new, 1)


def _compile(source: str, name: str) -> Callable:
    namespace: dict = {}
    exec(compile(source, f"<{name}>", "exec"), namespace)  # our own reference code, never model output
    return namespace[name]


@functools.lru_cache(maxsize=None)
def _compiled(identity: str) -> tuple[Callable, dict[str, Callable]]:
    problem = by_identity(identity)
    return (_compile(problem.source, problem.name),
            {kind: _compile(mutant_source(problem, kind), problem.name) for kind in problem.bugs})


def functions(problem: Problem) -> tuple[Callable, dict[str, Callable]]:
    """(reference function, {bug kind: mutant function}) of a problem, compiled once."""
    return _compiled(problem.identity)


def by_identity(identity: str) -> Problem | None:
    """The hand-written or procedural problem an identity names, or None."""
    return BY_IDENTITY.get(identity) or _procedural(identity)


@functools.lru_cache(maxsize=None)
def _pool(difficulty: int) -> tuple[list[Problem], list[Template], list[float]]:
    templates = [t for t in TEMPLATES if t.level <= difficulty]
    return ([p for p in PROBLEMS if p.level <= difficulty], templates, [math.sqrt(len(t.grid)) for t in templates])


def draw(rng: random.Random, difficulty: int) -> Problem:
    """A problem of level <= difficulty (deterministic for the rng's state)."""
    handwritten, templates, weights = _pool(difficulty)
    if rng.random() < HANDWRITTEN_SHARE:
        return rng.choice(handwritten)
    template = rng.choices(templates, weights)[0]
    return instance(template.name, rng.randrange(len(template.grid)))


def count_problems(difficulty: int) -> int:
    """How many distinct problems (hand-written plus template parameter sets) a difficulty draws from."""
    handwritten, templates, _ = _pool(difficulty)
    return len(handwritten) + sum(len(t.grid) for t in templates)
