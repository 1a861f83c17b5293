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

    @property
    def name(self) -> str:
        return re.search(r"^def (\w+)\(", self.source, re.M).group(1)

    @property
    def signature(self) -> str:
        return re.search(r"^def (\w+\(.*\)):", self.source, re.M).group(1)


PROBLEMS: list[Problem] = []


def _p(topic, level, statement, source, gen, bugs, edge=()):
    PROBLEMS.append(Problem(topic, level, statement, textwrap.dedent(source).strip("\n"), gen, bugs, edge))


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


# ---- strings ------------------------------------------------------------------------------------
_p("strings", 0, "returns the words of the string `s` in reverse order, joined by single spaces.", '''
def reverse_words(s):
    return " ".join(s.split()[::-1])
''', lambda r, d: (" ".join(_words(r, d, 1)),),
   {"wrong_return": ("[::-1]", ""), "off_by_one": ("[::-1]", "[-2::-1]")}, (("a b",),))

_p("strings", 0, "returns True if `s` reads the same both ways, ignoring case and any character that is "
   "not a letter or digit.", '''
def is_palindrome(s):
    t = [c.lower() for c in s if c.isalnum()]
    return t == t[::-1]
''', lambda r, d: (_palindrome(r, d) if r.random() < 0.5 else _word(r, _n(r, d, 1), "abA1 "),),
   {"wrong_operator": ("t == t", "t != t"), "wrong_logic": ("c.lower()", "c")}, (("aA",), ("ab",)))

_p("strings", 0, "returns how many vowels (a, e, i, o, u, either case) the string `s` contains.", '''
def count_vowels(s):
    return sum(1 for c in s.lower() if c in "aeiou")
''', lambda r, d: (_word(r, _n(r, d, 1), "aeEIbcdx "),),
   {"wrong_operator": (' in "aeiou"', ' not in "aeiou"'), "off_by_one": ("return sum(", "return 1 + sum(")})

_p("strings", 1, "shifts every lowercase letter of `s` forward by `k` places in the alphabet, wrapping "
   "from z to a, and leaves other characters unchanged.", '''
def caesar(s, k):
    out = ""
    for c in s:
        if c.islower():
            c = chr((ord(c) - 97 + k) % 26 + 97)
        out += c
    return out
''', lambda r, d: (_word(r, _n(r, d, 1), "abxyzQ !"), r.randint(1, 30)),
   {"wrong_operator": ("+ k)", "- k)"), "off_by_one": ("% 26", "% 25"), "wrong_return": ("return out", "return s")},
   (("xyz", 3),))

_p("strings", 1, "returns the run-length encoding of `s`: each run of equal characters becomes the "
   "character followed by the run length, e.g. 'aaab' -> 'a3b1'.", '''
from itertools import groupby

def compress(s):
    return "".join(c + str(len(list(g))) for c, g in groupby(s))
''', lambda r, d: (_word(r, _n(r, d), "aab"),),
   {"off_by_one": ("len(list(g))", "len(list(g)) - 1"), "wrong_return": ('"".join(c + ', '"".join(')})

# ---- lists --------------------------------------------------------------------------------------
_p("lists", 0, "returns the list `nums` rotated left by `k` positions (k may exceed the length).", '''
def rotate_left(nums, k):
    if not nums:
        return []
    k %= len(nums)
    return nums[k:] + nums[:k]
''', lambda r, d: (_ints(r, d, min_len=2), r.randint(1, 9)),
   {"off_by_one": ("nums[k:] + nums[:k]", "nums[k + 1:] + nums[:k + 1]"),
    "wrong_return": ("return nums[k:] + nums[:k]", "return nums[:k] + nums[k:]")}, (([1, 2, 3], 1),))

_p("lists", 1, "returns the second largest distinct value in `nums`, or None if there are fewer than two "
   "distinct values.", '''
def second_largest(nums):
    vals = sorted(set(nums))
    return vals[-2] if len(vals) >= 2 else None
''', lambda r, d: (_ints(r, d, 0, 5 + d),),
   {"off_by_one": ("vals[-2]", "vals[-1]"), "wrong_operator": (">= 2", ">= 1")}, (([1, 2],), ([3],)))

