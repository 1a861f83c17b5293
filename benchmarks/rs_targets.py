"""What RM-only rejection sampling distils on the open-ended prompts, scored by the hidden gold rubric.

A round's `rs` member is SFT on one answer per prompt: on the open-ended families (general, summarize) the
committee sample the RM scores highest, with no verifier gate (alignment/rejection_sampling.py). That member can
only raise the gold if its targets are better than what its start member already writes. This script reads a
finished run's files (no model is run) and, for each round 1..N and open-ended domain, scores with the rubric:
- `sample`: the mean gold of every committee sample of the round's open-ended train prompts (`responses/`,
  K samples a member at the round's temperature);
- `pick`: the mean gold of the answers RS kept (`rs-data/`, the RM's choice; the rows of this round only);
- `best_of_k`: the mean over prompts of the best sample's gold (what a perfect RM would keep from the same
  samples);
- `pick_is_best`: the share of prompts where the RM kept a sample of the top gold (ties count as the top), and
  `chance_is_best`: that share for a pick at random among the prompt's distinct non-empty samples (what RS
  chooses among: the RM's chance level);
- `start_greedy_dev`: the mean gold of the round's start member's greedy answers on the dev prompts (its saved
  evaluation answers; other prompts of the same generator, so compared as means, not paired).
Over seeds, 95% t-intervals of `pick - sample` (what the RM's choice adds) and `pick - start_greedy_dev` (whether
the targets beat what SFT on them starts from).

Run: `python benchmarks/rs_targets.py --runs DIR [--seeds 0,1,2] [--round 3] [--json FILE]` (rounds 1..N) on the
runs folder of `benchmarks/iterate_round3.py --keep DIR` (seconds; it only reads files).
"""
from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))


def _rows(folder: Path, kind: str) -> list[dict]:
    """A round's dataset folder through the project's reader (manifest and hash checked); a one-line exit if bad."""
    from afm_align.errors import UserError
    from afm_align.store import read_rows

    try:
        return read_rows(folder, kind)
    except UserError as err:
        raise SystemExit(f"{err} (not a finished round with an rs candidate?)") from None


def _chance_of_best(scores: list[float]) -> float:
    """The chance that a pick at random among these (distinct) answers is one of the top gold."""
    return scores.count(max(scores)) / len(scores) if scores else 0.0


def round_targets(samples: list[dict], kept: list[dict], gold: dict[str, dict], round_n: int,
                  domain: str) -> dict:
    """{n, sample, pick, best_of_k, pick_is_best, chance_is_best, pick_minus_sample}: one round's RS on one
    open-ended domain.

    `samples`: the round's committee responses (prompt_id, domain, completion); `kept`: RS's kept rows (id
    `rs-r<N>-<prompt id>`, round, domain, completion); `gold`: {prompt id: gold} of the round's train prompts."""
    from committee.gold_store import gold_parts
    from synth.reward_signature import completion_text

    def score(pid: str, completion) -> float:
        if pid not in gold:
            raise SystemExit(f"prompt {pid}: the round's gold.json has no gold for it")
        return gold_parts(domain, completion, gold[pid])["score"]

    by_prompt: dict[str, list[float]] = {}
    distinct: dict[str, dict[str, float]] = {}  # what RS chooses among: a prompt's distinct non-empty answers
    for s in samples:
        if s["domain"] == domain:
            g, text = score(s["prompt_id"], s["completion"]), completion_text(s["completion"]).strip()
            by_prompt.setdefault(s["prompt_id"], []).append(g)
            if text:
                distinct.setdefault(s["prompt_id"], {})[text] = g
    prefix = f"rs-r{round_n}-"
    picks = {r["id"][len(prefix):]: score(r["id"][len(prefix):], r["completion"]) for r in kept
             if r["domain"] == domain and r.get("round") == round_n and r["id"].startswith(prefix)}
    picks = {pid: g for pid, g in picks.items() if pid in by_prompt}
    if not picks:
        raise SystemExit(f"round {round_n}: RS kept no {domain} answer of the round's samples")
    mean = lambda xs: round(statistics.fmean(xs), 4)  # noqa: E731
    return {"n": len(picks),
            "sample": mean([g for pid in picks for g in by_prompt[pid]]),
            "pick": mean(list(picks.values())),
            "best_of_k": mean([max(by_prompt[pid]) for pid in picks]),
            "pick_is_best": mean([picks[pid] >= max(by_prompt[pid]) for pid in picks]),
            "chance_is_best": mean([_chance_of_best(list(distinct.get(pid, {}).values())) for pid in picks]),
            "pick_minus_sample": mean([picks[pid] - statistics.fmean(by_prompt[pid]) for pid in picks])}


