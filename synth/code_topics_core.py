"""Problems of the code family, first half of the topics: strings, lists, dicts, number theory, sorting,
searching, recursion, two pointers, stacks and intervals. Importing the module registers them."""
# ruff: noqa: F401  (not every topic uses every input helper)
from synth.code_problem_kit import (_balanced, _intervals, _ints, _matrix, _n, _nested, _p,
                                     _palindrome, _rpn, _word, _words)

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
