"""Over-refusal, counted: how often r0-sft and a run's top member refuse the safety family's benign look-alikes.

The safety family mixes harmful requests (to decline) with benign look-alikes (to answer: killing a process,
resetting your own lock). A member can score well on it by refusing everything, so its accuracy alone hides
over-refusal. This script reads the answers a finished `afm-align iterate` run already saved (its rounds'
`eval/samples.jsonl` on dev and `eval/test_samples.jsonl` on test; no model is run) and counts, for r0-sft and the
member on top after round N (chosen on dev, as `benchmarks/iterate_round3.py` reads it): benign prompts, how many
were refused (`synth.safety_tasks.is_refusal`) and how many passed the verifier; harmful prompts and how many were
refused. A prompt's kind is its problem identity's second field (`safety:benign:...`, `safety:harmful:...`).

Run: `python benchmarks/safety_refusals.py --runs DIR [--seeds 0,1,2] [--round 3] [--json FILE]` on the runs
folder of `iterate_round3.py --keep DIR` (seconds; it only reads files).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from datetime import datetime
from functools import lru_cache
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

SPLITS = ("dev", "test")


@lru_cache(maxsize=None)
def round_safety_rows(run: Path, round_n: int, split: str) -> tuple[dict, ...]:
    """Every member's saved safety answers of one round on `split` (`committee.evaluation.read_samples`), read once
    for all the members asked about: a round's dev samples file holds every member's answers (about 10 MB)."""
    from afm_align.rundir import RunDir
    from committee.evaluation import read_samples

    return tuple(r for r in read_samples(RunDir(run), round_n, split) if r.get("domain") == "safety")


def member_safety_rows(run: Path, member: str, split: str, rounds: int) -> list[dict]:
    """The member's saved safety answers on `split`, from the latest round (<= `rounds`) whose saved samples hold
    them (a round's eval files also carry the earlier members it compared against)."""
    for n in range(rounds, -1, -1):
        rows = [r for r in round_safety_rows(run, n, split) if r.get("member") == member]
        if rows:
            return rows
    raise SystemExit(f"{run}: no saved {split} safety answers of {member} in rounds 0-{rounds}")


def count(rows: list[dict]) -> dict:
    """Benign and harmful prompts, refusals of each, and benign answers the verifier passed."""
    from synth.safety_tasks import is_refusal

    def kind(row: dict) -> str:
        parts = str(row.get("identity") or "").split(":")
        if len(parts) < 2 or parts[1] not in ("benign", "harmful"):
            raise SystemExit(f"safety answer {row.get('prompt_id')}: identity {row.get('identity')!r} names neither "
                             f"a benign nor a harmful prompt (expected safety:benign:... or safety:harmful:...)")
        return parts[1]

    by_kind = {"benign": [], "harmful": []}
    for r in rows:
        by_kind[kind(r)].append(r)
    benign, harmful = by_kind["benign"], by_kind["harmful"]
    return {"benign": len(benign), "benign_refused": sum(is_refusal(r["completion"]) for r in benign),
            "benign_passed": sum(r.get("verifier_score") == 1.0 for r in benign),
            "harmful": len(harmful), "harmful_refused": sum(is_refusal(r["completion"]) for r in harmful)}


def seed_counts(run: Path, rounds: int) -> dict:
    """r0-sft's and the top member's counts on dev and test for one run."""
    from iterate_round3 import outcome

    try:
        top = outcome(run, rounds)["member"]
    except (RuntimeError, OSError, ValueError, KeyError) as err:
        raise SystemExit(f"{run}: cannot read round {rounds}'s top member ({err})") from None
    return {"top_member": top,
            "counts": {m: {split: count(member_safety_rows(run, m, split, rounds)) for split in SPLITS}
                       for m in ("r0-sft", top)}}


def line(seed: int, result: dict) -> str:
    parts = []
    for member, by_split in result["counts"].items():
        for split, c in by_split.items():
            parts.append(f"{member} {split}: benign refused {c['benign_refused']}/{c['benign']}, passed "
                         f"{c['benign_passed']}; harmful refused {c['harmful_refused']}/{c['harmful']}")
    return f"seed {seed} (top {result['top_member']}): " + "; ".join(parts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", required=True, help="runs folder holding seed0, seed1, ... (iterate_round3 --keep)")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--round", type=int, default=3)
    parser.add_argument("--json", default=str(HERE / "results" / "safety_refusals.json"))
    args = parser.parse_args()
    try:
        seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        parser.error(f"--seeds {args.seeds!r}: expected whole numbers separated by commas, e.g. 0,1,2")
    missing = [s for s in seeds if not (Path(args.runs) / f"seed{s}" / f"round_{args.round}").is_dir()]
    if missing:
        parser.error(f"{args.runs}: no round {args.round} for seeds {missing}")
    per_seed = {s: seed_counts(Path(args.runs) / f"seed{s}", args.round) for s in seeds}
    for s, r in per_seed.items():
        print(line(s, r))
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=HERE.parent, capture_output=True, text=True).stdout
    result = {"benchmark": "safety_refusals", "date": datetime.now().isoformat(timespec="seconds"),
              "commit": commit.strip(),
              "command": f"python benchmarks/safety_refusals.py --runs DIR --seeds {args.seeds} --round {args.round}",
              "per_seed": per_seed}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    print(f"saved {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
