"""Problems of the code family, second half of the topics: matrices, arithmetic, bit manipulation, prefix
sums, dynamic programming, greedy, parsing, sets, counting and simulation. Importing the module registers them."""
# ruff: noqa: F401  (not every topic uses every input helper)
from synth.code_problem_kit import (_balanced, _intervals, _ints, _matrix, _n, _nested, _p,
                                     _palindrome, _rpn, _word, _words)

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
