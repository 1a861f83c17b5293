"""Averaging two members fine-tuned from one start (issue 19): the merged model's test accuracy against both.

It takes a finished `afm-align iterate` run and two members of one round (they all start from the previous round's
promoted member, so they are "fine-tuned from one start"), writes their uniform average with the `merge` recipe
(`alignment.merge`, method `average`; or any other method), and scores the three on the run's **test** prompts with
the verifiers (`committee.member_eval.evaluate_member`: per-domain accuracy, cluster-bootstrap intervals), plus the
paired difference merged - each parent on the same problems. Test is for reporting only: nothing here chooses.

Run: `python benchmarks/merge_members.py --run runs/default --members r3-dpo,r3-ipo [--method average]
[--json benchmarks/results/merge_members.json]` (about a minute on 2 cores).
"""
from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="a finished iterate run (folder or name)")
    parser.add_argument("--members", required=True, help="two members of one round, e.g. r3-dpo,r3-ipo")
    parser.add_argument("--method", default="average", help="merge method (default: average)")
    parser.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "merge_members.json"))
    args = parser.parse_args()
    from afm_align.rundir import RunDir
    from alignment import recipes
    from committee.eval_stats import paired_report
    from committee.evaluation import sample_members, verify_samples
    from committee.member_eval import eval_rows, member_dir
    from committee.eval_stats import accuracy_report

    run = RunDir.named(args.run)
    a, b = args.members.split(",")
    paths = {a: member_dir(run, a), b: member_dir(run, b)}
    merged = run.root / "merged" / f"{a}+{b}-{args.method}"
    if not (merged / "meta.json").is_file():
        recipes.main_of("merge")(recipes.load("merge", members=[str(paths[a]), str(paths[b])], method=args.method,
                                              out=str(merged)))
    paths["merged"] = merged
    rows, source = eval_rows(run, None, "test")
    samples = verify_samples(sample_members(paths, rows, max_new_tokens=64, stage="test-evaluation"), rows)
    import subprocess

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    out = {"date": datetime.now().isoformat(timespec="seconds"), "commit": commit,
           "command": "python benchmarks/merge_members.py " + " ".join(sys.argv[1:]), "run": str(run.root), "test_data": source,
           "method": args.method, "members": [a, b],
           "test": {name: accuracy_report(samples, name) for name in paths},
           "merged_minus": {name: paired_report(samples, "merged", name) for name in (a, b)}}
    Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    for name in paths:
        t = out["test"][name]
        print(f"{name:>10}: test mean {t['mean']:.3f} {t['ci95']}  " +
              " ".join(f"{d} {v['accuracy']:.2f}" for d, v in t["per_domain"].items()))
    for name, d in out["merged_minus"].items():
        print(f"merged - {name}: {d['delta']:+.3f} {d['ci95']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
