"""The RM-driven ceiling benchmark: who keeps which sample, the gold's rescaling, the pairing and the summary."""
import json
import random
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from benchmarks.rm_driven_ceiling import (gold_reward, mdloo_member, paired, pick, plot_curves, round1,  # noqa: E402
                                          spread_ratio, summary)


def test_each_prompt_keeps_its_best_scored_sample_or_a_seeded_random_one():
    scores = [0.1, 0.9, 0.3, 0.5, 0.5, 0.2]  # two prompts, k = 3
    assert pick(scores, 3, "rm", random.Random(0)) == [1, 3]  # a tie keeps the first
    rand = pick(scores * 50, 3, "random", random.Random(1))
    assert all(3 * g <= i < 3 * g + 3 for g, i in enumerate(rand))  # always one of its own prompt's samples
    assert len({i % 3 for i in rand}) == 3  # and not always the same position
    assert rand == pick(scores * 50, 3, "random", random.Random(1))  # seeded
    with pytest.raises(ValueError, match="whole groups"):
        pick(scores[:5], 3, "gold", random.Random(0))


def test_the_gold_is_rescaled_to_the_rms_spread():
    rm, gold = [-1.0, 1.0, -1.0, 1.0], [0.0, 0.1, 0.0, 0.1]
    weight = spread_ratio(rm, gold)
    assert weight == pytest.approx(20.0)
    scaled = [weight * g for g in gold]
    assert max(scaled) - min(scaled) == pytest.approx(max(rm) - min(rm))
    with pytest.raises(SystemExit, match="same gold score"):
        spread_ratio(rm, [0.2] * 4)


def test_gains_are_paired_on_the_same_prompts():
    assert paired([0.3, 0.1, 0.2], [0.1, 0.1, 0.4]) == pytest.approx(0.0)
    assert paired([0.5, 0.5], [0.1, 0.3]) == pytest.approx(0.3)
    with pytest.raises(ValueError):
        paired([0.1], [0.1, 0.2])


def test_the_summary_gives_every_arm_its_interval_over_seeds():
    def seed(g_rm, g_gold):
        return {"rs": {"rm": {"gain": g_rm, "target_gold": 0.05}, "gold": {"gain": g_gold, "target_gold": 0.09},
                       "random": {"gain": -0.01, "target_gold": 0.03}},
                "mdloo": {"rm": {"gain": g_rm, "kl": 0.02}, "gold": {"gain": g_gold, "kl": None}}}

    out = summary([seed(0.01, 0.02), seed(0.03, 0.04), seed(0.02, 0.0)])
    assert out["rs"]["rm"]["gain"] == pytest.approx(0.02) and out["rs"]["rm"]["gain_per_seed"] == [0.01, 0.03, 0.02]
    assert out["rs"]["rm"]["gain_ci95"][0] < 0.02 < out["rs"]["rm"]["gain_ci95"][1]
    assert out["rs"]["gold"]["target_gold"] == pytest.approx(0.09)
    assert out["mdloo"]["rm"]["kl"] == pytest.approx(0.02) and out["mdloo"]["gold"]["kl"] is None
    assert out["rs"]["random"]["gain_ci95"] == [-0.01, -0.01]


def test_a_run_without_a_finished_round_1_or_a_wrong_rm_is_a_one_line_error(tmp_path):
    r1 = tmp_path / "round_1"
    r1.mkdir()
    (r1 / "manifest.json").write_text(json.dumps({"start": "r0-sft"}))
    with pytest.raises(SystemExit, match="round 1 is not finished"):
        round1(tmp_path)
    for path in ("rm", "rs-data", "prompts", *(f"members/{m}" for m in ("r1-rs", "r1-mdloo"))):
        (r1 / path).mkdir(parents=True)
    (r1 / "gold.json").write_text("{}")
    for m in ("r1-rs", "r1-mdloo"):
        (r1 / "members" / m / "recipe_config.yaml").write_text("seed: 0\n")
    with pytest.raises(SystemExit, match="not a saved RM"):
        round1(tmp_path, tmp_path / "elsewhere")
    with pytest.raises(SystemExit, match="start member r0-sft is not there"):
        round1(tmp_path)