# ---- dicts --------------------------------------------------------------------------------------
_p("dicts", 0, "returns a dict mapping each word of `s` (split on whitespace) to how often it occurs.", '''
def word_freq(s):
    counts = {}
    for w in s.split():
        counts[w] = counts.get(w, 0) + 1
    return counts
''', lambda r, d: (" ".join(_word(r, r.randint(1, 2), "ab") for _ in range(_n(r, d, 1))),),
   {"off_by_one": ("counts.get(w, 0)", "counts.get(w, 1)"), "wrong_return": ("return counts", "return len(counts)")})

_p("dicts", 1, "returns the index of the first character of `s` that occurs exactly once, or -1 if "
   "there is none.", '''
def first_unique(s):
    counts = {}
    for c in s:
        counts[c] = counts.get(c, 0) + 1
    for i, c in enumerate(s):
        if counts[c] == 1:
            return i
    return -1
''', lambda r, d: (_word(r, _n(r, d, 1), "abcd"),),
   {"wrong_operator": ("counts[c] == 1", "counts[c] > 1"), "wrong_return": ("return -1", "return len(s)"),
    "off_by_one": ("return i\n", "return i + 1\n")}, (("aab",), ("aa",)))

# ---- math / number theory ------------------------------------------------------------------------
_p("math", 0, "returns the greatest common divisor of the positive integers in the non-empty list `nums`.", '''
from math import gcd

def gcd_list(nums):
    g = 0
    for x in nums:
        g = gcd(g, x)
    return g
''', lambda r, d: ([r.randint(1, 6) * r.choice([2, 3, 5, 6]) for _ in range(_n(r, d, 1))],),
   {"wrong_operator": ("gcd(g, x)", "g + x"), "off_by_one": ("g = 0", "g = 1"), "wrong_return": ("return g", "return x")},
   (([4, 6],),))

_p("math", 0, "returns True if the integer `n` is a prime number.", '''
def is_prime(n):
    if n < 2:
        return False
    for d in range(2, int(n ** 0.5) + 1):
        if n % d == 0:
            return False
    return True
''', lambda r, d: (r.randint(0, 40 * (d + 1)),),
   {"off_by_one": ("int(n ** 0.5) + 1", "int(n ** 0.5)"), "wrong_operator": ("n < 2", "n <= 2")},
   ((4,), (9,), (2,), (25,)))

_p("math", 0, "returns the sum of the decimal digits of the non-negative integer `n`.", '''
def digit_sum(n):
    return sum(int(c) for c in str(n))
''', lambda r, d: (r.randint(0, 10 ** (2 + d)),),
   {"off_by_one": ("str(n)", "str(n)[1:]"), "wrong_return": ("return sum(", "return max(")}, ((12,),))

# ---- sorting ------------------------------------------------------------------------------------
_p("sorting", 0, "returns the strings in `words` sorted by length, shortest first, ties in alphabetical order.", '''
def sort_by_length(words):
    return sorted(words, key=lambda w: (len(w), w))
''', lambda r, d: (_words(r, d, 2),),
   {"wrong_logic": ("key=lambda w: (len(w), w)", "key=len"),
    "wrong_operator": ("sorted(words,", "sorted(words, reverse=True,")}, ((["b", "a"],),))

_p("sorting", 1, "returns the k-th smallest value in `nums` (k counts from 1; duplicates count separately).", '''
def kth_smallest(nums, k):
    return sorted(nums)[k - 1]
''', lambda r, d: (lambda xs: (xs, r.randint(1, len(xs))))(_ints(r, d, min_len=1)),
   {"off_by_one": ("[k - 1]", "[k]"), "wrong_operator": ("sorted(nums)", "sorted(nums, reverse=True)")},
   (([1, 2], 2),))

