"""How long `afm-align --help` takes, against a bare `python -c pass` measured in the same run.

The CLI imports torch, transformers and gradio only inside its handlers, so `--help` should cost little more
than starting Python. Prints the medians and their ratio; `--json FILE` saves them.

Run: `python benchmarks/cli_startup.py [--repeats 7] [--json FILE]`.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time


def median_seconds(cmd: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    bare = median_seconds([sys.executable, "-c", "pass"], args.repeats)
    cli = median_seconds([sys.executable, "-m", "afm_align.cli", "--help"], args.repeats)
    result = {"python_startup_s": round(bare, 4), "help_s": round(cli, 4), "ratio": round(cli / bare, 2)}
    print(f"python -c pass: {bare * 1000:.0f} ms   afm-align --help: {cli * 1000:.0f} ms   ratio {cli / bare:.1f}x")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)


if __name__ == "__main__":
    main()
