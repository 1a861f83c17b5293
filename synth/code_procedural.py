"""Procedural code problems: parameterised templates whose statement and reference depend on drawn values.

A `Template` is a small family of problems, e.g. "returns the sum of the elements of `xs` that leave
remainder {r} when divided by {k}": its `grid` lists every parameter set (a dict), and the statement,
the reference source and the hand-written bugs are texts with `{name}` slots filled from one parameter
set (`{name+1}` / `{name-1}` shift an integer; an `Opt` fills its `code` into source and bugs and its
`text` into the statement). The reference is therefore generated text, correct by construction, and
each bug is an exact text replacement in it (off-by-one, wrong operator, wrong return, wrong logic).
`gen(rng, difficulty, params)` draws test inputs that exercise the parameters and `edge(params)` lists
inputs that expose every bug, so `_strengthen` in `code_tasks.py` can always keep the bugs detectable.

Why: the hand-written bank has 46 problems, too few for a model to learn to program rather than to
memorise; a few dozen templates give thousands of distinct problems. A problem's identity is its
template and parameters ("code:sum_remainder:k=3,r=1"); the random test inputs are not part of it, so
two items with one identity share the reference and different identities have different references.

`instance(name, index)` turns a (template, parameter set) into a `Problem` record (the same record the
hand-written bank uses, so `code_tasks.py` builds items, tests and corruptions the same way); it is
cached, and so is compiling it (`code_problems.functions`). The topic modules
(`code_templates_lists.py`, `code_templates_numbers.py`, `code_templates_strings.py`) register the
templates with `_t`; `code_problems.py` imports them and draws among all problems.
Nothing to run on its own: `python -c "from synth.code_problems import TEMPLATES; print(len(TEMPLATES))"`.
"""
from __future__ import annotations

import functools
import itertools
import re
import textwrap
from dataclasses import dataclass
from typing import Callable, NamedTuple

from synth.code_problem_kit import BUG_KINDS, Problem


class Opt(NamedTuple):
    """A parameter value that reads differently in code and in prose (e.g. ">" / "greater than")."""
    key: str     # written into the identity
    code: str    # filled into the source and the bugs
    text: str    # filled into the statement


@dataclass(frozen=True)
class Template:
    topic: str
    level: int          # lowest difficulty at which the template is drawn
    statement: str      # completes "Write a Python function `sig` that ..."; has {slots}
    source: str         # reference solution with {slots}
    grid: tuple         # every parameter set: a tuple of dicts, all with the same keys in one order
    gen: Callable       # (rng, difficulty, params) -> argument tuple
    bugs: dict          # kind -> (old text, new text), both with {slots}
    edge: Callable      # params -> tuple of argument tuples that expose the bugs

    @property
    def name(self) -> str:
        return re.search(r"^def (\w+)\(", self.source, re.M).group(1)


TEMPLATES: list[Template] = []
BY_TEMPLATE: dict[str, Template] = {}
_SLOT = re.compile(r"\{(\w+)([+-]\d+)?\}")


def _t(topic, level, statement, source, grid, gen, bugs, edge):
    """Register a template (source is dedented; grid is a tuple of parameter dicts from `grid`)."""
    template = Template(topic, level, statement, textwrap.dedent(source).strip("\n"), tuple(grid), gen, bugs, edge)
    if template.name in BY_TEMPLATE:
        raise ValueError(f"two templates define {template.name!r}")
    TEMPLATES.append(template)
    BY_TEMPLATE[template.name] = template


def grid(where: Callable[[dict], bool] | None = None, **axes) -> tuple:
    """Every combination of the axes' values (in axis order) that satisfies `where`."""
    names = list(axes)
    combos = (dict(zip(names, values)) for values in itertools.product(*axes.values()))
    return tuple(p for p in combos if where is None or where(p))


def fill(text: str, params: dict, prose: bool = False) -> str:
    """Fill {slot}s: integers as written, strings as Python literals, an Opt by its code (or text)."""
    def one(match):
        name, shift = match.groups()
        if name not in params:
            return match.group(0)  # a brace that belongs to the code itself
        value = params[name]
        if isinstance(value, Opt):
            return value.text if prose else value.code
        return str(value + int(shift)) if shift else repr(value)
    return _SLOT.sub(one, text)


def identity_of(template: Template, params: dict) -> str:
    """'code:<template>:<param>=<value>,...': the problem, without its random test inputs."""
    def key(value):
        return value.key if isinstance(value, Opt) else repr(value)
    return f"code:{template.name}:" + ",".join(f"{k}={key(v)}" for k, v in params.items())


@functools.lru_cache(maxsize=None)
def _identities(name: str) -> dict[str, int]:
    """identity -> index in the template's grid (built once per template, on first look-up)."""
    template = BY_TEMPLATE[name]
    return {identity_of(template, p): i for i, p in enumerate(template.grid)}


@functools.lru_cache(maxsize=None)
def instance(name: str, index: int) -> Problem:
    """The `Problem` of template `name` with its `index`-th parameter set (rendered once, then cached)."""
    template = BY_TEMPLATE[name]
    params = template.grid[index]
    source = fill(template.source, params)
    bugs = {kind: (fill(old, params), fill(new, params)) for kind, (old, new) in template.bugs.items()}
    for kind, (old, new) in bugs.items():
        if kind not in BUG_KINDS or old not in source or source.replace(old, new, 1) == source:
            raise AssertionError(f"{name} {params}: bug {kind!r} does not apply to the reference")
    gen = functools.partial(_gen, template.gen, params)
    return Problem(template.topic, template.level, fill(template.statement, params, prose=True), source, gen,
                   bugs, tuple(template.edge(params)), identity_of(template, params))


def _gen(gen: Callable, params: dict, rng, difficulty: int) -> tuple:
    return gen(rng, difficulty, params)


def by_identity(identity: str) -> Problem | None:
    """The procedural problem an identity names, or None when it names none (any string is safe here)."""
    parts = identity.split(":", 2) if isinstance(identity, str) else []
    if len(parts) != 3 or parts[0] != "code" or parts[1] not in BY_TEMPLATE:
        return None
    index = _identities(parts[1]).get(identity)
    return None if index is None else instance(parts[1], index)
