"""Why the open-ended families solve nothing: the hidden gold rubric's parts of r0-sft's and the top member's answers.

The general and summarize families are scored by a product of rubric parts (coverage of the facts asked for,
truthfulness = 0.5 ** invented values, verbosity, instruction following, harmlessness; synth/general_gold.py and
synth/summarize_gold.py); an answer is solved only at a perfect 1.0. A mean gold score near zero can mean bad
form (wrong register, too long, a reply instead of a summary) or wrong content (facts not copied, values
invented), and the two call for different fixes. This script reads the answers a finished `afm-align iterate`
run saved (its rounds' `eval/samples.jsonl` on dev and `eval/test_samples.jsonl` on test; no model is run) and the
run's hidden gold (`round_0/gold.json`), re-scores each answer with the rubric, and reports per member, split and
open-ended domain: the mean of each part, the share of answers where that part is perfect, the mean count of
invented values (k of truthfulness = 0.5 ** k) and the share of answers solved. Members: r0-sft and the member on
top after round N (chosen on dev, as `benchmarks/iterate_round3.py` reads it).

Run: `python benchmarks/gold_parts.py --runs DIR [--seeds 0,1,2] [--round 3] [--json FILE]` on the runs folder of
`iterate_round3.py --keep DIR` (seconds; it only reads files).
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

PARTS = ("coverage", "truthfulness", "verbosity", "instruction_following", "harmlessness")


def invented_values(truthfulness: float) -> float:
    """k of truthfulness = 0.5 ** k: the distinct values the answer holds that its prompt does not."""
    return 0.0 if truthfulness >= 1.0 else -math.log2(max(truthfulness, 1e-12))


def summarize_parts(rows: list[dict], gold: dict[str, dict]) -> dict:
    """{n, solved, score, invented, <part>: {mean, perfect}} over one member's answers in one open-ended domain."""
    from committee.gold_store import gold_parts

    scored = []
    for r in rows:
        if r["prompt_id"] not in gold:
            raise SystemExit(f"answer to {r['prompt_id']}: the run's gold.json has no gold for this prompt")
        scored.append(gold_parts(r["domain"], r["completion"], gold[r["prompt_id"]]))
    n = len(scored)
    if n == 0:
        raise SystemExit("no answers to score")
    mean = lambda xs: round(sum(xs) / n, 4)  # noqa: E731
    out = {"n": n, "solved": mean([p["score"] >= 1.0 for p in scored]), "score": mean([p["score"] for p in scored]),
           "invented": mean([invented_values(p["truthfulness"]) for p in scored])}
    for part in PARTS:
        out[part] = {"mean": mean([p[part] for p in scored]), "perfect": mean([p[part] >= 1.0 for p in scored])}
    return out


def seed_parts(run: Path, rounds: int) -> dict:
    """r0-sft's and the top member's rubric parts on dev and test, per open-ended domain, for one run."""
    from committee.gold_store import GOLD_FILE, read_gold
    from iterate_round3 import outcome
    from saved_runs import SPLITS, member_rows
    from synth.families import OPEN_ENDED

    if not (run / "round_0" / GOLD_FILE).is_file():
        raise SystemExit(f"{run}: no round_0/{GOLD_FILE} (the open-ended prompts' hidden gold; a run without the "
                         f"general or summarize family has none)")
    try:
        top = outcome(run, rounds)["member"]
        gold = read_gold(run / "round_0" / GOLD_FILE)
    except (RuntimeError, OSError, ValueError, KeyError) as err:
        raise SystemExit(f"{run}: cannot read round {rounds}'s top member or the run's gold ({err})") from None
    return {"top_member": top,
            "parts": {m: {split: {d: summarize_parts(member_rows(run, m, split, rounds, d), gold)
                                  for d in sorted(OPEN_ENDED)} for split in SPLITS}
                      for m in ("r0-sft", top)}}


def over_seeds(per_seed: dict, split: str) -> dict:
    """{'r0-sft' | 'top': {domain: {field: mean over the seeds}}} of the headline fields on `split`."""
    out: dict = {}
    for result in per_seed.values():
        for who, member in (("r0-sft", "r0-sft"), ("top", result["top_member"])):
            for domain, p in result["parts"][member][split].items():
                fields = {"score": p["score"], "solved": p["solved"], "invented": p["invented"],
                          **{f"{part}_perfect": p[part]["perfect"] for part in PARTS},
                          "coverage": p["coverage"]["mean"]}
                for k, v in fields.items():
                    out.setdefault(who, {}).setdefault(domain, {}).setdefault(k, []).append(v)
    return {who: {d: {k: round(sum(v) / len(v), 4) for k, v in f.items()} for d, f in by_d.items()}
            for who, by_d in out.items()}


def line(seed: int, result: dict, split: str = "test") -> str:
    parts = []
    for member, by_split in result["parts"].items():
        for domain, p in by_split[split].items():
            parts.append(f"{member} {domain}: gold {p['score']:.3f}, solved {p['solved']:.3f}, facts covered "
                         f"{p['coverage']['mean']:.2f}, invented {p['invented']:.2f}, form perfect (if/verbosity) "
                         f"{p['instruction_following']['perfect']:.2f}/{p['verbosity']['perfect']:.2f}")
    return f"seed {seed} {split} (top {result['top_member']}): " + "; ".join(parts)


def main() -> int:
    from saved_runs import SPLITS, run_over_seeds

    def summary(per_seed: dict) -> dict:
        means = {split: over_seeds(per_seed, split) for split in SPLITS}
        print("mean over seeds, test:", json.dumps(means["test"]))
        return {"mean_over_seeds": means}

    return run_over_seeds(__doc__.splitlines()[0], "gold_parts", seed_parts, line, summary)


if __name__ == "__main__":
    sys.exit(main())
