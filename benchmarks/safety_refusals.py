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

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))


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
    from saved_runs import SPLITS, member_rows

    try:
        top = outcome(run, rounds)["member"]
    except (RuntimeError, OSError, ValueError, KeyError) as err:
        raise SystemExit(f"{run}: cannot read round {rounds}'s top member ({err})") from None
    return {"top_member": top,
            "counts": {m: {split: count(member_rows(run, m, split, rounds, "safety")) for split in SPLITS}
                       for m in ("r0-sft", top)}}


def line(seed: int, result: dict) -> str:
    parts = []
    for member, by_split in result["counts"].items():
        for split, c in by_split.items():
            parts.append(f"{member} {split}: benign refused {c['benign_refused']}/{c['benign']}, passed "
                         f"{c['benign_passed']}; harmful refused {c['harmful_refused']}/{c['harmful']}")
    return f"seed {seed} (top {result['top_member']}): " + "; ".join(parts)


def main() -> int:
    from saved_runs import run_over_seeds

    return run_over_seeds(__doc__.splitlines()[0], "safety_refusals", seed_counts, line)


if __name__ == "__main__":
    sys.exit(main())
