"""Round data: the fresh synthetic RM pairs of each round are train-split, deterministic and new per round."""
from dataclasses import replace

from committee.round_config import IterateConfig
from committee.round_data import round_synthetic_pairs


def test_round_synthetic_pairs_are_fresh_train_pairs():
    cfg = replace(IterateConfig(), rm_round_pairs=40, difficulty=0)
    one, again, two = round_synthetic_pairs(cfg, 1), round_synthetic_pairs(cfg, 1), round_synthetic_pairs(cfg, 2)
    assert len(one) == 40 and one == again  # deterministic: a resumed round rebuilds the same RM data
    assert all(r["split"] == "train" for r in one + two)  # never the held-out pairs the RM is scored on
    assert {r["id"] for r in one}.isdisjoint({r["id"] for r in two})
    assert {r["domain"] for r in one} == set(cfg.families)


def test_no_round_pairs_by_default():
    assert round_synthetic_pairs(IterateConfig(), 1) == []
