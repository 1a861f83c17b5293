"""Small acceptance check of the RM recipe: a tiny RM learns the synthetic safety preferences.

Trains `train_reward_model` (soft labels + grading regulariser) from a randomly initialised tiny backbone
(conftest: hidden 32, 2 layers, char tokenizer) on about 250 synthetic safety pairs from
`synth.builders.preference_rows`, then scores the pairs of dev and test problems (split by problem
identity, so no held-out request template is seen in training). Chance is 50%; the full-size acceptance on 5,000 pairs of every
family is `afm-align rm train` on the tiny preset (see configs/tiny/rm.yaml). About 15 s on one core.
"""
import math

import torch

from reward_model.model import MultiHeadRewardConfig, MultiHeadRewardModel
from reward_model.recipe import split_rows, to_dataset
from reward_model.trainer import RMTrainConfig, train_reward_model
from synth.builders import preference_rows


def test_tiny_rm_ranks_heldout_safety_pairs_well_above_chance(tokenizer, backbone_config, tmp_path):
    rows, _ = preference_rows(400, seed=0, families=("safety",), dev=0.15, test=0.15)
    train, held = split_rows(rows, 0.25, seed=0)  # held out: the dev and test pairs (problem-disjoint)
    held_ids = {r["identity"] for r in held}
    assert len(held) >= 50 and not held_ids & {r["identity"] for r in train}

    torch.manual_seed(0)
    rm = MultiHeadRewardModel(MultiHeadRewardConfig(lm_config=backbone_config))
    cfg = RMTrainConfig(out=str(tmp_path), learning_rate=3e-3, epochs=2, batch_size=16,
                        max_length=None, warmup_steps=0.05, grading_weight=0.1, logging_steps=1000,
                        save_model=False)
    metrics = train_reward_model(rm, tokenizer, to_dataset(train), to_dataset(held), cfg)

    assert metrics["eval_n_pairs"] == len(held)
    assert metrics["eval_accuracy"] >= 0.85
    assert metrics["eval_accuracy_significantly_better"] >= 0.85
    # the soft-label ranking loss on unseen prompts fell clearly below that of a constant reward (log 2)
    assert metrics["eval_loss_ranking"] < math.log(2) - 0.1
