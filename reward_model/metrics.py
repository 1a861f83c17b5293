"""Reward-model evaluation metrics: pure functions on arrays (numpy; torch tensors are accepted too).

What it does:
- `pairwise_accuracy(r_chosen, r_rejected, levels)`: how often the chosen response scores higher, overall and
  per preference level (`significantly_better`, `better`, `slightly_better`, `negligibly_better`).
- `grading_metrics(pred, target)`: per grading head, accuracy, 3x3 confusion matrix and the majority-class
  baseline accuracy.
- `expected_calibration_error(r_chosen, r_rejected)`: ECE of the BTL probability s(r_c - r_r).
- `best_of_n_accuracy(groups, scores, is_best)`: does the top-scored response of a prompt with >= 4
  responses hit a ground-truth best one.
- `length_correlation(rewards, lengths)`: Pearson correlation of reward with response length (a length bias probe).

What it simplifies: ties in reward count as half right; empty inputs give NaN rather than raising.

Run: `python -m pytest tests/reward_model/test_metrics.py`.
"""
from __future__ import annotations

import numpy as np

from afm_align.schema import GRADE_DIMENSIONS
from reward_model.data import LEVEL_NAMES, NUM_GRADE_LEVELS
from reward_model.losses import IGNORE_INDEX


def _np(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _win(r_chosen, r_rejected) -> np.ndarray:
    """1 where chosen > rejected, 0.5 on a tie, 0 otherwise."""
    rc, rr = _np(r_chosen).astype(float), _np(r_rejected).astype(float)
    return (rc > rr) + 0.5 * (rc == rr)


def pairwise_accuracy(r_chosen, r_rejected, levels=None) -> dict[str, float]:
    """Fraction of pairs with r_chosen > r_rejected (ties count 1/2): key `overall`, plus one key per level.

    `levels` holds ints 0..3; a level's key (e.g. `significantly_better`) appears only if it has pairs.
    """
    win = _win(r_chosen, r_rejected)
    out = {"overall": float(win.mean()) if win.size else float("nan")}
    if levels is not None:
        levels = _np(levels)
        for level, name in LEVEL_NAMES.items():
            mask = levels == level
            if mask.any():
                out[name] = float(win[mask].mean())
    return out


def confusion_matrix(pred, target, n_classes: int = NUM_GRADE_LEVELS) -> np.ndarray:
    """`[n_classes, n_classes]` counts, rows = true class, columns = predicted; -100 targets ignored."""
    pred, target = _np(pred).astype(int), _np(target).astype(int)
    keep = target != IGNORE_INDEX
    matrix = np.zeros((n_classes, n_classes), dtype=int)
    np.add.at(matrix, (target[keep], pred[keep]), 1)
    return matrix


def grading_metrics(pred, target, dims=GRADE_DIMENSIONS) -> dict[str, dict]:
    """Per grading head: `accuracy`, `confusion` (3x3 list, rows true / columns predicted), `majority_baseline`.

    `pred`, `target`: `[N, len(dims)]` class indices, target -100 where the grade is missing. The majority
    baseline is the accuracy of always predicting the most frequent true class of that head in `target`.
    `n` is the number of present grades (accuracy and baseline are NaN when it is 0).
    """
    pred, target = _np(pred), _np(target)
    out = {}
    for j, dim in enumerate(dims):
        matrix = confusion_matrix(pred[:, j], target[:, j])
        n = int(matrix.sum())
        out[dim] = {
            "accuracy": float(np.trace(matrix) / n) if n else float("nan"),
            "confusion": matrix.tolist(),
            "majority_baseline": float(matrix.sum(1).max() / n) if n else float("nan"),
            "n": n,
        }
    return out


def expected_calibration_error(r_chosen, r_rejected, labels=None, n_bins: int = 10) -> float:
    """Expected calibration error of the BTL preference probability, top-label form.

    For pair i let q_i = s(r_chosen_i - r_rejected_i), the model's probability that the first response
    wins, and y_i in {0, 1} the label (1 = first response is the preferred one; default all 1, as in a
    chosen/rejected dataset). The model predicts the first response iff q_i >= 0.5, with confidence
    c_i = max(q_i, 1 - q_i) in [0.5, 1]; it is correct iff that prediction equals y_i. Split [0.5, 1] into
    `n_bins` equal-width bins (the last one closed), B_b = the pairs whose c_i falls in bin b; then
        ECE = sum_b |B_b| / N * | mean_{i in B_b} correct_i - mean_{i in B_b} c_i |.
    0 is perfectly calibrated; a tie (q = 0.5) predicts the first response.
    """
    delta = _np(r_chosen).astype(float) - _np(r_rejected).astype(float)
    if delta.size == 0:
        return float("nan")
    y = np.ones_like(delta) if labels is None else _np(labels).astype(float)
    q = 1.0 / (1.0 + np.exp(-delta))
    conf = np.maximum(q, 1.0 - q)
    correct = ((q >= 0.5).astype(float) == y).astype(float)
    bins = np.minimum(((conf - 0.5) / 0.5 * n_bins).astype(int), n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        mask = bins == b
        if mask.any():
            ece += mask.mean() * abs(correct[mask].mean() - conf[mask].mean())
    return float(ece)


def best_of_n_accuracy(groups, scores, is_best, min_responses: int = 4) -> dict[str, float]:
    """Best-of-n selection accuracy over prompts with at least `min_responses` responses.

    `groups[i]` is the prompt id of response i, `scores[i]` its reward, `is_best[i]` whether it is a
    ground-truth best response of its prompt (several may be). A prompt counts as right when its
    highest-scored response (first one on ties) is a best one. Returns `accuracy`, `random_baseline`
    (mean fraction of best responses per prompt: the accuracy of a random pick) and `n_prompts`.
    """
    groups, scores, is_best = _np(groups), _np(scores).astype(float), _np(is_best).astype(bool)
    hits, baseline = [], []
    for g in dict.fromkeys(groups.tolist()):
        idx = np.flatnonzero(groups == g)
        if len(idx) < min_responses:
            continue
        hits.append(float(is_best[idx[np.argmax(scores[idx])]]))
        baseline.append(float(is_best[idx].mean()))
    if not hits:
        return {"accuracy": float("nan"), "random_baseline": float("nan"), "n_prompts": 0}
    return {"accuracy": float(np.mean(hits)), "random_baseline": float(np.mean(baseline)), "n_prompts": len(hits)}


def length_correlation(rewards, lengths) -> float:
    """Pearson correlation between rewards and response lengths; NaN if either is constant or n < 2."""
    r, n = _np(rewards).astype(float), _np(lengths).astype(float)
    if r.size < 2 or r.std() == 0 or n.std() == 0:
        return float("nan")
    return float(np.corrcoef(r, n)[0, 1])
