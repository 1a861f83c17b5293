"""Sandbox throughput: run N small programs through synth.sandbox.run_python, one after another.

Prints programs per second and the statuses seen; `--json FILE` also writes the figure as JSON.
Programs are tiny (print, a loop, passing and failing asserts), so this measures the per-program
overhead (bwrap or namespaces, uid switch, interpreter start, temp dir) rather than the programs themselves.
Sequential on purpose: the dev machine has 2 shared cores.

Run: `python benchmarks/sandbox_throughput.py --n 50 --json benchmarks/results/sandbox_throughput.json`
(or `python -m benchmarks.sandbox_throughput` from the repository root).
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections import Counter
from pathlib import Path

if not __package__:  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synth import sandbox  # noqa: E402

PROGRAMS = [
    "print('hello')",
    "print(sum(i * i for i in range(10_000)))",
    "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\nassert fib(15) == 610",
    "assert sorted([3, 1, 2]) == [1, 2, 3, 4]",
]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50, help="number of programs to run (default 50)")
    parser.add_argument("--json", type=Path, default=None, help="write the figure as JSON to this file")
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error("--n must be at least 1")
    mode = sandbox.isolation_mode()  # probe outside the timed loop
    statuses: Counter[str] = Counter()
    start = time.perf_counter()
    for i in range(args.n):
        statuses[sandbox.run_python(PROGRAMS[i % len(PROGRAMS)], timeout_s=10.0).status] += 1
    seconds = time.perf_counter() - start
    figure = {
        "benchmark": "sandbox_throughput", "n": args.n, "seconds": round(seconds, 3),
        "programs_per_s": round(args.n / seconds, 2), "ms_per_program": round(1000 * seconds / args.n, 2),
        "mode": mode, "statuses": dict(statuses), "python": platform.python_version(),
        "machine": platform.machine(),
    }
    print(f"{args.n} programs in {seconds:.2f} s: {figure['programs_per_s']} programs/s "
          f"({figure['ms_per_program']} ms each, mode {mode}, statuses {dict(statuses)})")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figure, indent=2) + "\n")
    return figure


if __name__ == "__main__":
    main()