def test_the_summary_holds_only_the_arms_that_ran():
    per_seed = [{"rs": {}, "mdloo": {"rm": {"gain": 0.01, "kl": 0.05}}},
                {"rs": {}, "mdloo": {"rm": {"gain": 0.03, "kl": 0.07}}}]
    out = summary(per_seed)
    assert out["rs"] == {} and list(out["mdloo"]) == ["rm"]
    assert out["mdloo"]["rm"]["gain"] == pytest.approx(0.02) and out["mdloo"]["rm"]["kl"] == pytest.approx(0.06)
    assert out["mdloo"]["rm"]["gain_ci95"] == pytest.approx([-0.1071, 0.1471], abs=1e-4)  # t(1) = 12.706


def test_the_gold_reward_scores_chat_completions_with_the_rubric_by_prompt_id():
    from committee.gold_store import gold_scores

    gold = {"general-1": {"facts": ["Aisha", "the east wing", "8:30 am", "Corner Cafe"], "forbidden": ["asap"],
                          "max_words": 30, "register": "formal",
                          "prompt": "Write a short message to Aisha saying: meet at the east wing at 8:30 am; the "
                                    "entrance is next to Corner Cafe. Be formal."}}
    good = "Dear Aisha, please meet at the east wing at 8:30 am; the entrance is next to Corner Cafe."
    bad = "Hey Tara, see you asap at the library on Monday!"
    reward = gold_reward(gold)
    chats = [[{"role": "assistant", "content": good}], [{"role": "assistant", "content": bad}], good]
    got = reward(["p", "p", "p"], chats, prompt_id=["general-1"] * 3, domain=["general"] * 3)
    expected = gold_scores([{"prompt_id": "general-1", "domain": "general", "completion": t}
                            for t in (good, bad)], gold)
    assert got == [expected[0], expected[1], expected[0]] and got[0] > got[1]
    assert reward.__name__ == "gold"


def test_the_result_file_records_the_command_as_run_and_the_commit(tmp_path, monkeypatch, capsys):
    from benchmarks.saved_runs import write_json

    monkeypatch.setattr(sys, "argv", ["rm_driven_ceiling.py", "--runs", "DIR", "--steps", "192", "learning_rate=1e-4"])
    write_json("rm_driven_ceiling", tmp_path / "out" / "r.json", {"split": "dev", "summary": {"rs": {}}})
    result = json.loads((tmp_path / "out" / "r.json").read_text())
    assert result["command"] == "python benchmarks/rm_driven_ceiling.py --runs DIR --steps 192 learning_rate=1e-4"
    assert result["benchmark"] == "rm_driven_ceiling" and result["split"] == "dev" and len(result["commit"]) == 40
    assert isinstance(result["uncommitted_changes"], bool)
    assert f"saved {tmp_path / 'out' / 'r.json'}" in capsys.readouterr().out


