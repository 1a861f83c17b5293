"""Reward-model losses of the AFM report (arXiv 2407.21075, §4.1 "Reward modeling"; afm-spec.md §2.3).

What it does: small pure functions on tensors.
- `level_to_prob(levels)` maps a preference level (0 negligibly .. 3 significantly better) to the soft target
  probability p_l of the Bradley-Terry-Luce model.
- `ranking_loss(r_c, r_r, p)` = -p log s(r_c - r_r) - (1 - p) log s(r_r - r_c), the soft-label BTL loss
  (binary cross-entropy on the reward gap); its per-pair minimiser is the gap logit(p) = log(p / (1 - p)).
- `grading_loss(logits, grades)` = the single-sided grading regulariser: cross-entropy of each of the four
  3-way grading heads, summed over the four dimensions, missing grades (-100) masked out.
- `rm_loss(...)` = L_rank + lambda * (L_regu(chosen) + L_regu(rejected)).

What it simplifies: lambda and the level -> p mapping are not fixed by the paper (afm-spec §14 q3-4); both are
arguments. The grading loss of each dimension is averaged over the rows where that grade is present, so
missing grades do not dilute it.

Run: `python -m pytest tests/reward_model/test_losses.py`.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from afm_align.errors import UserError

# p_l per level index 0..3 = negligibly, slightly, better, significantly better (afm-spec §2.3 [LIN]).
DEFAULT_LEVEL_PROBS = (0.65, 0.75, 0.85, 0.95)
IGNORE_INDEX = -100


def level_to_prob(levels: torch.Tensor | Sequence[int], probs: Sequence[float] = DEFAULT_LEVEL_PROBS) -> torch.Tensor:
    """Map preference levels (ints 0..len(probs)-1) to target probabilities p_l; unknown level -> ValueError."""
    levels = torch.as_tensor(levels, dtype=torch.long)
    table = torch.as_tensor(list(probs), dtype=torch.float32, device=levels.device)
    bad = (levels < 0) | (levels >= len(table))
    if bad.any():
        raise UserError(
            f"Unknown preference level {int(levels[bad][0])}, expected an integer in 0..{len(table) - 1}."
        )
    return table[levels]


def ranking_loss(r_chosen: torch.Tensor, r_rejected: torch.Tensor, target_prob: torch.Tensor | float) -> torch.Tensor:
    """Soft-label BTL loss, mean over the batch: -p log s(d) - (1-p) log s(-d) with d = r_chosen - r_rejected.

    Computed with `logsigmoid` so large gaps neither overflow nor lose precision. With p = 1 this is the
    plain Bradley-Terry loss TRL's `RewardTrainer` uses.
    """
    delta = r_chosen - r_rejected
    p = torch.as_tensor(target_prob, dtype=delta.dtype, device=delta.device)
    loss = -p * F.logsigmoid(delta) - (1.0 - p) * F.logsigmoid(-delta)
    return loss.mean()


def grading_loss(logits: torch.Tensor, grades: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the grading heads, summed over dimensions, averaged over present grades.

    `logits` `[B, D, K]` (D = 4 dimensions, K = 3 levels), `grades` `[B, D]` with -100 where missing.
    For each dimension the CE is averaged over the rows where that grade is present, then the D
    per-dimension means are summed (a dimension with no grades in the batch contributes 0).
    """
    _, n_dims, n_levels = logits.shape
    per_item = F.cross_entropy(
        logits.reshape(-1, n_levels).float(), grades.reshape(-1), ignore_index=IGNORE_INDEX, reduction="none"
    ).view(-1, n_dims)
    present = (grades != IGNORE_INDEX).to(per_item.dtype)
    per_dim = (per_item * present).sum(0) / present.sum(0).clamp(min=1.0)
    return per_dim.sum()


def rm_loss(
    r_chosen: torch.Tensor,
    r_rejected: torch.Tensor,
    target_prob: torch.Tensor | float,
    grade_logits_chosen: torch.Tensor | None = None,
    grade_logits_rejected: torch.Tensor | None = None,
    grades_chosen: torch.Tensor | None = None,
    grades_rejected: torch.Tensor | None = None,
    grading_weight: float = 0.0,
) -> dict[str, torch.Tensor]:
    """L_RM = L_rank + lambda * (L_regu(chosen) + L_regu(rejected)); returns `loss`, `ranking`, `grading`.

    With `grading_weight == 0` (or no grade logits) the grading terms are skipped entirely.
    """
    rank = ranking_loss(r_chosen, r_rejected, target_prob)
    grading = torch.zeros((), dtype=rank.dtype, device=rank.device)
    if grading_weight and grade_logits_chosen is not None:
        grading = grading_loss(grade_logits_chosen, grades_chosen) + grading_loss(grade_logits_rejected, grades_rejected)
    return {"loss": rank + grading_weight * grading, "ranking": rank, "grading": grading}
