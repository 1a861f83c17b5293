"""Code-family benchmark: generate N items (default 10,000) and verify every reference in the sandbox.

Generation runs no sandbox (expected outputs come from the trusted references in-process); verification
goes through `synth.code_tasks.verify_many`, which batches the jobs into a few sandbox processes.
Prints items/s for each phase and whether every reference scored 1.0; `--json FILE` also writes the
figure as JSON. The whole run must stay under 60 s on the 2-core dev machine (~8 s measured).

Run: `python benchmarks/synth_code.py --n 10000 --json benchmarks/results/synth_code.json`
(or `python -m benchmarks.synth_code` from the repository root).
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

from synth import code_tasks  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="items to generate (default 10000)")
    parser.add_argument("--difficulty", type=int, default=1, help="difficulty 0-3 (default 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="write the figure as JSON to this file")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    items = code_tasks.generate(args.n, args.seed, args.difficulty)
    generated = time.perf_counter()
    scores = code_tasks.verify_many([i["reference"] for i in items], [i["verifier"] for i in items])
    seconds = time.perf_counter() - start
    gen_s, verify_s = generated - start, seconds - (generated - start)
    figure = {
        "benchmark": "synth_code", "n": args.n, "difficulty": args.difficulty, "seconds": round(seconds, 3),
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
