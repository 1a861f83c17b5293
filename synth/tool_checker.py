"""Parse tool calls out of a completion and check them with the Berkeley Function Calling Leaderboard's AST rules.

Call format (the one our tool-use data teaches): every call is one line
``<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>``; parallel calls are
several such lines; a response with no ``<tool_call>`` tag is plain text (no call). Text around the tags
is ignored by the parser (the verbosity grade, not the checker, punishes it).

Expected calls use BFCL's possible-answer shape, one dict per call: ``{"func_name": {"param": [ok values]}}``
where ``""`` among the values means the (optional) parameter may be omitted. The rules follow BFCL's
``ast_checker`` (python language): the function name must match; every required parameter is present;
no parameter outside the schema or the possible answer; an omitted parameter must allow ``""``; types
are checked against the JSON schema with Python's auto int->float conversion (bool is not an int);
strings are compared after BFCL's ``standardize_string`` (lower case, no spaces or ``,./-_*^``);
lists and dicts are compared element-wise with the same normalisation; parallel calls are order-free
(each expected call matched to a distinct produced call).

Simplifications / deliberate differences from BFCL: parallel matching is a true bipartite matching
(BFCL is greedy, which can reject a valid order); the nested (array item) type check also applies the
int->float conversion; an unknown schema type skips the type check; BFCL's Java/JavaScript converters
and model-specific name mangling are left out. BFCL's "variable" rule is kept: when the possible
answers have another type than the schema (e.g. a variable name for an integer), a value of the
answers' type is accepted when it equals one of them exactly.

Run: ``python -c "from synth.tool_checker import *; print(parse_calls(format_call('f', {'x': 1})))"``
"""

import json
import re

from afm_align.errors import UserError

TAG_OPEN, TAG_CLOSE = "<tool_call>", "</tool_call>"
_CALL_RE = re.compile(re.escape(TAG_OPEN) + r"(.*?)" + re.escape(TAG_CLOSE), re.DOTALL)
_STANDARDIZE_RE = re.compile(r"[ \,\.\/\-\_\*\^]")

# JSON-schema type name -> Python type; BFCL's own names ("dict", "float", "tuple", "any") included.
TYPE_MAP = {
    "string": str, "integer": int, "number": float, "float": float, "boolean": bool,
    "array": list, "tuple": list, "object": dict, "dict": dict, "any": str,
}


def format_call(name: str, arguments: dict) -> str:
    """One call line in our format (compact JSON)."""
    body = json.dumps({"name": name, "arguments": arguments}, ensure_ascii=False, separators=(",", ":"))
    return f"{TAG_OPEN}{body}{TAG_CLOSE}"


def parse_calls(text: str) -> list[dict] | None:
    """Calls in ``text`` as ``[{"name": str, "arguments": dict}]``; ``[]`` for plain text; None if malformed."""
    if not isinstance(text, str):
        return None
    bodies = _CALL_RE.findall(text)
    if len(bodies) != text.count(TAG_OPEN) or len(bodies) != text.count(TAG_CLOSE):
        return None  # an unclosed or stray tag
    calls = []
    for body in bodies:
        try:
            obj = json.loads(body)
        except (ValueError, RecursionError):
            return None
        if not isinstance(obj, dict) or set(obj) != {"name", "arguments"}:
            return None
        if not isinstance(obj["name"], str) or not isinstance(obj["arguments"], dict):
            return None
        calls.append({"name": obj["name"], "arguments": obj["arguments"]})
    return calls


def standardize_string(s: str) -> str:
    """BFCL's string normalisation: drop spaces and ``,./-_*^``, lower-case, single -> double quotes."""
    return _STANDARDIZE_RE.sub("", s).lower().replace("'", '"')


def _norm(v):
    """Normalise a value for comparison: strings standardised, containers element-wise."""
    if isinstance(v, str):
        return standardize_string(v)
    if isinstance(v, (list, tuple)):
        return [_norm(x) for x in v]
    if isinstance(v, dict):
        return {k: _norm(x) for k, x in v.items()}
    return v


def _same(a, b) -> bool:
    """Equality that keeps bool apart from numbers (BFCL compares with == after a strict type check)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, list) or isinstance(b, list):
        return isinstance(a, list) and isinstance(b, list) and len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, dict) or isinstance(b, dict):
        return (isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys()
                and all(_same(a[k], b[k]) for k in a))
    return a == b


def _dict_ok(value: dict, answer) -> bool:
    """BFCL dict_checker for one acceptable dict of value lists (keys may be omitted when "" allowed)."""
    if not isinstance(answer, dict):
        return False
    for k, v in value.items():
        options = answer.get(k)
        if not isinstance(options, list) or not any(_same(_norm(v), _norm(o)) for o in options if o != ""):
            return False
    return all(k in value or "" in opts for k, opts in answer.items())


def _coerce(value, type_name: str):
    """Python's auto int->float conversion (one level into arrays too)."""
    if type_name in ("float", "number") and type(value) is int:
        return float(value)
    return value