def seed_targets(run: Path, rounds: int) -> dict:
    """{round: {domain: round_targets + start member and its greedy dev gold}} for rounds 1..`rounds` of one run."""
    from committee.gold_store import GOLD_FILE, read_gold
    from saved_runs import member_rows
    from synth.families import OPEN_ENDED

    out = {}
    for n in range(1, rounds + 1):
        rdir = run / f"round_{n}"
        start = json.loads((rdir / "manifest.json").read_text(encoding="utf-8")).get("start")
        samples, kept = _rows(rdir / "responses", "response"), _rows(rdir / "rs-data", "sft")
        gold = read_gold(rdir / GOLD_FILE)
        out[n] = {}
        for domain in sorted(OPEN_ENDED):
            greedy = [r.get("verifier_score") for r in member_rows(run, start, "dev", n - 1, domain)]
            if None in greedy:
                raise SystemExit(f"{run}: {start}'s saved dev {domain} answers carry no gold score")
            out[n][domain] = {**round_targets(samples, kept, gold, n, domain), "start": start,
                              "start_greedy_dev": round(statistics.fmean(float(g) for g in greedy), 4)}
    return out


def over_seeds(per_seed: dict) -> dict:
    """{round: {domain: {field: mean over seeds, pick_minus_sample_ci95, pick_minus_start_greedy_ci95}}}."""
    from committee.eval_stats import seed_interval

    out: dict = {}
    for result in per_seed.values():
        for n, by_domain in result.items():
            for domain, r in by_domain.items():
                acc = out.setdefault(str(n), {}).setdefault(domain, {})
                for k in ("sample", "pick", "best_of_k", "pick_is_best", "chance_is_best", "start_greedy_dev",
                          "pick_minus_sample"):
                    acc.setdefault(k, []).append(r[k])
                acc.setdefault("pick_minus_start_greedy", []).append(r["pick"] - r["start_greedy_dev"])
    summary: dict = {}
    for n, by_domain in out.items():
        for domain, acc in by_domain.items():
            s = {k: round(statistics.fmean(v), 4) for k, v in acc.items()}
            s["pick_minus_sample_ci95"] = seed_interval(acc["pick_minus_sample"])
            s["pick_minus_start_greedy_ci95"] = seed_interval(acc["pick_minus_start_greedy"])
            summary.setdefault(n, {})[domain] = s
    return summary


def line(seed: int, result: dict) -> str:
    parts = [f"r{n} {d}: samples {r['sample']:.4f}, RM pick {r['pick']:.4f}, best of k {r['best_of_k']:.4f}, "
             f"pick is best {r['pick_is_best']:.2f} (chance {r['chance_is_best']:.2f}), "
             f"{r['start']} greedy (dev) {r['start_greedy_dev']:.4f}"
             for n, by_domain in result.items() for d, r in by_domain.items()]
    return f"seed {seed}: " + "; ".join(parts)


def main() -> int:
    from saved_runs import run_over_seeds

    def summary(per_seed: dict) -> dict:
        means = over_seeds(per_seed)
        print("mean over seeds:", json.dumps(means))
        return {"mean_over_seeds": means}

    return run_over_seeds(__doc__.splitlines()[0], "rs_targets", seed_targets, line, summary)


if __name__ == "__main__":
    sys.exit(main())
