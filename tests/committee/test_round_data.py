"""Round data: the fresh synthetic RM pairs of each round are train-split, deterministic and new per round."""
from dataclasses import replace

import pytest

from committee.round_config import IterateConfig
from committee.round_data import rm_rows, round_synthetic_pairs


def test_round_synthetic_pairs_are_fresh_train_pairs():
    cfg = replace(IterateConfig(), rm_round_pairs=40, difficulty=0)
    one, again, two = round_synthetic_pairs(cfg, 1), round_synthetic_pairs(cfg, 1), round_synthetic_pairs(cfg, 2)
    assert len(one) == 40 and one == again  # deterministic: a resumed round rebuilds the same RM data
    assert all(r["split"] == "train" for r in one + two)  # never the held-out pairs the RM is scored on
    assert {r["id"] for r in one}.isdisjoint({r["id"] for r in two})
    assert {r["domain"] for r in one} == set(cfg.families)


def test_no_round_pairs_by_default():
    assert round_synthetic_pairs(IterateConfig(), 1) == []


def _pairs(prefix: str, n: int, split: str = "train") -> list[dict]:
    return [{"pair_id": f"{prefix}{i}", "split": split} for i in range(n)]


def test_rm_rows_replay_a_share_of_earlier_train_pairs_and_keep_the_rest():
    earlier = _pairs("held", 10, "test") + _pairs("old", 100)
    new = _pairs("new", 30)
    assert rm_rows(earlier, new, 1.0, seed=0) == earlier + new
    rows = rm_rows(earlier, new, 0.4, seed=0)
    ids = [r["pair_id"] for r in rows]
    assert sum(i.startswith("held") for i in ids) == 10 and ids[-30:] == [r["pair_id"] for r in new]
    assert sum(i.startswith("old") for i in ids) == 40 and len(set(ids)) == len(ids)
    assert rows == rm_rows(earlier, new, 0.4, seed=0) and rows != rm_rows(earlier, new, 0.4, seed=1)
    assert [r["pair_id"] for r in rm_rows(earlier, new, 0.0, seed=0)] == [f"held{i}" for i in range(10)] + ids[-30:]


def test_the_round_config_rejects_a_replay_share_outside_0_1():
    from committee.round_config import check_config

    with pytest.raises(ValueError, match=r"rm_replay must be in \[0, 1\] \(got 1.5\)"):
        check_config(IterateConfig(rm_replay=1.5))
    assert check_config(IterateConfig(rm_replay=0.0)).rm_replay == 0.0


def _tool_kinds(rows: list[dict]) -> set[str]:
    return {r["source"].split("/")[2] for r in rows if r["domain"] == "tool"}


def test_a_tool_curriculum_moves_the_train_prompts_from_single_calls_to_parallel_and_multistep():
    from committee.round_config import round_difficulty
    from committee.round_data import eval_split_rows, round_prompts

    cfg = replace(IterateConfig(), families=["math", "tool"], difficulty=0, prompts_per_round=60,
                  curriculum={"tool": [0, 2]})
    first, _ = round_prompts(cfg, 1, seed=11)
    later, _ = round_prompts(cfg, 3, seed=11)  # past the list's end: its last entry
    assert _tool_kinds(first) <= {"single", "no_call"}
    assert [round_difficulty(cfg, "tool", n) for n in (0, 1, 2, 5)] == [0, 0, 2, 2]  # round 0: `difficulty`
    assert {"parallel", "multistep"} <= _tool_kinds(later)
    assert all(r["split"] == "train" for r in first + later)
    plain = replace(cfg, curriculum={})
    assert _tool_kinds(round_prompts(plain, 3, seed=11)[0]) <= {"single", "no_call"}
    # the other families and the dev/test yardstick do not move with it
    assert [r for r in later if r["domain"] == "math"] == [r for r in round_prompts(plain, 3, seed=11)[0]
                                                            if r["domain"] == "math"]
    assert eval_split_rows(cfg, "tool", "dev") == eval_split_rows(plain, "tool", "dev")


