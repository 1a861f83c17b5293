"""Procedural code problems on strings and lists of words: chosen characters, affixes, padding, shifts.

Each `_t` call registers a template (see `code_procedural.py`): a statement and a short reference with
{slots}, the grid of parameter sets, an input generator that mixes the chosen characters or affixes into
its strings (so the tests cover them), hand-written bugs, and edge inputs that expose every bug for
every parameter set. Importing the module registers the templates.
"""
import itertools
import string

from synth.code_problem_kit import _n, _word
from synth.code_procedural import Opt, _t, grid

LETTERS = string.ascii_lowercase
ALNUM = LETTERS + string.digits
AFFIXES = tuple("".join(t) for size in (1, 2, 3) for t in itertools.product("abcdef", repeat=size))
PADS = tuple("*-.0#_xz")


def _text(rng, d, special: str, other: str = "xyz Q") -> str:
    """A string of random length mixing the special characters with others."""
    return "".join(rng.choice(special if rng.random() < 0.5 else other) for _ in range(_n(rng, d)))


def _affixed_words(rng, d, affix: str) -> list[str]:
    """Words over a-h, some of which start or end with `affix`."""
    def one():
        word = _word(rng, rng.randint(0, 3), "abcdefgh")
        return rng.choice([word, affix + word, word + affix, word or "g"])
    return [one() for _ in range(_n(rng, d))]


# ---- level 0: one expression ----------------------------------------------------------------------
_t("strings", 0, "returns how many characters of the string `s` are one of the characters in {cs}.", '''
def count_chars_in(s):
    return sum(1 for c in s if c in {cs})
''', grid(cs=["".join(pair) for pair in itertools.combinations(ALNUM, 2)]),
   lambda rng, d, p: (_text(rng, d, p["cs"]),),
   {"wrong_operator": (" in {cs}", " not in {cs}"), "off_by_one": ("return sum(", "return 1 + sum(")},
   lambda p: (("",), (p["cs"][0],)))

_t("strings", 0, "returns the string `s` with every {a} replaced by {b}.", '''
def replace_char(s):
    return s.replace({a}, {b})
''', grid(a=LETTERS, b=LETTERS, where=lambda p: p["a"] != p["b"]),
   lambda rng, d, p: (_text(rng, d, p["a"] + p["b"], "abcxyz "),),
   {"wrong_logic": ("s.replace({a}, {b})", "s.replace({b}, {a})"), "off_by_one": ("{b})", "{b}, 1)")},
   lambda p: ((p["a"] * 2 + p["b"],),))

_t("strings", 0, "returns the string `s` padded on the {side} with {c} characters until it is {w} characters "
   "long (a string that is already long enough is returned unchanged).", '''
def pad_string(s):
    return s.{side}({w}, {c})
''', grid(side=(Opt("left", "rjust", "left"), Opt("right", "ljust", "right")), c=PADS, w=range(3, 21)),
   lambda rng, d, p: (_word(rng, rng.randint(0, p["w"] + 2), "abcde"),),
   {"off_by_one": ("({w},", "({w-1},"), "wrong_logic": ("return s.", "return s[::-1].")},
   lambda p: (("",), ("ab",)))

_t("strings", 0, "returns the words of the list `words` that {keep}{pos} {affix}, in their original order.", '''
def filter_affix(words):
    return [w for w in words if {keep}w.{pos}({affix})]
''', grid(pos=(Opt("start", "startswith", "start with"), Opt("end", "endswith", "end with")),
          keep=(Opt("keep", "", ""), Opt("drop", "not ", "do not ")), affix=AFFIXES[:42]),
   lambda rng, d, p: (_affixed_words(rng, d, p["affix"]),),
   {"wrong_logic": ("if {keep}w", "if not {keep}w"), "off_by_one": ("for w in words if", "for w in words[1:] if")},
   lambda p: (([p["affix"], "g" + p["affix"] + "g"],), (["g" + p["affix"] + "g", p["affix"]],)))

