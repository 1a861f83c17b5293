"""Procedural code problems on lists of integers: filters, counts, maps, slices, windows and pairs.

Each `_t` call registers a template (see `code_procedural.py`): a statement and a one- to six-line
reference with {slots}, the grid of parameter sets, an input generator that aims its values at the
parameters (so the tests cover the interesting cases), hand-written bugs, and edge inputs that expose
every bug for every parameter set. Importing the module registers the templates.
"""
from synth.code_problem_kit import _ints, _n
from synth.code_procedural import Opt, _t, grid

# comparison operators: code, prose, and the key written into the identity
CMP = (Opt("gt", ">", "greater than"), Opt("ge", ">=", "at least"), Opt("lt", "<", "less than"),
       Opt("le", "<=", "at most"))
CMP_EQ = CMP + (Opt("eq", "==", "equal to"), Opt("ne", "!=", "different from"))


def _near(rng, d, centre, spread=6, min_len=0):
    """A list of integers around `centre`, so a threshold splits it."""
    return [rng.randint(centre - spread, centre + spread) for _ in range(_n(rng, d, min_len))]


# ---- level 0: one-line filters, counts and maps ---------------------------------------------------
_t("lists", 0, "returns the sum of the elements of the list `xs` of non-negative integers that leave remainder "
   "{r} when divided by {k}.", '''
def sum_remainder(xs):
    return sum(x for x in xs if x % {k} == {r})
''', grid(k=range(2, 31), r=range(30), where=lambda p: p["r"] < p["k"]),
   lambda rng, d, p: ([rng.randint(0, 4) * p["k"] + rng.choice([p["r"], rng.randint(0, p["k"] - 1)])
                       for _ in range(_n(rng, d))],),
   {"wrong_operator": ("== {r}", "!= {r}"), "off_by_one": ("% {k}", "% {k+1}"),
    "wrong_return": ("sum(x for", "sum(1 for")},
   lambda p: (([p["k"] + p["r"]],),))

_t("lists", 0, "returns how many elements of the list `xs` are {op} {t}.", '''
def count_compare(xs):
    return sum(1 for x in xs if x {op} {t})
''', grid(op=CMP, t=range(-30, 31)),
   lambda rng, d, p: (_near(rng, d, p["t"]),),
   {"off_by_one": ("{op} {t})", "{op} {t+1})"), "wrong_logic": ("if x", "if not x"),
    "wrong_return": ("sum(1 for", "sum(x for")},
   lambda p: (([p["t"]],), ([p["t"] + 1],), ([p["t"] - 7, p["t"] - 4, p["t"] + 4, p["t"] + 7],)))

_t("lists", 0, "returns a list with every element of the list `xs` multiplied by {a} and then {b} added.", '''
def affine_map(xs):
    return [x * {a} + {b} for x in xs]
''', grid(a=[a for a in range(-9, 10) if abs(a) > 1], b=[b for b in range(-20, 21) if b]),
   lambda rng, d, p: (_ints(rng, d),),
   {"wrong_operator": ("+ {b} for", "- {b} for"), "off_by_one": ("* {a} ", "* {a+1} "),
    "wrong_logic": ("x * {a} + {b}", "(x + {b}) * {a}")},
   lambda p: (([1, 2],),))

_t("lists", 0, "returns True if every element of the list `xs` is {op} {t}, else False (True for an empty "
   "list).", '''
def all_compare(xs):
    return all(x {op} {t} for x in xs)
''', grid(op=CMP, t=range(-30, 31)),
   lambda rng, d, p: (_near(rng, d, p["t"] + rng.choice([-4, 0, 4]), 4),),
   {"off_by_one": ("{op} {t} for", "{op} {t+1} for"), "wrong_logic": ("return all(", "return not all("),
    "wrong_return": ("return all(", "return any(")},
   lambda p: (([],), ([p["t"]],), ([p["t"] + 1],), ([p["t"] - 5, p["t"] + 5],)))

_t("lists", 0, "returns True if at least one element of the list `xs` is {op} {t}, else False (False for an "
   "empty list).", '''
def any_compare(xs):
    return any(x {op} {t} for x in xs)
''', grid(op=CMP, t=range(-30, 31)),
   lambda rng, d, p: (_near(rng, d, p["t"] + rng.choice([-4, 0, 4]), 4),),
   {"off_by_one": ("{op} {t} for", "{op} {t+1} for"), "wrong_logic": ("return any(", "return not any("),
    "wrong_return": ("return any(", "return all(")},
   lambda p: (([],), ([p["t"]],), ([p["t"] + 1],), ([p["t"] - 5, p["t"] + 5],)))

_t("lists", 0, "returns the elements of the list `xs` that lie between {lo} and {hi} inclusive, in their "
   "original order.", '''
def keep_between(xs):
    return [x for x in xs if {lo} <= x <= {hi}]
''', grid(lo=range(-20, 21), hi=range(-20, 41), where=lambda p: 0 <= p["hi"] - p["lo"] <= 20),
   lambda rng, d, p: ([rng.randint(p["lo"] - 4, p["hi"] + 4) for _ in range(_n(rng, d))],),
   {"off_by_one": ("x <= {hi}", "x < {hi}"), "wrong_operator": ("{lo} <= x", "{lo} < x"),
    "wrong_logic": ("if {lo}", "if not {lo}")},
   lambda p: (([p["lo"], p["hi"]],), ([p["lo"] - 1],)))

