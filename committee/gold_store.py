"""The hidden gold side-store of open-ended prompts: written beside a round's data, read by the gold oracle and evaluation.

Open-ended prompts (synth.families.OPEN_ENDED) have no verifier; their generator's items carry a `gold` dict, the
input of the family's hidden rubric (synth/<family>_gold.py). The dataset builders never copy it into a row, so
the rounds keep it aside, keyed by prompt id, in one JSON file per dataset that has open-ended prompts:
- `round_0/gold.json`: the run's dev and test prompts (evaluation grades the answers with it);
- `round_<N>/gold.json`: round N's fresh train prompts (the gold oracle labels the committee's pairs with it,
  as annotators would read the prompt; the over-optimisation plots score the rollouts with it).
Who reads it: `committee.annotators` (the oracle, for open-ended pairs), `committee.evaluation` and
`committee.report_eval` (dev / test grading), `committee.overoptimisation` (plots). No recipe, no reward and no
dataset row does: the labels are the only way the gold reaches training, exactly as human labels would.

What it does:
- `split_gold(rows)`: rows built with a private `_gold` key -> (rows without it, {id: gold});
- `write_gold(path, gold)` / `read_gold(path)`: the file (`read_gold` of None or a missing file is {}: runs
  without open-ended families have none); `set_aside(rows, path)` splits and writes in one step (the stages);
- `gold_parts(domain, completion, gold)`: the rubric's score and parts (synth.<family>_gold.gold_score);
- `gold_report(samples, member)`: {domain: {mean, ci95, n}} of one member's open-ended answers, the mean gold
  score with a cluster bootstrap over problem identities (committee.eval_stats; at 0 or 1, where every answer
  sits at the extreme and a bootstrap has no width, the Wilson interval of that extreme).

Run: `python -m pytest tests/committee/test_gold_store.py`.
"""
from __future__ import annotations

import json
from pathlib import Path

from afm_align.store import write_json_atomic
from synth.families import OPEN_ENDED

GOLD_FILE = "gold.json"
PRIVATE = "_gold"  # the key round_data attaches an item's gold under, split off before anything is written


def split_gold(rows: list[dict]) -> tuple[list[dict], dict[str, dict]]:
    """(the rows without their private gold key, {row id: gold} of the rows that had one)."""
    gold = {r["id"]: r[PRIVATE] for r in rows if r.get(PRIVATE) is not None}
    return [{k: v for k, v in r.items() if k != PRIVATE} for r in rows], gold


def write_gold(path: Path, gold: dict[str, dict]) -> Path:
    write_json_atomic(Path(path), gold)
    return Path(path)


def set_aside(rows: list[dict], path: Path) -> tuple[list[dict], dict]:
    """(the rows without their gold, {"gold": path} when any row had one, written there; else {}): a stage's
    rows go to its datasets, their gold to the side-store file."""
    clean, gold = split_gold(rows)
    return clean, ({"gold": write_gold(path, gold)} if gold else {})


def read_gold(path) -> dict[str, dict]:
    """{prompt id: gold} of a gold file; {} for None or a missing file (a run without open-ended prompts)."""
    if not path or not Path(path).is_file():
        return {}
    return json.loads(Path(path).read_text(encoding="utf-8"))


def gold_parts(domain: str, completion, gold: dict) -> dict:
    """The hidden rubric's {score, parts...} of one answer to an open-ended prompt (committee.gold_oracle.rubric)."""
    from committee.gold_oracle import rubric

    return rubric(domain).gold_score(completion, gold)


def gold_scores(samples: list[dict], gold: dict[str, dict]) -> list[float | None]:
    """The gold score of each sample (`prompt_id`, `domain`, `completion`); None off the open-ended domains or
    where the store has no gold for the prompt."""
    return [gold_parts(s["domain"], s["completion"], gold[s["prompt_id"]])["score"]
            if s["domain"] in OPEN_ENDED and s["prompt_id"] in gold else None for s in samples]


def gold_report(samples: list[dict], member: str, *, n_boot: int = 1000, seed: int = 0) -> dict[str, dict]:
    """{open-ended domain: {mean, ci95, n}}: one member's mean gold score (in `verifier_score` of graded
    evaluation samples), with a 95% cluster-bootstrap interval over problem identities."""
    from committee.eval_stats import cluster_bootstrap, wilson

    out = {}
    for domain in OPEN_ENDED:
        clusters: dict[str, list[float]] = {}
        for s in samples:
            if s.get("member") == member and s["domain"] == domain and s.get("verifier_score") is not None:
                clusters.setdefault(s.get("identity") or s["prompt_id"], []).append(float(s["verifier_score"]))
        if clusters:
            values = [v for vs in clusters.values() for v in vs]
            mean, n = round(sum(values) / len(values), 4), len(values)
            ci = cluster_bootstrap({domain: clusters}, n_boot=n_boot, seed=seed)
            if mean in (0.0, 1.0):  # every answer at an extreme: a bootstrap has no width, Wilson's bound does
                ci = wilson(mean * n, n)
            out[domain] = {"mean": mean, "n": n, "ci95": ci}
    return out
