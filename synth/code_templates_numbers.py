"""Procedural code problems on single integers: polynomials, clamping, rounding, divisibility, digits.

Each `_t` call registers a template (see `code_procedural.py`): a statement and a short reference with
{slots}, the grid of parameter sets, an input generator that aims its values at the parameters,
hand-written bugs, and edge inputs that expose every bug for every parameter set. Importing the module
registers the templates.
"""
from synth.code_procedural import Opt, _t, grid

WORDS = ("fizz", "buzz", "bang", "boom", "ping", "pong")


def _around(rng, d, *centres, spread=3):
    """One integer near one of the centres (or anywhere in a range that grows with difficulty)."""
    if rng.random() < 0.3:
        return rng.randint(-20 * (d + 1), 20 * (d + 1))
    return rng.choice(centres) + rng.randint(-spread, spread)


def _digits(rng, d, digit):
    """A non-negative integer about half of whose digits are `digit`."""
    return int("".join(str(rng.choice([digit, rng.randint(0, 9)])) for _ in range(rng.randint(1, 4 + d))))


# ---- level 0: one expression ----------------------------------------------------------------------
_t("numbers", 0, "returns the value of the polynomial {a}*n**2 + {b}*n + {c} at the integer `n`.", '''
def poly_value(n):
    return {a} * n * n + {b} * n + {c}
''', grid(a=[a for a in range(-5, 6) if a], b=range(-5, 6), c=range(-5, 6)),
   lambda rng, d, p: (rng.randint(-5 * (d + 1), 5 * (d + 1)),),
   {"off_by_one": ("n + {c}", "n + {c+1}"), "wrong_operator": ("{a} * n * n", "{a} * n + n"),
    "wrong_logic": ("{b} * n +", "{b} + n +")},
   lambda p: ((0,), (1,), (2,), (3,), (-1,)))

_t("numbers", 0, "returns the integer `x` limited to the range from {lo} to {hi}: {lo} if x is smaller, {hi} "
   "if x is larger, and x itself otherwise.", '''
def clamp_value(x):
    return max({lo}, min({hi}, x))
''', grid(lo=range(-30, 31), hi=range(-29, 51), where=lambda p: 1 <= p["hi"] - p["lo"] <= 20),
   lambda rng, d, p: (_around(rng, d, p["lo"], p["hi"]),),
   {"wrong_operator": ("max({lo}, min({hi}, x))", "min({lo}, max({hi}, x))"),
    "off_by_one": ("min({hi}, x)", "min({hi-1}, x)"), "wrong_return": ("min({hi}, x))", "min({hi}, {lo}))")},
   lambda p: ((p["hi"],), (p["lo"] - 1,), (p["hi"] + 1,)))

_t("numbers", 0, "returns the largest multiple of {k} that is less than or equal to the integer `n`.", '''
def round_down(n):
    return n - n % {k}
''', grid(k=range(2, 101)),
   lambda rng, d, p: (rng.randint(-3 * p["k"], 3 * p["k"] * (d + 1)),),
   {"off_by_one": ("n % {k}", "n % {k+1}"), "wrong_operator": ("n - n", "n + n")},
   lambda p: ((p["k"],), (1,)))

_t("numbers", 0, "returns the smallest multiple of {k} that is greater than or equal to the integer `n`.", '''
def round_up(n):
    return -(-n // {k}) * {k}
''', grid(k=range(2, 101)),
   lambda rng, d, p: (rng.randint(-3 * p["k"], 3 * p["k"] * (d + 1)),),
   {"off_by_one": (") * {k}", ") * {k+1}"), "wrong_logic": ("-(-n // {k})", "(n // {k})")},
   lambda p: ((1,), (p["k"],)))

_t("numbers", 0, "returns how many integers from 1 to `n` (inclusive) are divisible by {a} or by {b} (0 when "
   "`n` is less than 1).", '''
def count_multiples(n):
    return sum(1 for i in range(1, n + 1) if i % {a} == 0 or i % {b} == 0)
''', grid(a=range(2, 21), b=range(3, 21), where=lambda p: p["a"] < p["b"] and p["b"] % p["a"]),
   lambda rng, d, p: (rng.randint(-2, (d + 2) * p["b"]),),
   {"off_by_one": ("n + 1)", "n)"), "wrong_logic": (" or ", " and ")},
   lambda p: ((p["a"],), (p["b"],)))