def _type_ok(value, type_name: str, item_type: str | None) -> bool:
    expected = TYPE_MAP.get(type_name)
    if expected is None:
        return True  # unknown schema type: nothing to check
    if type(value) is not expected:
        return False
    if expected is list and item_type in TYPE_MAP:
        return all(type(_coerce(x, item_type)) is TYPE_MAP[item_type] for x in value)
    return True


def _value_error(param: str, value, spec: dict, options: list) -> str | None:
    """Why ``value`` is not acceptable for ``param`` (None when it is)."""
    type_name = spec.get("type", "any") if isinstance(spec, dict) else "any"
    items = spec.get("items") if isinstance(spec, dict) else None
    item_type = items.get("type") if isinstance(items, dict) else None
    value = _coerce(value, type_name)
    if isinstance(value, list) and item_type:
        value = [_coerce(x, item_type) for x in value]
    given = [o for o in options if o != ""]
    answer_type = type(given[0]) if given else None
    if not _type_ok(value, type_name, item_type):
        # BFCL's "variable" rule: the answers hold another type (e.g. a variable name) and the value has it.
        if answer_type is not None and answer_type is not TYPE_MAP.get(type_name) and type(value) is answer_type:
            return None if any(_same(value, o) for o in given) else f"invalid value for {param!r}: {value!r}"
        return f"wrong type for {param!r}: expected {type_name}, got {type(value).__name__}"
    if isinstance(value, dict):
        ok = any(_dict_ok(value, o) for o in given)
    elif isinstance(value, list) and item_type in ("dict", "object"):
        ok = any(isinstance(o, list) and len(o) == len(value) and all(_dict_ok(v, a) for v, a in zip(value, o))
                 for o in given)
    else:
        ok = any(_same(_norm(value), _norm(o)) for o in given)
    return None if ok else f"invalid value for {param!r}: {value!r} not in {given!r}"


def _tool_schema(tool: dict) -> dict:
    """Accept both ``{"name", "parameters"}`` and OpenAI's ``{"type": "function", "function": {...}}``."""
    return tool.get("function", tool) if isinstance(tool, dict) else {}


def check_one(produced: dict, expected: dict, schema: dict) -> tuple[bool, str]:
    """One produced call against one expected call ``{"func_name": {"param": [values]}}``."""
    (name, answer), = expected.items()
    if not isinstance(produced, dict) or produced.get("name") != name:
        got = produced.get("name") if isinstance(produced, dict) else produced
        return False, f"wrong function: expected {name!r}, got {got!r}"
    args = produced.get("arguments")
    if not isinstance(args, dict):
        return False, f"arguments of {name!r} are not an object"
    params = schema.get("parameters") or {}
    props = params.get("properties") or {}
    for p in params.get("required") or []:
        if p not in args:
            return False, f"missing required parameter {p!r} of {name!r}"
    for p, v in args.items():
        if p not in props or p not in answer:
            return False, f"unexpected parameter {p!r} of {name!r}"
        err = _value_error(p, v, props[p], answer[p])
        if err:
            return False, err
    for p, options in answer.items():
        if p not in args and "" not in options:
            return False, f"parameter {p!r} of {name!r} must be given"
    return True, "ok"


def _match(ok: list[list[bool]], n: int) -> bool:
    """A perfect bipartite matching between expected (rows) and produced (columns) calls exists."""
    owner = [-1] * n

    def augment(i: int, seen: list[bool]) -> bool:
        for j in range(n):
            if ok[i][j] and not seen[j]:
                seen[j] = True
                if owner[j] < 0 or augment(owner[j], seen):
                    owner[j] = i
                    return True
        return False

    return all(augment(i, [False] * n) for i in range(n))


def check_calls(produced: list[dict], expected: list[dict], tools: list[dict]) -> tuple[bool, str]:
    """BFCL AST check of ``produced`` calls against ``expected`` possible answers, order-free.

    ``tools`` are the candidate tool schemas; an expected function missing from them raises ValueError.
    Returns (accepted, reason). An empty ``expected`` means "no call" (accepted only if none produced).
    """
    schemas = {_tool_schema(t).get("name"): _tool_schema(t) for t in tools}
    for e in expected:
        if not isinstance(e, dict) or len(e) != 1:
            raise UserError(f"An expected call must be a one-key dict {{name: {{param: values}}}}, got {e!r}.")
        if next(iter(e)) not in schemas:
            raise UserError(f"Expected function {next(iter(e))!r} is not among the given tools.")
    if not isinstance(produced, list):
        return False, "produced calls are not a list"
    if len(produced) != len(expected):
        return False, f"wrong number of calls: expected {len(expected)}, got {len(produced)}"
    reasons = []
    table = []
    for e in expected:
        row = []
        for p in produced:
            good, why = check_one(p, e, schemas[next(iter(e))])
            row.append(good)
            if not good:
                reasons.append(why)
        table.append(row)
    if _match(table, len(produced)):
        return True, "ok"
    if len(expected) == 1:
        return False, reasons[0]
    return False, "no one-to-one match between produced and expected calls: " + "; ".join(reasons[:3])
