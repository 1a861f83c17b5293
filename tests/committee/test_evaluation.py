"""Evaluation: hand-worked accuracies and intervals, paired deltas, win rates, verifiers, the round files."""
import json

import pytest

from committee import evaluation as ev
from committee.evaluation import (
    EvalSettings,
    domain_differences,
    evaluate_round,
    paired_difference,
    verify_samples,
    win_rates,
)


def _row(member, pid, domain, score, rm=None, completion="x"):
    return {"prompt_id": pid, "prompt": [{"role": "user", "content": pid}], "domain": domain, "member": member,
            "completion": completion, "verifier_score": score, "rm_score": rm}


def test_paired_difference_uses_shared_prompts_and_has_an_interval():
    a = [_row("a", f"p{i}", "math", 1.0 if i % 4 else 0.0) for i in range(40)]
    b = [_row("b", f"p{i}", "math", 0.0 if i % 2 else 1.0 if i % 4 == 0 else 0.0) for i in range(40)]
    a += [_row("a", f"t{i}", "tool", 1.0) for i in range(10)] + [_row("a", "only-a", "tool", 0.0)]
    b += [_row("b", f"t{i}", "tool", 1.0 if i < 5 else 0.0) for i in range(10)]
    delta, ci = paired_difference(a + b, "a", "b", n_boot=500, seed=0)
    # math: a = 0.75, b = 0.25 -> +0.5; tool (only-a not shared): 1.0 - 0.5 = +0.5
    assert delta == pytest.approx(0.5)
    assert 0 < ci[0] < 0.5 < ci[1]
    back, back_ci = paired_difference(a + b, "b", "a", n_boot=500, seed=0)
    assert back == pytest.approx(-0.5) and back_ci[1] < 0
    per = domain_differences(a + b, "a", "b", n_boot=200)
    assert per["tool"][0] == 0.5 and per["tool"][2] == 10 and per["math"][0] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="share no graded"):
        paired_difference([_row("a", "x", "math", 1), _row("b", "y", "math", 1)], "a", "b")


def test_win_rates_are_judged_per_prompt_with_ties_half_by_the_verifiers_by_default():
    samples = [_row("a", "p1", "math", 1, rm=2.0), _row("b", "p1", "math", 1, rm=1.0),
               _row("a", "p2", "math", 1, rm=0.0), _row("b", "p2", "math", 1, rm=0.0),
               _row("a", "p3", "math", 1, rm=-1.0), _row("b", "p3", "math", 1, rm=3.0),
               _row("a", "p4", "math", 1, rm=5.0), _row("c", "p9", "math", 1, rm=1.0)]
    assert win_rates(samples, ["a", "b"])[("a", "b")] == 0.5  # the verifiers (all 1) tie every prompt
    rates = win_rates(samples, ["a", "b", "c"], key="rm_score")
    assert rates[("a", "b")] == pytest.approx(0.5) and rates[("b", "a")] == pytest.approx(0.5)
    samples[5]["rm_score"] = -2.0  # b on p3: now a wins p1 and p3, ties p2
    rates = win_rates(samples, ["a", "b", "c"], key="rm_score")
    assert rates[("a", "b")] == pytest.approx(2.5 / 3, abs=1e-4) and rates[("b", "a")] == pytest.approx(0.5 / 3, abs=1e-4)
    assert ("a", "c") not in rates  # no shared prompt


def test_verify_samples_uses_each_family_verifier():
    from synth.builders import prompt_rows

    rows = prompt_rows("math", 2, seed=0, with_reference=True) + prompt_rows("if", 2, seed=0, with_reference=True)
    rows += prompt_rows("code", 1, seed=0, with_reference=True)
    good = [{"prompt_id": r["id"], "prompt": r["prompt"], "domain": r["domain"], "member": "ref",
             "completion": r["completion"][0]["content"]} for r in rows]
    bad = [{**s, "member": "junk", "completion": "I do not know."} for s in good]
    general = {**good[0], "prompt_id": "g", "domain": "general"}
    out = verify_samples(good + bad + [general], rows + [{**rows[0], "id": "g", "domain": "general"}])
    assert [s["verifier_score"] for s in out[:5]] == [1.0] * 5
    assert all(s["verifier_score"] is not None for s in out[5:10])
    assert all(s["verifier_score"] < 1.0 for s in out[5:10] if s["domain"] in ("math", "code"))
    assert out[10]["verifier_score"] is None and "verifier_score" not in good[0]
    with pytest.raises(ValueError, match="not among the evaluation rows"):
        verify_samples(good, rows[1:])