def test_the_members_are_scored_on_the_split_asked_for(monkeypatch):
    """`--split test` reads the test prompts' gold (for reporting a setting chosen on dev); dev stays the default."""
    import argparse
    import types

    import rm_claims
    from alignment import rewards
    from benchmarks.rm_driven_ceiling import one_seed

    asked = []
    held = {"dev": ([{"id": "d1"}, {"id": "d2"}], {"d1": 0.1, "d2": 0.3}), "test": ([{"id": "t1"}], {"t1": 0.4})}

    def rows(run, split):
        asked.append(split)
        return held[split]

    monkeypatch.setattr(rm_claims, "open_ended_rows", rows)
    monkeypatch.setattr(rm_claims, "generate", lambda member, prompts, k, t, seed: [["answer"] * k for _ in prompts])
    monkeypatch.setattr(rm_claims, "gold_of", lambda prompts, texts, gold: [  # held-out rows by id, samples 0/1
        gold[p["id"]] if "id" in p else float(i % 2) for i, p in enumerate(prompts)])
    scorer = types.SimpleNamespace(score=lambda p, t: types.SimpleNamespace(rewards=[0.0, 2.0] * (len(t) // 2)))
    monkeypatch.setattr(rewards, "load_rm", lambda path: scorer)
    r1 = {"start": Path("r0-sft"), "rm": Path("rm"), "prompts": [{"prompt": "p"}], "gold": {}}
    for split, start_gold in (("test", 0.4), ("dev", 0.2)):
        args = argparse.Namespace(split=split, k=2, temperature=1.0, arms=[])
        out = one_seed(Path("run"), r1, 0, args)
        assert asked[-1] == split and out[f"{split}_gold_start"] == start_gold
        assert out["gold_weight"] == 2.0  # the RM's spread over the gold's on the train-prompt samples


def test_a_gold_rewarded_run_logs_the_rms_score_of_its_rollouts_without_rewarding_it(tmp_path, monkeypatch):
    """The gold arm's reward is the gold alone; the RM rides along at weight 0 so its rollouts carry the RM score
    (alignment.mdloo.RolloutLog wraps the term named reward_model); the RM arm keeps the configured reward."""
    import argparse

    import benchmarks.rm_driven_ceiling as ceiling
    from alignment import mdloo, recipes, rewards

    seen = {}
    monkeypatch.setattr(ceiling, "mdloo_config", lambda r1, steps, overrides, **fields: recipes.load(
        "mdloo", preset="tiny", overrides=[f"steps={steps}", "verifier_weight=0.0"], **fields))
    monkeypatch.setattr(rewards, "load_rm", lambda path: f"scorer of {path}")
    monkeypatch.setattr(mdloo, "main", lambda cfg, rewards=None: seen.update(cfg=cfg, rewards=rewards) or {"kl": 0.2})
    r1 = {"start": tmp_path / "r0-sft", "rm": tmp_path / "rm", "gold": {}, "prompts": [
        {"id": f"general-{i}", "prompt": [{"role": "user", "content": "hi"}], "domain": "general",
         "verifier": {}, "source": "test", "split": "train"} for i in range(3)]}
    args = argparse.Namespace(steps=4, overrides=[])
    member, kl = mdloo_member(r1, "gold", 2.5, args, tmp_path / "gold")
    assert member == tmp_path / "gold" / "member" and kl == 0.2
    terms = {t.name: t for t in seen["rewards"]}
    assert set(terms) == {"gold", "reward_model"}
    assert terms["reward_model"].weight == 0.0 and terms["reward_model"].fn == f"scorer of {tmp_path / 'rm'}"
    assert terms["gold"].weight == pytest.approx(2.5 * seen["cfg"].rm_weight)
    assert seen["cfg"].prompts_per_step == 3  # no more prompts a step than there are
    mdloo_member(r1, "rm", 2.5, args, tmp_path / "rm-arm")
    assert seen["rewards"] is None and seen["cfg"].reward_model == str(tmp_path / "rm")


def test_the_mdloo_curves_are_drawn_side_by_side_or_not_at_all(tmp_path):
    curve = [{"step": i, "kl": 0.01 * i, "proxy": 0.1 * i, "gold": 0.03, "n": 8} for i in range(6)]
    per_seed = [{"mdloo": {"rm": {"curve": curve}, "gold": {"curve": curve}}} for _ in range(3)]
    path = plot_curves(per_seed, tmp_path / "figs" / "ceiling.png", "title")
    assert path == tmp_path / "figs" / "ceiling.png" and path.stat().st_size > 10_000
    assert plot_curves([{"mdloo": {}}], tmp_path / "none.png", "title") is None
    assert not (tmp_path / "none.png").exists()


def test_the_summary_gives_the_change_along_each_mdloo_run_over_seeds():
    def seed(proxy_end, gold_end):
        curve = [{"step": 0, "kl": 0.0, "proxy": 1.0, "gold": 0.05, "n": 8},
                 {"step": 9, "kl": 0.1, "proxy": proxy_end, "gold": gold_end, "n": 8}]
        return {"rs": {}, "mdloo": {"rm": {"gain": 0.0, "kl": 0.1, "curve": curve}, "gold": {"gain": 0.0, "kl": 0.1}}}

    out = summary([seed(2.0, 0.05), seed(3.0, 0.04), seed(2.5, 0.06)])
    assert out["mdloo"]["rm"]["rollout_proxy_change"]["per_seed"] == [1.0, 2.0, 1.5]
    assert out["mdloo"]["rm"]["rollout_proxy_change"]["ci95"][0] > 0  # the proxy rises in every seed
    assert out["mdloo"]["rm"]["rollout_gold_change"]["mean"] == pytest.approx(0.0)
    assert "rollout_gold_change" not in out["mdloo"]["gold"]  # no curve kept: no change reported
