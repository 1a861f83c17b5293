"""Tool-family benchmark: generate N items (default 10,000) and verify every reference.

Prints items/s for generation and verification and whether every reference scored 1.0; `--json FILE`
also writes the figure as JSON. Must stay well under 60 s on the 2-core dev machine.

Run: `python benchmarks/synth_tool.py --n 10000 --json benchmarks/results/synth_tool.json`
(or `python -m benchmarks.synth_tool` from the repository root).
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

if not __package__:  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synth import tool_tasks  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="items to generate (default 10000)")
    parser.add_argument("--difficulty", type=int, default=2, help="difficulty 0-3 (default 2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="write the figure as JSON to this file")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    items = tool_tasks.generate(args.n, args.seed, args.difficulty)
    generated = time.perf_counter()
    scores = [tool_tasks.verify(i["reference"], i["verifier"]) for i in items]
    seconds = time.perf_counter() - start
    gen_s, verify_s = generated - start, seconds - (generated - start)
    figure = {
        "benchmark": "synth_tool", "n": args.n, "difficulty": args.difficulty, "seconds": round(seconds, 3),
        "generate_s": round(gen_s, 3), "verify_s": round(verify_s, 3),
        "generate_items_per_s": round(args.n / gen_s, 1), "verify_items_per_s": round(args.n / verify_s, 1),
        "items_per_s": round(args.n / seconds, 1), "all_references_pass": min(scores) == 1.0,
        "python": platform.python_version(), "machine": platform.machine(),
    }
    print(f"{args.n} items in {seconds:.2f} s ({figure['items_per_s']} items/s): generate {gen_s:.2f} s "
          f"({figure['generate_items_per_s']}/s), verify {verify_s:.2f} s ({figure['verify_items_per_s']}/s), "
          f"all references pass: {figure['all_references_pass']}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figure, indent=2) + "\n")
    return figure


if __name__ == "__main__":
    main()
