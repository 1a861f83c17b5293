"""Run a solution against assert-statement tests in one sandbox process: `run_tests(solution, tests)`
returns (passed, total); the code family uses it for execution-based rejection sampling and rewards. The
process is `synth.sandbox`'s (same isolation, limits and statuses); this module owns the harness it runs.

`run_tests` reports each test on the marker pipe as "<nonce> <test> <0|1>"; the nonce lives only in
the harness's frame, so a solution cannot forge a result by printing (one walking interpreter frames
could forge its own, never another run's). Tests of the form `assert A == B` (or `!=`) are evaluated
by the harness, which compares exact builtin values: a builtin subclass counts as its builtin value
(read through the base type's C methods, not overridable ones), an object of any other type equals
only an expected value of its own type. So an `__eq__` that always returns True passes nothing,
while honest results compare as before (2.0 == 2, a Counter equals its dict). Other tests run as
written. The harness binds the builtins it needs before the solution runs.

Run: `python -c "from synth.sandbox_asserts import run_tests; print(run_tests('def f(): return 1', ['assert f() == 1']))"`;
tests: `python -m pytest tests/synth/test_sandbox.py`.
"""
from __future__ import annotations

import secrets

from afm_align.errors import UserError
from synth.sandbox import Capture, active_plan, check_limits, escape_surrogates, execute

HARNESS = r'''
def _sandbox_harness(solution, tests):
    import _ast as ast, os, sys  # _ast (C) rather than ast: ast imports enum and contextlib (~5 ms)
    nonce, fd = sys.stdin.readline().split()
    fd, write, compile_, exec_, eval_ = int(fd), os.write, compile, exec, eval
    type_, issubclass_, slice_, BaseException_ = type, issubclass, slice, BaseException
    TypeError_, RecursionError_ = TypeError, RecursionError
    int_, float_, complex_, str_, bytes_, bool_, none_ = int, float, complex, str, bytes, bool, type(None)
    list_, tuple_, dict_, set_, frozenset_ = list, tuple, dict, set, frozenset

    def report(i, ok):
        write(fd, ("%s %d %d\n" % (nonce, i, 1 if ok else 0)).encode())

    def plain(x, depth):  # x as exact builtin values, read through the base types' C methods
        if depth > 200:
            raise TypeError_("too deep")
        t = type_(x)
        if t is bool_ or t is none_:
            return x
        if issubclass_(t, int_):
            return x if t is int_ else int_.__index__(x)
        if issubclass_(t, float_):
            return x if t is float_ else float_.__float__(x)
        if issubclass_(t, complex_):
            return x if t is complex_ else complex_.__add__(x, 0j)
        if issubclass_(t, str_):
            return x if t is str_ else str_.__str__(x)
        if issubclass_(t, bytes_):
            return x if t is bytes_ else bytes_.__getitem__(x, slice_(None))
        if issubclass_(t, list_):
            return [plain(v, depth + 1) for v in list_.__iter__(x)]
        if issubclass_(t, tuple_):
            return tuple_([plain(v, depth + 1) for v in tuple_.__iter__(x)])
        if issubclass_(t, dict_):
            return dict_([(plain(k, depth + 1), plain(v, depth + 1)) for k, v in dict_.items(x)])
        for kind in (set_, frozenset_):
            if issubclass_(t, kind):
                return kind([plain(v, depth + 1) for v in kind.__iter__(x)])
        raise TypeError_("not a builtin value")

    def same(a, b):
        try:
            pa, pb = plain(a, 0), plain(b, 0)
        except (TypeError_, RecursionError_):
            return type_(a) is type_(b) and bool_(a == b)  # e.g. both objects of a class the test builds
        return pa == pb

    def prepare(i, test):
        name = "test_%d.py" % i
        tree = compile_(test, name, "exec", 0x400)  # ast.PyCF_ONLY_AST
        node = tree.body[0] if len(tree.body) == 1 else None
        if isinstance(node, ast.Assert) and isinstance(node.test, ast.Compare) and len(node.test.ops) == 1 \
                and isinstance(node.test.ops[0], (ast.Eq, ast.NotEq)):
            sides = (node.test.left, node.test.comparators[0])
            left, right = (compile_(ast.Expression(side), name, "eval") for side in sides)
            return (left, right, isinstance(node.test.ops[0], ast.Eq))
        return compile_(tree, name, "exec")

    prepared = []
    for i, test in enumerate(tests):
        try:
            prepared.append(prepare(i, test))
        except BaseException_:
            prepared.append(None)
    namespace = {"__name__": "__main__"}
    try:
        exec_(compile_(solution, "solution.py", "exec"), namespace)
    except BaseException_:
        return  # every test fails; run_tests discards stderr, so no traceback (importing it costs ~20 ms)
    for i, check in enumerate(prepared):
        try:
            if type_(check) is tuple_:
                ok = same(eval_(check[0], namespace), eval_(check[1], namespace)) == check[2]
            else:
                exec_(check, namespace)
                ok = True
        except BaseException_:
            ok = False
        report(i, ok and check is not None)
_sandbox_harness(*__SANDBOX_ARGS__)
'''


def run_tests(solution: str, tests: list[str], *, timeout_s: float = 10.0, memory_mb: int = 512) -> tuple[int, int]:
    """Run solution, then each assert-statement test in the same namespace; returns (passed, total)."""
    if not isinstance(tests, list) or not all(isinstance(t, str) for t in tests):
        raise UserError("tests must be a list of strings, each a piece of Python such as 'assert f(1) == 2'.")
    check_limits(solution, timeout_s, memory_mb)
    if not tests:
        return 0, 0
    nonce = secrets.token_hex(16)
    report = Capture(cap=1 << 20)
    args = (escape_surrogates(solution), [escape_surrogates(t) for t in tests])
    source = HARNESS.replace("__SANDBOX_ARGS__", repr(args))
    execute(active_plan(), source, timeout_s, memory_mb, nonce.encode(), report)
    passed = set()
    for line in report.text().splitlines():
        fields = line.split(" ")
        if len(fields) == 3 and fields[0] == nonce and fields[2] == "1" and fields[1].isdigit():
            if int(fields[1]) < len(tests):
                passed.add(int(fields[1]))
    return len(passed), len(tests)