_t("lists", 0, "returns a copy of the list `xs` in which every element greater than {t} is replaced by {v}.", '''
def replace_above(xs):
    return [{v} if x > {t} else x for x in xs]
''', grid(t=range(-10, 11), v=range(-10, 11), where=lambda p: p["v"] != p["t"]),
   lambda rng, d, p: (_near(rng, d, p["t"], 5),),
   {"off_by_one": ("x > {t}", "x >= {t}"), "wrong_logic": ("else x", "else {v}"),
    "wrong_operator": ("x > {t}", "x < {t}")},
   lambda p: (([p["t"]],), ([p["t"] - 1, p["t"] + 1],)))

_t("lists", 0, "returns every {k}-th element of the list `xs`, starting with the element at index {s} (an "
   "empty list if `xs` is shorter).", '''
def every_kth(xs):
    return xs[{s}::{k}]
''', grid(k=range(2, 13), s=range(10)),
   lambda rng, d, p: ([rng.randint(-9, 9) for _ in range(rng.randint(0, p["s"] + (2 + d) * p["k"]))],),
   {"off_by_one": ("[{s}::", "[{s+1}::"), "wrong_logic": ("::{k}]", "::{k+1}]")},
   lambda p: ((list(range(p["s"] + 2 * p["k"] + 2)),),))

_t("lists", 0, "returns the list of the indices i (in increasing order) for which `xs[i]` is {op} {t}.", '''
def indices_where(xs):
    return [i for i, x in enumerate(xs) if x {op} {t}]
''', grid(op=CMP_EQ, t=range(-10, 11)),
   lambda rng, d, p: (_near(rng, d, p["t"], 3),),
   {"off_by_one": ("[i for", "[i + 1 for"), "wrong_return": ("[i for", "[x for"),
    "wrong_logic": ("if x", "if not x")},
   lambda p: (([p["t"] + 20, p["t"], p["t"] + 1, p["t"] - 1, p["t"] + 5],),
              ([p["t"] - 1, p["t"] + 20, p["t"] + 1, p["t"], p["t"] + 5],)))

# ---- level 1: a short loop or a sorted copy -------------------------------------------------------
_ORD = ("1st", "2nd", "3rd", "4th", "5th", "6th", "7th", "8th")
_t("lists", 1, "returns the {k} {order} distinct value in the list `xs`, or None if `xs` has too few "
   "distinct values.", '''
def kth_distinct(xs):
    vals = {order}
    return vals[{k}] if len(vals) > {k} else None
''', grid(k=[Opt(str(i + 1), str(i), _ORD[i]) for i in range(8)],
          order=(Opt("smallest", "sorted(set(xs))", "smallest"),
                 Opt("largest", "sorted(set(xs), reverse=True)", "largest"))),
   lambda rng, d, p: ([rng.randint(0, 3 + int(p["k"].code) + d) for _ in range(_n(rng, d, 1) + int(p["k"].code))],),
   {"off_by_one": ("> {k} else", ">= {k} else"), "wrong_return": ("return vals[{k}]", "return xs[{k}]")},
   lambda p: ((list(range(int(p["k"].code))),), ([5, 3, 9, 1, 7, 0, 8, 6, 2, 4],)))

_t("lists", 1, "returns the running sums of the list `xs` taken modulo {m}: element i of the result is "
   "(xs[0] + ... + xs[i]) % {m}.", '''
def prefix_mod(xs):
    out, total = [], 0
    for x in xs:
        total = (total + x) % {m}
        out.append(total)
    return out
''', grid(m=range(2, 201)),
   lambda rng, d, p: ([rng.randint(-p["m"], 2 * p["m"]) for _ in range(_n(rng, d))],),
   {"off_by_one": ("% {m}", "% {m+1}"), "wrong_logic": ("(total + x)", "(0 + x)"),
    "wrong_return": ("out.append(total)", "out.append(x)")},
   lambda p: (([p["m"] - 1, 1, p["m"] + 1],),))

