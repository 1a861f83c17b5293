"""Synth-family benchmark: for each family, generate N items (default 10,000) and verify every reference.

For every family name given (default: every registered family, `synth.families.FAMILIES`) it loads the
checked family module (`synth.families.family`: an unknown name is a one-line error), times
`generate(n, seed, difficulty)` and then `verify(reference, verifier)` over all items, and prints a table of
items/s and total seconds, whether every reference scored 1.0, and how many verifier errors
(`synth.families.verifier_errors`) grading raised. `--json FILE` also writes the figures as JSON. Each family
should stay well under 60 s on the 2-core dev machine (the code family runs its references in batched sandbox
processes).

Run: `python benchmarks/synth_families.py math if safety --json benchmarks/results/synth_families.json`
(or `python -m benchmarks.synth_families` from the repository root).
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

from synth.families import FAMILIES, family, reset_verifier_errors, verifier_errors  # noqa: E402


def bench_family(module, n: int, seed: int, difficulty: int) -> dict:
    """Time generating n items and verifying their references."""
    reset_verifier_errors()
    start = time.perf_counter()
    items = module.generate(n, seed, difficulty)
    generated = time.perf_counter()
    references, verifiers = [it["reference"] for it in items], [it["verifier"] for it in items]
    if hasattr(module, "verify_many"):  # the code family batches sandbox runs
        scores = module.verify_many(references, verifiers)
    else:
        scores = [module.verify(r, v) for r, v in zip(references, verifiers)]
    seconds = time.perf_counter() - start
    gen_s, verify_s = generated - start, seconds - (generated - start)
    return {"n": n, "difficulty": difficulty, "seconds": round(seconds, 3), "generate_s": round(gen_s, 3),
            "verify_s": round(verify_s, 3), "items_per_s": round(n / seconds, 1),
            "generate_items_per_s": round(n / gen_s, 1), "verify_items_per_s": round(n / max(verify_s, 1e-9), 1),
            "all_references_pass": min(scores) == 1.0, "failing_references": sum(s != 1.0 for s in scores),
            "verifier_errors": sum(verifier_errors().values())}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("families", nargs="*", default=list(FAMILIES),
                        help=f"family names (default: {' '.join(FAMILIES)})")
    parser.add_argument("--n", type=int, default=10_000, help="items per family (default 10000)")
    parser.add_argument("--difficulty", type=int, default=1, help="difficulty for every family (default 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="write the figures as JSON to this file")
    args = parser.parse_args(argv)
    results = {}
    print(f"{'family':<10}{'items':>8}{'items/s':>12}{'gen/s':>12}{'verify/s':>12}{'total s':>10}"
          "  all pass  verifier errors")
    modules = {name: family(name) for name in args.families}  # an unknown name fails before any timing
    for name, module in modules.items():
        r = bench_family(module, args.n, args.seed, args.difficulty)
        results[name] = r
        print(f"{name:<10}{r['n']:>8}{r['items_per_s']:>12}{r['generate_items_per_s']:>12}"
              f"{r['verify_items_per_s']:>12}{r['seconds']:>10}  {r['all_references_pass']!s:<8}"
              f"  {r['verifier_errors']}")
    figure = {"benchmark": "synth_families", "families": results, "seed": args.seed,
              "python": platform.python_version(), "machine": platform.machine()}
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figure, indent=2) + "\n")
    return figure


if __name__ == "__main__":
    main()
