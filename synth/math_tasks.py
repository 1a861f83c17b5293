"""Synthetic math problems with exact ground truth, AFM's problem transformations and a verifier (spec §6.1).

What it does: draws seed problems of 11 types (add, sub, mul, multi-step word problems, percentages, unit
conversion, linear equations, averages, proportions, remainders, simple interest) from templates, using exact
arithmetic (ints and fractions.Fraction), and applies AFM's transformations programmatically, each a function:
`rephrase` (another paraphrase template), `reversion` (MetaMath FOBAR: a number of the statement becomes x, the
final answer is given, x is asked for; ground truth is that number), `evolve_depth` (one more step, answer
recomputed) and `evolve_breadth` (the same math in another setting). Difficulty 0 is two-operand add/sub below
100; higher difficulties widen numbers, add all types, and at 3 add an extra step.

Answer format: the reference is a very short worked solution whose last line is `Answer: <number>`, e.g.
"34 + 57 = 91\\nAnswer: 91". Answers are integers or short decimals (exact, never rounded). The checker
(`verify`, exact Fractions, LaTeX via math_verify where it helps) lives in `synth/math_answers.py`.

Problem identity (what the train/dev/test split hashes): "math:" + the working lines joined by "; " (the last
ends with the answer), operands of + and * in ascending order, e.g. "math:34 + 57 = 91": the operations and
operands whatever the wording, setting or names (rephrase and breadth keep it; a reversion has its own working).
`op_identity(a, sym, b)` is that of the one-operation problem `a sym b`, to keep drill lines off dev/test.

Simplifies: templated English instead of LLM-written problems; every problem has ground truth, so no LLM judge;
one deterministic worked solution instead of N sampled chain-of-thought answers.

Run: python -c "import synth.math_tasks as m; print(m.generate(3, seed=0))"
"""
import copy
import random
import re
from fractions import Fraction

from afm_align.errors import UserError
from synth.math_answers import parse_answer, to_fraction, verify  # noqa: F401  (part of this family's interface)
from synth.reward_signature import domain_reward

DOMAIN = "math"
MAX_DIFFICULTY = 3
ANSWER_INSTRUCTION = "End with a line 'Answer: <number>'."
NAMES = ["Ana", "Ben", "Mia", "Leo", "Sara", "Omar", "Lin", "Tom"]
UNITS = [("kilometres", "metres", 1000), ("metres", "centimetres", 100), ("kilograms", "grams", 1000),
         ("hours", "minutes", 60), ("minutes", "seconds", 60), ("litres", "millilitres", 1000),
         ("feet", "inches", 12), ("days", "hours", 24), ("weeks", "days", 7)]


def fmt(q) -> str:
    """Exact text of a number: '91', '12.5', '-0.25', or 'p/q' when the decimal would not terminate."""
    q = Fraction(q)
    if q.denominator == 1:
        return str(q.numerator)
    den, k = q.denominator, 0
    while den % 2 == 0 or den % 5 == 0:
        den //= 2 if den % 2 == 0 else 5
        k += 1
    if den != 1:
        return f"{q.numerator}/{q.denominator}"
    scaled = abs(q) * 10 ** k
    digits = str(scaled.numerator).rjust(k + 1, "0")
    return ("-" if q < 0 else "") + (digits[:-k] + "." + digits[-k:]).rstrip("0").rstrip(".")


# ---- problem types: SAMPLERS[t](rng, d) -> params; SOLVERS[t](params) -> (answer, lines ending "= answer") ----

HI, LO = (99, 999, 9999, 99999), (1, 10, 100, 1000)
OPS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b, "/": lambda a, b: a / b}


def _do(lines: list, a, sym: str, b) -> Fraction:
    """One exact operation, recorded as a working line 'a sym b = r'."""
    r = OPS[sym](Fraction(a), Fraction(b))
    lines.append(f"{fmt(a)} {sym} {fmt(b)} = {fmt(r)}")
    return r


def _steps(fn):
    """A solver from fn(params, lines) -> answer that records its operations in lines."""
    def solve(p):
        lines = []
        return Fraction(fn(p, lines)), lines
    return solve


def _sample_two(rng, d):
    a, b = rng.randint(LO[d], HI[d]), rng.randint(LO[d], HI[d])
    return {"a": max(a, b), "b": min(a, b)}


def _sample_word(rng, d):
    a, b, c = rng.randint(2, 10 * d + 10), rng.randint(2, 3 + 2 * d), rng.randint(2, 4 * d + 6)
    return {"a": a, "b": b, "c": c, "d": rng.randint(1, a + b * c - 1)}