# ---- searching ----------------------------------------------------------------------------------
_p("searching", 1, "takes `nums` sorted ascending and returns the smallest index i with nums[i] >= `target` "
   "(len(nums) if none), using binary search.", '''
def lower_bound(nums, target):
    lo, hi = 0, len(nums)
    while lo < hi:
        mid = (lo + hi) // 2
        if nums[mid] < target:
            lo = mid + 1
        else:
            hi = mid
    return lo
''', lambda r, d: (sorted(_ints(r, d, 0, 9)), r.randint(-1, 10)),
   {"wrong_operator": ("nums[mid] < target", "nums[mid] <= target"), "off_by_one": ("return lo", "return lo - 1")},
   (([1, 2, 2], 2),))

_p("searching", 0, "returns the index of the first occurrence of `target` in `nums`, or -1 if absent.", '''
def find_index(nums, target):
    for i, x in enumerate(nums):
        if x == target:
            return i
    return -1
''', lambda r, d: (_ints(r, d, 0, 6), r.randint(0, 7)),
   {"off_by_one": ("return i\n", "return i + 1\n"), "wrong_return": ("return -1", "return None"),
    "wrong_operator": ("x == target", "x >= target")}, (([5, 1], 1), ([], 1)))

# ---- recursion ----------------------------------------------------------------------------------
_p("recursion", 1, "flattens the arbitrarily nested list `items` into one list of its non-list elements, "
   "in order, using recursion.", '''
def flatten(items):
    out = []
    for x in items:
        if isinstance(x, list):
            out.extend(flatten(x))
        else:
            out.append(x)
    return out
''', lambda r, d: (_nested(r, 2 + d),),
   {"wrong_return": ("out.extend(flatten(x))", "out.append(flatten(x))"),
    "wrong_logic": ("out.extend(flatten(x))", "out.extend(x)")}, (([[1, [2]]],),))

_p("recursion", 1, "returns the number of paths from the top-left to the bottom-right cell of a `rows` x "
   "`cols` grid moving only right or down, using recursion.", '''
def count_paths(rows, cols):
    if rows == 1 or cols == 1:
        return 1
    return count_paths(rows - 1, cols) + count_paths(rows, cols - 1)
''', lambda r, d: (r.randint(1, 3 + d), r.randint(1, 3 + d)),
   {"wrong_operator": ("+ count_paths(rows, cols - 1)", "* count_paths(rows, cols - 1)"),
    "wrong_return": ("return 1\n", "return 0\n")}, ((2, 2),))

# ---- two pointers -------------------------------------------------------------------------------
_p("two_pointers", 1, "takes `nums` sorted ascending and returns True if two different positions hold values "
   "summing to `target`, using two pointers.", '''
def has_pair_sum(nums, target):
    i, j = 0, len(nums) - 1
    while i < j:
        s = nums[i] + nums[j]
        if s == target:
            return True
        if s < target:
            i += 1
        else:
            j -= 1
    return False
''', lambda r, d: (sorted(_ints(r, d, 0, 9)), r.randint(0, 18)),
   {"off_by_one": ("while i < j:", "while i < j - 1:"), "wrong_return": ("return False", "return True")},
   (([1, 2], 3), ([1, 2], 9)))

_p("two_pointers", 0, "returns True if `s` is a subsequence of `t` (its characters appear in `t` in order, "
   "not necessarily adjacent).", '''
def is_subsequence(s, t):
    i = 0
    for c in t:
        if i < len(s) and s[i] == c:
            i += 1
    return i == len(s)
''', lambda r, d: (lambda t: ("".join(c for c in t if r.random() < 0.5) if r.random() < 0.5
                              else _word(r, r.randint(1, 3), "abc"), t))(_word(r, _n(r, d, 1), "abc")),
   {"wrong_operator": ("i == len(s)", "i > len(s)"), "off_by_one": ("i == len(s)", "i >= len(s) - 1")},
   (("ab", "a"), ("a", "a")))

