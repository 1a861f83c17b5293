"""Test-split scoring of a round, for reports only: run after promotion, written beside the dev files.

Promotion (committee.promotion) reads `round_<N>/eval/leaderboard.json`, which holds dev scores only;
this module writes `round_<N>/eval/test_leaderboard.json` and `test_samples.jsonl` after the promotion
stage is done, and nothing that promotes imports it. So no choice of the pipeline can depend on a test
score: test numbers exist only once every decision of the round has been taken.

What it does, for round N (`evaluate_test`):
1. the members chosen for reporting (`eval_test_members`: `best`, the round's best promoted member; or
   `promoted`; or `all`; round 0 scores its members) answer each test prompt once, greedily; members scored
   in earlier rounds are copied from the round that scored them (never regenerated);
2. answers are graded by the families' verifiers; the round's RM scores the new answers and r0-sft's (an
   earlier member's answers keep the RM score of the round that scored them);
3. each entry: member, round, recipe, scored_in, test {domain: acc, mean}, test_ci95 (cluster bootstrap
   over problem identities), test_domains (n, problems, Wilson ci95), and `vs_baseline`: the paired
   difference against the run's r0-sft on the same test prompts;
4. `rm_on_committee_answers`: the RM's pairwise accuracy on pairs of this round's scored members' and
   r0-sft's test answers labelled by the noiseless oracle (the answer its verifier scores higher is chosen) -
   the kind of pair the RM judges in a round, on problems no RM training pair has.

Run: called by the round runner (`afm-align iterate`); tests: `python -m pytest tests/committee/test_report_eval.py`.
"""
from __future__ import annotations

import json
from pathlib import Path

from afm_align.store import write_json_atomic
from committee.evaluation import (
    SAMPLE_KEYS,
    TEST_FILE,
    TEST_SAMPLES_FILE,
    EvalSettings,
    accuracy_fields,
    as_run,
    gold_fields,
    reused_samples,
    sample_members,
    score_samples,
    verify_samples,
    write_jsonl_atomic,
)
from committee.eval_stats import paired_report

BASELINE = "r0-sft"


def read_test(run, round_n: int) -> list[dict]:
    """The entries of `round_<N>/eval/test_leaderboard.json` (empty when the round has none yet)."""
    file = as_run(run).round(round_n) / "eval" / TEST_FILE
    return json.loads(file.read_text(encoding="utf-8")) if file.is_file() else []


def earlier_test_entries(run, round_n: int) -> list[dict]:
    """Entries of members scored on test in rounds below N (each from the round that scored it)."""
    return [e for m in range(round_n) for e in read_test(run, m) if e["scored_in"] == m]


def oracle_pair_accuracy(samples: list[dict]) -> dict:
    """RM accuracy on pairs of distinct answers to one prompt whose verifier scores differ (chosen: higher)."""
    by_prompt: dict[str, dict[str, dict]] = {}
    for s in samples:
        if s.get("verifier_score") is not None and s.get("rm_score") is not None:
            by_prompt.setdefault(s["prompt_id"], {}).setdefault(s["completion"], s)
    right, n = 0.0, 0
    for answers in by_prompt.values():
        rows = list(answers.values())
        for i, a in enumerate(rows):
            for b in rows[i + 1:]:
                if a["verifier_score"] == b["verifier_score"]:
                    continue
                chosen, rejected = (a, b) if a["verifier_score"] > b["verifier_score"] else (b, a)
                n += 1
                right += 1.0 if chosen["rm_score"] > rejected["rm_score"] else 0.5 if chosen["rm_score"] == rejected["rm_score"] else 0.0
    from committee.eval_stats import wilson

    return {"accuracy": round(right / n, 4) if n else None, "pairs": n, "ci95": wilson(right, n) if n else None,
            "label": "noiseless oracle: the answer with the higher verifier score is chosen"}


def _entry(samples: list[dict], info: dict, round_n: int, s: EvalSettings) -> dict:
    entry = {"member": info["member"], "round": info["round"], "recipe": info.get("recipe"),
             "scored_in": info.get("scored_in", round_n), **accuracy_fields(samples, info["member"], "test", s),
             **gold_fields(samples, info["member"], "test", s)}
    names = {x["member"] for x in samples}
    if info["member"] != BASELINE and BASELINE in names and entry["test"]["mean"] is not None:
        try:
            entry["vs_baseline"] = {"baseline": BASELINE, **paired_report(samples, info["member"], BASELINE,
                                                                          n_boot=s.n_boot, seed=s.seed)}
        except ValueError:
            pass
    return entry


def evaluate_test(run_dir, round_n: int, members: list[dict], test_rows: list[dict], rm_dir, *,
                  cfg=None, gold: dict | None = None) -> dict:
    """Score `members` ([{name, recipe, path, round}]) on the test rows; write and return the round's test files."""
    run, s = as_run(run_dir), EvalSettings.from_cfg(cfg)
    earlier = earlier_test_entries(run, round_n)
    new = sample_members({m["name"]: Path(m["path"]) for m in members}, test_rows,
                         max_new_tokens=s.max_new_tokens, batch_size=s.batch_size, seed=s.seed, backend=s.backend,
                         stage="test-evaluation")
    old = reused_samples(run, earlier, {r["id"] for r in test_rows}, split="test", keep_rm=True)
    # this round's RM scores the new answers and r0-sft's (the pairs it is evaluated on); others keep theirs
    baseline = [{k: v for k, v in x.items() if k != "rm_score"} for x in old if x["member"] == BASELINE]
    judged = score_samples(verify_samples(new, test_rows, gold) + baseline, rm_dir, batch_size=s.rm_batch_size)
    samples = [x for x in old if x["member"] != BASELINE] + judged
    samples = sorted(({k: x.get(k) for k in SAMPLE_KEYS} for x in samples), key=lambda x: (x["member"], x["prompt_id"]))
    infos = earlier + [{"member": m["name"], "round": m.get("round", round_n), "recipe": m.get("recipe"),
                        "scored_in": round_n} for m in members]
    entries = [_entry(samples, info, round_n, s) for info in infos]
    entries.sort(key=lambda e: (e["test"]["mean"] is None, -(e["test"]["mean"] or 0.0), e["member"]))
    out = run.round(round_n) / "eval"
    write_jsonl_atomic(out / TEST_SAMPLES_FILE, samples)
    write_json_atomic(out / TEST_FILE, entries)
    rm = oracle_pair_accuracy(judged) if rm_dir is not None else None
    return {"entries": entries, "rm_on_committee_answers": rm}
