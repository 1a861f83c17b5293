"""How clean the splits are: every dataset the tiny `iterate --round 3` trains on, against its dev and test sets.

Builds the data only (no training; about 10 s) through `committee.split_audit.audit` and prints, per family:
training rows, distinct dev and test problems, dev/test problem identities found in training data (must be 0),
test references of 30+ characters found verbatim among training references (must be 0), and the template
overlap (share of test prompts whose user turn, digits and capitalised words masked, equals a training one:
format familiarity, expected high for math), plus the arithmetic drill's facts that are dev/test problems.

Run: `python benchmarks/split_leakage.py [--rounds 3] [--json FILE] [key=value ...]` (iterate config overrides).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def main() -> int:
    from committee.round_config import load
    from committee.split_audit import audit, audit_lines

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--json", default=None)
    parser.add_argument("overrides", nargs="*", metavar="key=value")
    args = parser.parse_args()
    result = audit(load(args.preset, None, args.overrides), args.rounds)
    print("\n".join(audit_lines(result)))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
        print(f"saved {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