_t("strings", 0, "returns the string `s` with {a} added at the end, unless `s` already ends with {a}.", '''
def ensure_suffix(s):
    return s if s.endswith({a}) else s + {a}
''', grid(a=AFFIXES),
   lambda rng, d, p: (rng.choice(["", p["a"], p["a"][:-1]]) + _word(rng, rng.randint(0, 2 + d), "abcdef")
                      + rng.choice(["", p["a"], p["a"][1:]]),),
   {"wrong_logic": ("if s.endswith", "if not s.endswith"), "wrong_return": ("return s if", "return s + {a} if")},
   lambda p: (("g",), (p["a"],)))

_t("strings", 0, "returns the string `s` with {a} added at the start, unless `s` already starts with {a}.", '''
def ensure_prefix(s):
    return s if s.startswith({a}) else {a} + s
''', grid(a=AFFIXES),
   lambda rng, d, p: (rng.choice(["", p["a"], p["a"][:-1]]) + _word(rng, rng.randint(0, 2 + d), "abcdef")
                      + rng.choice(["", p["a"], p["a"][1:]]),),
   {"wrong_logic": ("if s.startswith", "if not s.startswith"), "wrong_return": ("return s if", "return {a} + s if")},
   lambda p: (("g",), (p["a"],)))

_LEN_OPS = (Opt("gt", ">", "more than"), Opt("lt", "<", "fewer than"), Opt("eq", "==", "exactly"),
            Opt("ge", ">=", "at least"), Opt("le", "<=", "at most"))
_t("strings", 0, "returns how many words of the string `s` (split on whitespace) have {op} {k} characters.", '''
def count_words_len(s):
    return sum(1 for w in s.split() if len(w) {op} {k})
''', grid(op=_LEN_OPS, k=range(2, 10), where=lambda p: p["k"] > 2 or p["op"].key != "lt"),
   lambda rng, d, p: (" ".join(_word(rng, max(1, p["k"] + rng.randint(-2, 2)), "abcdef")
                               for _ in range(_n(rng, d))),),
   {"off_by_one": ("{op} {k})", "{op} {k+1})"), "wrong_return": ("sum(1 for", "sum(len(w) for")},
   lambda p: ((" ".join("a" * n for n in (2, p["k"] - 1, p["k"], p["k"] + 1, p["k"] + 4)),), ("a" * p["k"],)))

_t("strings", 0, "returns the string `s` with every character that is not one of the characters in {keep} "
   "replaced by {m}.", '''
def mask_chars(s):
    return "".join(c if c in {keep} else {m} for c in s)
''', grid(keep=["".join(pair) for pair in itertools.combinations("abcdefghij", 2)], m=tuple("*#_-.")),
   lambda rng, d, p: (_text(rng, d, p["keep"], "abcdefghijz"),),
   {"wrong_operator": (" in {keep}", " not in {keep}"), "wrong_return": ("else {m}", "else c")},
   lambda p: ((p["keep"][0] + "z",),))

# ---- level 1: a loop over characters --------------------------------------------------------------
_t("strings", 1, "shifts every lowercase letter of the string `s` {way} by {k} places in the alphabet "
   "(wrapping around between z and a) and leaves every other character unchanged.", '''
def shift_letters(s):
    out = ""
    for c in s:
        if c.islower():
            c = chr((ord(c) - 97 {way} {k}) % 26 + 97)
        out += c
    return out
''', grid(way=(Opt("fwd", "+", "forward"), Opt("back", "-", "backward")), k=range(1, 26)),
   lambda rng, d, p: (_text(rng, d, "abcxyz", "mnAZ !"),),
   {"wrong_operator": ("% 26", "% 25"), "wrong_return": ("return out", "return s"),
    "off_by_one": ("{way} {k})", "{way} {k+1})")},
   lambda p: (("abxyz",),))
