"""Length-grouped batches: every row once an epoch, batches of similar length in random order, repeatable, and
installed in the SFT, DPO and RM trainers (their real dataloaders carry less padding than random batches)."""
import random

import pytest

from afm_align.length_batches import LengthBatchSampler, dataset_lengths, row_length


def _lengths(n=203, seed=0):
    rng = random.Random(seed)
    return [rng.choice([20, 40, 60]) + rng.randrange(5) if i % 7 else 220 + rng.randrange(30) for i in range(n)]


def _padding(batches, lengths):
    """Real tokens / padded tokens over the batches."""
    return sum(sum(lengths[i] for i in b) for b in batches) / sum(max(lengths[i] for i in b) * len(b) for b in batches)


def test_every_row_once_full_batches_first_and_the_short_one_last():
    lengths = _lengths()
    sampler = LengthBatchSampler(lengths, batch_size=8, seed=1, megabatch_batches=5)
    batches = sampler.batches()
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert [len(b) for b in batches] == [8] * 25 + [3]
    flat = list(sampler)  # the iterator is the batches, in order, for a DataLoader of batch_size 8
    assert len(flat) == len(sampler) == len(lengths) and sorted(flat) == list(range(len(lengths)))


def test_batches_are_homogeneous_and_their_order_is_not_sorted():
    lengths = _lengths(800)
    batches = LengthBatchSampler(lengths, batch_size=8, seed=0).batches()
    rng = random.Random(0)
    shuffled = list(range(len(lengths)))
    rng.shuffle(shuffled)
    random_batches = [shuffled[i:i + 8] for i in range(0, len(shuffled), 8)]
    assert _padding(batches, lengths) > 0.95 > 0.6 > _padding(random_batches, lengths)
    firsts = [max(lengths[i] for i in b) for b in batches]
    descents = sum(a > b for a, b in zip(firsts, firsts[1:]))
    assert 0.2 * len(firsts) < descents < 0.8 * len(firsts)  # a sorted (curriculum) order would be all one way


def test_repeatable_per_seed_and_different_between_epochs():
    lengths = _lengths()
    a, b = LengthBatchSampler(lengths, 8, seed=3), LengthBatchSampler(lengths, 8, seed=3)
    first = a.batches()
    assert first == b.batches()
    assert a.batches() != first  # the next epoch draws again
    assert LengthBatchSampler(lengths, 8, seed=4).batches() != first


def test_set_epoch_keeps_an_unbroken_run_and_replays_a_resumed_one():
    lengths = _lengths()
    plain = LengthBatchSampler(lengths, 8, seed=5)
    epochs = [list(plain) for _ in range(3)]  # a loader that never calls set_epoch
    told = LengthBatchSampler(lengths, 8, seed=5)
    told_epochs = []
    for e in range(3):  # the Trainer (through accelerate) calls set_epoch before every epoch
        told.set_epoch(e)
        told_epochs.append(list(told))
    assert told_epochs == epochs and epochs[0] != epochs[1]
    resumed = LengthBatchSampler(lengths, 8, seed=5)
    resumed.set_epoch(2)  # a run resumed from a checkpoint in its third epoch
    assert list(resumed) == epochs[2]


def test_the_tiny_preset_groups_every_padded_trainer():
    from afm_align.config import load_config
    from alignment import recipes
    from reward_model.trainer import RMTrainConfig

    assert all(recipes.load(name, preset="tiny").group_by_length for name in ("sft", "dpo", "ipo"))
    assert recipes.load("rs", preset="tiny").sft.group_by_length
    assert load_config(RMTrainConfig, preset="tiny", recipe="rm").group_by_length


def test_row_lengths_of_sft_and_pair_rows_and_bad_input():
    assert row_length({"input_ids": [1, 2, 3], "completion_mask": [0, 1, 1]}) == 3
    assert row_length({"prompt_ids": [1, 2], "chosen_ids": [3], "rejected_ids": [4, 5, 6]}) == 5
    assert row_length({"chosen_ids": [3, 4], "rejected_ids": [5]}) == 2
    with pytest.raises(ValueError, match="without token ids"):
        row_length({"prompt": "x"})
    with pytest.raises(ValueError, match="at least 1"):
        LengthBatchSampler([1, 2], batch_size=0)
    from datasets import Dataset

    pairs = Dataset.from_list([{"prompt_ids": [1] * p, "chosen_ids": [2] * c, "rejected_ids": [3] * r}
                               for p, c, r in ((4, 2, 5), (1, 3, 1))])
    assert dataset_lengths(pairs) == [9, 4]
    with pytest.raises(ValueError, match="without token ids"):
        dataset_lengths(Dataset.from_list([{"prompt": "x"}]))


def _train_batches(trainer):
    loader = trainer.get_train_dataloader()
    return [batch["attention_mask"] for batch in loader]


def _real_fraction(masks):
    return sum(float(m.sum()) for m in masks) / sum(m.numel() for m in masks)


def _sft_rows(n):
    rows = []
    for i in range(n):
        text = "long " * 40 if i % 4 == 0 else "x"
        rows.append({"id": f"s{i}", "prompt": [{"role": "user", "content": f"{i} + 1 = {text}"}],
                     "completion": f"{i + 1}", "member": "oracle", "round": 0, "score": 1.0})
    return rows


def test_sft_trainer_batches_are_grouped_only_when_asked(tiny_lm, tiny_tokenizer, tmp_path):
    from alignment import sft
    from alignment.sft import SFTRecipeConfig

    fractions = {}
    for grouped in (False, True):
        cfg = SFTRecipeConfig(max_steps=1, batch_size=4, max_length=256, group_by_length=grouped, seed=0)
        trainer = sft.build_trainer(tiny_lm, tiny_tokenizer, _sft_rows(64), cfg, tmp_path / f"w{grouped}")
        masks = _train_batches(trainer)
        assert sum(m.shape[0] for m in masks) == 64
        fractions[grouped] = _real_fraction(masks)
    assert fractions[True] > 0.9 and fractions[False] < 0.75


def test_dpo_trainer_batches_are_grouped(tiny_lm, tiny_tokenizer, tmp_path):
    from alignment import preference
    from alignment.preference import PreferenceConfig

    pairs = [{"prompt": [{"role": "user", "content": f"{i} + 1 = " + ("long " * 40 if i % 4 == 0 else "")}],
              "chosen": [{"role": "assistant", "content": f"{i + 1}"}],
              "rejected": [{"role": "assistant", "content": f"{i + 2}"}]} for i in range(32)]
    fractions = {}
    for grouped in (False, True):
        cfg = PreferenceConfig(max_steps=1, batch_size=4, max_length=256, group_by_length=grouped)
        trainer = preference.build_trainer(tiny_lm, tiny_tokenizer, pairs, cfg, tmp_path / f"w{grouped}")
        masks = _train_batches(trainer)  # chosen then rejected rows of each pair, prompt and answer joined
        assert sum(m.shape[0] for m in masks) == 64
        fractions[grouped] = _real_fraction(masks)
    assert fractions[True] > 0.9 and fractions[False] < 0.75