@pytest.mark.parametrize("curriculum, says", [({"code": [0, 1]}, "not one of the run's families"),
                                               ({"tool": [0, 4]}, "difficulties 0-3"),
                                               ({"tool": []}, "difficulties 0-3")])
def test_the_round_config_rejects_a_bad_curriculum(curriculum, says):
    from afm_align.errors import UserError
    from committee.round_config import check_config

    with pytest.raises(UserError, match=says):
        check_config(replace(IterateConfig(), families=["math", "tool"], curriculum=curriculum))


def test_sft_prompts_per_round_tops_up_the_sft_rows_only():
    """The SFT members' extra references: the round's prompts stay as they were, the sft rows grow by fresh
    train-split problems that the round's prompts do not hold (nobody answers them), deterministically."""
    from committee.round_data import round_prompts

    plain = replace(IterateConfig(), families=["math", "general"], difficulty=0, prompts_per_round=10)
    more = replace(plain, sft_prompts_per_round=25)
    prompts, sft = round_prompts(plain, 2, seed=5)
    prompts_more, sft_more = round_prompts(more, 2, seed=5)
    assert prompts_more == prompts and sft_more[:len(sft)] == sft and len(sft) == 20
    assert [r["domain"] for r in sft_more].count("math") == 25 and len(sft_more) == 50
    extra = sft_more[len(sft):]
    assert {r["identity"] for r in extra}.isdisjoint({r["identity"] for r in prompts})
    assert all(r["split"] == "train" and r["completion"][0]["content"] for r in extra)
    assert all("gold" not in str(sorted(r)) for r in extra)  # the open-ended family's hidden gold stays out
    assert round_prompts(more, 2, seed=5) == (prompts_more, sft_more)
    assert round_prompts(replace(plain, sft_prompts_per_round=5), 2, seed=5) == (prompts, sft)  # never fewer


def test_sft_extras_of_a_round_fill_up_to_the_share_without_the_rounds_problems():
    """Tool's draw loses the problems the round's prompts hold and keeps at most what was asked."""
    from committee.round_data import round_prompts

    cfg = replace(IterateConfig(), families=["if", "tool"], difficulty=0, prompts_per_round=100,
                  sft_prompts_per_round=300)
    prompts, sft = round_prompts(cfg, 1, seed=3)
    extra = sft[len(prompts):]
    assert {r["identity"] for r in extra}.isdisjoint({r["identity"] for r in prompts})
    assert all(200 * 0.9 <= sum(r["domain"] == d for r in extra) <= 200 for d in ("if", "tool"))


def test_sft_prompts_by_family_gives_one_family_more_and_ignores_families_not_in_the_run():
    """A per-family share replaces the default for that family only (one the run leaves out: nothing); a name that is
    no family or a non-count is refused."""
    from afm_align.errors import UserError
    from committee.round_config import check_config
    from committee.round_data import round_prompts

    cfg = replace(IterateConfig(), families=["math", "code"], difficulty=0, prompts_per_round=10,
                  sft_prompts_per_round=15)
    _, sft = round_prompts(cfg, 1, seed=2)
    _, sft_code = round_prompts(replace(cfg, sft_prompts_by_family={"code": 30}), 1, seed=2)
    count = lambda rows, d: sum(r["domain"] == d for r in rows)  # noqa: E731
    assert (count(sft, "math"), count(sft, "code")) == (15, 15)
    assert (count(sft_code, "math"), count(sft_code, "code")) == (15, 30)
    assert [r for r in sft_code if r["domain"] == "math"] == [r for r in sft if r["domain"] == "math"]
    assert round_prompts(replace(cfg, sft_prompts_by_family={"tool": 30}), 1, seed=2)[1] == sft  # not in the run
    with pytest.raises(UserError, match="'tol', which is not a family"):
        check_config(replace(cfg, sft_prompts_by_family={"tol": 30}))
    with pytest.raises(UserError, match="whole number"):
        check_config(replace(cfg, sft_prompts_by_family={"code": -1}))
