"""Test-split scoring for reports: its own files, earlier members reused, paired gain vs r0-sft, RM on oracle pairs."""
import json

import pytest

from committee import report_eval as re_
from committee.report_eval import evaluate_test, oracle_pair_accuracy, read_test

ROWS = [{"id": f"m{i}", "prompt": [{"role": "user", "content": f"q{i}"}], "domain": "math", "verifier": "{}",
         "identity": f"math:{i}"} for i in range(10)]
QUALITY = {"r0-sft": 3, "r1-rs": 7}  # prompts m0..m(q-1) are solved


def _fake_sampler(calls):
    def sample(members, rows, **kwargs):
        calls.append(sorted(members))
        return [{"prompt_id": r["id"], "prompt": r["prompt"], "domain": r["domain"], "member": m,
                 "identity": r["identity"], "completion": f"{m}:{r['id']}"} for m in members for r in rows]
    return sample


def _fake_verify(samples, rows, gold=None):
    return [{**s, "verifier_score": float(int(s["prompt_id"][1:]) < QUALITY[s["member"]])} for s in samples]


def fake_rm(prompts, completions, **columns):  # prefers r1-rs's answers: right on its 4 extra solved prompts
    return [1.0 if c.startswith("r1-rs") else 0.0 for c in completions]


def test_oracle_pair_accuracy_counts_pairs_whose_verifier_scores_differ():
    s = [{"prompt_id": "p", "completion": "a", "verifier_score": 1.0, "rm_score": 2.0},
         {"prompt_id": "p", "completion": "b", "verifier_score": 0.0, "rm_score": 1.0},
         {"prompt_id": "p", "completion": "c", "verifier_score": 0.0, "rm_score": 3.0},
         {"prompt_id": "q", "completion": "a", "verifier_score": 1.0, "rm_score": 0.0},
         {"prompt_id": "q", "completion": "a", "verifier_score": 1.0, "rm_score": 0.0}]  # same answer: no pair
    out = oracle_pair_accuracy(s)
    assert out["pairs"] == 2 and out["accuracy"] == 0.5  # (a > b) right, (a > c) wrong; b-c tie skipped
    assert oracle_pair_accuracy([])["accuracy"] is None


def test_evaluate_test_writes_its_own_files_and_reuses_earlier_members(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(re_, "sample_members", _fake_sampler(calls))
    monkeypatch.setattr(re_, "verify_samples", _fake_verify)
    run, cfg = tmp_path / "run", {"eval_bootstrap": 200, "seed": 0}
    evaluate_test(run, 0, [{"name": "r0-sft", "recipe": "sft", "path": str(tmp_path), "round": 0}], ROWS, None, cfg=cfg)
    out = evaluate_test(run, 1, [{"name": "r1-rs", "recipe": "rs", "path": str(tmp_path), "round": 1}], ROWS,
                        fake_rm, cfg=cfg)
    assert calls == [["r0-sft"], ["r1-rs"]]  # r0-sft's test answers were reused in round 1
    by = {e["member"]: e for e in out["entries"]}
    assert by["r1-rs"]["test"]["mean"] == 0.7 and by["r0-sft"]["test"]["mean"] == 0.3
    assert by["r1-rs"]["vs_baseline"]["delta"] == pytest.approx(0.4) and by["r0-sft"]["scored_in"] == 0
    assert by["r1-rs"]["test_domains"]["math"]["problems"] == 10
    assert out["rm_on_committee_answers"]["pairs"] == 4 and out["rm_on_committee_answers"]["accuracy"] == 1.0
    assert read_test(run, 1) == json.loads(json.dumps(out["entries"]))
    assert not (run / "round_1" / "eval" / "leaderboard.json").exists()  # the dev file promotion reads is untouched
    rows = [json.loads(x) for x in (run / "round_1" / "eval" / "test_samples.jsonl").read_text().splitlines()]
    assert len(rows) == 20 and {r["identity"] for r in rows} == {r["identity"] for r in ROWS}