def test_sample_members_is_greedy_through_the_generation_path(tiny_base_dir):
    rows = [{"id": "p1", "prompt": [{"role": "user", "content": "1 + 2 ="}], "domain": "math"},
            {"id": "p2", "prompt": [{"role": "user", "content": "What is the answer?"}], "domain": "if"}]
    members = {"r0-sft": tiny_base_dir, "r1-dpo": tiny_base_dir}
    out = ev.sample_members(members, rows, max_new_tokens=4, batch_size=2, seed=0)
    assert [(s["member"], s["prompt_id"], s["domain"]) for s in out] == [
        ("r0-sft", "p1", "math"), ("r0-sft", "p2", "if"), ("r1-dpo", "p1", "math"), ("r1-dpo", "p2", "if")]
    assert all(isinstance(s["completion"], str) for s in out)
    again = ev.sample_members(members, rows, max_new_tokens=4, batch_size=1, seed=7)
    assert [s["completion"] for s in again] == [s["completion"] for s in out]  # greedy: seed-free


def test_settings_read_eval_keys_from_dicts_and_objects():
    class Cfg:
        eval_max_new_tokens, seed, eval_bootstrap = 16, 3, 50

    assert EvalSettings.from_cfg({"eval_batch_size": 4}).batch_size == 4
    s = EvalSettings.from_cfg(Cfg())
    assert (s.max_new_tokens, s.seed, s.n_boot, s.batch_size) == (16, 3, 50, 32)
    assert EvalSettings.from_cfg(None) == EvalSettings()


# ---- evaluate_round over two rounds, with a fake sampler and a fake RM ---------------------------------

HELDOUT = [{"id": f"m{i}", "prompt": [{"role": "user", "content": f"q{i}"}], "domain": "math",
            "verifier": "{}"} for i in range(6)] + \
          [{"id": f"s{i}", "prompt": [{"role": "user", "content": f"s{i}"}], "domain": "safety",
            "verifier": "{}"} for i in range(4)]
QUALITY = {"r0-sft": 0.3, "r1-dpo": 0.6, "r1-mdloo": 0.8}


def _fake_sampler(calls):
    def sample(members, rows, **kwargs):
        calls.append(sorted(members))
        return [{"prompt_id": r["id"], "prompt": r["prompt"], "domain": r["domain"], "member": m,
                 "completion": f"{m}:{r['id']}"} for m in members for r in rows]
    return sample


def _fake_verify(samples, rows, gold=None):  # member quality decides which prompts pass (deterministic)
    return [{**s, "verifier_score": float(int(s["prompt_id"][1:]) < QUALITY[s["member"]] * 6)} for s in samples]


def fake_rm(prompts, completions, **columns):
    return [QUALITY[c.split(":")[0]] * 10 + int(c.split(":")[1][1:]) % 3 for c in completions]


def _member(tmp_path, name, recipe, round_n, meta=None):
    path = tmp_path / name
    path.mkdir()
    (path / "meta.json").write_text(json.dumps(meta or {"member": name, "recipe": recipe}))
    return {"name": name, "recipe": recipe, "path": str(path), "round": round_n}