# ---- stacks -------------------------------------------------------------------------------------
_p("stacks", 0, "returns True if every bracket in `s` (any of ()[]{}) is properly matched and nested.", '''
def balanced(s):
    pairs = {")": "(", "]": "[", "}": "{"}
    stack = []
    for c in s:
        if c in "([{":
            stack.append(c)
        elif c in pairs:
            if not stack or stack.pop() != pairs[c]:
                return False
    return not stack
''', lambda r, d: (lambda s: (s if r.random() < 0.5 else "".join(r.sample(s, len(s))) + r.choice(["", "(", "]"]),))(
        _balanced(r, 2 + d)),
   {"wrong_return": ("return not stack", "return True"), "wrong_operator": ("stack.pop() != pairs[c]", "stack.pop() == pairs[c]")},
   (("(",), ("()",)))

_p("stacks", 2, "evaluates `tokens`, an expression in reverse Polish notation whose tokens are "
   "non-negative integers (as strings) or '+', '-', '*', and returns the integer result.", '''
def eval_rpn(tokens):
    stack = []
    for t in tokens:
        if t in "+-*":
            b, a = stack.pop(), stack.pop()
            stack.append(a + b if t == "+" else a - b if t == "-" else a * b)
        else:
            stack.append(int(t))
    return stack[-1]
''', lambda r, d: (_rpn(r, 1 + d),),
   {"wrong_operator": ("a - b if", "b - a if"), "wrong_logic": ("else a * b)", "else a + b)")},
   ((["5", "2", "-"],), (["3", "3", "*"],)))

# ---- intervals ----------------------------------------------------------------------------------
_p("intervals", 1, "merges overlapping intervals in `intervals`, a list of [start, end] pairs (touching "
   "intervals overlap), and returns the merged list sorted by start.", '''
def merge_intervals(intervals):
    out = []
    for s, e in sorted(intervals):
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return out
''', lambda r, d: (_intervals(r, d),),
   {"wrong_operator": ("s <= out[-1][1]", "s < out[-1][1]"), "wrong_logic": ("max(out[-1][1], e)", "e")},
   (([[1, 3], [3, 5]],), ([[1, 9], [2, 3]],)))

_p("intervals", 2, "returns the total length of the number line covered by the [start, end) intervals in "
   "`intervals`, counting overlaps once.", '''
def covered_length(intervals):
    total, end = 0, None
    for s, e in sorted(intervals):
        if end is None or s > end:
            total += e - s
            end = e
        elif e > end:
            total += e - end
            end = e
    return total
''', lambda r, d: (_intervals(r, d),),
   {"wrong_return": ("return total", "return sum(e - s for s, e in intervals)"),
    "wrong_logic": ("total += e - end", "total += e - s")}, (([[1, 5], [2, 6]],),))

# ---- matrices -----------------------------------------------------------------------------------
_p("matrices", 0, "returns the transpose of the matrix `m` (a list of equal-length rows) as a list of lists.", '''
def transpose(m):
    return [list(row) for row in zip(*m)]
''', lambda r, d: (_matrix(r, d),),
   {"wrong_return": ("[list(row) for row in zip(*m)]", "[row[:] for row in m]"), "off_by_one": ("zip(*m)", "zip(*m[1:])")},
   (([[1, 2]],),))

_p("matrices", 2, "returns the elements of the matrix `m` in clockwise spiral order starting at the top-left.", '''
def spiral_order(m):
    out = []
    while m:
        out += m[0]
        m = [list(r) for r in zip(*m[1:])][::-1]
    return out
''', lambda r, d: (_matrix(r, d),),
   {"wrong_logic": ("][::-1]", "]"), "wrong_return": ("return out", "return out[::-1]")},
   (([[1, 2], [3, 4]],),))

