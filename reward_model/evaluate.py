"""Evaluate a reward model on a preference dataset: score both sides of every pair, compute every RM metric.

What it does: `evaluate_preferences(scorer, ds)` scores prompt+chosen and prompt+rejected with a
`RewardScorer` and returns a flat dict: `accuracy` and `accuracy_<level name>` (pairwise accuracy),
`ece` (calibration of s(r_c - r_r)), `loss_ranking` (soft-label ranking loss at the configured p_l),
`grading_<dim>_accuracy` / `grading_<dim>_majority_baseline` / `grading_<dim>_confusion` (3x3 list) over the
grades of both sides, `length_correlation` (Pearson, reward vs. response length in characters, both sides)
and `n_pairs`. NaN values (e.g. no grades at all) are returned as None so the dict is valid JSON.

What it simplifies: best-of-4 accuracy needs prompts with 4+ responses and a ground-truth best one, which a
pairwise dataset does not carry; call `metrics.best_of_n_accuracy` on response datasets instead.

Run: called by `reward_model.trainer.train_reward_model`; tests in tests/reward_model/test_trainer.py.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from afm_align.schema import GRADE_DIMENSIONS
from reward_model import metrics
from reward_model.data import grades_to_targets
from reward_model.losses import DEFAULT_LEVEL_PROBS, level_to_prob, ranking_loss


def _text(turns) -> str:
    if isinstance(turns, str):
        return turns
    return "".join(str(m.get("content") or "") for m in turns)


def _clean(value):
    return None if isinstance(value, float) and math.isnan(value) else value


def evaluate_preferences(scorer, ds, level_probs=DEFAULT_LEVEL_PROBS) -> dict:
    """Score `ds` (validated preference rows) with `scorer`; return the flat metrics dict described above."""
    n = len(ds)
    prompts = list(ds["prompt"])
    result = scorer.score(prompts + prompts, list(ds["chosen"]) + list(ds["rejected"]))
    rewards = np.asarray(result.rewards)
    r_c, r_r = rewards[:n], rewards[n:]
    levels = np.asarray(ds["level"]) if "level" in ds.column_names else None

    out: dict = {"n_pairs": n}
    acc = metrics.pairwise_accuracy(r_c, r_r, levels)
    out["accuracy"] = acc.pop("overall")
    out.update({f"accuracy_{name}": value for name, value in acc.items()})
    out["ece"] = metrics.expected_calibration_error(r_c, r_r)
    target = 1.0 if levels is None else level_to_prob(levels, level_probs)
    out["loss_ranking"] = float(ranking_loss(torch.tensor(r_c), torch.tensor(r_r), target))

    if "grades_chosen" in ds.column_names and result.grades and result.grades[0]:
        truth = [grades_to_targets(g) for g in list(ds["grades_chosen"]) + list(ds["grades_rejected"])]
        pred = [[g[dim] for dim in GRADE_DIMENSIONS] for g in result.grades]
        for dim, m in metrics.grading_metrics(np.asarray(pred), np.asarray(truth)).items():
            out[f"grading_{dim}_accuracy"] = m["accuracy"]
            out[f"grading_{dim}_majority_baseline"] = m["majority_baseline"]
            out[f"grading_{dim}_confusion"] = m["confusion"]
    lengths = [len(_text(t)) for t in list(ds["chosen"]) + list(ds["rejected"])]
    out["length_correlation"] = metrics.length_correlation(rewards, lengths)
    return {key: _clean(value) for key, value in out.items()}
