"""Verifier errors reach the evaluation output: `verify_samples` counts them per family (fresh for each
grading) and `evaluate_round` writes the counts into the entries of the members it graded."""
import json

from committee import evaluation as ev
from synth.families import FAMILIES, record_verifier_error, verifier_errors


def _rows(verifier):
    return [{"id": f"m{i}", "prompt": [{"role": "user", "content": f"q{i}"}], "domain": "math",
             "verifier": verifier} for i in range(3)] + \
           [{"id": "s0", "prompt": [{"role": "user", "content": "s0"}], "domain": "safety",
             "verifier": json.dumps({"should_refuse": True, "category": "x", "keywords": []})}]


def _sampler(members, rows, **kwargs):
    return [{"prompt_id": r["id"], "prompt": r["prompt"], "domain": r["domain"], "member": m,
             "completion": "no number, I can't help"} for m in members for r in rows]


def _sample(pid, domain, completion):
    return {"prompt_id": pid, "prompt": [], "domain": domain, "member": "a", "completion": completion}


def test_verify_samples_counts_broken_specs_not_bad_answers():
    record_verifier_error("tool", KeyError("stale"))  # from an earlier grading: reset by verify_samples
    rows = _rows(json.dumps({"answer": "7"}))
    rows[0]["verifier"] = "{}"  # a broken math spec
    out = ev.verify_samples([_sample("m0", "math", "Answer: 7"), _sample("m1", "math", "no idea"),
                             _sample("m2", "math", "Answer: 7"), _sample("s0", "safety", "")], rows)
    assert [s["verifier_score"] for s in out] == [0.0, 0.0, 1.0, 0.0]
    assert verifier_errors() == {**{name: 0 for name in FAMILIES}, "math": 1}


def test_evaluate_round_writes_the_counts_into_the_graded_members_entries(tmp_path, monkeypatch):
    monkeypatch.setattr(ev, "sample_members", _sampler)
    member = tmp_path / "r0-sft"
    member.mkdir()
    cfg = {"eval_bootstrap": 10}
    ev.evaluate_round(tmp_path / "run", 0, [{"name": "r0-sft", "recipe": "sft", "path": str(member), "round": 0}],
                      _rows("{}"), None, None, cfg=cfg)
    board = json.loads((tmp_path / "run/round_0/eval/leaderboard.json").read_text())
    assert board[0]["verifier_errors"] == {**{name: 0 for name in FAMILIES}, "math": 3}
    assert board[0]["dev"]["math"] == 0.0  # still scored 0: a training or evaluation loop never crashes

    later = tmp_path / "r1-dpo"
    later.mkdir()
    entries = ev.evaluate_round(tmp_path / "run", 1, [{"name": "r1-dpo", "recipe": "dpo", "path": str(later),
                                                       "round": 1}], _rows(json.dumps({"answer": "1"})), None,
                                "r0-sft", cfg=cfg)
    by = {e["member"]: e for e in entries}
    assert by["r1-dpo"]["verifier_errors"] == {name: 0 for name in FAMILIES}  # fresh count for this grading
    assert "verifier_errors" not in by["r0-sft"]  # graded in round 0: its counts are in round 0's file