_p("matrices", 0, "returns the sum of both diagonals of the square matrix `m`, counting the centre cell once "
   "when the size is odd.", '''
def diagonal_sum(m):
    n = len(m)
    total = sum(m[i][i] + m[i][n - 1 - i] for i in range(n))
    return total - (m[n // 2][n // 2] if n % 2 else 0)
''', lambda r, d: (_matrix(r, d, *[r.randint(1, 2 + d)] * 2),),
   {"off_by_one": ("m[i][n - 1 - i]", "m[i][n - 2 - i]"),
    "wrong_return": ("return total - (m[n // 2][n // 2] if n % 2 else 0)", "return total")},
   (([[1, 2], [3, 4]],), ([[5]],)))

# ---- arithmetic ---------------------------------------------------------------------------------
_p("arithmetic", 0, "converts the non-negative integer `seconds` into an 'H:MM:SS' string.", '''
def to_hms(seconds):
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}"
''', lambda r, d: (r.randint(0, 4000 * (d + 1)),),
   {"wrong_logic": ("divmod(rest, 60)", "divmod(seconds, 60)"), "wrong_return": ("{m:02d}:{s:02d}", "{s:02d}:{m:02d}")},
   ((3661,), (3725,)))

# ---- bit manipulation ---------------------------------------------------------------------------
_p("bits", 0, "returns the number of 1 bits in the binary form of the non-negative integer `n`.", '''
def count_bits(n):
    return bin(n).count("1")
''', lambda r, d: (r.randint(0, 2 ** (5 + 2 * d)),),
   {"wrong_return": ('count("1")', 'count("0")'), "off_by_one": ("bin(n)", "bin(n >> 1)")}, ((5,),))

_p("bits", 1, "takes `nums`, where every value appears exactly twice except one, and returns the value "
   "that appears once, using XOR.", '''
def single_number(nums):
    x = 0
    for v in nums:
        x ^= v
    return x
''', lambda r, d: (lambda xs: (r.sample(xs + xs[1:], 2 * len(xs) - 1),))(r.sample(range(1, 40), _n(r, d, 1))),
   {"wrong_operator": ("x ^= v", "x |= v"), "wrong_return": ("return x", "return nums[0]")}, (([1, 2, 1],),))

_p("bits", 0, "returns True if the integer `n` is a power of two.", '''
def is_power_of_two(n):
    return n > 0 and n & (n - 1) == 0
''', lambda r, d: (2 ** r.randint(0, 8 + d) if r.random() < 0.5 else r.randint(-2, 300),),
   {"wrong_operator": ("n > 0 and", "n >= 0 and"), "off_by_one": ("n & (n - 1)", "n & (n - 2)")}, ((0,), (1,)))

# ---- prefix sums --------------------------------------------------------------------------------
_p("prefix_sums", 1, "returns, for each pair [i, j] in `queries`, the sum of nums[i] through nums[j] "
   "inclusive, using prefix sums.", '''
def range_sums(nums, queries):
    pre = [0]
    for x in nums:
        pre.append(pre[-1] + x)
    return [pre[j + 1] - pre[i] for i, j in queries]
''', lambda r, d: (lambda xs: (xs, [sorted(r.choices(range(len(xs)), k=2)) for _ in range(1 + d)]))(
        _ints(r, d, min_len=1)),
   {"off_by_one": ("pre[j + 1] - pre[i]", "pre[j] - pre[i]"), "wrong_operator": ("pre[-1] + x", "pre[-1] - x")},
   (([1, 2], [[0, 1]]),))

_p("prefix_sums", 1, "returns the largest sum of `k` consecutive values in `nums` (1 <= k <= len(nums)).", '''
def max_window_sum(nums, k):
    best = cur = sum(nums[:k])
    for i in range(k, len(nums)):
        cur += nums[i] - nums[i - k]
        best = max(best, cur)
    return best
''', lambda r, d: (lambda xs: (xs, r.randint(1, len(xs))))(_ints(r, d, min_len=1)),
   {"off_by_one": ("nums[i - k]", "nums[i - k + 1]"), "wrong_return": ("return best", "return cur")},
   (([5, 1, 1], 1), ([1, 2, 3], 1)))

