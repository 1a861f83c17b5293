"""The promotion rule: top-k by dev mean, a minimum gain over the best earlier member, keep the best earlier."""
import json

import pytest

from committee.promotion import PromotionRule, best_member, mark_promoted, promote


def _e(member, round_n, mean, elo=1000.0):
    return {"member": member, "round": round_n, "recipe": member.split("-")[1], "promoted": False,
            "dev": {"math": mean, "mean": mean}, "elo": elo}


ROUND1 = [_e("r0-sft", 0, 0.40), _e("r0-rs", 0, 0.35), _e("r1-dpo", 1, 0.50), _e("r1-ipo", 1, 0.45),
          _e("r1-mdloo", 1, 0.55), _e("r1-broken", 1, None)]


def test_round_zero_promotes_its_top_k():
    promoted, committee, reason = promote(ROUND1[:2], PromotionRule(top_k=1), [])
    assert promoted == ["r0-sft"] and committee == ["r0-sft"]
    assert "round 0" in reason and "r0-sft" in reason


def test_top_k_candidates_that_beat_the_previous_best_join_with_the_best_earlier_member():
    promoted, committee, reason = promote(ROUND1, PromotionRule(top_k=2, min_improvement=0.0), ["r0-sft"])
    assert promoted == ["r1-mdloo", "r1-dpo"]
    assert committee == ["r1-mdloo", "r1-dpo", "r0-sft"]  # best of earlier rounds always kept
    assert "r0-sft" in reason and "0.550" in reason


def test_min_improvement_filters_candidates():
    promoted, committee, _ = promote(ROUND1, PromotionRule(top_k=3, min_improvement=0.12), ["r0-sft"])
    assert promoted == ["r1-mdloo"]  # 0.55 >= 0.40 + 0.12; dpo's 0.50 is not
    assert committee == ["r1-mdloo", "r0-sft"]
    promoted, committee, reason = promote(ROUND1, PromotionRule(top_k=3, min_improvement=0.2), ["r0-sft", "r0-rs"])
    assert promoted == [] and committee == ["r0-sft", "r0-rs"]  # nothing beats it: committee unchanged
    assert "unchanged" in reason and "r1-mdloo" in reason


def test_ties_break_on_elo_and_keep_best_earlier_zero():
    entries = [_e("r0-sft", 0, 0.2), _e("r1-a", 1, 0.5, elo=990), _e("r1-b", 1, 0.5, elo=1010)]
    promoted, committee, _ = promote(entries, PromotionRule(top_k=1, keep_best_earlier=0))
    assert promoted == ["r1-b"] and committee == ["r1-b"]


def test_best_member_and_bad_rules():
    assert best_member(ROUND1) == "r1-mdloo"
    assert best_member(ROUND1, before_round=1) == "r0-sft"
    assert best_member(ROUND1, before_round=0) is None
    with pytest.raises(ValueError, match="top_k"):
        PromotionRule(top_k=0)
    with pytest.raises(ValueError, match="at least one"):
        promote([], PromotionRule())


def test_mark_promoted_rewrites_the_round_leaderboard(tmp_path):
    file = tmp_path / "round_1" / "eval" / "leaderboard.json"
    file.parent.mkdir(parents=True)
    file.write_text(json.dumps([{**ROUND1[0], "promoted": True}, *ROUND1[1:]]))
    entries = mark_promoted(tmp_path, 1, ["r1-mdloo"])
    on_disk = json.loads(file.read_text())
    assert on_disk == entries
    assert {e["member"] for e in on_disk if e["promoted"]} == {"r0-sft", "r1-mdloo"}  # r0's own flag kept
    with pytest.raises(ValueError, match="not members of round 1"):
        mark_promoted(tmp_path, 1, ["r0-rs"])
    with pytest.raises(ValueError, match="no leaderboard"):
        mark_promoted(tmp_path, 2, [])


def test_promotion_refuses_test_scores_it_is_handed():
    leaked = [{**e, "test": {"mean": 0.9}} if e["member"] == "r1-ipo" else e for e in ROUND1]
    with pytest.raises(ValueError, match="dev scores only; entry 'r1-ipo' carries test"):
        promote(leaked, PromotionRule(top_k=2), ["r0-sft"])
    with pytest.raises(ValueError, match="dev scores only"):
        best_member([{**ROUND1[0], "vs_baseline": {"delta": 0.1}}])


def test_promotion_code_cannot_reach_test_scores():
    """Structure: the promotion module never imports the test scorer nor names the test files."""
    import ast
    import inspect

    import committee.promotion as promotion

    tree = ast.parse(inspect.getsource(promotion))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert "committee.report_eval" not in imported
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    assert not names & {"TEST_FILE", "TEST_SAMPLES_FILE", "read_test", "evaluate_test"}


def test_the_round_runner_scores_test_only_after_promotion():
    from committee.rounds import round_stages

    for stages in (round_stages(0, []), round_stages(2, ["rs", "dpo"])):
        assert stages.index("eval") < stages.index("promotion") < stages.index("test") < stages.index("report")


def test_promotion_does_not_move_when_test_scores_change(tmp_path):
    """A round's leaderboard (dev) decides; rewriting its test file to anything changes nothing."""
    from committee.evaluation import TEST_FILE

    run = tmp_path / "run"
    (run / "round_1" / "eval").mkdir(parents=True)
    (run / "round_1" / "eval" / "leaderboard.json").write_text(json.dumps(ROUND1))
    from committee.evaluation import read_leaderboard
    from afm_align.rundir import RunDir

    before = promote(read_leaderboard(RunDir(run), 1), PromotionRule(top_k=1), ["r0-sft"])
    for flipped in ({"r1-ipo": 1.0, "r1-mdloo": 0.0}, {"r1-ipo": 0.0, "r1-mdloo": 1.0}):
        test = [{"member": m, "round": 1, "scored_in": 1, "test": {"mean": v}} for m, v in flipped.items()]
        (run / "round_1" / "eval" / TEST_FILE).write_text(json.dumps(test))
        assert promote(read_leaderboard(RunDir(run), 1), PromotionRule(top_k=1), ["r0-sft"]) == before


def test_one_tie_rule_everywhere():
    """Three members with equal dev means rank by Elo, then name, in promotion, the CLI, report.md and the app."""
    from committee.cli_handlers import leaderboard_lines
    from committee.promotion import rank_key
    from committee.report_tables import leaderboard_table

    tied = [{"member": name, "round": 1, "recipe": "dpo", "dev": {"mean": 0.5, "math": 0.5}, "elo": elo}
            for name, elo in (("r1-a", 990.0), ("r1-b", 1010.0), ("r1-c", 1010.0))]
    expected = ["r1-b", "r1-c", "r1-a"]  # Elo 1010 twice (then name), then 990
    assert [e["member"] for e in sorted(tied, key=rank_key)] == expected
    promoted, _, _ = promote(tied, PromotionRule(top_k=1))
    assert promoted == ["r1-b"]
    cli_order = [line.split()[0] for line in leaderboard_lines(tied)[1:]]
    assert cli_order == expected
    report_order = [line.split("|")[1].strip() for line in leaderboard_table(tied)[2:]]
    assert report_order == expected
