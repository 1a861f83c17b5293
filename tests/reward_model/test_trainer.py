"""MultiHeadRewardTrainer and train_reward_model on a tiny synthetic sums dataset."""
import json
import math
from dataclasses import replace

import pytest
import torch
from datasets import Dataset
from transformers import AutoModel

from reward_model.evaluate import evaluate_preferences
from reward_model.losses import level_to_prob, rm_loss
from reward_model.scorer import RewardScorer
from reward_model.trainer import MultiHeadRewardTrainer, RMTrainConfig, reward_config, train_reward_model


def _trainer(rm, tokenizer, rows, tmp_path, **kwargs):
    args = reward_config(str(tmp_path), max_steps=12, per_device_train_batch_size=8,
                         learning_rate=3e-3, logging_steps=1, disable_tqdm=True)
    return MultiHeadRewardTrainer(rm, args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer,
                                  **kwargs)


def _snapshot(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _changed(before, module):
    return any(not torch.equal(before[k], v) for k, v in module.state_dict().items())


def test_training_lowers_loss_and_changes_every_part(rm, tokenizer, make_rows, tmp_path):
    rows = make_rows(32)
    ds = Dataset.from_list(rows)
    scorer = RewardScorer(rm, tokenizer)
    before_loss = evaluate_preferences(scorer, ds)["loss_ranking"]
    parts = {name: _snapshot(getattr(rm, name)) for name in ("model", "reward_head", "grade_heads")}
    trainer = _trainer(rm, tokenizer, rows, tmp_path, grading_weight=0.1)
    trainer.train()
    after_loss = evaluate_preferences(scorer, ds)["loss_ranking"]
    assert after_loss < before_loss - 0.05
    for name, snap in parts.items():
        assert _changed(snap, getattr(rm, name)), name
    logged = [h for h in trainer.state.log_history if "grading_loss" in h]
    assert logged and logged[-1]["grading_loss"] < logged[0]["grading_loss"]


def test_grading_weight_zero_leaves_grading_heads_untouched(rm, tokenizer, make_rows, tmp_path):
    heads = _snapshot(rm.grade_heads)
    reward_head = _snapshot(rm.reward_head)
    _trainer(rm, tokenizer, make_rows(16), tmp_path, grading_weight=0.0).train()
    assert not _changed(heads, rm.grade_heads)
    assert _changed(reward_head, rm.reward_head)


@pytest.mark.parametrize("hard_labels", [False, True])
def test_compute_loss_matches_rm_loss(rm, tokenizer, make_rows, tmp_path, hard_labels):
    trainer = _trainer(rm, tokenizer, make_rows(8), tmp_path, grading_weight=0.5, hard_labels=hard_labels,
                       level_probs=(0.6, 0.7, 0.8, 0.9))
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(8)])
    rm.eval()
    with torch.no_grad():
        loss = trainer.compute_loss(rm, dict(batch))
        out = rm(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    rc, rr = out.rewards.chunk(2)
    lc, lr = out.grade_logits.chunk(2)
    p = torch.ones(8) if hard_labels else level_to_prob(batch["level"], (0.6, 0.7, 0.8, 0.9))
    expected = rm_loss(rc, rr, p, lc, lr, batch["grades_chosen"], batch["grades_rejected"], 0.5)["loss"]
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert batch["level"].tolist() == [i % 4 for i in range(8)]


def test_trainer_validation_names_row_and_drops_identical(rm, tokenizer, make_rows, tmp_path):
    rows = make_rows(10)
    rows[6]["grades_chosen"] = {**rows[6]["grades_chosen"], "verbosity": 5}
    with pytest.raises(ValueError, match="Row 6"):
        _trainer(rm, tokenizer, rows, tmp_path)
    rows = make_rows(10)
    rows[2]["rejected"] = rows[2]["chosen"]
    rows[7]["rejected"] = rows[7]["chosen"]
    trainer = _trainer(rm, tokenizer, rows, tmp_path)
    assert trainer.n_dropped_identical == 2 and len(trainer.train_dataset) == 8


def test_train_reward_model_end_to_end(rm, tokenizer, make_rows, tmp_path):
    rows = make_rows(24)
    rows[0]["rejected"] = rows[0]["chosen"]
    cfg = RMTrainConfig(out=str(tmp_path / "rm"), max_steps=4, batch_size=8, learning_rate=3e-3,
                        hard_labels=True, grading_weight=0.0, logging_steps=2)
    metrics = train_reward_model(rm, tokenizer, Dataset.from_list(rows), Dataset.from_list(make_rows(8, seed=3)), cfg)
    assert metrics["n_dropped_identical"] == 1 and metrics["n_train_pairs"] == 23
    assert metrics["train_steps"] == 4 and math.isfinite(metrics["train_loss"])
    assert metrics["eval_n_pairs"] == 8 and 0.0 <= metrics["eval_accuracy"] <= 1.0
    assert {"eval_accuracy_significantly_better", "eval_ece", "eval_grading_truthfulness_confusion"} <= set(metrics)
    saved = json.loads((tmp_path / "rm" / "rm_metrics.json").read_text())
    assert saved["config"]["hard_labels"] is True and saved["metrics"]["train_steps"] == 4
    reloaded = AutoModel.from_pretrained(tmp_path / "rm")
    scorer_a, scorer_b = RewardScorer(rm, tokenizer), RewardScorer(reloaded, tokenizer)
    assert scorer_a(["1+1="], ["2"]) == pytest.approx(scorer_b(["1+1="], ["2"]), abs=1e-5)


def test_min_level_filters_the_train_pairs_only(rm, tokenizer, make_rows, tmp_path):
    rows = make_rows(16)  # levels 0..3, four of each
    rows[2]["rejected"] = rows[2]["chosen"]  # an identical pair at level 2: dropped first, not counted below
    cfg = RMTrainConfig(out=str(tmp_path / "rm"), max_steps=1, batch_size=4, min_level=2, save_model=False,
                        grading_weight=0.0)
    metrics = train_reward_model(rm, tokenizer, Dataset.from_list(rows), Dataset.from_list(make_rows(8, seed=3)), cfg)
    assert metrics["n_dropped_identical"] == 1 and metrics["n_below_min_level"] == 8
    assert metrics["n_kept_min_level"] == 7 and metrics["n_train_pairs"] == 7
    assert metrics["eval_n_pairs"] == 8  # levels 0 and 1 included: the evaluation pairs are not filtered
    with pytest.raises(ValueError, match=r"^no training pair has level >= 3 \(all 2 are below it\); lower min_level\.$"):
        train_reward_model(rm, tokenizer, Dataset.from_list(rows[:2]), None, replace(cfg, min_level=3))


def test_group_by_length_gives_the_rm_homogeneous_batches_and_still_trains(rm, tokenizer, make_rows, tmp_path,
                                                                            monkeypatch):
    from afm_align import length_batches
    from reward_model import trainer as rm_trainer

    rows = make_rows(48)
    for i, row in enumerate(rows):  # a quarter of the prompts far longer than the rest
        if i % 4 == 0:
            row["prompt"] = [{"role": "user", "content": row["prompt"][0]["content"] + " " * 120}]
    fractions = {}
    for grouped in (False, True):
        trainer = _trainer(rm, tokenizer, rows, tmp_path / f"w{grouped}")
        if grouped:
            length_batches.group_by_length(trainer)
        masks = [b["attention_mask"] for b in trainer.get_train_dataloader()]
        assert sum(m.shape[0] for m in masks) == 2 * 48  # chosen and rejected of every pair, once
        fractions[grouped] = sum(float(m.sum()) for m in masks) / sum(m.numel() for m in masks)
    assert fractions[True] > 0.8 and fractions[False] < 0.5  # measured 0.85 and 0.39

    installed = []
    monkeypatch.setattr(rm_trainer, "group_by_length",
                        lambda t: (installed.append(t), length_batches.group_by_length(t)))
    before = _snapshot(rm)
    cfg = RMTrainConfig(out=str(tmp_path / "rm"), max_steps=4, batch_size=8, learning_rate=3e-3, logging_steps=2,
                        group_by_length=True)
    metrics = train_reward_model(rm, tokenizer, Dataset.from_list(rows), None, cfg)
    assert len(installed) == 1 and metrics["train_steps"] == 4 and _changed(before, rm)