_t("lists", 1, "splits the list `xs` into consecutive chunks of {k} elements (the last one may be shorter) and "
   "returns the list of the {agg} of each chunk.", '''
def chunk_agg(xs):
    return [{agg}(xs[i:i + {k}]) for i in range(0, len(xs), {k})]
''', grid(k=range(2, 10), agg=(Opt("sum", "sum", "sum"), Opt("max", "max", "largest element"),
                                Opt("min", "min", "smallest element"))),
   lambda rng, d, p: (_ints(rng, d + p["k"] // 2),),
   {"off_by_one": ("xs[i:i + {k}]", "xs[i:i + {k-1}]"), "wrong_logic": ("len(xs), {k})", "len(xs), {k+1})")},
   lambda p: ((([0] * (p["k"] - 1) + [9]) * 2,), (([5] * (p["k"] - 1) + [-5]) * 2,), (list(range(3 * p["k"])),)))

_t("lists", 1, "returns how many runs of {k} consecutive elements of the list `xs` have a sum {op} {t}.", '''
def count_windows(xs):
    return sum(1 for i in range(len(xs) - {k-1}) if sum(xs[i:i + {k}]) {op} {t})
''', grid(k=range(2, 6), op=CMP, t=range(-10, 11)),
   lambda rng, d, p: (_near(rng, d + 1, p["t"] // p["k"], 4),),
   {"off_by_one": ("len(xs) - {k-1}", "len(xs) - {k}"), "wrong_logic": ("if sum", "if not sum"),
    "wrong_operator": ("{op} {t})", "{op} {t+1})")},
   lambda p: (([-100, p["t"] + 1] + [0] * (p["k"] - 1),), ([100, p["t"] - 1] + [0] * (p["k"] - 1),),
              ([p["t"] + 1] + [0] * (p["k"] - 1),), ([p["t"]] + [0] * (p["k"] - 1),)))

_t("lists", 1, "returns the {k} {order} elements of the list `xs` (all of them if there are fewer), {order} "
   "first.", '''
def top_k(xs):
    return sorted(xs{order})[:{k}]
''', grid(k=range(1, 11), order=(Opt("largest", ", reverse=True", "largest"), Opt("smallest", "", "smallest"))),
   lambda rng, d, p: (_ints(rng, d + 2),),
   {"off_by_one": ("[:{k}]", "[:{k+1}]"), "wrong_return": ("return sorted(xs{order})", "return list(xs)")},
   lambda p: ((list(range(p["k"] + 2, -3, -1)),), (list(range(-2, p["k"] + 3)),)))

# ---- level 2: loops that keep state, pairs ---------------------------------------------------------
_t("lists", 2, "returns the length of the longest run of consecutive elements of the list `xs` that are all "
   "{op} {t} (0 if there is none).", '''
def longest_run(xs):
    best = cur = 0
    for x in xs:
        cur = cur + 1 if x {op} {t} else 0
        best = max(best, cur)
    return best
''', grid(op=CMP_EQ, t=range(-10, 11)),
   lambda rng, d, p: (_near(rng, d + 2, p["t"], 2),),
   {"wrong_return": ("return best", "return cur"), "wrong_logic": ("else 0", "else cur"),
    "off_by_one": ("best = cur = 0", "best = cur = 1")},
   lambda p: (([p["t"] + 1, p["t"], p["t"] - 1, p["t"] - 1, p["t"], p["t"] + 1, p["t"] + 9, p["t"] - 9],),
              ([p["t"] + 1, p["t"] + 2, p["t"] - 9, p["t"]],), ([p["t"] - 1, p["t"] - 2, p["t"] + 9, p["t"]],),
              ([p["t"], p["t"], p["t"] + 9],), ([],)))

_t("lists", 2, "returns how many pairs of positions i < j in the list `xs` have xs[i] + xs[j] {op} {t}.", '''
def count_pairs(xs):
    n = len(xs)
    return sum(1 for i in range(n) for j in range(i + 1, n) if xs[i] + xs[j] {op} {t})
''', grid(op=CMP_EQ, t=range(-10, 11)),
   lambda rng, d, p: (_near(rng, d, p["t"] // 2, 4),),
   {"off_by_one": ("range(i + 1, n)", "range(i + 2, n)"), "wrong_operator": ("xs[i] + xs[j]", "xs[i] - xs[j]")},
   lambda p: (([0, p["t"]],), ([1, p["t"]],), ([-1, p["t"]],), ([0, p["t"] + 1],), ([p["t"] - 3, 3],)))

_t("lists", 2, "returns a dict mapping each remainder that occurs when the elements of the list `xs` are "
   "divided by {k} to the list of those elements (in their original order).", '''
def group_by_mod(xs):
    groups = {}
    for x in xs:
        groups.setdefault(x % {k}, []).append(x)
    return groups
''', grid(k=range(2, 13)),
   lambda rng, d, p: (_ints(rng, d + 1, -3 * p["k"], 3 * p["k"]),),
   {"off_by_one": ("x % {k}", "x % {k+1}"), "wrong_return": ("return groups", "return list(groups)")},
   lambda p: ((list(range(2 * p["k"] + 2)),),))

_t("lists", 2, "returns the list `xs` with each value kept only for its first {k} occurrences, in the "
   "original order.", '''
def keep_at_most(xs):
    seen, out = {}, []
    for x in xs:
        seen[x] = seen.get(x, 0) + 1
        if seen[x] <= {k}:
            out.append(x)
    return out
''', grid(k=range(1, 7)),
   lambda rng, d, p: ([rng.randint(0, 3) for _ in range(_n(rng, d + p["k"]))],),
   {"off_by_one": ("<= {k}", "< {k}"), "wrong_logic": ("seen.get(x, 0) + 1", "seen.get(x, 0)")},
   lambda p: (([5] * (p["k"] + 2),),))
