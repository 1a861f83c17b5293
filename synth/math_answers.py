"""The math family's final-answer format and its exact checker.

A math response ends with a line `Answer: <number>`. `verify` takes the text after the last `Answer:` (after
its last "=" if any), parses the first number exactly (tolerates "1,000", "12.50", "3/4", "$5", a trailing
period) and compares Fractions with the ground truth: 1.0 on a match; 0.5 when there is no `Answer:` line but
the last number of the text matches (right value, format ignored); else 0.0. LaTeX answers ("\\frac{3}{4}") go
through math_verify's parser (the optional `math` extra) with its signal-based timeout off, only on short
inputs without powers or factorials, so it cannot hang and works off the main thread. Nothing here raises.

A model answer with no number is a plain 0. A ground truth that is missing or not a number, or math_verify
raising on an answer, is the verifier's fault: it still scores 0 but is counted as a math verifier error
(`synth.families.record_verifier_error`), so evaluation can tell a verifier bug from a weak model.
"""
import logging
import re
from fractions import Fraction

from synth.families import record_verifier_error

_NUM = re.compile(r"[-\u2212]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:\s*/\s*\d+)?")
_ANSWER = re.compile(r"answer\s*:([^\n]*)", re.I)


def to_fraction(token: str):
    try:
        return Fraction(token.replace(",", "").replace("\u2212", "-").replace(" ", ""))
    except (ValueError, ZeroDivisionError):
        return None


def _latex_value(segment: str):
    """Exact value of a short LaTeX answer via math_verify (timeout off: inputs are short and power-free)."""
    if len(segment) > 80 or any(s in segment for s in ("^", "!", "**")):
        return None
    try:
        from math_verify import parse
    except ImportError:  # the optional `math` extra is not installed: LaTeX answers have no value
        return None
    try:
        logging.getLogger("math_verify").setLevel(logging.ERROR)  # silence its "timeout disabled" warning
        for value in parse(segment, parsing_timeout=None):
            if getattr(value, "is_Rational", False):
                return Fraction(int(value.p), int(value.q))
            if getattr(value, "is_Float", False):
                return Fraction(str(value))
    except Exception as exc:  # math_verify/sympy raising (it returns [] on input it cannot read): a verifier error
        record_verifier_error("math", exc)
        return None
    return None


def parse_answer(segment: str):
    """Exact value of an answer segment ('1,000', '12.50', '3/4', '$5.', '\\frac{3}{4}'), or None."""
    seg = segment.strip()[:200]
    if "=" in seg:
        seg = seg.rsplit("=", 1)[1]
    if "\\" in seg or "{" in seg:
        value = _latex_value(seg.strip().strip("$").strip())
        if value is not None:
            return value
    match = _NUM.search(seg)
    return to_fraction(match.group()) if match else None


def verify(completion: str, verifier: dict) -> float:
    """1.0: last `Answer:` value equals the ground truth; 0.5: no `Answer:` line but the last number
    equals it; 0.0 otherwise. Never raises: a malformed ground truth scores 0 and is a counted verifier error."""
    try:
        gold = to_fraction(str(verifier["answer"]))
        if gold is None:
            raise ValueError(f"math verifier answer {verifier['answer']!r} is not a number")
        text = completion if isinstance(completion, str) else ""
        answers = _ANSWER.findall(text)
        if answers:
            return 1.0 if parse_answer(answers[-1]) == gold else 0.0
        numbers = _NUM.findall(text)
        return 0.5 if numbers and to_fraction(numbers[-1]) == gold else 0.0
    except Exception as exc:  # the verifier's own failure (a bad spec, a bug): 0, counted, never a crash
        record_verifier_error("math", exc)
        return 0.0