_t("numbers", 0, "returns True if the integer `n` is divisible by {a} but not by {b}, else False.", '''
def divisible_not(n):
    return n % {a} == 0 and n % {b} != 0
''', grid(a=range(2, 21), b=range(2, 21), where=lambda p: p["a"] != p["b"] and p["a"] % p["b"]),
   lambda rng, d, p: (rng.choice([p["a"], p["b"], p["a"] * p["b"], 1]) * rng.randint(-3 - d, 3 + d)
                      + rng.choice([0, 0, 0, 1, -1]),),
   {"wrong_logic": (" and ", " or "), "wrong_operator": ("{b} != 0", "{b} == 0")},
   lambda p: ((p["a"],), (p["b"],), (p["a"] * p["b"],), (1,)))

_t("numbers", 0, "returns `n` // {k} if the integer `n` is divisible by {k}, and `n` * {a} + {b} otherwise.", '''
def step_value(n):
    return n // {k} if n % {k} == 0 else n * {a} + {b}
''', grid(k=range(2, 6), a=range(2, 6), b=[b for b in range(-9, 10) if b]),
   lambda rng, d, p: (rng.randint(-10 * (d + 1), 10 * (d + 1)),),
   {"wrong_operator": ("n // {k}", "n * {k}"), "wrong_logic": ("== 0 else", "!= 0 else"),
    "off_by_one": ("+ {b}", "+ {b+1}")},
   lambda p: ((p["k"],), (1,)))

_t("numbers", 0, "returns {p} if the integer `n` is positive, {z} if it is zero and {m} if it is negative.", '''
def sign_label(n):
    if n > 0:
        return {p}
    if n == 0:
        return {z}
    return {m}
''', grid(p=range(-3, 4), z=range(-3, 4), m=range(-3, 4), where=lambda q: len({q["p"], q["z"], q["m"]}) == 3),
   lambda rng, d, p: (rng.choice([0, rng.randint(-3, 3), rng.randint(-50 * (d + 1), 50 * (d + 1))]),),
   {"off_by_one": ("n > 0", "n > 1"), "wrong_operator": ("n == 0", "n <= 0"),
    "wrong_return": ("return {m}", "return {z}")},
   lambda p: ((1,), (-1,), (0,)))

_t("numbers", 0, "returns how many decimal digits of the non-negative integer `n` are {op} {t}.", '''
def count_digits(n):
    return sum(1 for c in str(n) if int(c) {op} {t})
''', grid(op=(Opt("gt", ">", "greater than"), Opt("lt", "<", "less than"), Opt("eq", "==", "equal to"),
              Opt("ne", "!=", "different from")), t=range(10),
          where=lambda p: (p["op"].key, p["t"]) not in {("gt", 9), ("lt", 0)}),
   lambda rng, d, p: (_digits(rng, d, p["t"]),),
   {"off_by_one": ("{op} {t})", "{op} {t+1})"), "wrong_logic": ("if int(c)", "if not int(c)"),
    "wrong_return": ("return sum(", "return max(")},
   lambda p: tuple((int(str(x) * 3),) for x in range(10)))

# ---- level 1-2: a loop --------------------------------------------------------------------------
_t("numbers", 1, "returns the sum of the digits of the non-negative integer `n` written in base {b}.", '''
def digit_sum_base(n):
    total = 0
    while n:
        total += n % {b}
        n //= {b}
    return total
''', grid(b=range(2, 17)),
   lambda rng, d, p: (rng.randint(0, max(60, p["b"] ** (2 + d))),),
   {"off_by_one": ("n % {b}", "n % {b+1}"), "wrong_return": ("return total", "return n"),
    "wrong_logic": ("n //= {b}", "n //= {b+1}")},
   lambda p: ((p["b"],), (1,), (p["b"] * p["b"] + p["b"] + 1,)))

_t("numbers", 2, "returns a list of strings for the integers 1 to `n`: {wa} for multiples of {a}, {wb} for "
   "multiples of {b}, the two joined ({wa} first) for multiples of both, and the number itself otherwise.", '''
def fizz_words(n):
    out = []
    for i in range(1, n + 1):
        word = ({wa} if i % {a} == 0 else "") + ({wb} if i % {b} == 0 else "")
        out.append(word or str(i))
    return out
''', grid(a=range(2, 10), b=range(3, 10), wa=WORDS, wb=WORDS,
          where=lambda p: p["a"] < p["b"] and p["wa"] != p["wb"]),
   lambda rng, d, p: (rng.randint(0, p["a"] * p["b"] + 6 + 3 * d),),
   {"off_by_one": ("range(1, n + 1)", "range(1, n)"), "wrong_logic": ("word or str(i)", "word or i"),
    "wrong_operator": ("i % {b} == 0", "i % {b} != 0")},
   lambda p: ((p["b"],), (1,)))