def _sample_unit(rng, d):
    big, small, f = UNITS[rng.randrange(len(UNITS))]
    return {"v": rng.randint(2, 10 ** d * 2), "big": big, "small": small, "f": f}


def _sample_linear(rng, d):
    a, y, b = rng.randint(2, 3 + 3 * d), rng.randint(1, 10 * d), rng.randint(1, 20 * d)
    return {"a": a, "b": b, "c": a * y + b}


def _sample_average(rng, d):
    n = rng.choice((2, 4, 5))  # means of 2, 4 or 5 numbers are exact short decimals
    vals = [rng.randint(1, 10 ** (d + 1)) for _ in range(n)]
    if d <= 1:  # whole-number mean at low difficulty
        vals[-1] += (-sum(vals)) % n
    return {f"v{i}": v for i, v in enumerate(vals)}


def _sample_proportion(rng, d):
    a, u = rng.randint(2, 3 + 2 * d), rng.randint(2, 5 * d + 5)
    b = rng.choice([k for k in range(2, 5 + 3 * d) if k != a])
    return {"a": a, "b": b, "c": a * u, "item": rng.choice(["pencils", "apples", "tickets", "stamps"])}


def _sample_remainder(rng, d):
    b = rng.randint(3, 4 + 3 * d)
    return {"a": b * rng.randint(2, 5 * d + 5) + rng.randint(1, b - 1), "b": b}


def _avg_fields(p):
    vals = [str(p[k]) for k in sorted((k for k in p if re.fullmatch(r"v\d+", k)), key=lambda k: int(k[1:]))]
    return {"vals": ", ".join(vals[:-1]) + " and " + vals[-1], "n": len(vals)}


def _solve_average(p):
    vals = [Fraction(p[f"v{i}"]) for i in range(_avg_fields(p)["n"])]
    lines = [" + ".join(fmt(v) for v in vals) + f" = {fmt(sum(vals))}"]
    return _do(lines, sum(vals), "/", len(vals)), lines