# ---- dynamic programming ------------------------------------------------------------------------
_p("dp", 0, "returns the number of ways to climb `n` stairs taking 1 or 2 steps at a time (n >= 0).", '''
def climb_stairs(n):
    a, b = 1, 1
    for _ in range(n):
        a, b = b, a + b
    return a
''', lambda r, d: (r.randint(0, 8 + 4 * d),),
   {"off_by_one": ("range(n)", "range(n - 1)"), "wrong_return": ("return a", "return b")}, ((3,),))

_p("dp", 1, "returns the largest sum of a non-empty contiguous run of values in `nums`.", '''
def max_subarray(nums):
    best = cur = nums[0]
    for x in nums[1:]:
        cur = max(x, cur + x)
        best = max(best, cur)
    return best
''', lambda r, d: (_ints(r, d, min_len=1),),
   {"wrong_logic": ("max(x, cur + x)", "cur + x"), "wrong_return": ("return best", "return cur")},
   (([-5, 3],), ([3, -5],)))

_p("dp", 2, "returns the fewest coins from `coins` (unlimited supply of each) summing to `amount`, or -1 "
   "if that is impossible.", '''
def min_coins(coins, amount):
    best = [0] + [None] * amount
    for a in range(1, amount + 1):
        opts = [best[a - c] for c in coins if c <= a and best[a - c] is not None]
        best[a] = min(opts) + 1 if opts else None
    return -1 if best[amount] is None else best[amount]
''', lambda r, d: (sorted(r.sample(range(2, 12), r.randint(1, 3))), r.randint(0, 20 + 10 * d)),
   {"off_by_one": ("min(opts) + 1", "min(opts)"), "wrong_return": ("return -1 if", "return 0 if")},
   (([2], 3), ([2], 4)))

# ---- greedy -------------------------------------------------------------------------------------
_p("greedy", 0, "returns how many coins are used to pay `amount` when always taking as many as possible of "
   "the largest coin in `coins` first (`coins` holds distinct values and includes 1).", '''
def greedy_coins(amount, coins):
    count = 0
    for c in sorted(coins, reverse=True):
        count += amount // c
        amount %= c
    return count
''', lambda r, d: (r.randint(0, 50 * (d + 1)), [1] + r.sample(range(2, 30), r.randint(1, 3))),
   {"wrong_operator": ("sorted(coins, reverse=True)", "sorted(coins)"), "wrong_return": ("return count", "return amount")},
   ((10, [1, 5]),))

_p("greedy", 1, "takes `meetings`, a list of [start, end] pairs, and returns the largest number that can be "
   "attended without overlap (one may start when the previous ends).", '''
def max_meetings(meetings):
    count, end = 0, None
    for s, e in sorted(meetings, key=lambda m: m[1]):
        if end is None or s >= end:
            count += 1
            end = e
    return count
''', lambda r, d: (_intervals(r, d),),
   {"wrong_operator": ("s >= end", "s > end"), "wrong_logic": ("key=lambda m: m[1]", "key=lambda m: m[0]")},
   (([[1, 2], [2, 3]],), ([[0, 9], [1, 2], [3, 4]],)))

# ---- parsing ------------------------------------------------------------------------------------
_p("parsing", 0, "returns the sum of all integers (maximal runs of digits) in the string `s`.", r'''
import re

def sum_numbers(s):
    return sum(int(x) for x in re.findall(r"\d+", s))
''', lambda r, d: (_word(r, _n(r, d, 1) * 2, "ab 123-x"),),
   {"wrong_logic": (r'r"\d+"', r'r"\d"'), "wrong_return": ("return sum(", "return len(")}, (("a12b3",),))

_p("parsing", 1, "parses a string like 'a=1;b=22' into a dict mapping each key to its integer value "
   "(an empty string gives {}).", '''
def parse_pairs(s):
    out = {}
    for part in s.split(";"):
        if part:
            key, value = part.split("=")
            out[key] = int(value)
    return out
''', lambda r, d: (";".join(f"{_word(r, r.randint(1, 2), 'xyz')}={r.randint(0, 99)}" for _ in range(_n(r, d))),),
   {"wrong_logic": ("int(value)", "value"), "wrong_return": ("return out", "return list(out)")}, (("a=1",),))