def test_evaluate_round_writes_files_and_reuses_earlier_samples(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(ev, "sample_members", _fake_sampler(calls))
    monkeypatch.setattr(ev, "verify_samples", _fake_verify)
    run = tmp_path / "run"
    cfg = {"eval_bootstrap": 100, "seed": 0}
    r0 = evaluate_round(run, 0, [_member(tmp_path, "r0-sft", "sft", 0)], HELDOUT, fake_rm, None, cfg=cfg)
    assert [e["member"] for e in r0] == ["r0-sft"] and r0[0]["winrate_vs_prev_best"] is None
    (run / "round_0/eval/leaderboard.json").write_text(json.dumps([{**r0[0], "promoted": True}]))
    members = [_member(tmp_path, "r1-dpo", "dpo", 1),
               _member(tmp_path, "r1-mdloo", "mdloo", 1, {"final_metrics": {"kl": 0.2, "reward": 1.5}})]
    entries = evaluate_round(run, 1, members, HELDOUT, fake_rm, "r0-sft", cfg=cfg)
    assert calls == [["r0-sft"], ["r1-dpo", "r1-mdloo"]]  # r0-sft's answers were reused, not regenerated
    by = {e["member"]: e for e in entries}
    assert [e["member"] for e in entries] == ["r1-mdloo", "r1-dpo", "r0-sft"]  # best dev mean first
    assert by["r1-mdloo"]["dev"] == {"math": pytest.approx(5 / 6, abs=1e-4), "safety": 1.0,
                                     "mean": pytest.approx((5 / 6 + 1) / 2, abs=1e-4)}
    assert by["r1-mdloo"]["dev_domains"]["safety"]["ci95"][0] < 1.0  # Wilson: honest at 100%
    assert by["r0-sft"]["promoted"] is True and by["r1-dpo"]["promoted"] is False
    # judged by the verifiers: r1-mdloo solves 5 prompts r0-sft does not and ties the other 5
    assert by["r1-mdloo"]["winrate_vs_prev_best"] == 0.75 and by["r0-sft"]["winrate_vs_prev_best"] is None
    assert by["r1-mdloo"]["elo"] > by["r1-dpo"]["elo"] > by["r0-sft"]["elo"]
    assert by["r1-mdloo"]["kl"] == 0.2 and by["r1-mdloo"]["reward"] == 1.5 and "kl" not in by["r1-dpo"]
    for e in entries:
        lo, hi = e["dev_ci95"]
        assert lo <= e["dev"]["mean"] <= hi and e["n_prompts"] == 10 and "test" not in e
    on_disk = json.loads((run / "round_1/eval/leaderboard.json").read_text())
    assert on_disk == json.loads(json.dumps(entries))
    rows = [json.loads(x) for x in (run / "round_1/eval/samples.jsonl").read_text().splitlines()]
    assert len(rows) == 30 and set(rows[0]) == set(ev.SAMPLE_KEYS)
    assert {r["member"] for r in rows} == set(QUALITY)
    rates = json.loads((run / "round_1/eval/winrates.json").read_text())
    assert rates["members"] == ["r1-mdloo", "r1-dpo", "r0-sft"] and rates["matrix"][0][2] == 0.75


def test_evaluate_round_rejects_repeated_names_and_unknown_previous_best(tmp_path, monkeypatch):
    monkeypatch.setattr(ev, "sample_members", _fake_sampler([]))
    monkeypatch.setattr(ev, "verify_samples", _fake_verify)
    run = tmp_path / "run"
    evaluate_round(run, 0, [_member(tmp_path, "r0-sft", "sft", 0)], HELDOUT, fake_rm, None, cfg={"eval_bootstrap": 10})
    again = {"name": "r0-sft", "recipe": "sft", "path": str(tmp_path / "r0-sft"), "round": 1}
    with pytest.raises(ValueError, match="unique within a run"):
        evaluate_round(run, 1, [again], HELDOUT, fake_rm, None)
    with pytest.raises(ValueError, match="previous best 'r9-x'"):
        evaluate_round(run, 1, [_member(tmp_path, "r1-dpo", "dpo", 1)], HELDOUT, fake_rm, "r9-x")


def test_rm_accuracy_and_score_samples_with_a_saved_rm(tmp_path, tiny_tokenizer):
    import torch
    from transformers import Qwen3Config

    from reward_model.model import MultiHeadRewardConfig, MultiHeadRewardModel
    from reward_model.scorer import RewardScorer

    torch.manual_seed(0)
    lm = Qwen3Config(vocab_size=len(tiny_tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                     num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=256,
                     tie_word_embeddings=True)
    rm = MultiHeadRewardModel(MultiHeadRewardConfig(lm_config=lm)).eval()
    rm.save_pretrained(tmp_path / "rm")
    tiny_tokenizer.save_pretrained(tmp_path / "rm")
    rows = [{"prompt": [{"role": "user", "content": f"{a} + {a} ="}],
             "chosen": [{"role": "assistant", "content": str(2 * a)}],
             "rejected": [{"role": "assistant", "content": str(2 * a + 3) + " maybe"}], "level": 2,
             "grades_chosen": None, "grades_rejected": None} for a in range(8)]
    scorer = RewardScorer(rm, tiny_tokenizer)
    chosen = scorer([r["prompt"] for r in rows], [r["chosen"] for r in rows])
    rejected = scorer([r["prompt"] for r in rows], [r["rejected"] for r in rows])
    expected = sum((c > r) + 0.5 * (c == r) for c, r in zip(chosen, rejected)) / len(rows)
    acc = ev.rm_accuracy(tmp_path / "rm", rows)
    assert acc == pytest.approx(expected)
    swapped = [{**r, "chosen": r["rejected"], "rejected": r["chosen"]} for r in rows]
    assert ev.rm_accuracy(tmp_path / "rm", swapped) == pytest.approx(1 - expected)
    samples = [{"prompt_id": "p", "prompt": rows[0]["prompt"], "completion": "0", "member": "m", "domain": "math"}]
    scored = ev.score_samples(samples, tmp_path / "rm")
    assert scored[0]["rm_score"] == pytest.approx(scorer([rows[0]["prompt"]], ["0"])[0], abs=1e-5)
    assert ev.score_samples(samples, None)[0]["rm_score"] is None
    with pytest.raises(ValueError):
        ev.rm_accuracy(tmp_path / "rm", [])


def test_identical_answers_are_scored_once_and_tie():
    calls = []

    def noisy_scorer(prompts, completions):  # like batch padding: a score depends on its position
        calls.append(list(completions))
        return [len(c) + 0.001 * i for i, c in enumerate(completions)]

    prompt = [{"role": "user", "content": "1 + 1 ="}]
    samples = [{"prompt_id": "p", "prompt": prompt, "completion": c, "member": m, "domain": "math"}
               for m, c in (("a", "2"), ("b", "2"), ("c", "two"))]
    scored = ev.score_samples(samples, noisy_scorer)
    assert calls == [["2", "two"]]  # the shared answer went to the RM once
    assert scored[0]["rm_score"] == scored[1]["rm_score"] < scored[2]["rm_score"]
    rates = ev.win_rates(scored, ["a", "b", "c"], key="rm_score")
    assert rates[("a", "b")] == rates[("b", "a")] == 0.5 and rates[("c", "a")] == 1.0
