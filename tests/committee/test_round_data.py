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
