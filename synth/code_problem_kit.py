"""The building blocks of the code family's problem bank: the `Problem` record, its registry, input generators.

A `Problem` holds a short statement, a short reference solution (source text, correct by construction), an
input generator `gen(rng, difficulty) -> args` whose sizes grow with difficulty, hand-written bugs (exact
text replacements in the reference) used to build failing-code corruptions, and edge inputs that expose
those bugs, and an identity that names it (for hand-written problems "code:<function name>"; the
procedural templates of `code_procedural.py` build the same record). The topic modules
(`code_topics_core.py`, `code_topics_more.py`) register the hand-written problems with `_p`;
`code_problems.py` assembles the bank and compiles problems on demand. The input helpers below serve
both the hand-written problems and the templates.
"""
from __future__ import annotations

import random
import re
import textwrap
from dataclasses import dataclass, field
from typing import Callable

BUG_KINDS = ("off_by_one", "wrong_operator", "wrong_return", "wrong_logic")


@dataclass(frozen=True)
class Problem:
    topic: str
    level: int          # lowest difficulty at which the problem is drawn
    statement: str      # completes "Write a Python function `sig` that ..."
    source: str         # reference solution
    gen: Callable[[random.Random, int], tuple]
    bugs: dict = field(default_factory=dict)    # kind -> (old text, new text) in `source`
    edge: tuple = ()    # extra argument tuples that expose the bugs
    identity: str = ""  # names the problem (not its random tests): "code:<name>" or "code:<template>:<params>"

    @property
    def name(self) -> str:
        return re.search(r"^def (\w+)\(", self.source, re.M).group(1)

    @property
    def signature(self) -> str:
        return re.search(r"^def (\w+\(.*\)):", self.source, re.M).group(1)


PROBLEMS: list[Problem] = []


def _p(topic, level, statement, source, gen, bugs, edge=()):
    source = textwrap.dedent(source).strip("\n")
    name = re.search(r"^def (\w+)\(", source, re.M).group(1)
    PROBLEMS.append(Problem(topic, level, statement, source, gen, bugs, edge, f"code:{name}"))


# ---- input helpers: sizes grow with difficulty d ----------------------------------------------
def _n(rng, d, lo=0):
    return rng.randint(lo, 3 + 2 * d)


def _ints(rng, d, lo=-9, hi=9, min_len=0):
    return [rng.randint(lo, hi) for _ in range(_n(rng, d, min_len))]


def _word(rng, length, alphabet="abcde"):
    return "".join(rng.choice(alphabet) for _ in range(length))


def _words(rng, d, min_len=0):
    return [_word(rng, rng.randint(1, 5), "abcdefgh") for _ in range(_n(rng, d, min_len))]


def _palindrome(rng, d):
    half = _word(rng, rng.randint(0, 2 + d), "abcAB1")
    return half + rng.choice(["", "x", " ", "!"]) + half[::-1].swapcase()


def _balanced(rng, depth):
    if depth <= 0 or rng.random() < 0.3:
        return ""
    o, c = rng.choice(["()", "[]", "{}"])
    return o + _balanced(rng, depth - 1) + c + _balanced(rng, depth - 1)


def _nested(rng, depth):
    return [_nested(rng, depth - 1) if depth > 0 and rng.random() < 0.3 else rng.randint(0, 9)
            for _ in range(rng.randint(0, 3))]


def _rpn(rng, depth):
    if depth <= 0 or rng.random() < 0.3:
        return [str(rng.randint(0, 9))]
    return _rpn(rng, depth - 1) + _rpn(rng, depth - 1) + [rng.choice("+-*")]


def _intervals(rng, d):
    out = []
    for _ in range(_n(rng, d)):
        s = rng.randint(0, 10 + 5 * d)
        out.append([s, s + rng.randint(0, 6)])
    return out


def _matrix(rng, d, rows=None, cols=None):
    rows = rows or rng.randint(1, 2 + d)
    cols = cols or rng.randint(1, 2 + d)
    return [[rng.randint(-9, 9) for _ in range(cols)] for _ in range(rows)]