# ---- sets ---------------------------------------------------------------------------------------
_p("sets", 0, "returns the sorted list of distinct values that appear in both `a` and `b`.", '''
def common_sorted(a, b):
    return sorted(set(a) & set(b))
''', lambda r, d: (_ints(r, d, 0, 6), _ints(r, d, 0, 6)),
   {"wrong_operator": ("set(a) & set(b)", "set(a) | set(b)"), "wrong_logic": ("set(a) & set(b)", "set(a) - set(b)")},
   (([1, 2], [2, 3]),))

_p("sets", 0, "returns True if some value occurs more than once in `nums`.", '''
def has_duplicates(nums):
    return len(set(nums)) < len(nums)
''', lambda r, d: (_ints(r, d, 0, 4 + 3 * d),),
   {"wrong_operator": ("len(set(nums)) < len(nums)", "len(set(nums)) <= len(nums)"),
    "wrong_return": ("return len(set(nums)) < len(nums)", "return len(set(nums)) > 1")}, (([1, 2],), ([1, 1],)))

# ---- counting -----------------------------------------------------------------------------------
_p("counting", 0, "returns how many values in `nums` are strictly greater than the value just before them.", '''
def count_increases(nums):
    return sum(1 for a, b in zip(nums, nums[1:]) if b > a)
''', lambda r, d: (_ints(r, d, 0, 5),),
   {"wrong_operator": ("b > a", "b >= a"), "off_by_one": ("zip(nums, nums[1:])", "zip(nums, nums[2:])")},
   (([1, 1],), ([1, 2, 3],)))

_p("counting", 1, "returns the value occurring most often in `nums` (non-empty); on ties, the smallest such value.", '''
def most_frequent(nums):
    counts = {}
    for x in nums:
        counts[x] = counts.get(x, 0) + 1
    return min(counts, key=lambda x: (-counts[x], x))
''', lambda r, d: (_ints(r, d, 0, 5, min_len=1),),
   {"wrong_logic": ("(-counts[x], x)", "(counts[x], x)"), "wrong_return": ("return min(counts,", "return max(counts,")},
   (([1, 2, 2],),))

# ---- simulation ---------------------------------------------------------------------------------
_p("simulation", 0, "returns the final (x, y) tuple of a robot that starts at (0, 0) and follows `moves`, a "
   "string of 'U', 'D', 'L', 'R' (up is +y, right is +x).", '''
def robot_position(moves):
    x = y = 0
    for m in moves:
        dx, dy = {"U": (0, 1), "D": (0, -1), "L": (-1, 0), "R": (1, 0)}[m]
        x, y = x + dx, y + dy
    return (x, y)
''', lambda r, d: (_word(r, _n(r, d, 1), "UDLR"),),
   {"wrong_return": ("return (x, y)", "return (y, x)"), "wrong_logic": ('"L": (-1, 0)', '"L": (1, 0)')}, (("L",),))

_p("simulation", 1, "applies `ops`, a list of ['deposit' or 'withdraw', amount] pairs, to a balance starting "
   "at 0, ignoring any withdrawal larger than the balance, and returns the final balance.", '''
def final_balance(ops):
    balance = 0
    for op, amount in ops:
        if op == "deposit":
            balance += amount
        elif amount <= balance:
            balance -= amount
    return balance
''', lambda r, d: ([[r.choice(["deposit", "withdraw"]), r.randint(1, 20)] for _ in range(_n(r, d, 1))],),
   {"wrong_operator": ("amount <= balance", "amount < balance"), "wrong_logic": ("elif amount <= balance:", "else:")},
   (([["deposit", 5], ["withdraw", 5]],), ([["withdraw", 3]],)))

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