MUL_RANGES = {1: ((11, 99), (2, 9)), 2: ((11, 99), (11, 99)), 3: ((100, 999), (11, 99))}
SAMPLERS = {
    "add": _sample_two, "sub": _sample_two, "word": _sample_word, "unit": _sample_unit, "linear": _sample_linear,
    "average": _sample_average, "proportion": _sample_proportion, "remainder": _sample_remainder,
    "mul": lambda rng, d: {k: rng.randint(*r) for k, r in zip("ab", MUL_RANGES[max(d, 1)])},
    "percent": lambda rng, d: ({"p": 5 * rng.randint(1, 19), "x": 20 * rng.randint(1, 10)} if d <= 1
                               else {"p": rng.randint(1, 99), "x": 100 * rng.randint(1, 10 * d)}),
    "interest": lambda rng, d: {"P": 100 * rng.randint(1, 10 * d), "r": rng.randint(1, 4 + 2 * d),
                                "t": rng.randint(1, 2 + d)},
}
SOLVERS = {
    "add": _steps(lambda p, L: _do(L, p["a"], "+", p["b"])),
    "sub": _steps(lambda p, L: _do(L, p["a"], "-", p["b"])),
    "mul": _steps(lambda p, L: _do(L, p["a"], "*", p["b"])),
    "word": _steps(lambda p, L: _do(L, _do(L, p["a"], "+", _do(L, p["b"], "*", p["c"])), "-", p["d"])),
    "percent": _steps(lambda p, L: _do(L, _do(L, p["p"], "*", p["x"]), "/", 100)),
    "unit": _steps(lambda p, L: _do(L, p["v"], "*", p["f"])),
    "linear": _steps(lambda p, L: _do(L, _do(L, p["c"], "-", p["b"]), "/", p["a"])),
    "proportion": _steps(lambda p, L: _do(L, _do(L, p["c"], "/", p["a"]), "*", p["b"])),
    "remainder": _steps(lambda p, L: _do(L, p["a"], "-", _do(L, p["b"], "*", p["a"] // p["b"]))),
    "interest": _steps(lambda p, L: _do(L, _do(L, _do(L, p["P"], "*", p["r"]), "/", 100), "*", p["t"])),
    "average": _solve_average,
}


TYPES = {
    "add": {"unknowns": ["a", "b"], "settings": {
        "plain": ["What is {a} + {b}?", "Compute {a} plus {b}.", "Find the sum of {a} and {b}."],
        "shop": ["A shop sold {a} pens on Monday and {b} pens on Tuesday. How many pens did it sell in total?",
                 "On Monday a shop sold {a} pens and on Tuesday it sold {b}. How many pens were sold altogether?"],
        "farm": ["A farm has {a} sheep and {b} goats. How many animals does it have?",
                 "There are {a} sheep and {b} goats on a farm. How many animals are there in all?"]}},
    "sub": {"unknowns": ["a", "b"], "settings": {
        "plain": ["What is {a} - {b}?", "Compute {a} minus {b}.", "Subtract {b} from {a}."],
        "money": ["{name} had {a} dollars and spent {b} dollars. How many dollars are left?",
                  "After spending {b} of {name}'s {a} dollars, how many dollars remain?"],
        "bus": ["A bus had {a} passengers and {b} got off. How many passengers are still on the bus?",
                "{b} of the {a} passengers on a bus got off. How many passengers stayed on?"]}},
    "mul": {"unknowns": ["a", "b"], "settings": {
        "plain": ["What is {a} * {b}?", "Compute {a} times {b}.", "Multiply {a} by {b}."],
        "crates": ["There are {a} crates with {b} apples in each. How many apples are there?",
                   "Each of {a} crates holds {b} apples. How many apples are there in all?"],
        "hall": ["A hall has {a} rows of {b} seats. How many seats are there?",
                 "There are {b} seats in each of the {a} rows of a hall. How many seats are there in total?"]}},
    "word": {"unknowns": ["a", "b", "c", "d"], "settings": {
        "stickers": ["{name} has {a} stickers, buys {b} packs of {c} stickers and gives away {d}. How many stickers does {name} have now?",
                     "{name} starts with {a} stickers. Then {name} buys {b} packs with {c} stickers each and gives {d} to a friend. How many stickers are left?"],
        "bakery": ["A baker has {a} cookies, bakes {b} trays of {c} cookies and sells {d}. How many cookies are left?",
                   "A bakery starts with {a} cookies. It bakes {b} trays holding {c} cookies each, then sells {d} cookies. How many cookies remain?"],
        "library": ["A library has {a} books. It gets {b} boxes of {c} books and lends out {d}. How many books are on the shelves?",
                    "There are {a} books in a library. {b} boxes with {c} books each arrive and {d} books are lent out. How many books are left on the shelves?"]}},
    "percent": {"unknowns": ["p", "x"], "settings": {
        "plain": ["What is {p}% of {x}?", "Find {p} percent of {x}.", "Compute {p}% of {x}."],
        "sale": ["A coat costs {x} dollars and is {p}% off. How many dollars is the discount?",
                 "The discount on a {x} dollar coat is {p}%. How many dollars do you save?"],
        "school": ["A school has {x} students and {p}% of them walk to school. How many students walk?",
                   "Of the {x} students in a school, {p}% walk to school. How many students is that?"]}},
    "unit": {"unknowns": ["v"], "settings": {
        "plain": ["Convert {v} {big} to {small}.", "How many {small} are in {v} {big}?"],
        "label": ["A label says {v} {big}. What is that amount in {small}?",
                  "{name} wrote down {v} {big}. How many {small} is that?"]}},
    "linear": {"unknowns": [], "settings": {
        "plain": ["Solve for y: {a}y + {b} = {c}.", "Find y if {a}y + {b} = {c}."],
        "taxi": ["A taxi charges {b} dollars plus a fixed price for each of {a} kilometres. The ride costs {c} dollars. What is the price per kilometre?",
                 "A {a} kilometre taxi ride costs {c} dollars: {b} dollars to start plus a fixed price per kilometre. What is that price?"],
        "notebooks": ["{name} buys {a} notebooks and a pen for {b} dollars and pays {c} dollars in all. How many dollars does one notebook cost?",
                      "{a} notebooks and one {b} dollar pen cost {c} dollars together. What does one notebook cost?"]}},
    "average": {"fields": _avg_fields, "unknowns": ["v0", "v1"], "settings": {
        "plain": ["What is the average of {vals}?", "Find the mean of {vals}."],
        "scores": ["{name} scored {vals} on {n} tests. What is the average score?",
                   "The scores on {n} quizzes were {vals}. What is the mean score?"],
        "rain": ["On {n} days it rained {vals} millimetres. What was the average rainfall per day?",
                 "Rainfall over {n} days was {vals} millimetres. What is the mean daily rainfall?"]}},
    "proportion": {"unknowns": ["b"], "settings": {
        "shop": ["If {a} {item} cost {c} dollars, how much do {b} {item} cost?",
                 "{a} {item} cost {c} dollars in total. At the same price, what do {b} {item} cost?"],
        "factory": ["A machine makes {c} toys in {a} hours. How many toys does it make in {b} hours?",
                    "In {a} hours a machine makes {c} toys. At that rate, how many toys does it make in {b} hours?"]}},
    "remainder": {"unknowns": [], "settings": {
        "plain": ["What is the remainder when {a} is divided by {b}?", "Find the remainder of {a} divided by {b}."],
        "eggs": ["{a} eggs are packed into boxes of {b}. How many eggs are left over?",
                 "A farmer packs {a} eggs in boxes that hold {b} each. How many eggs do not fill a box?"],
        "teams": ["{a} students form teams of {b}. How many students are left without a full team?",
                  "A coach splits {a} players into teams of {b}. How many players are left over?"]}},
    "interest": {"unknowns": ["P", "r", "t"], "settings": {
        "bank": ["{name} saves {P} dollars at {r}% simple interest per year. How much interest is earned in {t} years?",
                 "A deposit of {P} dollars earns {r}% simple interest a year. What is the interest after {t} years?"],
        "loan": ["A loan of {P} dollars charges {r}% simple interest per year. How much interest is owed after {t} years?",
                 "{name} borrows {P} dollars at {r}% simple yearly interest. What is the interest for {t} years?"]}},
}
STEPS = {"add": ("Then add {c} to that result.", "+"), "sub": ("Then subtract {c} from that result.", "-"),
         "mul": ("Then multiply that result by {c}.", "*")}
PADDING = ["Let me think about this problem step by step before I write anything down.",
           "First I will read the question again so that I understand every part of it.",
           "Problems like this one are common and it helps to be careful and patient.",
           "I want to make sure that each part of the working is clear and easy to follow."]


# ---- problems and transformations ----

def seed_problem(rng: random.Random, difficulty: int = 1, ptype: str | None = None) -> dict:
    """A seed problem: {"type", "setting", "tpl", "params", "steps", "unknown"} (JSON-serialisable)."""
    ptype = ptype or rng.choice(_types_for(difficulty))
    spec = TYPES[ptype]
    setting = rng.choice(sorted(spec["settings"]))
    params = SAMPLERS[ptype](rng, difficulty)
    params["name"] = rng.choice(NAMES)
    return {"type": ptype, "setting": setting, "tpl": rng.randrange(len(spec["settings"][setting])),
            "params": params, "steps": [], "unknown": None}


def _forward(problem: dict) -> tuple[Fraction, list[str]]:
    ans, lines = SOLVERS[problem["type"]](problem["params"])
    for op, c in problem["steps"]:
        ans = _do(lines, ans, STEPS[op][1], c)
    return ans, lines


def _affine(problem: dict, var: str) -> tuple[Fraction, Fraction]:
    """(k, m) with forward answer = k * var + m (every listed unknown enters the answer affinely)."""
    def at(v):
        p = copy.deepcopy(problem)
        p["params"][var], p["unknown"] = Fraction(v), None
        return _forward(p)[0]
    k, m = at(1) - at(0), at(0)
    if k == 0 or at(2) != 2 * k + m:
        raise ValueError(f"The answer of a {problem['type']} problem is not affine in {var}.")
    return k, m


def _reversion_line(k: Fraction, m: Fraction, total: Fraction, value: Fraction) -> str:
    m_txt = f" + {fmt(m)}" if m > 0 else f" - {fmt(-m)}" if m < 0 else ""
    minus = f" - {fmt(m)}" if m > 0 else f" + {fmt(-m)}" if m < 0 else ""
    if k == 1:
        return f"x{m_txt} = {fmt(total)}, so x = {fmt(total)}{minus} = {fmt(value)}"
    if k == -1:
        return f"{fmt(m)} - x = {fmt(total)}, so x = {fmt(m)} - {fmt(total)} = {fmt(value)}"
    top = f"({fmt(total)}{minus})" if m else fmt(total)
    return f"{fmt(k)} * x{m_txt} = {fmt(total)}, so x = {top} / {fmt(k)} = {fmt(value)}"


def solve(problem: dict) -> tuple[Fraction, list[str]]:
    """Exact answer and working lines (the last line ends with '= <answer>')."""
    var = problem["unknown"]
    if var is None:
        return _forward(problem)
    total = _forward({**problem, "unknown": None})[0]
    k, m = _affine(problem, var)
    value = Fraction(problem["params"][var])
    return value, [_reversion_line(k, m, total, value)]


def render(problem: dict) -> str:
    """The question text of a problem."""
    spec, params = TYPES[problem["type"]], dict(problem["params"])
    if problem["unknown"]:
        params[problem["unknown"]] = "x"
    fields = spec.get("fields", lambda p: {})(params)
    text = spec["settings"][problem["setting"]][problem["tpl"]].format(**params, **fields)
    for op, c in problem["steps"]:
        text += " " + STEPS[op][0].format(c=c)
    if problem["steps"]:
        text += " What is the final result?"
    if problem["unknown"]:
        total = _forward({**problem, "unknown": None})[0]
        text += f" If we know the answer to the above question is {fmt(total)}, what is the value of the unknown variable x?"
    return text


def rephrase(problem: dict, rng: random.Random) -> dict:
    """Same problem and numbers, another paraphrase template of the same setting."""
    n = len(TYPES[problem["type"]]["settings"][problem["setting"]])
    return {**copy.deepcopy(problem), "tpl": (problem["tpl"] + rng.randrange(1, n)) % n}


def evolve_breadth(problem: dict, rng: random.Random) -> dict:
    """In-breadth evolution: the same math moved to another setting (topic)."""
    settings = TYPES[problem["type"]]["settings"]
    setting = rng.choice([s for s in sorted(settings) if s != problem["setting"]])
    return {**copy.deepcopy(problem), "setting": setting, "tpl": rng.randrange(len(settings[setting]))}


def evolve_depth(problem: dict, rng: random.Random) -> dict:
    """In-depth evolution: one more operation on the result; the answer is recomputed."""
    ans = _forward(problem)[0]
    op = rng.choice(["add", "sub", "mul"])
    if op == "sub" and ans < 3:
        op = "add"
    c = {"add": rng.randint(2, 30), "mul": rng.randint(2, 5)}.get(op) or rng.randint(1, int(ans) - 1)
    out = copy.deepcopy(problem)
    out["steps"].append([op, c])
    return out


def reversion(problem: dict, rng: random.Random) -> dict:
    """MetaMath-style reversion: one number of the statement becomes x; the answer is given; x is asked for."""
    unknowns = TYPES[problem["type"]]["unknowns"]
    if not unknowns:
        raise ValueError(f"Problems of type {problem['type']!r} have no number that can be asked for.")
    return {**copy.deepcopy(problem), "unknown": rng.choice(unknowns)}


TRANSFORMS = {"seed": lambda p, rng: p, "rephrase": rephrase, "reversion": reversion,
              "depth": evolve_depth, "breadth": evolve_breadth}


def _types_for(difficulty: int) -> list[str]:
    return ["add", "sub"] if difficulty == 0 else sorted(TYPES)


# ---- the family interface ----

def _check_args(n, difficulty):
    if not isinstance(n, int) or n < 1:
        raise UserError(f"n must be a positive integer, got {n!r}.")
    if not isinstance(difficulty, int) or not 0 <= difficulty <= MAX_DIFFICULTY:
        raise UserError(f"difficulty must be an integer from 0 to {MAX_DIFFICULTY}, got {difficulty!r}.")


def make_item(problem: dict, transform: str) -> dict:
    """A prompt row (with reference) for a problem."""
    ans, lines = solve(problem)
    return {"prompt": [{"role": "user", "content": render(problem) + "\n" + ANSWER_INSTRUCTION}],
            "domain": DOMAIN, "verifier": {"answer": fmt(ans), "type": problem["type"]},
            "source": f"synth/math/{problem['type']}/{transform}",
            "reference": "\n".join(lines + [f"Answer: {fmt(ans)}"]), "identity": _identity(lines)}


# ---- problem identity (what the split hashes) ----

def _canonical_line(line: str) -> str:
    """A working line with the operands of + and * in ascending order ('57 + 34 = 91' -> '34 + 57 = 91'): the
    same sum or product asked in either order is one problem. Other lines (-, /, reversion) stay as they are."""
    lhs, eq, rhs = line.partition(" = ")
    for sym in "+*":
        terms = lhs.split(f" {sym} ")
        if eq and len(terms) > 1 and all(re.fullmatch(r"-?\d+(?:\.\d+)?(?:/\d+)?", t) for t in terms + [rhs]):
            return f" {sym} ".join(sorted(terms, key=Fraction)) + eq + rhs
    return line


def _identity(lines: list[str]) -> str:
    return "math:" + "; ".join(_canonical_line(line) for line in lines)


def problem_identity(item: dict) -> str:
    """The canonical working lines of the item's reference (module docstring): a function of the reference
    alone, so two items with the same reference always share it."""
    return _identity([line for line in item["reference"].split("\n") if not line.startswith("Answer:")])


def op_identity(a, sym: str, b) -> str:
    """The identity of the one-operation problem `a sym b` (sym in + - *), e.g. 'math:34 + 57 = 91' for 57 + 34:
    what an arithmetic drill line 'a sym b = c' is checked against."""
    if sym not in ("+", "-", "*"):
        raise UserError(f"sym must be one of + - *, got {sym!r}.")
    lines = []
    _do(lines, a, sym, b)
    return _identity(lines)


def generate(n: int, seed: int, difficulty: int = 1) -> list[dict]:
    """n math items, deterministic for (n, seed, difficulty)."""
    _check_args(n, difficulty)
    rng = random.Random(seed)
    names = [t for t in TRANSFORMS if not (difficulty == 0 and t == "depth")]
    items = []
    for _ in range(n):
        transform = rng.choice(names)
        types = [t for t in _types_for(difficulty) if transform != "reversion" or TYPES[t]["unknowns"]]
        problem = TRANSFORMS[transform](seed_problem(rng, difficulty, rng.choice(types)), rng)
        if difficulty == MAX_DIFFICULTY and transform != "reversion":
            problem = evolve_depth(problem, rng)  # one more step at the top difficulty
        items.append(make_item(problem, transform))
    return items


def reward(prompts, completions, **columns) -> list[float | None]:
    """TRL reward function: verify() per row of this domain, None for rows of other domains."""
    return domain_reward(DOMAIN, verify, completions, columns)


def reference_grades(item: dict) -> dict:
    """The reference is correct, complete and short: 2 on every dimension."""
    return _grades()


def _grades(i=2, v=2, t=2, h=2) -> dict:
    return {"instruction_following": i, "verbosity": v, "truthfulness": t, "harmlessness": h}


def corrupt(item: dict, rng: random.Random) -> list[dict]:
    """Rejected responses: wrong answers, a slip, a missing answer line, padding, truncation."""
    lines = item["reference"].split("\n")
    working, gold = lines[:-1], to_fraction(item["verifier"]["answer"])
    near = gold + rng.choice([-3, -2, -1, 1, 2, 3])
    nums = [int(x) for x in re.findall(r"\d+", item["prompt"][-1]["content"])] + [2, 3]
    a, b = nums[0], nums[1]
    sym = next((o for o in "+*-" if OPS[o](a, b) != gold), "+")
    wrong_op = OPS[sym](a, b) if OPS[sym](a, b) != gold else a + b + 1  # a+b+1: all three ops hit the gold
    slip = gold + rng.choice([-9, -5, -2, -1, 1, 2, 4, 10])
    slipped = working[:-1] + [re.sub(r"=\s*[^=]*$", f"= {fmt(slip)}", working[-1])]
    cut = "\n".join(working)
    cut = cut[: max(1, len(cut) // 2)].rstrip()
    pad = " ".join(rng.sample(PADDING, 3))
    return [
        {"kind": "off_by_small", "completion": "\n".join(working + [f"Answer: {fmt(near)}"]), "level": 2,
         "grades": _grades(t=0), "verifiable": True},
        {"kind": "wrong_operation", "completion": f"{a} {sym} {b} = {wrong_op}\nAnswer: {wrong_op}", "level": 3,
         "grades": _grades(t=0), "verifiable": True},
        {"kind": "arithmetic_slip", "completion": "\n".join(slipped + [f"Answer: {fmt(slip)}"]), "level": 3,
         "grades": _grades(t=0), "verifiable": True},
        {"kind": "missing_answer_line", "completion": "\n".join(working), "level": 1,
         "grades": _grades(i=1), "verifiable": True},
        {"kind": "padded", "completion": pad + "\n" + item["reference"], "level": 1,
         "grades": _grades(v=0), "verifiable": False},
        {"kind": "truncated", "completion": cut, "level": 2, "grades": _grades(i=0, v=0, t=1), "verifiable": True},
    ]
